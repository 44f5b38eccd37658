"""Permutation control of neuron overlap: observed shared neurons vs random sets of the same per-layer sizes.

:func:`permutation_control` pairs every target set with its source (English) set
as :func:`~lrp2_interp.neurons.overlap.pair_sets` does and compares the observed
intersection with random sets of the same per-layer sizes.  Only the intersection
size depends on the draw, and for a uniformly random subset of a layer it is
hypergeometric; the default sampler draws it directly (exact, no sets
materialised, cheap for ``n_perm=10_000``); ``sampler="sets"`` draws actual random
sets of both languages with :func:`~lrp2_interp.neurons.sets.random_masks` (same
law, slower).  The result is a :class:`ControlResult`: its inputs and settings,
the per-unit ``table`` and :meth:`ControlResult.summary` per language and condition.
:func:`unit_baseline_summary` sets the chance level next to the same-unit and
different-unit overlap (the paper's Table 2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from lrp2_interp.errors import InputError
from lrp2_interp.figures import draw_control
from lrp2_interp.files import write_table
from lrp2_interp.layers import paper_layer
from lrp2_interp.metrics import nanmean0
from lrp2_interp.neurons.overlap import SetKey, overlap_ratios, pair_sets
from lrp2_interp.neurons.sets import NeuronSet, random_masks, unit_name
from lrp2_interp.plots import save_result

Sampler = Literal["hypergeometric", "sets"]


@dataclass(frozen=True)
class ControlResult:
    """The permutation control of a family of neuron sets: settings, per-unit table, summary."""

    source: str
    languages: tuple[str, ...]  # target languages, in table order
    n_layers: int
    d_mlp: int
    n_perm: int
    seed: int
    by_layer: bool  # one row per (unit, layer) instead of per unit
    sampler: Sampler
    table: pd.DataFrame  # see permutation_control

    def summary(self, alpha: float = 0.05) -> pd.DataFrame:
        """Observed vs chance overlap per (language, condition), and the share of units with p < ``alpha``."""
        g = self.table.groupby(["language", "condition"], sort=False)
        return g.agg(
            n_units=("unit", "size"),
            n_undefined=("jaccard", lambda j: int(j.isna().sum())),
            jaccard=("jaccard", "mean"),
            chance_jaccard=("chance_jaccard", "mean"),
            overlap_rate=("overlap_rate", "mean"),
            chance_overlap_rate=("chance_overlap_rate", "mean"),
            share_above_chance=("p_value", lambda p: float((p < alpha).mean())),
        ).reset_index()

    def to_csv(self, path: str | Path) -> Path:
        return write_table(path, self.table)

    def to_frame(self) -> pd.DataFrame:
        """The per-unit (per-layer) table: observed and chance overlap, p-value."""
        return self.table.copy()

    def plot(self, ax: Any = None) -> Any:
        """Observed vs chance Jaccard and the share of units above chance, per language and condition."""
        return draw_control(self.summary(), ax, source=self.source)

    def save(self, folder: str | Path) -> Path:
        """Write ``control.csv`` (the table) and ``control.png`` (:meth:`plot`) into ``folder``."""
        return save_result(folder, "control", self.table, self.plot)


def null_intersections(
    n_a: np.ndarray,
    n_b: np.ndarray,
    d_mlp: int,
    n_perm: int,
    *,
    seed: int = 0,
    sampler: Sampler = "hypergeometric",
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


def _null_stats(
    shared: np.ndarray, null: np.ndarray, n_a: np.ndarray, n_b: np.ndarray, d_mlp: int
) -> dict[str, np.ndarray]:
    """Chance level, z-score and one-sided p-value of observed ``shared`` vs ``null [n_perm, ...]``."""
    obs = overlap_ratios(shared, n_a, n_b)
    chance = overlap_ratios(null, n_a[None], n_b[None])
    sd = null.std(0, ddof=1) if len(null) > 1 else np.zeros(null.shape[1:])
    mean = null.mean(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(sd > 0, (shared - mean) / sd, np.nan)
    return {
        "expected_shared": n_a * n_b / d_mlp,  # analytic hypergeometric mean
        "chance_shared": mean,
        "chance_shared_sd": sd,
        "jaccard": obs["jaccard"],
        "chance_jaccard": nanmean0(chance["jaccard"]),
        "overlap_rate": obs["overlap_rate"],
        "chance_overlap_rate": nanmean0(chance["overlap_rate"]),
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
    sampler: Sampler = "hypergeometric",
    progress: bool = False,
) -> ControlResult:
    """Observed overlap vs random neuron sets of the same per-layer sizes.

    One row per (language, condition, unit) (and layer when ``by_layer``):
    ``n_target``, ``n_source``, ``n_shared``, ``expected_shared`` (analytic
    ``sum_l |A_l||B_l| / d_mlp``), ``chance_shared`` (+ ``_sd``), observed and
    chance-level ``jaccard`` / ``overlap_rate``, ``z`` (of the shared count) and a
    one-sided permutation ``p_value`` = (1 + #{null >= observed}) / (1 + n_perm),
    which is the same for Jaccard and overlap rate (both increase with the shared
    count at fixed sizes).  Unit ``i`` uses seed ``(seed, i)``.  ``progress``: a bar with the ETA over the
    units (stderr, cleared when done).
    """
    if n_perm < 1:
        raise InputError(f"n_perm must be >= 1, got {n_perm}", field="n_perm")
    frames = []
    pairs = tqdm(pair_sets(sets, source), desc="permutation control", unit="set", disable=not progress, leave=False)
    for i, ((lang, cond, unit), a, b) in enumerate(pairs):
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
    languages = tuple(dict.fromkeys(str(v) for v in out["language"]))
    return ControlResult(source, languages, n_layers, d_mlp, n_perm, seed, by_layer, sampler, out)


def unit_baseline_summary(
    cross: pd.DataFrame, control: ControlResult | None = None, values: tuple[str, ...] = ("overlap_rate", "jaccard")
) -> pd.DataFrame:
    """Per (language, condition[, layer]): mean over units of the same-unit and different-unit overlap.

    ``cross`` is :func:`~lrp2_interp.neurons.overlap.different_unit_overlap`'s table; ``control`` (optional)
    :func:`permutation_control`'s result over the same sets and with the same
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
        chance = control.table.groupby(keys, sort=True)[[f"chance_{v}" for v in values]].mean()
        out = out.join(chance, how="left")
    out = out.reset_index()
    if "layer" in out.columns:
        out.insert(out.columns.get_loc("layer") + 1, "paper_layer", out["layer"].map(paper_layer))
    return out
