"""The knowledge-neuron analysis end to end: attribution -> neurons -> overlap, similarity, causal.

For a parallel fact set, English and each language l are attributed (integrated
gradients, :mod:`lrp2_interp.attribution.api`) without and -- for l -- with LRP2 at the
language's (m, n).  Knowledge neurons are selected per fact (coarse threshold)
and per relation (shared across the relation's facts); their overlap with
English is compared between the two conditions, against a permutation control.
Representation similarity per layer and the causal suppress/enhance check
complete the picture.  Attribution runs in resumable units (chunks of facts per
language and condition), so an interrupted analysis picks up where it stopped,
and under ``torchrun`` the units are shared between ranks.

Results folder (``out_dir``)::

    attribution_summary.csv        per prompt: max |completeness delta|, f(x), top neuron
    neurons_fact.csv / neurons_relation.csv   selected sets (language, condition, unit, layer, neuron)
    overlap_fact.csv, overlap_relation.csv, overlap_by_layer.csv, overlap_summary.csv
    permutation_control.csv        per unit: chance level of the shared-neuron count, z and p
    permutation_summary.csv        per language and condition: observed vs chance means, share with p < 0.05
    relation_overlap.csv           per relation (and layer): overlap with English's same / different relations
    relation_overlap_summary.csv   the paper's Table 2: same-relation vs different-relation overlap vs chance,
                                   per language and condition, all layers pooled
    relation_overlap_by_layer.csv  the same per layer (block index ``layer`` and the paper's ``paper_layer``)
    similarity.csv + similarity.png
    causal.csv, causal_summary.csv
    heatmap_shared_neurons_{baseline,lrp2}.png, heatmap_overlap_gain.png, heatmap_attribution_one_fact.png,
    heatmap_relation_overlap.png   layer x (language, condition, same / different / chance)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lrp2_interp.attribution.api import AttributionConfig, attribute_many
from lrp2_interp.distributed import Dist
from lrp2_interp.errors import InputError
from lrp2_interp.facts import FactSet
from lrp2_interp.files import write_table
from lrp2_interp.layers import paper_layer
from lrp2_interp.lrp2.projection import LRP2Config, lrp2_hooks
from lrp2_interp.lrp2.similarity import SimilarityConfig, SimilarityResult, similarity_table
from lrp2_interp.lrp2.vectors import LanguageVectors
from lrp2_interp.models.loading import LanguageModel
from lrp2_interp.neurons.causal import CausalConfig, CausalResult, causal_effect, summarize_causal
from lrp2_interp.neurons.config import Level, NeuronConfig
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
from lrp2_interp.neurons.selection import select_grouped
from lrp2_interp.neurons.sets import NeuronSet, sets_to_frame
from lrp2_interp.plots import (
    attribution_heatmap,
    overlap_gain_heatmap,
    relation_overlap_heatmap,
    shared_neurons_heatmap,
    similarity_plot,
)
from lrp2_interp.prompts import attribution_queries, render_prefix
from lrp2_interp.store import ShardStore, check_manifest, results_manifest

BASELINE, LRP2 = "baseline", "lrp2"


@dataclass(frozen=True)
class KnowledgeConfig:
    languages: tuple[str, ...]  # target languages (English is always attributed)
    lrp2: Mapping[str, tuple[int, int]]  # language -> (m, n)
    source: str = "en"
    attribution: AttributionConfig = field(default_factory=AttributionConfig)
    neurons: NeuronConfig = field(default_factory=NeuronConfig)
    n_perm: int = 1000
    n_boot: int = 1000
    chunk: int = 16  # facts per resumable unit
    causal: CausalConfig | None = field(default_factory=lambda: CausalConfig(n_random=3))
    seed: int = 0

    def __post_init__(self) -> None:
        if self.causal is not None and self.causal.source != self.source:  # one source for every part
            object.__setattr__(self, "causal", replace(self.causal, source=self.source))


@dataclass(frozen=True)
class KnowledgeResult:
    """Everything the analysis computed (the files in ``out_dir`` are these tables)."""

    config: KnowledgeConfig
    out_dir: Path
    scores: Mapping[tuple[str, str], torch.Tensor]  # (language, condition) -> [n_facts, n_layers, d_mlp]
    keys: tuple[tuple[str, int], ...]  # (relation, lineid) of each score row
    fact_sets: Mapping[tuple, NeuronSet]
    relation_sets: Mapping[tuple, NeuronSet]
    overlap_fact: OverlapResult  # per fact
    overlap_relation: OverlapResult  # per relation
    by_layer: OverlapResult  # per fact and layer
    overlap_summary: OverlapSummary  # per-fact Jaccard and overlap rate, mean over facts with CIs
    control: ControlResult  # permutation control of the per-fact sets
    relation_baseline: pd.DataFrame  # Table 2: same vs different relations vs chance, layers pooled
    similarity: SimilarityResult
    causal: tuple[CausalResult, ...] = ()  # one per target language; empty without the causal check

    def causal_summary(self) -> pd.DataFrame:
        """The causal check of every language in one table (``causal_summary.csv``); empty without it."""
        if not self.causal:
            return pd.DataFrame()
        return summarize_causal(pd.concat([c.table for c in self.causal], ignore_index=True))


def _conditions(config: KnowledgeConfig) -> list[tuple[str, str]]:
    out = [(config.source, BASELINE)]
    for lang in config.languages:
        out += [(lang, BASELINE), (lang, LRP2)]
    return out


def _lrp2_config(config: KnowledgeConfig, language: str) -> LRP2Config:
    if language not in config.lrp2:
        raise InputError(f"no (m, n) given for language '{language}'", field="lrp2")
    m, n = config.lrp2[language]
    return LRP2Config(int(m), int(n), source=config.source)


def attribute_facts(
    lm: LanguageModel,
    facts: FactSet,
    vectors: LanguageVectors,
    config: KnowledgeConfig,
    store: ShardStore,
    dist: Dist | None = None,
) -> tuple[dict, tuple, pd.DataFrame] | None:
    """Attribution of every (language, condition) in resumable chunks; rank 0 gets the merged scores."""
    dist = dist if dist is not None else Dist()
    keys = tuple((f.relation, f.lineid) for f in facts.iter_facts(config.source))
    units = []
    for lang, cond in _conditions(config):
        queries = attribution_queries(lm, facts, lang, keys)  # row i is fact keys[i] in every language
        hooks = lrp2_hooks(lm, vectors, lang, _lrp2_config(config, lang)) if cond == LRP2 else None
        for start in range(0, len(keys), config.chunk):

            def compute(lang=lang, cond=cond, hooks=hooks, start=start, queries=queries) -> pd.DataFrame:
                part = queries[start : start + config.chunk]
                res = attribute_many(
                    lm,
                    [p for p, _ in part],
                    [g for _, g in part],
                    config.attribution,
                    fwd_hooks=hooks,
                    progress=False,
                )
                return pd.DataFrame(
                    {
                        "language": lang,
                        "condition": cond,
                        "relation": [k[0] for k in keys[start : start + config.chunk]],
                        "lineid": [k[1] for k in keys[start : start + config.chunk]],
                        "max_abs_delta": [float(r.deltas.abs().max()) for r in res],
                        "f_input": [float(r.f_input[0]) for r in res],
                        "scores": [r.scores.flatten().float().numpy() for r in res],
                    }
                )

            units.append((f"ig-{lang}-{cond}-{start:06d}", compute))
    done = store.run(units, rank=dist.rank, world=dist.world)
    dist.barrier()
    if not dist.is_main:
        return None
    table = store.merge(done)
    n_layers = len(config.attribution.validate(lm.n_layers))  # sorted, de-duplicated: as the scores are
    scores = {}
    for (lang, cond), g in table.groupby(["language", "condition"], sort=False):
        scores[(lang, cond)] = torch.from_numpy(np.stack(g["scores"].to_list()).reshape(len(g), n_layers, -1))
    return scores, keys, table.drop(columns=["scores"])


def _select(scores: Mapping, keys, config: KnowledgeConfig, level: Level) -> dict[tuple, NeuronSet]:
    neuron_cfg = replace(config.neurons, level=level)
    out = {}
    layers = _layers(config)
    for (lang, cond), s in scores.items():
        for unit, ns in select_grouped(s, list(keys), neuron_cfg, layers=layers, label=f"{lang}/{cond}").items():
            out[(lang, cond, unit)] = ns
    return out


def _layers(config: KnowledgeConfig) -> tuple[int, ...] | None:
    """The attributed layers in the order of the score rows (attribution sorts and de-duplicates them)."""
    layers = config.attribution.layers
    return None if layers is None else tuple(sorted(set(layers)))


def attributable_relations(lm: LanguageModel, facts: FactSet, languages) -> tuple[str, ...]:
    """Relations whose query has a target position in every language.

    A causal LM predicts the object from the text before it; a template that starts
    with the object (French ``[Y] est la capitale de [X] .``) leaves nothing to
    condition on, so such relations are left out of the neuron analysis.
    """
    if lm.kind == "masked":
        return facts.relations
    return tuple(
        rel
        for rel in facts.relations
        if all(
            (lang, rel) not in facts.templates or render_prefix(facts.template(lang, rel).template, "x")
            for lang in languages
        )
    )


def prepare_facts(lm: LanguageModel, facts: FactSet, config: KnowledgeConfig) -> FactSet:
    """The facts the analysis attributes, checked before anything runs or is written.

    Parallel facts of the source and target languages, in the relations with a
    target position; every target language has its (m, n) and no pair is given for
    another language; every query fits the model and has a covered gold object.
    """
    for lang in config.languages:
        _lrp2_config(config, lang)
    extra = set(config.lrp2) - set(config.languages)
    if extra:
        raise InputError(
            f"(m, n) given for {', '.join(sorted(extra))}, which is not among the target languages "
            f"({', '.join(config.languages)})",
            field="lrp2",
        )
    langs = [config.source, *config.languages]
    facts = facts.parallel(langs)
    keep = attributable_relations(lm, facts, langs)
    if not keep:
        raise InputError("no relation has a query prefix in every language (causal LM)", field="relations")
    facts = facts.restrict_relations(keep)
    keys = [(f.relation, f.lineid) for f in facts.iter_facts(config.source)]
    for lang in langs:
        attribution_queries(lm, facts, lang, keys)  # raises on unknown-only objects and over-long queries
    return facts


def run_knowledge_analysis(
    lm: LanguageModel,
    facts: FactSet,
    vectors: LanguageVectors,
    config: KnowledgeConfig,
    out_dir: str | Path,
    *,
    dist: Dist | None = None,
) -> KnowledgeResult | None:
    """Attribution, neuron selection, overlap (+ permutation control), similarity, causal check, heatmaps."""
    dist = dist if dist is not None else Dist()
    out = Path(out_dir)
    facts = prepare_facts(lm, facts, config)
    check_manifest(out, results_manifest(config, facts=facts, lm=lm, vectors=vectors))  # never mix old shards
    merged = attribute_facts(lm, facts, vectors, config, ShardStore(out), dist)
    if merged is None:
        return None
    scores, keys, attr_table = merged
    write_table(out / "attribution_summary.csv", attr_table)
    n_layers = lm.n_layers  # neuron sites carry model layer indices (also when only some layers are attributed)
    d_mlp = next(iter(scores.values())).shape[2]
    fact_sets = _select(scores, keys, config, "fact")
    rel_sets = _select(scores, keys, config, "relation")
    write_table(out / "neurons_fact.csv", sets_to_frame(fact_sets))
    write_table(out / "neurons_relation.csv", sets_to_frame(rel_sets))
    ov_fact = overlap_table(fact_sets, source=config.source)
    ov_rel = overlap_table(rel_sets, source=config.source)
    by_layer = overlap_by_layer(fact_sets, n_layers, source=config.source)
    ov_fact.to_csv(out / "overlap_fact.csv")
    ov_rel.to_csv(out / "overlap_relation.csv")
    write_table(
        out / "overlap_by_layer.csv", by_layer.table.assign(paper_layer=by_layer.table["layer"].map(paper_layer))
    )
    summary = summarize_overlap(ov_fact, ("jaccard", "overlap_rate"), n_boot=config.n_boot, seed=config.seed)
    summary.to_csv(out / "overlap_summary.csv")
    control = permutation_control(
        fact_sets, n_layers=n_layers, d_mlp=d_mlp, source=config.source, n_perm=config.n_perm, seed=config.seed
    )
    control.to_csv(out / "permutation_control.csv")
    write_table(out / "permutation_summary.csv", control.summary())
    relation_baseline = relation_baseline_tables(rel_sets, config, n_layers, d_mlp, out)
    for cond in (BASELINE, LRP2):
        shared_neurons_heatmap(
            by_layer.table, out / f"heatmap_shared_neurons_{cond}.png", condition=cond, source=config.source
        )
    overlap_gain_heatmap(overlap_gain(by_layer.table), out / "heatmap_overlap_gain.png", source=config.source)
    attribution_heatmap(
        scores[(config.source, BASELINE)][0],
        out / "heatmap_attribution_one_fact.png",
        layers=_layers(config),
        title=f"attribution, {config.source} fact {keys[0][0]}:{keys[0][1]}",
    )
    lrp = {lang: _lrp2_config(config, lang) for lang in config.languages}
    sim = similarity_table(
        lm, facts, list(config.languages), vectors, lrp, config=SimilarityConfig(source=config.source)
    )
    sim.to_csv(out / "similarity.csv")
    similarity_plot(sim.table, out / "similarity.png", source=config.source)
    causal: tuple[CausalResult, ...] = ()
    if config.causal is not None:
        english = english_sets(fact_sets, config.source)
        causal = tuple(
            causal_effect(lm, facts, english, lang, vectors, lrp[lang], config=config.causal)
            for lang in config.languages
        )
        table = pd.concat([c.table for c in causal], ignore_index=True)
        write_table(out / "causal.csv", table)
        write_table(out / "causal_summary.csv", summarize_causal(table))
    return KnowledgeResult(
        config,
        out,
        scores,
        keys,
        fact_sets,
        rel_sets,
        ov_fact,
        ov_rel,
        by_layer,
        summary,
        control,
        relation_baseline,
        sim,
        causal,
    )


def relation_baseline_tables(
    rel_sets: Mapping[tuple, NeuronSet], config: KnowledgeConfig, n_layers: int, d_mlp: int, out: Path
) -> pd.DataFrame:
    """The paper's Table 2 on the per-relation sets: same vs different relations vs chance; returns the pooled table."""
    tables = {}
    for by_layer in (False, True):
        cross = different_unit_overlap(rel_sets, n_layers, source=config.source, by_layer=by_layer)
        control = permutation_control(
            rel_sets,
            n_layers=n_layers,
            d_mlp=d_mlp,
            source=config.source,
            n_perm=config.n_perm,
            seed=config.seed,
            by_layer=by_layer,
        )
        tables[by_layer] = (cross, unit_baseline_summary(cross, control))
    write_table(out / "relation_overlap.csv", pd.concat([tables[False][0], tables[True][0]], ignore_index=True))
    write_table(out / "relation_overlap_summary.csv", tables[False][1])
    write_table(out / "relation_overlap_by_layer.csv", tables[True][1])
    relation_overlap_heatmap(tables[True][1], out / "heatmap_relation_overlap.png", source=config.source)
    return tables[False][1]


def english_sets(sets: Mapping[tuple, NeuronSet], source: str = "en") -> dict:
    """The source language's baseline knowledge neurons keyed by unit: the sets the causal check scales."""
    return {unit: ns for (lang, cond, unit), ns in sets.items() if lang == source and cond == BASELINE}
