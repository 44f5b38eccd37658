"""The LRP2 experiment's settings, and its full-grid design (computed by :func:`full_grid`, saved into a folder).

:class:`ExperimentConfig` describes a run in either design; the held-out design (the
default) runs in :mod:`lrp2_interp.interventions.experiment`, whose ``run_experiment``
takes either.  :func:`run_full_grid` is the full-grid design (``design="full-grid"``):
for each non-English language, language vectors, baseline probing, the (m, n) sweep
on *every* fact, the oracle and held-out pair, the random-direction control at the
held-out pair, Acc and Trans with bootstrap CIs and a paired McNemar test.

Results folder of the full-grid design::

    run.json                      config, package version, git commit, model, seed, timings
    vectors.safetensors/.json     language vectors (+ corpus description)
    probe_baseline.csv            per-fact rows of every language without LRP2
    sweep_{lang}.parquet/.csv     per-fact / per-pair tables; sweep_{lang}_gain.png gain heatmap
    summary.csv, summary.md       one row per language with CIs (CSV: numeric X, X_low, X_high columns;
                                  markdown: ``12.3 [10.1, 14.5]``)
    figures.md                    the gallery: every figure with what it shows (lrp2_interp.gallery)
    shards/                       resumable units (a restarted run skips finished ones)
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import pandas as pd

from lrp2_interp.distributed import Dist
from lrp2_interp.errors import InputError
from lrp2_interp.facts import FactSet, facts_digest
from lrp2_interp.files import run_metadata, write_table, write_text
from lrp2_interp.gallery import write_gallery
from lrp2_interp.lrp2.sweep import SweepConfig, SweepResult, run_sweep
from lrp2_interp.lrp2.vectors import LanguageVectors, compute_language_vectors
from lrp2_interp.manifest import finish_record, results_manifest
from lrp2_interp.metrics import accuracy_ci, estimate_columns, gain_ci, paired_test, transferability_ci
from lrp2_interp.models.loading import LanguageModel
from lrp2_interp.probing.probe import ProbeConfig, probe
from lrp2_interp.probing.query_set import QuerySet
from lrp2_interp.prompts import prompt_corpus
from lrp2_interp.store import ShardStore, UnitStore, unit_store

#: the designs of the experiment: ``heldout`` searches (m, n) on dev facts and probes test facts only at the
#: baseline, the choice and its controls; ``full-grid`` probes every (m, n) on every fact (per-pair heatmaps)
DESIGNS = ("heldout", "full-grid")


@dataclass(frozen=True)
class ExperimentConfig:
    """One LRP2 run; ``design`` picks the protocol, the fields after it set the held-out one.

    The held-out design draws candidate pools by entity (``probe.distractors`` is set to
    ``"entity"``) so that the source language ranks the same entities (Trans).
    """

    languages: tuple[str, ...]  # target languages (the source is added automatically)
    source: str = "en"
    layers: tuple[int, ...] | None = None
    dev_fraction: float = 0.5
    seed: int = 0
    n_boot: int = 1000
    probe: ProbeConfig = field(default_factory=lambda: ProbeConfig())
    design: Literal["heldout", "full-grid"] = "heldout"
    # held-out design (interventions.selection.SelectionConfig); "oracle" chooses on test facts too (optimistic)
    search: Literal["halving", "full", "oracle"] = "halving"
    max_dev: int | None = 200  # dev facts per language (None: all)
    max_test: int | None = 500  # test facts per language (None: all)
    first_rung: int = 16  # dev facts every pair is scored on in the first rung of successive halving
    eta: int = 3  # halving keeps 1/eta of the pairs and uses eta times the dev facts per rung
    n_controls: int = 5  # matched-control draws on test facts


@dataclass(frozen=True)
class ExperimentResult:
    """The full-grid design's results; :meth:`save` writes the results folder of the module docstring."""

    config: ExperimentConfig
    model_name: str
    summary: pd.DataFrame  # one row per language, the source first (Estimate cells)
    sweeps: dict[str, SweepResult]
    baseline: pd.DataFrame  # per-fact rows of every language without LRP2 (probe_baseline.csv)
    vectors: LanguageVectors | None = None  # the language vectors the run computed (None: given to it)

    def save(self, folder: str | Path) -> Path:
        """Vectors (when computed), the baseline and sweep tables, gain heatmaps, summaries and ``figures.md``."""
        out = Path(folder)
        if self.vectors is not None:
            self.vectors.save(out / "vectors.safetensors")
        for lang, sw in self.sweeps.items():
            write_table(out / f"sweep_{lang}.csv", sw.accuracy_table())
            write_table(out / f"sweep_{lang}.parquet", sw.facts_table)
            plot_sweep(sw, out / f"sweep_{lang}_gain.png")
        write_table(out / "probe_baseline.csv", self.baseline)
        write_table(out / "summary.csv", estimate_columns(self.summary))
        write_gallery(out)
        meta = {"model_name": self.model_name}
        write_text(out / "summary.md", summary_markdown(self.summary.astype(object).fillna(""), meta))
        return out


def _aligned(a: pd.Series, b: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Align two per-fact correctness series on their common (relation, lineid) index."""
    common = a.index.intersection(b.index)
    return a.loc[common].astype(bool), b.loc[common].astype(bool)


def summarize_language(
    sweep: SweepResult, en_correct: pd.Series, control: SweepResult | None, n_boot: int, seed: int
) -> dict:
    """One summary row: baseline vs oracle vs held-out pair, with CIs and the random control."""
    kw = dict(n_boot=n_boot, seed=seed)
    base = sweep.correct_of(None, None)
    oracle, held = sweep.oracle(), sweep.heldout()
    orc = sweep.correct_of(int(oracle["m"]), int(oracle["n"]))
    hld = sweep.correct_of(int(held["m"]), int(held["n"]))
    test_mask = ~base.index.get_level_values("lineid").isin(sweep.dev_ids)
    b_l, b_en = _aligned(base, en_correct)
    o_l, o_en = _aligned(orc, en_correct)
    row = {
        "language": sweep.config.language,
        "n_facts": len(base),
        "acc_baseline": accuracy_ci(base.values, **kw),
        "oracle_m": int(oracle["m"]),
        "oracle_n": int(oracle["n"]),
        "acc_oracle": accuracy_ci(orc.values, **kw),
        "gain_oracle": gain_ci(orc.values, base.values, **kw),
        "heldout_m": int(held["m"]),
        "heldout_n": int(held["n"]),
        "n_test": int(test_mask.sum()),
        "test_acc_baseline": accuracy_ci(base.values[test_mask], **kw),
        "test_acc_heldout": accuracy_ci(hld.values[test_mask], **kw),
        "test_gain_heldout": gain_ci(hld.values[test_mask], base.values[test_mask], **kw),
        "p_heldout": paired_test(hld.values[test_mask], base.values[test_mask])["p_value"],
        "trans_baseline": transferability_ci(b_l.values, b_en.values, **kw),
        "trans_oracle": transferability_ci(o_l.values, o_en.values, **kw),
    }
    if control is not None:
        ctl = control.correct_of(int(held["m"]), int(held["n"]))
        row["test_gain_random_control"] = gain_ci(ctl.values[test_mask], base.values[test_mask], **kw)
    return row


def check_experiment_config(config: ExperimentConfig) -> None:
    """Refuse settings that would give NaN summaries or crash after the run started."""
    if not 0.0 < float(config.dev_fraction) < 1.0:
        raise InputError(
            f"dev fraction must be strictly between 0 and 1 (dev and test both non-empty), got {config.dev_fraction}",
            field="dev_fraction",
        )
    if int(config.n_boot) < 1:
        raise InputError(f"n_boot must be at least 1, got {config.n_boot}", field="n_boot")
    if config.design not in DESIGNS:
        raise InputError(f"design must be {' or '.join(DESIGNS)}, got {config.design!r}", field="design")
    if config.source in config.languages:
        raise InputError(f"the source language '{config.source}' cannot also be a target language", field="languages")
    if len(set(config.languages)) != len(config.languages):
        raise InputError("a target language is given more than once", field="languages")


def _fmt(v) -> str:
    return str(v) if not isinstance(v, float) else f"{v:.3g}"


def summary_markdown(summary: pd.DataFrame, meta: dict) -> str:
    lines = [
        f"# LRP2 results: {meta.get('model_name', '')}",
        "",
        "Acc = P@1 (%) over facts, Trans = Jaccard(correct_l, correct_en) (%), 95% bootstrap CIs over facts.",
        "*oracle*: best (m, n) on all facts (the paper's choice; optimistic: chosen on the facts it is scored on); "
        "*held-out*: chosen on dev facts, "
        "scored on the other (test) facts. *random control*: shift by random directions of the same norms "
        "at the held-out pair. p: exact McNemar test, held-out pair vs baseline on test facts.",
        "",
        "| " + " | ".join(summary.columns) + " |",
        "|" + "---|" * len(summary.columns),
    ]
    for _, r in summary.iterrows():
        lines.append("| " + " | ".join(_fmt(v) for v in r.values) + " |")
    return "\n".join(lines) + "\n"


def full_grid(
    lm: LanguageModel,
    facts: FactSet,
    config: ExperimentConfig,
    *,
    per_language: Mapping[str, FactSet] | None = None,
    vectors: LanguageVectors | None = None,
    random_control: bool = True,
    store: UnitStore | None = None,
    dist: Dist | None = None,
    progress: bool = True,
) -> ExperimentResult | None:
    """The full-grid design: vectors (if not given), baseline, sweeps and summary for every target language.

    ``config.design`` must be ``"full-grid"`` (the default design runs through
    :func:`lrp2_interp.interventions.experiment.run_experiment`).  Language l is probed
    on its facts parallel to English, or on ``per_language[l]`` when given (e.g. the
    organism's held-out facts); English is probed on all its facts.  Language vectors
    default to the probe prompts of every fact in ``facts``.  Nothing is written: the units are
    kept in ``store`` (a :class:`~lrp2_interp.store.ShardStore`, guarded by the run's manifest first,
    makes the run resumable and shares it between ``torchrun`` ranks; default: memory); ranks other
    than 0 return None.  :meth:`ExperimentResult.save` writes the results folder.
    """
    dist = dist if dist is not None else Dist()
    check_experiment_config(config)  # before anything is written: a failed run must not look started
    if config.design != "full-grid":
        raise InputError(
            f"run_full_grid runs design='full-grid', got {config.design!r} "
            "(lrp2_interp.interventions.experiment.run_experiment runs either)",
            field="design",
        )
    if not SweepConfig(language="", layers=config.layers).pairs(lm.n_layers):  # layer range, before any write
        raise InputError("no (m, n) pair to sweep: give at least two layers", field="layers")
    if dist.world > 1 and not isinstance(store, ShardStore):
        raise InputError("under torchrun the full grid needs a results folder its ranks share", field="store")
    store = unit_store(store)
    langs = [config.source] + [lang for lang in config.languages if lang != config.source]
    facts_of = {lang: (per_language or {}).get(lang) or facts.parallel([config.source, lang]) for lang in langs[1:]}
    store.guard(
        results_manifest(
            config,
            facts=facts,
            lm=lm,
            vectors=vectors,
            per_language={lang: facts_digest(fs) for lang, fs in facts_of.items()},
        )
    )  # never mix shards of another run
    computed = None
    if vectors is None:
        vectors = computed = compute_language_vectors(
            lm,
            {lang: prompt_corpus(facts, lang, lm) for lang in langs},
            corpus={lang: f"probe prompts of {facts.root} ({facts.n_facts(lang)} facts)" for lang in langs},
            progress=progress,
        )
    en_key = f"{config.source}-probe"
    store.run([(en_key, lambda: probe(lm, facts, config.source, config.probe).table)], rank=0, world=1)
    en = store.read(en_key).set_index(["relation", "lineid"])["correct"].sort_index()
    sweeps, rows = {}, []
    base_cfg = SweepConfig(
        language="",
        source=config.source,
        layers=config.layers,
        dev_fraction=config.dev_fraction,
        seed=config.seed,
        probe=config.probe,
    )
    for lang in langs[1:]:
        queries = QuerySet(facts_of[lang], config.probe)  # the sweep and its control rank the same pools
        cfg = replace(base_cfg, language=lang)
        sw = run_sweep(lm, facts_of[lang], vectors, cfg, store=store, dist=dist, progress=progress, queries=queries)
        ctl = None
        if random_control and sw is not None:
            h = sw.heldout()
            ctl_cfg = replace(cfg, layers=(int(h["m"]), int(h["n"])), control="random")
            ctl = run_sweep(
                lm, facts_of[lang], vectors, ctl_cfg, store=store.child("control"), progress=False, queries=queries
            )
        if sw is None:
            continue
        sweeps[lang] = sw
        rows.append(summarize_language(sw, en, ctl, config.n_boot, config.seed))
    if not dist.is_main:
        return None
    base = pd.concat(
        [store.read(en_key)]
        + [sweeps[lang].facts_table.query("condition == 'baseline'").assign(language=lang) for lang in sweeps],
        ignore_index=True,
    )
    en_row = {
        "language": config.source,
        "n_facts": len(en),
        "acc_baseline": accuracy_ci(en.values, n_boot=config.n_boot, seed=config.seed),
    }
    summary = pd.DataFrame([en_row] + rows)
    return ExperimentResult(config, lm.name, summary, sweeps, base, computed)


def run_full_grid(
    lm: LanguageModel,
    facts: FactSet,
    config: ExperimentConfig,
    out_dir: str | Path,
    *,
    per_language: Mapping[str, FactSet] | None = None,
    vectors: LanguageVectors | None = None,
    random_control: bool = True,
    dist: Dist | None = None,
    progress: bool = True,
) -> ExperimentResult | None:
    """:func:`full_grid` resumable in the results folder ``out_dir`` (shared by ``torchrun`` ranks), saved there.

    ``run.json`` is written with ``"complete": false`` once the folder passed its guard, and rewritten
    complete (with the seconds) after rank 0 saved the results.
    """
    dist = dist if dist is not None else Dist()
    out = Path(out_dir)
    t0 = time.time()
    facts_of = {
        lang: (per_language or {}).get(lang) or facts.parallel([config.source, lang])
        for lang in config.languages
        if lang != config.source
    }
    meta = run_metadata(
        config,
        model_name=lm.name,
        device=str(lm.device),
        dtype=str(lm.dtype),
        n_facts={lang: fs.n_facts(lang) for lang, fs in facts_of.items()},
    )
    store = ShardStore(out, record=meta if dist.is_main else None)
    res = full_grid(
        lm,
        facts,
        config,
        per_language=per_language,
        vectors=vectors,
        random_control=random_control,
        store=store,
        dist=dist,
        progress=progress,
    )
    if res is not None:
        res.save(out)
        finish_record(out, {**meta, "seconds": round(time.time() - t0, 1)})
    return res


def plot_sweep(sweep: SweepResult, path: str | Path) -> Path:
    """Heatmap of the accuracy gain (points) of every (m, n) over the baseline (+ its CSV)."""
    from lrp2_interp.layers import layer_labels
    from lrp2_interp.plots import heatmap

    base = sweep.baseline()["acc"]
    gain = sweep.gain_matrix("gain")
    return heatmap(
        gain,
        path,
        title=f"LRP2 gain over baseline ({base:.1f}%), {sweep.config.language}: rows m (LIRP), cols n (LSRP)",
        center=0.0,
        ylabel="m: block index (paper layer)",
        xlabel="n: block index (paper layer)",
        yticklabels=layer_labels(gain.index),
        xticklabels=layer_labels(gain.columns),
    )
