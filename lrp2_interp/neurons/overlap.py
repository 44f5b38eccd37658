"""Overlap of knowledge neurons between English and language l: per unit, per layer, and with other units.

Inputs are dicts of :class:`~lrp2_interp.neurons.neuron_selection.NeuronSet` keyed by
``(language, condition, unit)``: ``condition`` is e.g. ``"baseline"`` or
``"lrp2"``, ``unit`` a fact (``("P36", 12)``) or a relation (``"P36"``), as
returned by :func:`~lrp2_interp.neurons.neuron_selection.select_grouped`.  Every non-source set is
paired with the source (English) set of the same condition and unit; when
English has a single condition for that unit it is used for every condition
(LRP2 leaves English queries unchanged, so one English set suffices).

Per pair (A = language l, B = English):

* ``jaccard`` = |A n B| / |A u B|;
* ``overlap_rate`` = |A n B| / |A|: the share of l's knowledge neurons that are
  also English knowledge neurons (``overlap_rate_source`` = |A n B| / |B|);

undefined values (empty union / empty A) are NaN so that means over units skip
them.  :func:`overlap_by_layer` gives the same per layer.

Two baselines say whether an overlap is large:

* :func:`different_unit_overlap` -- the paper's Table 2 baseline (Xu et al. 2023:
  17.9% same relation vs 11.5% different relations, mBERT zh-en): l's set of unit
  u against English's sets of every *other* unit u' (mean over u'), next to the
  same-unit overlap;
* :func:`~lrp2_interp.neurons.control.permutation_control` -- random sets of the
  same per-layer sizes.

:func:`~lrp2_interp.neurons.control.unit_baseline_summary` puts the same-unit, different-unit and chance means
side by side per language, condition (and layer).

Results are typed: :func:`overlap_table` / :func:`overlap_by_layer` return an
:class:`OverlapResult`, :func:`summarize_overlap` an :class:`OverlapSummary`; each
carries the source language, the target languages and (per layer) the layer count
with its ``.table``.  Jaccard and overlap rate are :mod:`lrp2_interp.metrics`'.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lrp2_interp.errors import InputError
from lrp2_interp.figures import draw_overlap
from lrp2_interp.files import write_table
from lrp2_interp.metrics import bootstrap_ci, jaccard_counts, nanmean0, rate_counts
from lrp2_interp.neurons.sets import NeuronSet, unit_name
from lrp2_interp.plots import save_result

SetKey = tuple[str, str, Hashable]  # (language, condition, unit)


@dataclass(frozen=True)
class OverlapResult:
    """Overlap of every target language's neuron sets with the source's: one row per unit (and layer)."""

    source: str
    languages: tuple[str, ...]  # target languages, in table order
    n_layers: int | None  # per-layer table over this many model layers; None: layers pooled
    table: pd.DataFrame  # language, condition, unit[, layer], n_target, n_source, n_shared, jaccard, overlap_rate(s)

    def to_csv(self, path: str | Path) -> Path:
        return write_table(path, self.table)

    def to_frame(self) -> pd.DataFrame:
        """The table: one row per language, condition and unit (and layer)."""
        return self.table.copy()

    def plot(self, ax: Any = None, *, value: str = "n_shared", condition: str = "baseline") -> Any:
        """Per layer: layer x language heatmap of ``value`` for ``condition``; pooled: language x condition."""
        return draw_overlap(self.table, ax, value=value, condition=condition, source=self.source)

    def save(self, folder: str | Path) -> Path:
        """Write ``overlap.csv`` (the table) and ``overlap.png`` (:meth:`plot`) into ``folder``."""
        return save_result(folder, "overlap", self.table, self.plot)


@dataclass(frozen=True)
class OverlapSummary:
    """Mean overlap over units per (language, condition[, layer]) with bootstrap 95% CIs."""

    source: str
    languages: tuple[str, ...]
    values: tuple[str, ...]  # summarised columns (``jaccard``, ``overlap_rate``), one block of rows each
    n_boot: int
    seed: int
    table: pd.DataFrame  # language, condition[, layer], value, n_units, n_undefined, mean, low, high

    def mean(self, value: str = "jaccard") -> dict[str, float]:
        """``{condition: mean}`` of ``value`` (a single-language summary pooled over layers)."""
        rows = self.table[self.table["value"] == value]
        return {str(c): float(m) for c, m in zip(rows["condition"], rows["mean"])}

    def to_csv(self, path: str | Path) -> Path:
        return write_table(path, self.table)


def _languages(table: pd.DataFrame) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(v) for v in table["language"])) if "language" in table else ()


def _source_by_unit(sets: Mapping[SetKey, NeuronSet], source: str) -> dict[Hashable, dict[str, NeuronSet]]:
    by_unit: dict[Hashable, dict[str, NeuronSet]] = {}
    for (lang, cond, unit), ns in sets.items():
        if lang == source:
            by_unit.setdefault(unit, {})[cond] = ns
    return by_unit


def _source_set(
    by_unit: Mapping[Hashable, Mapping[str, NeuronSet]], unit: Hashable, cond: str, source: str
) -> NeuronSet:
    """The source set paired with (unit, cond): that condition's, or the unit's only one."""
    english = by_unit.get(unit, {})
    if cond in english:
        return english[cond]
    if len(english) == 1:
        return next(iter(english.values()))
    have = sorted(english) or "none"
    raise InputError(
        f"no {source} neuron set for unit {unit_name(unit)!r} and condition {cond!r} (conditions available: {have})",
        field="sets",
    )


def pair_sets(sets: Mapping[SetKey, NeuronSet], source: str = "en") -> list[tuple[SetKey, NeuronSet, NeuronSet]]:
    """``[(key, target set A, source set B)]`` for every non-source key, in key order."""
    by_unit = _source_by_unit(sets, source)
    out = [(key, ns, _source_set(by_unit, key[2], key[1], source)) for key, ns in sets.items() if key[0] != source]
    if not out:
        raise InputError(f"no neuron sets of a language other than {source!r} to compare", field="sets")
    return out


def overlap_ratios(shared: Any, n_a: Any, n_b: Any) -> dict[str, np.ndarray]:
    """Jaccard and overlap rates from counts (any matching shapes); NaN where undefined."""
    return {
        "jaccard": jaccard_counts(shared, n_a, n_b),
        "overlap_rate": rate_counts(shared, n_a),
        "overlap_rate_source": rate_counts(shared, n_b),
    }


def overlap_table(sets: Mapping[SetKey, NeuronSet], *, source: str = "en") -> OverlapResult:
    """One row per (language, condition, unit): sizes, shared count, Jaccard, overlap rates."""
    rows = []
    for (lang, cond, unit), a, b in pair_sets(sets, source):
        rows.append(
            {
                "language": lang,
                "condition": cond,
                "unit": unit_name(unit),
                "n_target": len(a),
                "n_source": len(b),
                "n_shared": len(a.sites & b.sites),
            }
        )
    df = pd.DataFrame(rows)
    for name, values in overlap_ratios(df["n_shared"], df["n_target"], df["n_source"]).items():
        df[name] = values
    return OverlapResult(source, _languages(df), None, df)


def overlap_by_layer(sets: Mapping[SetKey, NeuronSet], n_layers: int, *, source: str = "en") -> OverlapResult:
    """One row per (language, condition, unit, layer), same columns as :func:`overlap_table`."""
    frames = []
    for (lang, cond, unit), a, b in pair_sets(sets, source):
        shared = NeuronSet(a.sites & b.sites)
        frames.append(
            pd.DataFrame(
                {
                    "language": lang,
                    "condition": cond,
                    "unit": unit_name(unit),
                    "layer": np.arange(n_layers),
                    "n_target": a.per_layer_counts(n_layers),
                    "n_source": b.per_layer_counts(n_layers),
                    "n_shared": shared.per_layer_counts(n_layers),
                }
            )
        )
    df = pd.concat(frames, ignore_index=True)
    for name, values in overlap_ratios(df["n_shared"], df["n_target"], df["n_source"]).items():
        df[name] = values
    return OverlapResult(source, _languages(df), n_layers, df)


def summarize_overlap(
    overlap: OverlapResult, values: str | Sequence[str] = "jaccard", *, n_boot: int = 1000, seed: int = 0
) -> OverlapSummary:
    """Mean of each of ``values`` over units per (language, condition[, layer]) with a bootstrap 95% CI."""
    values = (values,) if isinstance(values, str) else tuple(values)
    table = overlap.table
    keys = [c for c in ("language", "condition", "layer") if c in table.columns]
    parts = []
    for value in values:
        rows = []
        for group, g in table.groupby(keys, sort=True):
            vals = g[value].dropna().to_numpy(float)
            est = bootstrap_ci(vals, lambda x: float(x.mean()) if len(x) else float("nan"), n_boot=n_boot, seed=seed)
            rows.append(
                dict(
                    zip(keys, group if isinstance(group, tuple) else (group,)),
                    n_units=len(vals),
                    n_undefined=int(len(g) - len(vals)),
                    mean=est.value,
                    low=est.low,
                    high=est.high,
                )
            )
        out = pd.DataFrame(rows)
        out.insert(len(keys), "value", value)
        parts.append(out)
    summary = pd.concat(parts, ignore_index=True)
    return OverlapSummary(overlap.source, overlap.languages, values, n_boot, seed, summary)


def overlap_gain(
    table: pd.DataFrame, *, baseline: str = "baseline", treated: str = "lrp2", value: str = "jaccard"
) -> pd.DataFrame:
    """Per (language, unit[, layer]): ``value`` under ``baseline`` and ``treated`` and their difference."""
    keys = [c for c in ("language", "unit", "layer") if c in table.columns]
    base = table[table["condition"] == baseline].set_index(keys)[value].rename(baseline)
    trt = table[table["condition"] == treated].set_index(keys)[value].rename(treated)
    if base.empty or trt.empty:
        raise InputError(
            f"the overlap table needs conditions {baseline!r} and {treated!r}; "
            f"it has {sorted(table['condition'].unique())}",
            field="condition",
        )
    out = pd.concat([base, trt], axis=1, join="inner").reset_index()
    out["gain"] = out[treated] - out[baseline]
    out.insert(len(keys), "value", value)
    return out


# ------------------------------------------------------------------ different-unit baseline (Table 2)
def different_unit_overlap(
    sets: Mapping[SetKey, NeuronSet], n_layers: int, *, source: str = "en", by_layer: bool = True
) -> pd.DataFrame:
    """Overlap of l's set of unit u with English's set of u (``same``) and of every other unit (``different``).

    One row per (language, condition, unit[, layer], comparison): ``n_pairs`` (1
    for ``same``, the number of other English units for ``different``), and
    ``jaccard`` / ``overlap_rate`` / ``overlap_rate_source`` -- for ``different``
    the mean over the other units u' of the pair's value (NaN pairs skipped).  The
    English set of a unit and condition is chosen as in :func:`pair_sets`.  With
    per-relation sets this is the paper's Table 2 comparison; ``by_layer=False``
    pools the layers (counts summed over layers before the ratios).
    """
    by_unit = _source_by_unit(sets, source)
    units = list(by_unit)
    rows = []
    for (lang, cond, unit), a, b in pair_sets(sets, source):
        others = [u for u in units if u != unit]
        source_sets = [b] + [_source_set(by_unit, u, cond, source) for u in others]
        n_a = a.per_layer_counts(n_layers)  # [L]
        n_b = np.stack([s.per_layer_counts(n_layers) for s in source_sets])  # [1 + U', L]
        shared = np.stack([NeuronSet(a.sites & s.sites).per_layer_counts(n_layers) for s in source_sets])
        if not by_layer:
            n_a, n_b, shared = n_a.sum(keepdims=True), n_b.sum(1, keepdims=True), shared.sum(1, keepdims=True)
        ratios = overlap_ratios(shared, np.broadcast_to(n_a, shared.shape), n_b)  # each [1 + U', L']
        for comparison, sel in (("same", slice(0, 1)), ("different", slice(1, None))):
            frame: dict[str, Any] = {"language": lang, "condition": cond, "unit": unit_name(unit)}
            if by_layer:
                frame["layer"] = np.arange(n_layers)
            frame.update(
                comparison=comparison,
                n_pairs=len(source_sets[sel]),
                **{k: nanmean0(v[sel]) for k, v in ratios.items()},
            )
            rows.append(pd.DataFrame(frame, index=range(shared.shape[1])))
    return pd.concat(rows, ignore_index=True)
