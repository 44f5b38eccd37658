"""A real-size held-out run's folder (``benchmarks/real_scale.py``) read back as one typed result with its figures.

The folder holds ``summary.csv`` (one row per language: the test gain of the (m, n) chosen on
dev facts with its exact, per-fact and relation-clustered 95% intervals, the matched-control
draws, the wrong-language control, Trans before and after, as ``X``, ``X_low``, ``X_high``
columns), ``search_{lang}.csv`` (the successive-halving search on dev facts) and, where kept,
``facts_{lang}.parquet`` (every probed fact-condition) and ``summary.md``.  Only
``summary.csv`` and the search tables are required.

>>> res = read_real_size("docs/results/real_scale")  # doctest: +SKIP
>>> res.headline()  # doctest: +SKIP
>>> ax = res.plot()  # the forest plot of the test gains  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lrp2_interp.errors import InputError
from lrp2_interp.heldout_figures import draw_halving_search, draw_real_size_gains, draw_real_size_trans, gains_table

WRITER = "benchmarks/real_scale.py"


def _ci(value: float, low: float, high: float, sign: bool = False) -> str:
    if not np.isfinite(value):
        return ""
    f = "+.1f" if sign else ".1f"
    return f"{value:{f}} [{low:{f}}, {high:{f}}]" if np.isfinite(low) and np.isfinite(high) else f"{value:{f}}"


@dataclass(frozen=True)
class RealSizeResults:
    """The files of a real-size run: the summary, each language's dev search and (optionally) its per-fact rows."""

    folder: Path
    summary: pd.DataFrame  # summary.csv: one row per language, estimates as X, X_low, X_high columns
    searches: Mapping[str, pd.DataFrame]  # language -> search_{lang}.csv: rung, setting, n_dev, dev_acc, dev_mrr, kept
    facts: Mapping[str, pd.DataFrame] = field(default_factory=dict)  # language -> facts_{lang}.parquet, where kept
    text: str = ""  # summary.md, where kept

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(str(g) for g in self.summary["language"])

    @property
    def description(self) -> str:
        """The run's settings as ``summary.md`` states them (model, sizes, wall time), or ``""``."""
        paragraphs = [p.strip() for p in self.text.split("\n\n") if p.strip()]
        head = [p for p in paragraphs[:2] if not p.startswith("|")]
        return "\n\n".join(p.lstrip("# ") for p in head)

    def to_frame(self) -> pd.DataFrame:
        """The summary (a copy)."""
        return self.summary.copy()

    def headline(self) -> pd.DataFrame:
        """One row per language, estimates written ``value [low, high]``: the table a reader needs."""
        s, g = self.summary, gains_table(self.summary)

        def col(name: str) -> pd.Series:
            return s[name].astype(float) if name in s.columns else pd.Series(np.nan, index=s.index)

        out = pd.DataFrame({"language": s["language"], "n test": s["n_test"]})
        out["baseline Acc"] = [
            _ci(*v) for v in zip(col("acc_baseline"), col("acc_baseline_low"), col("acc_baseline_high"))
        ]
        out["chosen (m, n)"] = s["chosen"] if "chosen" in s.columns else ""
        out["test gain [exact CI]"] = [_ci(*v, sign=True) for v in zip(g["gain"], g["gain_low"], g["gain_high"])]
        for name, text in (("gain_fact_ci", "per-fact CI"), ("gain_relation_ci", "relation CI")):
            out[text] = [
                f"[{lo:+.1f}, {hi:+.1f}]" if np.isfinite(lo) else ""
                for lo, hi in zip(g[f"{name}_low"], g[f"{name}_high"])
            ]
        out["p (McNemar)"] = col("p_mcnemar").map(lambda p: f"{p:.3g}")
        out["p (relations)"] = col("p_relation").map(lambda p: f"{p:.3g}")
        out["matched controls"] = [" ".join(f"{x:+.1f}" for x in draws) for draws in g["controls"]]
        out["wrong language"] = [
            f"{w:+.1f} ({lang})" if isinstance(lang, str) else "" for lang, w in zip(g["wrong_language"], g["wrong"])
        ]
        out["Trans before -> after"] = [
            f"{b:.1f} -> {a:.1f}" for b, a in zip(col("trans_baseline"), col("trans_chosen"))
        ]
        return out

    def dev_baseline(self, language: str) -> float | None:
        """The baseline's dev Acc (%) over all dev facts, from ``facts_{lang}.parquet`` (None without it)."""
        t = self.facts.get(language)
        if t is None:
            return None
        sel = (t["split"] == "dev") & (t["condition"] == "baseline") & (t["language"] == language)
        return 100.0 * float(t.loc[sel, "correct"].astype(bool).mean()) if sel.any() else None

    def plot(self, ax: Any = None) -> Any:
        """Forest plot of every language's test gain next to its controls (:func:`draw_real_size_gains`)."""
        return draw_real_size_gains(self.summary, ax)

    def plot_search(self, language: str, ax: Any = None) -> Any:
        """``language``'s successive-halving search on dev facts (:func:`draw_halving_search`)."""
        if language not in self.searches:
            raise InputError(f"no search table for '{language}' (have {', '.join(self.searches)})", field="language")
        return draw_halving_search(
            self.searches[language], ax, baseline=self.dev_baseline(language), title=f"{language}: dev search"
        )

    def plot_trans(self, ax: Any = None) -> Any:
        """Trans before and after the chosen (m, n), per language (:func:`draw_real_size_trans`)."""
        return draw_real_size_trans(self.summary, ax)


def read_real_size(folder: str | Path) -> RealSizeResults:
    """Read the folder ``benchmarks/real_scale.py --out FOLDER`` wrote (see the module docstring)."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"no results folder here (written by {WRITER} --out)", file=root)
    path = root / "summary.csv"
    if not path.is_file():
        raise InputError(f"no summary.csv: not a finished run of {WRITER}", file=path)
    summary = pd.read_csv(path)
    if "language" not in summary.columns or summary.empty:
        raise InputError("summary.csv has no language rows", file=path, field="language")
    searches, facts = {}, {}
    for lang in summary["language"].astype(str):
        search = root / f"search_{lang}.csv"
        if not search.is_file():
            raise InputError(f"no dev search table for '{lang}'", file=search)
        searches[lang] = pd.read_csv(search)
        parquet = root / f"facts_{lang}.parquet"
        if parquet.is_file():
            facts[lang] = pd.read_parquet(parquet)
    md = root / "summary.md"
    text = md.read_text(encoding="utf-8") if md.is_file() else ""
    return RealSizeResults(root, summary, searches, facts, text)
