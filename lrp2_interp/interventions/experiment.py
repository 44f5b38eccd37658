"""The LRP2 experiment written to a results folder: the held-out design (the default) or the full grid.

:func:`run_experiment` runs the design of :class:`~lrp2_interp.lrp2.full_grid.ExperimentConfig`:

* ``design="heldout"`` (default; :func:`run_heldout`): per target language, the one held-out
  routine (:func:`~lrp2_interp.interventions.selection.select_and_score`) on
  :class:`~lrp2_interp.interventions.language_projection.LRP2Intervention`.  The (m, n) grid
  (every pair of the embedding output and every block, or of ``layers``) is searched on dev
  facts only, by successive halving (``search="full"``: every pair on every dev fact).  The
  test facts are probed only at the baseline, the chosen pair, ``n_controls`` matched-control
  draws and the wrong-language control (the next target language in sorted order, when there
  are two or more), plus the source's baseline for Trans.  ``search="oracle"`` is the paper's
  choice (the best pair on dev *and* test facts); its rows are labelled
  *optimistic (chosen on test facts)*.
* ``design="full-grid"``: :func:`lrp2_interp.lrp2.full_grid.run_full_grid` (every pair on
  every fact; per-pair heatmaps, oracle and held-out pair side by side).

Results folder of the held-out design::

    run.json              config, the selection settings, package version, git commit, model, timings, work
    manifest.json         what the stored units depend on (another run's settings or units are refused)
    units/{lang}/shards/  resumable units (a rerun of the same command skips the finished ones)
    summary.csv           one row per target language (numeric X, X_low, X_high columns)
    summary.md            the protocol, the work it saved, the headline table, then the full table
    search_{lang}.csv     the dev search: rung, pair, n_dev, dev Acc, dev MRR, kept
    facts_{lang}.parquet  every probed fact-condition (split, language, condition, correct, rank, ...)
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import cast

import pandas as pd
from tqdm.auto import tqdm

from lrp2_interp.distributed import Dist
from lrp2_interp.errors import InputError
from lrp2_interp.facts import FactSet, facts_digest
from lrp2_interp.files import run_metadata, write_table, write_text
from lrp2_interp.gallery import write_gallery
from lrp2_interp.interventions.language_projection import LRP2Intervention
from lrp2_interp.interventions.protocol import Intervention
from lrp2_interp.interventions.scoring import UNITS_VERSION
from lrp2_interp.interventions.selection import SelectionConfig, SelectionResult, select_and_score
from lrp2_interp.interventions.summary import headline, markdown_table, summary_row
from lrp2_interp.lrp2.full_grid import ExperimentConfig, ExperimentResult, check_experiment_config, run_full_grid
from lrp2_interp.lrp2.vectors import LanguageVectors
from lrp2_interp.manifest import finish_record, results_manifest
from lrp2_interp.metrics import estimate_columns
from lrp2_interp.models.loading import LanguageModel
from lrp2_interp.probing.types import EXCLUDED_COLUMNS, rankable
from lrp2_interp.store import ShardStore, UnitStore, unit_store

#: how a summary row says where its pair was chosen
HELDOUT = "held-out (chosen on dev facts)"
OPTIMISTIC = "optimistic (chosen on test facts)"


@dataclass(frozen=True)
class HeldoutResult:
    """The held-out design's results: one :class:`SelectionResult` and one summary row per target language."""

    config: ExperimentConfig
    model_name: str
    summary: pd.DataFrame  # one row per target language (Estimate cells; metrics.estimate_columns for a CSV)
    selections: dict[str, SelectionResult]
    work: dict  # fact_conditions probed, full_grid: what every pair on every fact would have probed
    #: facts left out of ranking in every language (probing.types.unrankable_facts), as probe and the CLI do
    excluded: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=EXCLUDED_COLUMNS))
    n_facts: dict[str, int] = field(default_factory=dict)  # each target's rankable facts (before the dev/test caps)

    def chosen(self, language: str) -> tuple[int, int]:
        """The (m, n) chosen for ``language``."""
        m, n = cast(tuple[int, int], self.selections[language].chosen)
        return int(m), int(n)

    def save(self, folder: str | Path) -> Path:
        """``search_{lang}.csv``, ``facts_{lang}.parquet``, ``summary.csv``, ``summary.md`` and ``figures.md``."""
        out = Path(folder)
        for lang, res in self.selections.items():
            write_table(out / f"search_{lang}.csv", res.search)
            write_table(out / f"facts_{lang}.parquet", res.facts_table)
        write_table(out / "summary.csv", estimate_columns(self.summary))
        write_text(out / "summary.md", heldout_markdown(self.summary, self.config, self.model_name, self.work))
        write_gallery(out)  # figures.md when the folder holds figures (the held-out design draws none itself)
        return out


def selection_config(config: ExperimentConfig) -> SelectionConfig:
    """The held-out settings of ``config``; candidate pools by entity (the source ranks the same entities)."""
    return SelectionConfig(
        dev_fraction=config.dev_fraction,
        max_dev=config.max_dev,
        max_test=config.max_test,
        search=config.search,
        first_rung=config.first_rung,
        eta=config.eta,
        n_controls=config.n_controls,
        seed=config.seed,
        probe=replace(config.probe, distractors="entity"),
    )


def selection_label(search: str) -> str:
    """:data:`OPTIMISTIC` for the oracle search, :data:`HELDOUT` otherwise."""
    return OPTIMISTIC if search == "oracle" else HELDOUT


def wrong_languages(targets: Sequence[str]) -> dict[str, str | None]:
    """Each target's wrong-language control: the next target in sorted order (None with one target)."""
    order = sorted(targets)
    if len(order) < 2:
        return dict.fromkeys(targets)
    return {lang: order[(order.index(lang) + 1) % len(order)] for lang in targets}


def run_experiment(
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
) -> ExperimentResult | HeldoutResult | None:
    """Run ``config.design`` into ``out_dir`` (see the module docstring); None on ranks other than 0.

    ``per_language[l]``: the facts language l is probed on (default: ``facts``); ``vectors``:
    language vectors to use (default: fitted on each language's dev facts in the held-out design,
    on every probe prompt in the full grid); ``random_control``: the full grid's control.
    """
    if config.design == "full-grid":
        return run_full_grid(
            lm,
            facts,
            config,
            out_dir,
            per_language=per_language,
            vectors=vectors,
            random_control=random_control,
            dist=dist,
            progress=progress,
        )
    return run_heldout(
        lm, facts, config, out_dir, per_language=per_language, vectors=vectors, dist=dist, progress=progress
    )


def heldout_experiment(
    lm: LanguageModel,
    facts: FactSet,
    config: ExperimentConfig,
    *,
    per_language: Mapping[str, FactSet] | None = None,
    vectors: LanguageVectors | None = None,
    store: UnitStore | None = None,
    dist: Dist | None = None,
    progress: bool = True,
) -> HeldoutResult:
    """The held-out design (see the module docstring), computed without writing anything.

    ``store``: where the probed units are kept (a :class:`~lrp2_interp.store.ShardStore` makes the run
    resumable and is guarded by the run's manifest before anything is probed; default: memory).
    :meth:`HeldoutResult.save` writes the results folder; :func:`run_heldout` does both.
    """
    dist = dist if dist is not None else Dist()
    check_experiment_config(config)  # before anything is written: a failed run must not look started
    if config.design != "heldout":
        raise InputError(f"run_heldout runs design='heldout', got {config.design!r}", field="design")
    if dist.world > 1:
        raise InputError(
            "the held-out design runs in one process; under torchrun use --design full-grid", field="design"
        )
    selection = selection_config(config)
    targets = list(config.languages)
    facts, excluded = rankable(lm, facts)  # golds the model cannot tell from a wrong candidate: never ranked
    own, frames = {}, [excluded]
    for lang, fs in (per_language or {}).items():
        own[lang], more = rankable(lm, fs)
        frames.append(more)
    per_language = own or None
    if any(len(f) for f in frames[1:]):
        excluded = pd.concat([f for f in frames if len(f)], ignore_index=True).drop_duplicates(ignore_index=True)
    facts_of = {lang: (per_language or {}).get(lang) or facts for lang in targets}
    wrong = wrong_languages(targets)
    interventions = {}
    for lang in targets:
        facts_of[lang].check_languages([config.source, lang], field="languages")
        other = wrong[lang]
        if other is not None and vectors is None and other not in facts_of[lang].languages:
            raise InputError(
                f"{lang}: the wrong-language control needs facts in '{other}' (or language vectors)", field="languages"
            )
        inter = LRP2Intervention.for_model(
            lm, lang, source=config.source, layers=config.layers, vectors=vectors, wrong_language=other
        )
        inter.settings()  # the layer range, before any write
        interventions[lang] = inter
    store = unit_store(store)
    store.guard(
        results_manifest(
            config,
            facts=facts,
            lm=lm,
            vectors=vectors,
            per_language={lang: facts_digest(fs) for lang, fs in (per_language or {}).items() if lang in targets},
            units=UNITS_VERSION,
        )
    )  # never mix units of another run
    selections: dict[str, SelectionResult] = {}
    for lang in targets:
        n_pairs = len(interventions[lang].settings())
        bar = tqdm(desc=f"{lang}: {n_pairs} (m, n) pairs", unit="fact-cond", smoothing=0.05, disable=not progress)
        units = store.child("units", lang)  # the source's candidate pools depend on the language pair
        method = cast(Intervention, interventions[lang])  # the protocol types settings as any Hashable
        selections[lang] = select_and_score(lm, facts_of[lang], method, selection, store=units, tick=bar.update)
        bar.close()
    summary = pd.DataFrame([language_row(selections[lang], config) for lang in targets])
    work = {
        "fact_conditions": sum(r.work["fact_conditions"] for r in selections.values()),
        "full_grid": sum(r.work["full_grid"] for r in selections.values()),
    }
    n_facts = {lang: facts_of[lang].n_facts(lang) for lang in targets}
    return HeldoutResult(config, lm.name, summary, selections, work, excluded, n_facts)


def run_heldout(
    lm: LanguageModel,
    facts: FactSet,
    config: ExperimentConfig,
    out_dir: str | Path,
    *,
    per_language: Mapping[str, FactSet] | None = None,
    vectors: LanguageVectors | None = None,
    dist: Dist | None = None,
    progress: bool = True,
) -> HeldoutResult:
    """:func:`heldout_experiment` resumable in the results folder ``out_dir``, saved there with ``run.json``.

    ``run.json`` is written with ``"complete": false`` once the folder passed its guard, and rewritten
    complete (with the facts per language, the seconds and the work) after the results are saved.
    """
    out = Path(out_dir)
    t0 = time.time()
    meta = run_metadata(
        config, model_name=lm.name, device=str(lm.device), dtype=str(lm.dtype), selection=selection_config(config)
    )
    res = heldout_experiment(
        lm,
        facts,
        config,
        per_language=per_language,
        vectors=vectors,
        store=ShardStore(out, record=meta),
        dist=dist,
        progress=progress,
    )
    res.save(out)
    finish_record(out, {**meta, "n_facts": res.n_facts, "seconds": round(time.time() - t0, 1), "work": res.work})
    return res


def language_row(result: SelectionResult, config: ExperimentConfig) -> dict:
    """:func:`~lrp2_interp.interventions.summary.summary_row` with the chosen m and n and where they were chosen."""
    m, n = cast(tuple[int, int], result.chosen)
    row: dict = {}
    for key, value in summary_row(result, n_boot=config.n_boot, seed=config.seed).items():
        row[key] = value
        if key == "chosen":
            row.update(chosen_m=int(m), chosen_n=int(n), search=config.search, selection=selection_label(config.search))
    return row


def work_line(work: Mapping[str, int]) -> str:
    """The work the held-out design saved, in one line."""
    done, full = int(work["fact_conditions"]), int(work["full_grid"])
    return (
        f"fact-conditions probed: {done:,}; the full grid (every pair on every fact) needs {full:,}: "
        f"{full / max(1, done):.1f}x the work"
    )


def heldout_markdown(summary: pd.DataFrame, config: ExperimentConfig, model_name: str, work: Mapping[str, int]) -> str:
    """``summary.md`` of the held-out design: protocol, work, headline table, full table."""
    table = headline(summary)
    table.insert(list(table.columns).index("chosen") + 1, "selection", list(summary["selection"]))
    search = {
        "halving": f"by successive halving (every pair on {config.first_rung} dev facts, the best 1/{config.eta} "
        f"on {config.eta} times as many, until all dev facts are used)",
        "full": "with every pair on every dev fact",
        "oracle": "on dev *and test* facts (the paper's oracle)",
    }[config.search]
    wrong = (
        " and the wrong-language control (the next target language's vectors at the chosen pair)"
        if len(config.languages) > 1
        else ""
    )
    lines = [
        f"# LRP2 results (held-out design): {model_name}",
        "",
        f"(m, n) chosen per language {search}; test facts probed only at the baseline, the chosen pair, "
        f"{config.n_controls} matched-control draws (the LIRP/LSRP plane randomly rotated: same norms, same "
        f"cancellation){wrong}. "
        "Acc = P@1 (%); gain = test Acc - baseline (points) with the exact interval of the McNemar test; "
        f"Trans = Jaccard of the test facts l and {config.source} answer correctly (%), same candidate entities.",
        "",
    ]
    if config.search == "oracle":
        lines += [
            f"**{OPTIMISTIC[0].upper() + OPTIMISTIC[1:]}**: the pair was chosen on the test facts it is scored "
            "on, so its test gain is biased upward; the held-out default is `search='halving'`.",
            "",
        ]
    lines += [f"Work: {work_line(work)}.", "", markdown_table(table), "## Full table", "", markdown_table(summary)]
    return "\n".join(lines)
