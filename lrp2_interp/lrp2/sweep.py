"""LRP2 (m, n) sweep: accuracy for every layer pair, held-out selection, heatmap.

Every pair ``m < n`` (optionally ``m == n``) is probed on all facts of the
language.  By default (``SweepConfig.engine="cached"``) the facts are cut into
groups of ``unit_facts``; each group is one resumable unit of a
:class:`~lrp2_interp.store.ShardStore` (and, under ``torchrun``, one rank's share)
that scores the baseline and every pair with :mod:`lrp2_interp.lrp2.sweep_engine`
(clean states cached once, LIRP-shifted states shared across ``n``).
``engine="per_pair"`` probes each pair separately, one unit per pair (the
reference; also used where the cached engine does not apply).  Both give the same
table.  Facts are split by line id into a *dev* part (selection) and a *test* part
(evaluation):

* ``oracle``: the pair with the best accuracy on all facts (the paper's choice);
* ``heldout``: the pair with the best *dev* accuracy, reported on *test* facts
  next to the baseline's test accuracy -- the honest estimate of the gain.

``m`` and ``n`` are block indices; the tables add the paper's layer numbers
``paper_m`` / ``paper_n`` (:mod:`lrp2_interp.layers`), and ``layers`` may
include ``layers.EMBEDDINGS`` (-1, the embedding output; paper layer 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
from tqdm.auto import tqdm

from lrp2_interp.distributed import Dist
from lrp2_interp.errors import InputError, Unsupported
from lrp2_interp.facts import FactSet
from lrp2_interp.figures import draw_sweep_gain
from lrp2_interp.layers import EMBEDDINGS, paper_layer
from lrp2_interp.lrp2.projection import LRP2Config, lrp2_hooks, shifts
from lrp2_interp.lrp2.sweep_engine import sweep_scores
from lrp2_interp.lrp2.vectors import LanguageVectors
from lrp2_interp.models.layer_runner import LayerRunner
from lrp2_interp.models.loading import LanguageModel
from lrp2_interp.probing.probe import ProbeConfig, probe
from lrp2_interp.probing.query_set import QuerySet
from lrp2_interp.probing.types import TABLE_COLUMNS, rank_rows, rankable
from lrp2_interp.store import UnitStore

BASELINE = "baseline"


@dataclass(frozen=True)
class SweepConfig:
    language: str
    source: str = "en"
    layers: tuple[int, ...] | None = None  # candidate layers for m and n; None = all
    include_equal: bool = False  # m == n is the identity; include it as a sanity row
    dev_fraction: float = 0.5
    seed: int = 0
    control: Literal["none", "random"] = "none"  # "random": random directions of the same norms
    probe: ProbeConfig = field(default_factory=lambda: ProbeConfig())
    engine: str = "cached"  # "cached": all pairs per group of facts from cached states; "per_pair": probe each pair
    unit_facts: int = 16  # facts per resumable unit of the cached engine (also the progress bar's step)

    def pairs(self, n_layers: int) -> list[tuple[int, int]]:
        layers = sorted(self.layers) if self.layers is not None else list(range(n_layers))
        for layer in layers:
            if not EMBEDDINGS <= layer < n_layers:
                raise InputError(
                    f"layer {layer} out of range (model has {n_layers}; {EMBEDDINGS} = embeddings)", field="layers"
                )
        return [(m, n) for m in layers for n in layers if m < n or (self.include_equal and m == n)]


@dataclass(frozen=True)
class SweepResult:
    config: SweepConfig
    model_name: str
    facts_table: pd.DataFrame  # one row per (condition, fact): condition, m, n, lineid, relation, correct, rank
    dev_ids: frozenset[int]

    def accuracy_table(self) -> pd.DataFrame:
        """One row per condition: acc (all facts), dev_acc, test_acc and gains over the baseline (points)."""
        t = self.facts_table.assign(
            split=self.facts_table["lineid"].isin(self.dev_ids).map({True: "dev", False: "test"})
        )
        acc = t.groupby(["condition", "m", "n"], dropna=False)["correct"].mean().mul(100).rename("acc")
        by_split = t.groupby(["condition", "m", "n", "split"], dropna=False)["correct"].mean().mul(100).unstack("split")
        out = pd.concat([acc, by_split.rename(columns={"dev": "dev_acc", "test": "test_acc"})], axis=1).reset_index()
        base = out[out["condition"] == BASELINE].iloc[0]
        for col in ("acc", "dev_acc", "test_acc"):
            if col in out:
                out[f"{col.replace('acc', 'gain')}"] = out[col] - base[col]
        for col in ("m", "n"):  # the paper's 1-based layer numbers next to the block indices
            out.insert(
                out.columns.get_loc("n") + (1 if col == "m" else 2),
                f"paper_{col}",
                out[col].map(lambda b: paper_layer(b) if pd.notna(b) else pd.NA).astype("Int64"),
            )
        return out

    def pairs_table(self) -> pd.DataFrame:
        t = self.accuracy_table().query("condition != @BASELINE").reset_index(drop=True)
        return t.astype({"m": int, "n": int, "paper_m": int, "paper_n": int})

    def baseline(self) -> pd.Series:
        return self.accuracy_table().query("condition == @BASELINE").iloc[0]

    def oracle(self) -> pd.Series:
        """The pair with the best accuracy on all facts (the paper's selection)."""
        t = self.pairs_table()
        return t.loc[t["acc"].idxmax()]

    def heldout(self) -> pd.Series:
        """The pair with the best dev accuracy; evaluate it on ``test_acc``."""
        t = self.pairs_table()
        return t.loc[t["dev_acc"].idxmax()]

    def gain_matrix(self, column: str = "gain") -> pd.DataFrame:
        """``[m, n]`` matrix of a column (default: accuracy gain over baseline, points)."""
        return self.pairs_table().pivot(index="m", columns="n", values=column)

    def to_frame(self) -> pd.DataFrame:
        """One row per condition: accuracy on all, dev and test facts and the gains (:meth:`accuracy_table`)."""
        return self.accuracy_table()

    def plot(self, ax: Any = None, *, column: str = "gain") -> Any:
        """m x n heatmap of ``column`` (default: the Acc gain over the baseline on all facts) on ``ax``."""
        return draw_sweep_gain(
            self.gain_matrix(column), ax, baseline=float(self.baseline()["acc"]), language=self.config.language
        )

    def correct_of(self, m: int | None, n: int | None) -> pd.Series:
        """Per-fact correctness (indexed by (relation, lineid)) of one condition."""
        t = self.facts_table
        sel = t["condition"] == BASELINE if m is None else (t["m"] == m) & (t["n"] == n)
        return t[sel].set_index(["relation", "lineid"])["correct"].sort_index()


def _condition_frame(result_table: pd.DataFrame, condition: str, m: int | None, n: int | None) -> pd.DataFrame:
    out = result_table[["relation", "lineid", "correct", "rank"]].copy()
    out.insert(0, "n", n)
    out.insert(0, "m", m)
    out.insert(0, "condition", condition)
    return out


def run_sweep(
    lm: LanguageModel,
    facts: FactSet,
    vectors: LanguageVectors,
    config: SweepConfig,
    *,
    store: UnitStore | None = None,
    dist: Dist | None = None,
    progress: bool = True,
    queries: QuerySet | None = None,
) -> SweepResult | None:
    """Probe the baseline and every (m, n) pair; resumable when ``store`` is a results folder's
    :class:`~lrp2_interp.store.ShardStore`.

    Under torchrun every rank computes its share; only rank 0 returns the result
    (other ranks return ``None``).  ``queries``: the :class:`~lrp2_interp.probing.query_set.QuerySet`
    of ``facts`` when the run sweeps the same facts again (candidate pools drawn once), else one is built.
    """
    dist = dist if dist is not None else Dist()
    facts.check_languages([config.language])
    facts, _ = rankable(lm, facts)  # golds the model cannot tell from a wrong candidate: not ranked (probing)
    queries = QuerySet.use(queries, facts, config.probe)
    vectors.check_model(lm)
    vectors[config.language], vectors[config.source]  # clear error if a vector is missing
    pairs = config.pairs(lm.n_layers)
    if not pairs:
        raise InputError("no (m, n) pair to sweep: give at least two layers", field="layers")

    units = _cached_units(lm, queries, vectors, config, pairs) if _cached_ok(lm, config) else None
    if units is None:
        units = _per_pair_units(lm, queries, vectors, config, pairs)
    bar = tqdm(total=len(units), desc=f"sweep {config.language}", disable=not progress)
    if store is None:
        frames = []
        for _, compute in units:
            frames.append(compute())
            bar.update()
        table = pd.concat(frames, ignore_index=True)
    else:
        keys = store.run(units, rank=dist.rank, world=dist.world, progress=lambda k, done: bar.update())
        dist.barrier()
        if not dist.is_main:
            bar.close()
            return None
        table = store.merge(keys)
    bar.close()
    table = _condition_order(table, pairs, facts, config.language)
    dev, _ = facts.split(config.dev_fraction, seed=config.seed)
    return SweepResult(config, lm.name, table, frozenset(dev.lineids(config.language)))


def _lrp2(config: SweepConfig, m: int, n: int) -> LRP2Config:
    return LRP2Config(m, n, source=config.source, control=config.control, seed=config.seed)


def _per_pair_units(lm, queries: QuerySet, vectors, config, pairs):
    def unit(m: int | None, n: int | None):
        def compute() -> pd.DataFrame:
            hooks = None if m is None or n is None else lrp2_hooks(lm, vectors, config.language, _lrp2(config, m, n))
            res = probe(lm, queries.facts, config.language, config.probe, fwd_hooks=hooks, queries=queries)
            return _condition_frame(res.table, BASELINE if m is None else f"m{m}_n{n}", m, n)

        return compute

    units = [(f"{config.language}-{BASELINE}", unit(None, None))]
    return units + [(f"{config.language}-m{m:03d}_n{n:03d}", unit(m, n)) for m, n in pairs]


def _cached_ok(lm: LanguageModel, config: SweepConfig) -> bool:
    if config.engine == "per_pair" or config.probe.path == "reference":
        return False
    if config.engine != "cached":
        raise InputError(f"engine must be 'cached' or 'per_pair', got {config.engine!r}", field="engine")
    try:
        runner = LayerRunner(lm)
    except Unsupported:
        return False
    return runner.tail is not None


def _cached_units(lm, queries: QuerySet, vectors, config, pairs):
    """One unit per group of ``unit_facts`` facts, each scoring the baseline and every pair."""
    facts = queries.facts
    order, pools = queries.of(config.language)
    vectors.check_model(lm)

    def shifts_of(m: int, n: int):
        lrp = _lrp2(config, m, n)
        lrp.validate(lm.n_layers)
        return shifts(vectors, config.language, lrp)

    def unit(group):
        def compute() -> pd.DataFrame:
            try:
                out = sweep_scores(lm, facts, config.language, group, pools, config.probe, pairs, shifts_of)
            except Unsupported:  # e.g. candidate sentences without a shared prefix: probe each pair
                return _per_pair_group(lm, queries, vectors, config, pairs, group)
            frames = []
            for cond in [None, *pairs]:
                t = pd.DataFrame(rank_rows(group, pools, out[cond]), columns=TABLE_COLUMNS)
                m, n = (None, None) if cond is None else cond
                frames.append(_condition_frame(t, BASELINE if cond is None else f"m{m}_n{n}", m, n))
            return pd.concat(frames, ignore_index=True)

        return compute

    k = max(1, config.unit_facts)
    groups = [order[s : s + k] for s in range(0, len(order), k)]
    return [(f"{config.language}-facts{s * k:05d}-{s * k + len(g):05d}", unit(g)) for s, g in enumerate(groups)]


def _per_pair_group(lm, queries: QuerySet, vectors, config, pairs, group):
    sub = queries.restricted(queries.facts.restrict({f.lineid for f in group}))
    keys = {(f.relation, f.lineid) for f in group}
    frames = [compute() for _, compute in _per_pair_units(lm, sub, vectors, config, pairs)]
    table = pd.concat(frames, ignore_index=True)
    return table[[k in keys for k in zip(table["relation"], table["lineid"])]].reset_index(drop=True)


def _condition_order(table: pd.DataFrame, pairs, facts: FactSet, language: str) -> pd.DataFrame:
    """Rows condition-major (baseline, then pairs in order), facts in fact-set order within each."""
    cond_rank = {BASELINE: 0, **{f"m{m}_n{n}": i + 1 for i, (m, n) in enumerate(pairs)}}
    fact_rank = {(f.relation, f.lineid): i for i, f in enumerate(facts.iter_facts(language))}
    key = [
        (cond_rank[c], fact_rank[(r, int(i))])
        for c, r, i in zip(table["condition"], table["relation"], table["lineid"])
    ]
    order = sorted(range(len(table)), key=key.__getitem__)
    return table.iloc[order].reset_index(drop=True)
