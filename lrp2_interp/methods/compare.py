"""Compare interventions on the same facts and split: each chosen on dev facts, scored on test facts with its controls.

:func:`run_comparison` takes any objects of the
:class:`~lrp2_interp.interventions.protocol.Intervention` protocol (LRP2, learned alignment,
LAPE steering, mean steering, or a class of your own) and runs the one held-out routine,
:func:`~lrp2_interp.interventions.selection.select_and_score`, on each: fit on dev facts,
search the setting grid on dev facts, score the choice, its matched-control draws and its
extra controls on test facts.  Every intervention of one language sees the same split
(:class:`~lrp2_interp.interventions.selection.SelectionConfig`'s seed) and the same
candidate pools, drawn once; the conditions no intervention changes (the baseline, the source's
baseline) are scored once per language pair
(:func:`~lrp2_interp.interventions.selection.pair_scorer`) and shared by its interventions.  Facts whose gold the model cannot tell from a wrong candidate (the gold tokenizes
to the unknown token only, or like another object label) are left out in every language, as
:func:`~lrp2_interp.probing.probe.probe` and the command line do, and listed in
:attr:`Comparison.excluded`.  The summary has one row per intervention
(:func:`~lrp2_interp.interventions.summary.summary_row`); nothing is written to disk.
Which names the command line knows: :mod:`lrp2_interp.methods.registry`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from lrp2_interp.errors import InputError
from lrp2_interp.facts import FactSet
from lrp2_interp.heldout_figures import draw_halving_search, draw_real_size_gains
from lrp2_interp.interventions.protocol import Intervention, Setting
from lrp2_interp.interventions.scoring import Scorer
from lrp2_interp.interventions.selection import SelectionConfig, SelectionResult, pair_scorer, select_and_score
from lrp2_interp.interventions.summary import headline, markdown_table, summary_row
from lrp2_interp.metrics import estimate_columns
from lrp2_interp.models.loading import LanguageModel
from lrp2_interp.probing.types import EXCLUDED_COLUMNS, rankable


@dataclass(frozen=True)
class CompareConfig:
    selection: SelectionConfig = field(default_factory=SelectionConfig)  # split, search, controls, probing
    n_boot: int = 1000  # bootstrap resamples of the summary's intervals
    seed: int = 0  # the bootstrap's seed

    def __post_init__(self) -> None:
        if int(self.n_boot) < 1:
            raise InputError(f"n_boot must be >= 1, got {self.n_boot}", field="n_boot")


@dataclass(frozen=True)
class Comparison:
    """The held-out result of every intervention and their summary (one row each)."""

    config: CompareConfig
    model_name: str
    results: tuple[SelectionResult, ...]
    summary: pd.DataFrame  # summary_row per result: Estimate cells (metrics.estimate_columns for a CSV)
    #: facts left out of ranking (probing.types.unrankable_facts): one row per language and fact
    excluded: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=EXCLUDED_COLUMNS))

    @property
    def n_excluded(self) -> int:
        """How many facts were left out of ranking in every language (their gold cannot be told apart)."""
        return len(set(zip(self.excluded["relation"], self.excluded["lineid"])))

    def result(self, method: str, language: str | None = None) -> SelectionResult:
        """The :class:`SelectionResult` of ``method`` (and ``language``, when several were run)."""
        found = [r for r in self.results if r.method == method and language in (None, r.language)]
        if not found:
            ran = ", ".join(f"{r.method} ({r.language})" for r in self.results)
            raise InputError(f"method '{method}' was not run (ran: {ran})", field="method")
        return found[0]

    def chosen(self, method: str, language: str | None = None) -> Setting:
        """The setting of ``method`` chosen on dev facts (as the intervention names it, e.g. ``(m, n)``)."""
        return self.result(method, language).chosen

    def grid(self, method: str, language: str | None = None) -> pd.DataFrame:
        """The dev search of ``method``: rung, setting, n_dev, dev_acc, dev_mrr, kept."""
        return self.result(method, language).search

    def table(self) -> pd.DataFrame:
        """The headline table: one row per intervention, estimates written ``value [low, high]``."""
        table = headline(self.summary)
        table.insert(1, "method", self.summary["title"])
        return table

    def to_frame(self) -> pd.DataFrame:
        """The summary with every estimate as ``X``, ``X_low``, ``X_high`` columns (what a CSV holds)."""
        return estimate_columns(self.summary)

    def plot(self, ax: Any = None) -> Any:
        """Forest plot: each intervention's test gain with its intervals, matched controls and extra controls."""
        return draw_real_size_gains(
            self.summary, ax, label="title", title="Test gain of each method's dev choice, next to its controls"
        )

    def plot_search(self, method: str, ax: Any = None, *, language: str | None = None) -> Any:
        """The dev search of ``method`` (successive halving: dev Acc of every setting per rung)."""
        r = self.result(method, language)
        return draw_halving_search(r.search, ax, title=f"{r.method} ({r.language}): dev search")

    @property
    def facts_table(self) -> pd.DataFrame:
        """Per-fact rows of every result, with a ``method`` column."""
        frames = [r.facts_table.assign(method=r.method) for r in self.results]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def save(self, folder: str | Path) -> Path:
        """Write ``conditions.csv`` (per fact), ``search.csv`` (every dev search) and the search plots into ``folder``."""
        from lrp2_interp.files import write_table

        folder = Path(folder)
        write_table(folder / "conditions.csv", self.facts_table)
        write_table(folder / "search.csv", pd.concat([r.search.assign(method=r.method) for r in self.results]))
        plot_grids(self, folder)
        return folder


def run_comparison(
    lm: LanguageModel,
    facts: FactSet,
    interventions: Sequence[Intervention],
    config: CompareConfig = CompareConfig(),
    *,
    progress: bool = False,
) -> Comparison:
    """Select and score each intervention on the same held-out split; one summary row each.

    Facts whose gold cannot be told from a wrong candidate are left out first (:attr:`Comparison.excluded`).
    """
    if not interventions:
        raise InputError("nothing to compare: no interventions given", field="interventions")
    names = [(i.name, i.language) for i in interventions]
    if len(set(names)) != len(names):
        raise InputError(f"two interventions share a name and language: {names}", field="interventions")
    facts, excluded = rankable(lm, facts)  # never ranked by label order: left out in every language
    bar = tqdm(desc="compare", unit="fact-condition", disable=not progress)
    shared: dict[tuple[str, str], Scorer] = {}  # per language pair: its baselines and pools, for every method
    results = []
    for i in interventions:
        pair = (i.source, i.language)
        if pair not in shared:
            shared[pair] = pair_scorer(lm, facts, *pair, config.selection, tick=bar.update)
        results.append(select_and_score(lm, facts, i, config.selection, tick=bar.update, shared=shared[pair]))
    bar.close()
    rows = []
    for r in results:
        row = summary_row(r, n_boot=config.n_boot, seed=config.seed)
        row["title"] = r.title
        rows.append(row)
    return Comparison(config, lm.name, tuple(results), pd.DataFrame(rows), excluded)


def summary_markdown(comparison: Comparison) -> str:
    """The headline table (one row per intervention) as Markdown."""
    s = comparison.summary
    table = comparison.table()
    langs = ", ".join(dict.fromkeys(s["language"]))
    return "\n".join(
        [
            f"# Interventions compared: {comparison.model_name}, {langs}",
            "",
            (
                "Acc = P@1 (%) on test facts; each setting chosen on dev facts; gain = test Acc - baseline (points) "
                "with the exact interval of the McNemar test; matched control = the same intervention with its "
                "property under test removed (random directions / maps / neurons of the same size), several draws."
            ),
            "",
            markdown_table(table),
        ]
    )


def plot_grids(comparison: Comparison, out_dir: str | Path) -> list[Path]:
    """One plot per intervention: dev Acc of every setting per search rung (settings in rung-0 order)."""
    from lrp2_interp.plots import line_plot

    paths = []
    for r in comparison.results:
        s = r.search
        order = {label: k for k, label in enumerate(s[s["rung"] == 0]["setting"])}
        g = s.assign(setting_rank=s["setting"].map(order), rung=s["rung"].map(lambda k: f"rung {k}"))
        paths.append(
            line_plot(
                g,
                "setting_rank",
                "dev_acc",
                "rung",
                Path(out_dir) / f"{r.method}_dev_search_{r.language}.png",
                title=f"{r.title}, {r.language}: dev Acc per setting (chosen {r.chosen_label})",
                ylabel="dev Acc (%)",
            )
        )
    return paths
