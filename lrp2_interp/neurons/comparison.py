"""The overlap stage of the knowledge-neuron analysis: overlap with English, permutation control, Table 2, files.

:func:`compare_with_source` takes the selected neuron sets (per fact and per relation, keyed
``(language, condition, unit)``) and computes their overlap with the source language's sets
(per fact, per relation, per layer, bootstrap means), the permutation control of the per-fact
sets and the paper's Table 2 on the per-relation sets (same vs different relations vs chance),
and returns them as an :class:`OverlapStage`, writing nothing; :meth:`OverlapStage.save` writes each
table and the overlap heatmaps into a results folder.  ``progress`` shows a bar with the ETA over the stage's steps and one per
permutation control (stderr); it changes no number and no file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from lrp2_interp.files import write_table
from lrp2_interp.layers import paper_layer
from lrp2_interp.neurons.control import ControlResult, permutation_control, unit_baseline_summary
from lrp2_interp.neurons.overlap import (
    OverlapResult,
    OverlapSummary,
    different_unit_overlap,
    overlap_by_layer,
    overlap_gain,
    overlap_table,
    summarize_overlap,
)
from lrp2_interp.neurons.sets import NeuronSet
from lrp2_interp.plots import overlap_gain_heatmap, relation_overlap_heatmap, shared_neurons_heatmap


@dataclass(frozen=True)
class NullSettings:
    """What the permutation controls and bootstrap means of the stage draw with."""

    n_layers: int
    d_mlp: int
    source: str = "en"
    n_perm: int = 1000
    n_boot: int = 1000
    seed: int = 0


@dataclass(frozen=True)
class OverlapStage:
    """The stage's tables (:meth:`save` writes them and the overlap heatmaps)."""

    overlap_fact: OverlapResult  # per fact
    overlap_relation: OverlapResult  # per relation
    by_layer: OverlapResult  # per fact and layer
    summary: OverlapSummary  # per-fact Jaccard and overlap rate, mean over facts with CIs
    control: ControlResult  # permutation control of the per-fact sets
    relation_baseline: pd.DataFrame  # Table 2: same vs different relations vs chance, layers pooled
    relation_overlap: pd.DataFrame  # per relation (and layer): overlap with the source's same / different relations
    relation_by_layer: pd.DataFrame  # Table 2 per layer

    def save(self, folder: str | Path, *, source: str = "en") -> Path:
        """The stage's CSV tables and heatmaps in ``folder`` (figures name ``source``)."""
        out = Path(folder)
        self.overlap_fact.to_csv(out / "overlap_fact.csv")
        self.overlap_relation.to_csv(out / "overlap_relation.csv")
        layered = self.by_layer.table.assign(paper_layer=self.by_layer.table["layer"].map(paper_layer))
        write_table(out / "overlap_by_layer.csv", layered)
        self.summary.to_csv(out / "overlap_summary.csv")
        self.control.to_csv(out / "permutation_control.csv")
        write_table(out / "permutation_summary.csv", self.control.summary())
        write_table(out / "relation_overlap.csv", self.relation_overlap)
        write_table(out / "relation_overlap_summary.csv", self.relation_baseline)
        write_table(out / "relation_overlap_by_layer.csv", self.relation_by_layer)
        relation_overlap_heatmap(self.relation_by_layer, out / "heatmap_relation_overlap.png", source=source)
        for cond in ("baseline", "lrp2"):
            shared_neurons_heatmap(
                self.by_layer.table, out / f"heatmap_shared_neurons_{cond}.png", condition=cond, source=source
            )
        overlap_gain_heatmap(overlap_gain(self.by_layer.table), out / "heatmap_overlap_gain.png", source=source)
        return out


def compare_with_source(
    fact_sets: Mapping[tuple, NeuronSet],
    rel_sets: Mapping[tuple, NeuronSet],
    null: NullSettings,
    *,
    progress: bool = False,
) -> OverlapStage:
    """Overlap of every set with the source's, its permutation control and Table 2 (nothing written)."""
    with tqdm(total=4, desc="overlap + permutation control", unit="step", disable=not progress) as stage:
        ov_fact = overlap_table(fact_sets, source=null.source)
        ov_rel = overlap_table(rel_sets, source=null.source)
        by_layer = overlap_by_layer(fact_sets, null.n_layers, source=null.source)
        stage.update()
        summary = summarize_overlap(ov_fact, ("jaccard", "overlap_rate"), n_boot=null.n_boot, seed=null.seed)
        stage.update()
        control = _control(fact_sets, null, by_layer=False, progress=progress)
        stage.update()
        relation = relation_baseline_tables(rel_sets, null, progress=progress)
        stage.update()
    return OverlapStage(ov_fact, ov_rel, by_layer, summary, control, *relation)


def _control(sets: Mapping[tuple, NeuronSet], null: NullSettings, *, by_layer: bool, progress: bool) -> ControlResult:
    return permutation_control(
        sets,
        n_layers=null.n_layers,
        d_mlp=null.d_mlp,
        source=null.source,
        n_perm=null.n_perm,
        seed=null.seed,
        by_layer=by_layer,
        progress=progress,
    )


def relation_baseline_tables(
    rel_sets: Mapping[tuple, NeuronSet], null: NullSettings, *, progress: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The paper's Table 2 on the per-relation sets: same vs different relations vs chance.

    Returns (Table 2 pooled over layers, the per-relation overlaps with and without layers, Table 2 per
    layer).  ``progress``: the permutation controls' bars."""
    tables = {}
    for by_layer in (False, True):
        cross = different_unit_overlap(rel_sets, null.n_layers, source=null.source, by_layer=by_layer)
        control = _control(rel_sets, null, by_layer=by_layer, progress=progress)
        tables[by_layer] = (cross, unit_baseline_summary(cross, control))
    cross_all = pd.concat([tables[False][0], tables[True][0]], ignore_index=True)
    return tables[False][1], cross_all, tables[True][1]
