"""The knowledge-neuron analysis end to end: attribution -> neurons -> overlap, similarity, causal.

For a parallel fact set, English and each language l are attributed (integrated
gradients, :mod:`lrp2_interp.attribution.attribute`) without and -- for l -- with LRP2 at the
language's (m, n).  Knowledge neurons are selected per fact (coarse threshold)
and per relation (shared across the relation's facts); their overlap with
English is compared between the two conditions, against a permutation control.
Representation similarity per layer and the causal suppress/enhance check
complete the picture.  Attribution runs in resumable units (chunks of facts per
language and condition), so an interrupted analysis picks up where it stopped,
and under ``torchrun`` the units are shared between ranks.  The overlap tables, the
permutation control and Table 2 are :mod:`lrp2_interp.neurons.comparison`'s.  With
``progress`` the attribution, the overlap stage and the causal check show bars with ETAs on stderr.

:func:`knowledge_analysis` computes and writes nothing (its units in memory, or in a given store);
:meth:`KnowledgeResult.save` writes the results folder; :func:`run_knowledge_analysis` runs the
analysis resumably in a folder and saves it there.

Results folder::

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
    figures.md                     the gallery: every figure above with what it shows (lrp2_interp.gallery)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from lrp2_interp.attribution.attribute import AttributionConfig, attribute_many
from lrp2_interp.distributed import Dist
from lrp2_interp.errors import InputError
from lrp2_interp.facts import FactSet
from lrp2_interp.files import write_table
from lrp2_interp.gallery import write_gallery
from lrp2_interp.lrp2.projection import LRP2Config, lrp2_hooks
from lrp2_interp.lrp2.similarity import SimilarityConfig, SimilarityResult, similarity_table
from lrp2_interp.lrp2.vectors import LanguageVectors
from lrp2_interp.manifest import results_manifest
from lrp2_interp.models.loading import LanguageModel
from lrp2_interp.neurons.causal import CausalConfig, CausalResult, causal_effect, summarize_causal
from lrp2_interp.neurons.comparison import NullSettings, OverlapStage, compare_with_source
from lrp2_interp.neurons.control import ControlResult
from lrp2_interp.neurons.neuron_config import Level, NeuronConfig
from lrp2_interp.neurons.neuron_selection import select_grouped
from lrp2_interp.neurons.overlap import OverlapResult, OverlapSummary
from lrp2_interp.neurons.sets import NeuronSet, sets_to_frame
from lrp2_interp.plots import attribution_heatmap, similarity_plot
from lrp2_interp.prompts import attribution_queries, render_prefix
from lrp2_interp.store import ShardStore, UnitStore, unit_store

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
    """Everything the analysis computed; :meth:`save` writes it as the results folder's files."""

    config: KnowledgeConfig
    scores: Mapping[tuple[str, str], torch.Tensor]  # (language, condition) -> [n_facts, n_layers, d_mlp]
    keys: tuple[tuple[str, int], ...]  # (relation, lineid) of each score row
    attribution: pd.DataFrame  # per prompt: max |completeness delta|, f(x) (attribution_summary.csv)
    fact_sets: Mapping[tuple, NeuronSet]
    relation_sets: Mapping[tuple, NeuronSet]
    stage: OverlapStage  # overlap with the source, permutation control, Table 2
    similarity: SimilarityResult
    causal: tuple[CausalResult, ...] = ()  # one per target language; empty without the causal check

    @property
    def overlap_fact(self) -> OverlapResult:
        return self.stage.overlap_fact

    @property
    def overlap_relation(self) -> OverlapResult:
        return self.stage.overlap_relation

    @property
    def by_layer(self) -> OverlapResult:
        return self.stage.by_layer

    @property
    def overlap_summary(self) -> OverlapSummary:
        return self.stage.summary

    @property
    def control(self) -> ControlResult:
        return self.stage.control

    @property
    def relation_baseline(self) -> pd.DataFrame:
        return self.stage.relation_baseline

    def causal_summary(self) -> pd.DataFrame:
        """The causal check of every language in one table (``causal_summary.csv``); empty without it."""
        if not self.causal:
            return pd.DataFrame()
        return summarize_causal(pd.concat([c.table for c in self.causal], ignore_index=True))

    def save(self, folder: str | Path) -> Path:
        """Every table and figure of the module docstring's results folder, and its ``figures.md``."""
        out = Path(folder)
        source = self.config.source
        write_table(out / "attribution_summary.csv", self.attribution)
        write_table(out / "neurons_fact.csv", sets_to_frame(self.fact_sets))
        write_table(out / "neurons_relation.csv", sets_to_frame(self.relation_sets))
        self.stage.save(out, source=source)
        attribution_heatmap(
            self.scores[(source, BASELINE)][0],
            out / "heatmap_attribution_one_fact.png",
            layers=_layers(self.config),
            title=f"attribution, {source} fact {self.keys[0][0]}:{self.keys[0][1]}",
        )
        self.similarity.to_csv(out / "similarity.csv")
        similarity_plot(self.similarity.table, out / "similarity.png", source=source)
        if self.causal:
            table = pd.concat([c.table for c in self.causal], ignore_index=True)
            write_table(out / "causal.csv", table)
            write_table(out / "causal_summary.csv", summarize_causal(table))
        write_gallery(out)
        return out


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
    store: UnitStore,
    dist: Dist | None = None,
    *,
    progress: bool = False,
) -> tuple[dict, tuple, pd.DataFrame] | None:
    """Attribution of every (language, condition) in resumable chunks; rank 0 gets the merged scores.

    ``progress``: a bar with the ETA over this rank's facts x conditions (stderr; stored chunks count as done).
    """
    dist = dist if dist is not None else Dist()
    keys = tuple((f.relation, f.lineid) for f in facts.iter_facts(config.source))
    units, sizes = [], {}
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
                    tick=bar.update,
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
            sizes[units[-1][0]] = len(keys[start : start + config.chunk])
    mine = sum(sizes[key] for i, (key, _) in enumerate(units) if i % dist.world == dist.rank)
    bar = tqdm(total=mine, desc="knowledge-neuron IG", unit="fact", disable=not progress)
    done = store.run(
        units, rank=dist.rank, world=dist.world, progress=lambda key, stored: bar.update(sizes[key] if stored else 0)
    )
    bar.close()
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


def knowledge_analysis(
    lm: LanguageModel,
    facts: FactSet,
    vectors: LanguageVectors,
    config: KnowledgeConfig,
    *,
    store: UnitStore | None = None,
    dist: Dist | None = None,
    progress: bool = True,
) -> KnowledgeResult | None:
    """Attribution, neuron selection, overlap (+ permutation control), similarity, causal check; writes nothing.

    ``store``: where the attribution's units are kept (a :class:`~lrp2_interp.store.ShardStore` makes the
    analysis resumable and is guarded by its manifest first; default: memory).  Under ``torchrun`` ranks
    other than 0 return None.  ``progress``: bars with ETAs on stderr for the attribution, the overlap and
    permutation control and the causal check (they change no number).  :meth:`KnowledgeResult.save`
    writes the results folder; :func:`run_knowledge_analysis` does both.
    """
    dist = dist if dist is not None else Dist()
    store = unit_store(store)
    facts = prepare_facts(lm, facts, config)
    store.guard(results_manifest(config, facts=facts, lm=lm, vectors=vectors))  # never mix old shards
    merged = attribute_facts(lm, facts, vectors, config, store, dist, progress=progress)
    if merged is None:
        return None
    scores, keys, attr_table = merged
    n_layers = lm.n_layers  # neuron sites carry model layer indices (also when only some layers are attributed)
    d_mlp = next(iter(scores.values())).shape[2]
    fact_sets = _select(scores, keys, config, "fact")
    rel_sets = _select(scores, keys, config, "relation")
    null = NullSettings(n_layers, d_mlp, config.source, config.n_perm, config.n_boot, config.seed)
    stage = compare_with_source(fact_sets, rel_sets, null, progress=progress)
    lrp = {lang: _lrp2_config(config, lang) for lang in config.languages}
    sim = similarity_table(
        lm, facts, list(config.languages), vectors, lrp, config=SimilarityConfig(source=config.source)
    )
    causal: tuple[CausalResult, ...] = ()
    if config.causal is not None:
        english = english_sets(fact_sets, config.source)
        causal = tuple(
            causal_effect(lm, facts, english, lang, vectors, lrp[lang], config=config.causal, progress=progress)
            for lang in config.languages
        )
    return KnowledgeResult(config, scores, keys, attr_table, fact_sets, rel_sets, stage, sim, causal)


def run_knowledge_analysis(
    lm: LanguageModel,
    facts: FactSet,
    vectors: LanguageVectors,
    config: KnowledgeConfig,
    out_dir: str | Path,
    *,
    dist: Dist | None = None,
    progress: bool = True,
) -> KnowledgeResult | None:
    """:func:`knowledge_analysis` resumable in the results folder ``out_dir``, then saved there.

    The folder is guarded by the analysis's manifest (another run's folder is refused before anything is
    computed); its attribution units are the folder's shards, so an interrupted run resumes.
    """
    out = Path(out_dir)
    res = knowledge_analysis(lm, facts, vectors, config, store=ShardStore(out), dist=dist, progress=progress)
    if res is not None:
        res.save(out)
    return res


def english_sets(sets: Mapping[tuple, NeuronSet], source: str = "en") -> dict:
    """The source language's baseline knowledge neurons keyed by unit: the sets the causal check scales."""
    return {unit: ns for (lang, cond, unit), ns in sets.items() if lang == source and cond == BASELINE}
