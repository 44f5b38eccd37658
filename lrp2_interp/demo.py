"""The one-command demo: LRP2 (m, n) search -> knowledge neurons, on the organism or a pretrained model.

``lrp2-interp demo --out results/demo`` trains (or reuses) the model organism,
then on the facts each language never saw (they were only in the English
training data); ``lrp2-interp demo --model gemma-3-270m`` runs the same mission
on a pretrained model over the shipped facts (every fact, parallel to English):

1. runs the LRP2 experiment (:mod:`lrp2_interp.interventions.experiment`), by default
   in the held-out design: (m, n) searched on dev facts by successive halving, the
   test facts probed only at the baseline, the chosen pair, the matched controls and
   the wrong-language control, with the exact McNemar interval and Trans
   (``DemoConfig(design="full-grid")``: every pair on every fact, the oracle and
   held-out pair, the random-direction control); plus the accuracy on the facts
   each language did see;
2. runs the knowledge-neuron analysis at each language's chosen (m, n)
   (:mod:`lrp2_interp.neurons.pipeline`): English-vs-l neuron overlap with and without
   LRP2 against a permutation control, similarity to English per layer, and the
   causal suppress/enhance check;
3. writes ``summary.md`` with the headline numbers, CSV tables and heatmaps,
   including the paper's Table 2 comparison (overlap with English's same vs
   different relations vs chance, with and without LRP2), and ``figures.md``,
   the gallery of every figure with what it shows (:mod:`lrp2_interp.gallery`).

``DemoConfig(preset="paper")`` (``lrp2-interp demo --paper``) uses the paper's
choices (:mod:`lrp2_interp.presets`): language vectors from all tokens and the
paper's knowledge-neuron selection.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd

from lrp2_interp.attribution.attribute import AttributionConfig
from lrp2_interp.errors import InputError
from lrp2_interp.facts import FactSet, available_languages, load_facts
from lrp2_interp.files import run_metadata, write_table, write_text
from lrp2_interp.gallery import write_gallery
from lrp2_interp.interventions.experiment import HeldoutResult, heldout_experiment
from lrp2_interp.lrp2.full_grid import ExperimentConfig, ExperimentResult, full_grid
from lrp2_interp.lrp2.vectors import compute_language_vectors
from lrp2_interp.manifest import finish_record, mark_incomplete
from lrp2_interp.metrics import accuracy_ci, estimate_columns
from lrp2_interp.models.loading import LanguageModel, load_model
from lrp2_interp.neurons.overlap import overlap_gain
from lrp2_interp.neurons.pipeline import KnowledgeConfig, KnowledgeResult, knowledge_analysis
from lrp2_interp.organism.organism_config import OrganismConfig, default_facts_root, load_organism_facts
from lrp2_interp.organism.train import OrganismInfo, load_organism, organism_facts
from lrp2_interp.plots import overlap_gain_heatmap, shared_neurons_heatmap, similarity_plot
from lrp2_interp.presets import get_preset
from lrp2_interp.probing.probe import ProbeConfig, probe
from lrp2_interp.prompts import prompt_corpus
from lrp2_interp.store import ShardStore, UnitStore, unit_store


@dataclass(frozen=True)
class DemoConfig:
    organism: OrganismConfig = field(default_factory=OrganismConfig)
    model: str | None = None  # None: the organism; else a model name/folder run over the shipped facts
    device: str = "cpu"
    dtype: str = "float32"
    max_facts_per_relation: int | None = None  # pretrained model only: subsample the shipped facts
    layers: tuple[int, ...] | None = None  # candidate layers for m and n; None = all
    max_candidates: int | None = None  # cap on the candidate pool (gold + seeded distractors)
    languages: tuple[str, ...] | None = None  # None: every organism language but English
    kn_facts_per_relation: int = 3  # held-out facts per relation in the neuron analysis
    n_steps: int = 8  # quadrature steps per layer (graded Gauss-Legendre, the attribution default)
    target_delta: float | None = 1e-4  # adaptive steps until |completeness delta| < this; None: n_steps only
    n_boot: int = 1000
    n_perm: int = 1000
    seed: int = 0
    preset: str = "default"  # "paper": the paper's token choice and neuron selection (lrp2_interp.presets)
    design: Literal["heldout", "full-grid"] = "heldout"  # the LRP2 experiment's design (interventions.experiment)
    search: Literal["halving", "full", "oracle"] = "halving"  # held-out design: how (m, n) is chosen


def _held_out_subset(fs: FactSet, per_relation: int) -> FactSet:
    """The first ``per_relation`` line ids of every relation (the neuron analysis is costlier than probing)."""
    keep: set[int] = set()
    for rel in fs.relations:
        ids = sorted({f.lineid for lang in fs.languages for f in fs.facts_of(lang, rel)})
        keep |= set(ids[:per_relation])
    return fs.restrict(keep)


def _pretrained_subject(config: DemoConfig) -> tuple[LanguageModel, FactSet, dict[str, FactSet], str]:
    """The pretrained model, the shipped facts, each language's facts parallel to English, a header."""
    import torch

    if config.model is None:
        raise InputError("no pretrained model given (DemoConfig.model is None: the organism)", field="model")
    lm = load_model(config.model, device=config.device, dtype=getattr(torch, config.dtype))
    root = default_facts_root()
    langs = config.languages or tuple(lang for lang in available_languages(root) if lang != "en")
    facts = load_facts(root, ("en", *langs), max_facts_per_relation=config.max_facts_per_relation, seed=config.seed)
    per_language = {lang: facts.parallel(["en", lang]) for lang in langs}
    header = (
        f"Pretrained model `{lm.name}` ({lm.kind} LM, {lm.n_layers} layers x d_model {lm.d_model}), "
        f"probed on the shipped facts ({facts.root}), every fact parallel to English."
    )
    return lm, facts, per_language, header


@dataclass(frozen=True)
class DemoResult:
    """What the demo computed; :meth:`save` writes its results folder (module docstring)."""

    config: DemoConfig
    model_name: str
    header: str  # the model and facts in one paragraph (summary.md)
    summary: pd.DataFrame  # one row per language, English first (Estimate cells)
    experiment: HeldoutResult | ExperimentResult  # the LRP2 experiment (lrp2/)
    knowledge: tuple[KnowledgeResult, ...]  # one per target language, at its chosen (m, n) (neurons/{lang}/)
    seconds: float
    record: dict  # run.json: config, provenance, model, organism training

    def knowledge_table(self) -> pd.DataFrame:
        """The summary's knowledge-neuron columns, one row per language (``knowledge_neurons.csv``)."""
        return pd.DataFrame([knowledge_row(res) for res in self.knowledge])

    def markdown(self) -> str:
        """``summary.md``: the headline table, the paper's Table 2 and where every file is."""
        return _markdown(
            self.summary, self.header, self.seconds, get_preset(self.config.preset).name, self.config.design
        )

    def save(self, folder: str | Path) -> Path:
        """Every file of the demo's results folder, ``figures.md`` included (``run.json`` is the runner's)."""
        out = Path(folder)
        self.experiment.save(out / "lrp2")
        for res in self.knowledge:
            (lang,) = res.config.languages
            res.save(out / "neurons" / lang)
        write_table(out / "knowledge_neurons.csv", self.knowledge_table())
        if self.knowledge:
            cross_language_plots(list(self.knowledge), out)
        write_table(out / "summary.csv", estimate_columns(self.summary))
        write_text(out / "summary.md", self.markdown())
        write_gallery(out)
        return out


def compute_demo(
    config: DemoConfig,
    *,
    cache_dir: str | Path | None = None,
    store: UnitStore | None = None,
    progress: bool = True,
) -> DemoResult:
    """The demo computed, nothing written (the organism's training cache aside).

    ``store``: where the LRP2 experiment's and the neuron analyses' units are kept (a results
    folder's :class:`~lrp2_interp.store.ShardStore` makes the demo resumable: ``lrp2/`` and
    ``neurons/{lang}/``; default: memory).  ``progress``: progress bars with ETAs (stderr) of the
    organism training, the LRP2 search and the knowledge-neuron stage.
    """
    store = unit_store(store)
    t0 = time.time()
    preset = get_preset(config.preset)
    quiet = ProbeConfig(max_candidates=config.max_candidates, seed=config.seed)
    seen_rows: list[dict] = []
    if config.model is None:
        lm, info = load_organism(config.organism, cache_dir, progress=progress)
        facts = load_organism_facts(config.organism)
        splits = organism_facts(info, facts)
        langs = tuple(config.languages or [lang for lang in config.organism.languages if lang in splits])
        per_language = {lang: splits[lang].held_out for lang in langs}
        header = _organism_header(info)
        extra = dict(organism_train_seconds=info.train_seconds, organism_final_loss=info.final_loss)
    else:
        lm, facts, per_language, header = _pretrained_subject(config)
        langs, extra = tuple(per_language), {}
    record = run_metadata(config, command="demo", model_name=lm.name, **extra)
    # 1. accuracy on the facts each language saw (organism), and the LRP2 experiment on the probed facts
    if config.model is None:
        for lang in langs:
            t = probe(lm, splits[lang].seen, lang, quiet).table
            seen_rows.append(
                {"language": lang, "n_seen": len(t), "acc_seen": accuracy_ci(t["correct"], n_boot=config.n_boot)}
            )
    vectors = compute_language_vectors(
        lm,
        {lang: prompt_corpus(facts, lang, lm) for lang in ("en", *langs)},
        corpus=dict.fromkeys(("en", *langs), "probe prompts of every fact"),
        tokens=preset.tokens,
    )
    exp_config = ExperimentConfig(
        languages=langs,
        layers=config.layers,
        n_boot=config.n_boot,
        seed=config.seed,
        probe=quiet,
        design=config.design,
        search=config.search,
    )
    compute = full_grid if config.design == "full-grid" else heldout_experiment
    exp: HeldoutResult | ExperimentResult | None = compute(
        lm, facts, exp_config, per_language=per_language, vectors=vectors, store=store.child("lrp2"), progress=progress
    )
    if exp is None:  # only on ranks other than 0 of a distributed run; the demo runs in one process
        raise RuntimeError("the LRP2 experiment returned no result on the main process")
    if isinstance(exp, HeldoutResult):  # English on every fact (the held-out summary has target rows only)
        en = probe(lm, facts, "en", quiet).table["correct"]
        en_row = {"language": "en", "n_facts": len(en), "acc_baseline": accuracy_ci(en, n_boot=config.n_boot)}
        lrp2_summary = pd.concat([pd.DataFrame([en_row]), exp.summary], ignore_index=True)
        chosen = {lang: exp.chosen(lang) for lang in exp.selections}
    else:
        lrp2_summary = exp.summary
        chosen = {r["language"]: (int(r["heldout_m"]), int(r["heldout_n"])) for _, r in exp.summary.iloc[1:].iterrows()}
    summary = lrp2_summary.merge(
        pd.DataFrame(seen_rows, columns=["language", "n_seen", "acc_seen"]), on="language", how="left"
    )
    # 2. knowledge neurons at each language's chosen (m, n)
    results: list[KnowledgeResult] = []
    attribution = AttributionConfig(n_steps=config.n_steps, target_delta=config.target_delta)
    for lang, (m, n) in chosen.items():
        subset = _held_out_subset(per_language[lang], config.kn_facts_per_relation)
        kcfg = KnowledgeConfig(
            languages=(lang,),
            lrp2={lang: (m, n)},
            attribution=attribution,
            neurons=preset.neurons,
            n_perm=config.n_perm,
            n_boot=config.n_boot,
            seed=config.seed,
        )
        res = knowledge_analysis(lm, subset, vectors, kcfg, store=store.child("neurons", lang), progress=progress)
        if res is None:
            raise RuntimeError(f"the knowledge-neuron analysis of '{lang}' returned no result on the main process")
        results.append(res)
    kn = pd.DataFrame([knowledge_row(res) for res in results])
    summary = summary.merge(kn, on="language", how="left") if len(kn) else summary
    return DemoResult(config, lm.name, header, summary, exp, tuple(results), time.time() - t0, record)


def run_demo(
    config: DemoConfig, out_dir: str | Path, *, cache_dir: str | Path | None = None, progress: bool = True
) -> DemoResult:
    """:func:`compute_demo` resumable in the results folder ``out_dir`` (its parts guarded by their manifests), saved there.

    ``run.json`` says the run is under way while it computes and is rewritten complete at the end.
    """
    out = Path(out_dir)
    mark_incomplete(out)
    res = compute_demo(config, cache_dir=cache_dir, store=ShardStore(out), progress=progress)
    res.save(out)
    finish_record(out, {**res.record, "seconds": round(res.seconds, 1)})
    return res


def knowledge_row(res: KnowledgeResult) -> dict:
    """The demo's summary columns of one language's knowledge-neuron analysis."""
    (lang,) = res.config.languages
    jaccard = res.overlap_summary.mean("jaccard")
    ctl = res.control.summary().set_index("condition")
    return {
        "language": lang,
        "kn_facts": len(res.keys),
        "jaccard_baseline": jaccard.get("baseline"),
        "jaccard_lrp2": jaccard.get("lrp2"),
        "chance_jaccard": ctl.loc["baseline", "chance_jaccard"],
        "share_units_above_chance": ctl.loc["baseline", "share_above_chance"],
        **_table2_row(res.relation_baseline),
    }


TABLE2_COLUMNS = ["rel_same_baseline", "rel_diff_baseline", "rel_same_lrp2", "rel_diff_lrp2", "rel_chance"]


def _table2_row(pooled: pd.DataFrame, value: str = "overlap_rate") -> dict:
    """The paper's Table 2 for one language: overlap rate with English's same / different relations, pooled
    over layers, without and with LRP2, and the permutation chance level (baseline sets)."""
    t = pooled.set_index("condition")
    get = lambda col, cond: float(t.loc[cond, col]) if cond in t.index and col in t else float("nan")  # noqa: E731
    return {
        "rel_same_baseline": get(f"same_{value}", "baseline"),
        "rel_diff_baseline": get(f"different_{value}", "baseline"),
        "rel_same_lrp2": get(f"same_{value}", "lrp2"),
        "rel_diff_lrp2": get(f"different_{value}", "lrp2"),
        "rel_chance": get(f"chance_{value}", "baseline"),
    }


def cross_language_plots(results: list[KnowledgeResult], out: Path) -> None:
    """Layer x language heatmaps of shared neurons and overlap gain, and similarity curves, over every language."""
    by_layer = pd.concat([res.by_layer.table for res in results], ignore_index=True)
    for cond in ("baseline", "lrp2"):
        shared_neurons_heatmap(by_layer, out / f"heatmap_shared_neurons_{cond}.png", condition=cond)
    overlap_gain_heatmap(overlap_gain(by_layer), out / "heatmap_overlap_gain.png")
    sim = pd.concat([res.similarity.table for res in results], ignore_index=True)
    similarity_plot(sim, out / "similarity.png")


def _organism_header(info: OrganismInfo) -> str:
    return (
        f"Organism: {info.config.kind} LM, {info.config.n_layers} layers x d_model {info.config.d_model}, "
        f"trained in {info.train_seconds:.0f} s (final loss {info.final_loss:.3f}) on {info.n_lines} lines; "
        f"every fact seen in English, a share {info.config.seen_fraction} of them in each other language."
    )


#: the demo table's columns (those present) and their legend, per design of the LRP2 experiment
COLUMNS = {
    "heldout": [
        "language",
        "n_seen",
        "acc_seen",
        "n_facts",
        "n_dev",
        "n_test",
        "acc_baseline",
        "chosen",
        "selection",
        "acc_chosen",
        "gain",
        "p_mcnemar",
        "control_gain_mean",
        "trans_baseline",
        "trans_chosen",
        "jaccard_baseline",
        "jaccard_lrp2",
        "chance_jaccard",
    ],
    "full-grid": [
        "language",
        "n_seen",
        "acc_seen",
        "n_facts",
        "acc_baseline",
        "heldout_m",
        "heldout_n",
        "test_acc_baseline",
        "test_acc_heldout",
        "test_gain_heldout",
        "p_heldout",
        "test_gain_random_control",
        "oracle_m",
        "oracle_n",
        "acc_oracle",
        "trans_baseline",
        "trans_oracle",
        "jaccard_baseline",
        "jaccard_lrp2",
        "chance_jaccard",
    ],
}
LEGEND = {
    "heldout": "Acc = P@1 (%), 95% CIs over facts (English: every fact; other languages: their test facts). "
    "*chosen (m, n)*: chosen as `lrp2/summary.md` says (by default on dev facts, by successive halving; "
    "*selection*: where it was chosen, *optimistic* = on the test facts too); *gain*: test Acc - baseline with the exact McNemar interval, "
    "*p_mcnemar* its p; *control_gain_mean*: mean gain of the matched controls (the LIRP/LSRP plane randomly "
    "rotated). Trans = Jaccard of correctly answered test facts with English. ",
    "full-grid": "Acc = P@1 (%), 95% bootstrap CIs over facts. *held-out (m, n)*: chosen on dev facts, scored on "
    "test facts; *oracle*: best on all held-out facts (the paper's choice; optimistic). *random_control*: shifts "
    "of random directions with the same norms. Trans = Jaccard of correctly answered facts with English. ",
}
FILES = {
    "heldout": "`lrp2/` (its own `summary.md`, dev search `search_*.csv`, per-fact tables `facts_*.parquet`)",
    "full-grid": "`lrp2/` (sweeps, heatmaps `sweep_*_gain.png`)",
}


def _markdown(
    summary: pd.DataFrame, header: str, seconds: float, preset: str = "default", design: str = "heldout"
) -> str:
    cols = COLUMNS[design]
    cols = [c for c in cols if c in summary.columns]
    t = summary[cols].astype(object).fillna("")
    fmt = lambda v: f"{v:.3g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = [
        "# LRP2 demo",
        "",
        header,
        f"Demo wall time: {seconds:.0f} s. Preset: {preset} (lrp2_interp.presets).",
        "",
        "Organism: probing is on the facts each language never saw (held out); *acc_seen* is on the "
        "facts it saw. Pretrained model: every fact parallel to English. "
        + LEGEND[design]
        + "Jaccard: knowledge-neuron overlap with English per fact (chance level from a permutation control).",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in t.itertuples(index=False)]
    t2 = [c for c in ["language", *TABLE2_COLUMNS] if c in summary.columns]
    if len(t2) > 1:
        lines += [
            "",
            "## Knowledge-neuron overlap with English: same vs different relations (the paper's Table 2)",
            "",
            "Overlap rate |A n B| / |A| of l's per-relation knowledge neurons A with English's neurons B of the "
            "*same* relation and, averaged, of every *different* relation, pooled over layers, without "
            "(baseline) and with LRP2; *rel_chance*: random sets of the same per-layer sizes (permutation "
            "control). The paper (mBERT, zh-en): 17.9 vs 11.5 %, with LRP2 18.5 vs 11.9 %.",
            "",
            "| " + " | ".join(t2) + " |",
            "|" + "---|" * len(t2),
        ]
        lines += [
            "| " + " | ".join(fmt(v) for v in r) + " |"
            for r in summary[t2].iloc[1:].astype(object).fillna("").itertuples(index=False)
        ]
    lines += [
        "",
        f"Files: {FILES[design]}, `neurons/{{lang}}/` (attribution, neuron "
        "sets, overlap, control, causal), `heatmap_*.png`, `similarity.png`, `summary.csv`; every figure with "
        "what it shows: `figures.md`.",
    ]
    return "\n".join(lines) + "\n"
