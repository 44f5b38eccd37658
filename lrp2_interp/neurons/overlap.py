"""Overlap of knowledge neurons between English and language l, and its chance level.

Inputs are dicts of :class:`~lrp2_interp.neurons.selection.NeuronSet` keyed by
``(language, condition, unit)``: ``condition`` is e.g. ``"baseline"`` or
``"lrp2"``, ``unit`` a fact (``("P36", 12)``) or a relation (``"P36"``), as
returned by :func:`~lrp2_interp.neurons.selection.select_grouped`.  Every non-source set is
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
* :func:`permutation_control` -- random sets of the same per-layer sizes.

:func:`unit_baseline_summary` puts the same-unit, different-unit and chance means
side by side per language, condition (and layer).

:func:`permutation_control` compares the observed intersection with random sets
of the same per-layer sizes.  Only the intersection size depends on the draw, and
for a uniformly random subset of a layer it is hypergeometric; the default
sampler draws it directly (exact, no sets materialised, cheap for
``n_perm=10_000``); ``sampler="sets"`` draws actual random sets of both
languages with :func:`~lrp2_interp.neurons.selection.random_masks` (same law, slower).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from lrp2_interp.errors import InputError
from lrp2_interp.layers import paper_layer
from lrp2_interp.metrics import bootstrap_ci, jaccard_counts, rate_counts
from lrp2_interp.neurons.selection import NeuronSet, random_masks, unit_name

SetKey = tuple[str, str, Hashable]  # (language, condition, unit)
BASE_COLUMNS = ["language", "condition", "unit"]


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


def _ratios(shared: np.ndarray, n_a: np.ndarray, n_b: np.ndarray) -> dict[str, np.ndarray]:
    """Jaccard and overlap rates from counts (any matching shapes); NaN where undefined."""
    return {
        "jaccard": jaccard_counts(shared, n_a, n_b),
        "overlap_rate": rate_counts(shared, n_a),
        "overlap_rate_source": rate_counts(shared, n_b),
    }


def overlap_table(sets: Mapping[SetKey, NeuronSet], *, source: str = "en") -> pd.DataFrame:
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
    for name, values in _ratios(df["n_shared"], df["n_target"], df["n_source"]).items():
        df[name] = values
    return df


def overlap_by_layer(sets: Mapping[SetKey, NeuronSet], n_layers: int, *, source: str = "en") -> pd.DataFrame:
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
    for name, values in _ratios(df["n_shared"], df["n_target"], df["n_source"]).items():
        df[name] = values
    return df


def summarize_overlap(
    table: pd.DataFrame, value: str = "jaccard", *, n_boot: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """Mean of ``value`` over units per (language, condition[, layer]) with a bootstrap 95% CI."""
    keys = [c for c in ("language", "condition", "layer") if c in table.columns]
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
    return out


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
        ratios = _ratios(shared, np.broadcast_to(n_a, shared.shape), n_b)  # each [1 + U', L']
        for comparison, sel in (("same", slice(0, 1)), ("different", slice(1, None))):
            frame: dict[str, Any] = {"language": lang, "condition": cond, "unit": unit_name(unit)}
            if by_layer:
                frame["layer"] = np.arange(n_layers)
            frame.update(
                comparison=comparison,
                n_pairs=len(source_sets[sel]),
                **{k: _nanmean0(v[sel]) for k, v in ratios.items()},
            )
            rows.append(pd.DataFrame(frame, index=range(shared.shape[1])))
    return pd.concat(rows, ignore_index=True)


def unit_baseline_summary(
    cross: pd.DataFrame, control: pd.DataFrame | None = None, values: tuple[str, ...] = ("overlap_rate", "jaccard")
) -> pd.DataFrame:
    """Per (language, condition[, layer]): mean over units of the same-unit and different-unit overlap.

    ``cross`` is :func:`different_unit_overlap`'s table; ``control`` (optional)
    :func:`permutation_control`'s table over the same sets and with the same
    ``by_layer`` choice, whose mean ``chance_*`` levels are added.  Columns
    ``same_{value}``, ``different_{value}`` (and ``chance_{value}``), ``n_units``.
    """
    keys = [c for c in ("language", "condition", "layer") if c in cross.columns]
    wide = cross.set_index([*keys, "unit", "comparison"])[list(values)].unstack("comparison")
    out = wide.groupby(level=keys, sort=True).mean()
    out.columns = [f"{comp}_{value}" for value, comp in out.columns]
    out = out[[f"{comp}_{v}" for v in values for comp in ("same", "different")]]
    out.insert(0, "n_units", wide.groupby(level=keys, sort=True).size())
    if control is not None:
        chance = control.groupby(keys, sort=True)[[f"chance_{v}" for v in values]].mean()
        out = out.join(chance, how="left")
    out = out.reset_index()
    if "layer" in out.columns:
        out.insert(out.columns.get_loc("layer") + 1, "paper_layer", out["layer"].map(paper_layer))
    return out


# ------------------------------------------------------------------ permutation control
def null_intersections(
    n_a: np.ndarray,
    n_b: np.ndarray,
    d_mlp: int,
    n_perm: int,
    *,
    seed: int = 0,
    sampler: Literal["hypergeometric", "sets"] = "hypergeometric",
) -> np.ndarray:
    """``[n_perm, n_layers]`` intersection sizes of random sets with ``n_a[l]``/``n_b[l]`` neurons per layer."""
    n_a, n_b = np.asarray(n_a, np.int64), np.asarray(n_b, np.int64)  # [L]
    if sampler == "hypergeometric":
        rng = np.random.default_rng(seed)
        return rng.hypergeometric(n_a, d_mlp - n_a, n_b, size=(n_perm, len(n_a))).astype(np.int64)
    if sampler != "sets":
        raise InputError(f"sampler must be 'hypergeometric' or 'sets', got {sampler!r}", field="sampler")
    gen = torch.Generator().manual_seed(seed)
    chunk = max(1, int(2**24 // max(1, len(n_a) * d_mlp)))  # bound memory to ~16M sites per draw
    out = []
    for start in range(0, n_perm, chunk):
        n = min(chunk, n_perm - start)
        a = random_masks(n_a, d_mlp, n, generator=gen)  # [n, L, D]
        b = random_masks(n_b, d_mlp, n, generator=gen)
        out.append((a & b).sum(-1).numpy())  # [n, L]
    return np.concatenate(out).astype(np.int64)


def _nanmean0(x: np.ndarray) -> np.ndarray:
    """Mean over axis 0 ignoring NaN; NaN (without a warning) where every value is NaN."""
    ok = ~np.isnan(x)
    n = ok.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.where(ok, x, 0.0).sum(0) / n, np.nan)


def _null_stats(
    shared: np.ndarray, null: np.ndarray, n_a: np.ndarray, n_b: np.ndarray, d_mlp: int
) -> dict[str, np.ndarray]:
    """Chance level, z-score and one-sided p-value of observed ``shared`` vs ``null [n_perm, ...]``."""
    obs = _ratios(shared, n_a, n_b)
    chance = _ratios(null, n_a[None], n_b[None])
    sd = null.std(0, ddof=1) if len(null) > 1 else np.zeros(null.shape[1:])
    mean = null.mean(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(sd > 0, (shared - mean) / sd, np.nan)
    return {
        "expected_shared": n_a * n_b / d_mlp,  # analytic hypergeometric mean
        "chance_shared": mean,
        "chance_shared_sd": sd,
        "jaccard": obs["jaccard"],
        "chance_jaccard": _nanmean0(chance["jaccard"]),
        "overlap_rate": obs["overlap_rate"],
        "chance_overlap_rate": _nanmean0(chance["overlap_rate"]),
        "z": z,
        "p_value": (1 + (null >= shared[None]).sum(0)) / (1 + len(null)),
    }


def permutation_control(
    sets: Mapping[SetKey, NeuronSet],
    *,
    n_layers: int,
    d_mlp: int,
    source: str = "en",
    n_perm: int = 1000,
    seed: int = 0,
    by_layer: bool = False,
    sampler: Literal["hypergeometric", "sets"] = "hypergeometric",
) -> pd.DataFrame:
    """Observed overlap vs random neuron sets of the same per-layer sizes.

    One row per (language, condition, unit) (and layer when ``by_layer``):
    ``n_target``, ``n_source``, ``n_shared``, ``expected_shared`` (analytic
    ``sum_l |A_l||B_l| / d_mlp``), ``chance_shared`` (+ ``_sd``), observed and
    chance-level ``jaccard`` / ``overlap_rate``, ``z`` (of the shared count) and a
    one-sided permutation ``p_value`` = (1 + #{null >= observed}) / (1 + n_perm),
    which is the same for Jaccard and overlap rate (both increase with the shared
    count at fixed sizes).  Unit ``i`` uses seed ``(seed, i)``.
    """
    if n_perm < 1:
        raise InputError(f"n_perm must be >= 1, got {n_perm}", field="n_perm")
    frames = []
    for i, ((lang, cond, unit), a, b) in enumerate(pair_sets(sets, source)):
        n_a, n_b = a.per_layer_counts(n_layers), b.per_layer_counts(n_layers)  # [L]
        shared = NeuronSet(a.sites & b.sites).per_layer_counts(n_layers)  # [L]
        unit_seed = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
        null = null_intersections(n_a, n_b, d_mlp, n_perm, seed=unit_seed, sampler=sampler)  # [n_perm, L]
        if not by_layer:
            n_a, n_b, shared, null = (
                n_a.sum(keepdims=True),
                n_b.sum(keepdims=True),
                shared.sum(keepdims=True),
                null.sum(1, keepdims=True),
            )
        stats = _null_stats(shared, null, n_a, n_b, d_mlp)
        if not by_layer:  # the analytic mean of a sum is the sum of the per-layer means
            stats["expected_shared"] = np.array(
                [(a.per_layer_counts(n_layers) * b.per_layer_counts(n_layers)).sum() / d_mlp]
            )
        frame = pd.DataFrame(
            {
                "language": lang,
                "condition": cond,
                "unit": unit_name(unit),
                "n_target": n_a,
                "n_source": n_b,
                "n_shared": shared,
                **stats,
            }
        )
        if by_layer:
            frame.insert(3, "layer", np.arange(n_layers))
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True)
    out["n_perm"] = n_perm
    return out
