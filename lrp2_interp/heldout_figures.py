"""Held-out results drawn onto an Axes: the test gain with its intervals and controls, the dev search, Trans.

The tables are summaries with one row per language (``benchmarks/real_scale.py``'s
``summary.csv``) or per intervention (:class:`lrp2_interp.methods.compare.Comparison`'s
``summary``), as :func:`lrp2_interp.interventions.summary.summary_row` builds them: estimates as
:class:`~lrp2_interp.metrics.Estimate` cells or as the CSV's ``X``, ``X_low``, ``X_high`` columns.
The dev search is a :class:`~lrp2_interp.interventions.selection.SelectionResult`'s ``search``
table (``search_{lang}.csv``: rung, setting, n_dev, dev_acc, dev_mrr, kept).  Each ``draw_*``
returns the Axes and writes nothing.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from lrp2_interp.drawing import matplotlib_rc, new_axes, pin_fonts
from lrp2_interp.errors import InputError
from lrp2_interp.fonts import font_plan
from lrp2_interp.languages import language_name
from lrp2_interp.metrics import estimate_columns

#: the three intervals of the test gain: column, name, colour, line width, vertical offset in a row
INTERVALS = (
    ("gain", "exact (McNemar) 95% CI", "black", 2.6, 0.2),
    ("gain_fact_ci", "per-fact bootstrap 95% CI", "tab:blue", 1.6, 0.0),
    ("gain_relation_ci", "relation-clustered bootstrap 95% CI", "tab:orange", 1.6, -0.2),
)
CONTROL_ROW = -0.38  # where a row's controls are drawn (offset from the row's centre)
WRONG_LANGUAGE = re.compile(r"^wrong language \((.+)\)$")


def _require(table: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(f"the {what} lacks columns {missing} (has {list(table.columns)})", field="summary")
    if table.empty:
        raise InputError(f"nothing to plot: the {what} is empty", field="summary")


def _draws(cell: Any) -> list[float]:
    """The matched-control gains of one row: ``"+1.0 -2.5"`` (a CSV with one draw reads it as a number)."""
    if isinstance(cell, str):
        return [float(x) for x in cell.split()]
    if cell is None or (isinstance(cell, float) and np.isnan(cell)):
        return []
    return [float(cell)]


def gains_table(summary: pd.DataFrame, label: str = "language") -> pd.DataFrame:
    """One row per summary row: ``label``, n_test, the gain and its intervals, the control draws, the wrong language.

    Columns: ``label``, ``n_test``, ``gain``/``_low``/``_high`` (and ``gain_fact_ci``, ``gain_relation_ci``
    where present), ``controls`` (a list of the matched-control gains), ``wrong_language`` and
    ``wrong``/``wrong_low``/``wrong_high`` (NaN where the row has no wrong-language control).
    """
    s = estimate_columns(summary).reset_index(drop=True)
    _require(s, [label, "gain", "gain_low", "gain_high"], "summary")
    out = pd.DataFrame({"label": s[label].astype(str)})
    out["n_test"] = s["n_test"] if "n_test" in s.columns else np.nan
    for name, *_ in INTERVALS:
        for suffix in ("", "_low", "_high"):
            out[f"{name}{suffix}"] = s[f"{name}{suffix}"].astype(float) if f"{name}{suffix}" in s.columns else np.nan
    out["controls"] = [_draws(c) for c in s["control_gains"]] if "control_gains" in s.columns else [[]] * len(s)
    wrong = [(c, m.group(1)) for c in s.columns if (m := WRONG_LANGUAGE.match(str(c)))]
    picked: list[tuple[str | None, float, float, float]] = []
    for i in range(len(s)):
        found = next(((g, c) for c, g in wrong if pd.notna(s.at[i, c])), None)
        if found is None:
            picked.append((None, np.nan, np.nan, np.nan))
        else:
            g, c = found
            low, high = (s.at[i, f"{c}{x}"] if f"{c}{x}" in s.columns else np.nan for x in ("_low", "_high"))
            picked.append((g, float(s.at[i, c]), float(low), float(high)))
    out[["wrong_language", "wrong", "wrong_low", "wrong_high"]] = pd.DataFrame(picked, index=out.index)
    return out


def _row_labels(t: pd.DataFrame) -> list[str]:
    return [f"{lab} (n={int(n)})" if pd.notna(n) else str(lab) for lab, n in zip(t["label"], t["n_test"])]


def draw_real_size_gains(
    summary: pd.DataFrame, ax: Any = None, *, label: str = "language", title: str | None = None
) -> Any:
    """Forest plot: per row, the test gain with its exact, per-fact and relation-clustered 95% intervals,
    next to the matched-control draws (grey x) and the wrong-language control (red diamond, exact CI).

    ``summary``: one row per language or intervention (see the module docstring); ``label``: the
    column naming the rows (``"language"``; ``"title"`` or ``"method"`` for a comparison).
    """
    t = gains_table(summary, label)
    labels = _row_labels(t)
    plan = font_plan([title or "", *labels])
    y = np.arange(len(t))[::-1].astype(float)
    with matplotlib_rc(plan.rc()):
        ax = ax if ax is not None else new_axes(8.0, 1.4 + 0.8 * len(t))
        for name, text, colour, width, offset in INTERVALS:
            if t[f"{name}_low"].notna().any():
                ax.hlines(y + offset, t[f"{name}_low"], t[f"{name}_high"], color=colour, lw=width, label=text)
                ax.plot(t["gain"], y + offset, "o", color=colour, ms=4)
        xs = [x for draws in t["controls"] for x in draws]
        ys = [yy + CONTROL_ROW for draws, yy in zip(t["controls"], y) for _ in draws]
        if xs:
            ax.plot(xs, ys, "x", color="grey", ms=6, label="matched-control draws (each a test gain)")
        wrong = t["wrong"].notna().to_numpy()
        if wrong.any():
            yw = y[wrong] + CONTROL_ROW
            ax.hlines(yw, t.loc[wrong, "wrong_low"], t.loc[wrong, "wrong_high"], color="tab:red", lw=1.0)
            ax.plot(t.loc[wrong, "wrong"], yw, "D", color="tab:red", ms=5, label="wrong-language control (exact CI)")
            for yy, (g, v) in zip(yw, t.loc[wrong, ["wrong_language", "wrong"]].itertuples(index=False)):
                ax.annotate(plan.clean(str(g)), (v, yy), xytext=(4, -9), textcoords="offset points", fontsize=7)
        ax.axvline(0.0, color="grey", ls="--", lw=1)
        ax.set_yticks(y, [plan.clean(s) for s in labels])
        ax.set_ylim(-0.75, len(t) - 0.35)
        ax.set_xlabel("test Acc gain over the baseline (points)")
        ax.set_title(plan.clean(title or "Test gain of the setting chosen on dev facts, next to its controls"))
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)
        pin_fonts(ax, plan)
    return ax


def draw_halving_search(
    search: pd.DataFrame, ax: Any = None, *, baseline: float | None = None, title: str | None = None
) -> Any:
    """The successive-halving search on dev facts: every setting's dev Acc per rung, survivors joined by lines.

    Grey: settings dropped after the rung; blue: kept for the next rung; red star: the chosen
    setting (the best at the last rung), labelled.  ``baseline``: the baseline's dev Acc (a dashed line).
    """
    _require(search, ["rung", "setting", "n_dev", "dev_acc", "kept"], "search table")
    s = search.assign(setting=search["setting"].astype(str)).reset_index(drop=True)
    rungs = sorted(int(r) for r in s["rung"].unique())
    last = rungs[-1]
    # spread each rung's points over a band (best on the left), so equal accuracies do not hide each other
    rank = s.groupby("rung")["dev_acc"].rank(method="first", ascending=False) - 1
    size = s.groupby("rung")["setting"].transform("size")
    s["x"] = s["rung"] + np.where(size > 1, 0.3 * (rank / (size - 1).clip(lower=1) - 0.5), 0.0)
    chosen = s[(s["rung"] == last) & s["kept"].astype(bool)]
    name = str(chosen["setting"].iloc[0]) if len(chosen) else ""
    plan = font_plan([title or "", name])
    with matplotlib_rc(plan.rc()):
        ax = ax if ax is not None else new_axes(6.4, 4.0)
        for _, g in s.groupby("setting", sort=False):
            if len(g) > 1:
                g = g.sort_values("rung")
                ax.plot(g["x"], g["dev_acc"], "-", color="tab:blue", lw=0.7, alpha=0.5)
        dropped = ~s["kept"].astype(bool) & (s["rung"] != last)
        kept = s["kept"].astype(bool) & (s["rung"] != last)
        ax.plot(s.loc[dropped, "x"], s.loc[dropped, "dev_acc"], "o", color="lightgrey", ms=3.5, label="dropped")
        ax.plot(s.loc[kept, "x"], s.loc[kept, "dev_acc"], "o", color="tab:blue", ms=4, label="kept for the next rung")
        tail = s[(s["rung"] == last) & ~s["kept"].astype(bool)]
        ax.plot(tail["x"], tail["dev_acc"], "o", color="lightgrey", ms=3.5)
        if len(chosen):
            ax.plot(chosen["x"], chosen["dev_acc"], "*", color="tab:red", ms=13, label=f"chosen: {plan.clean(name)}")
            ax.annotate(
                plan.clean(name),
                (float(chosen["x"].iloc[0]), float(chosen["dev_acc"].iloc[0])),
                xytext=(8, 4),
                textcoords="offset points",
                fontsize=8,
            )
        if baseline is not None and np.isfinite(baseline):
            ax.axhline(baseline, color="black", ls="--", lw=1, label=f"baseline, all dev facts ({baseline:.1f}%)")
        info = s.groupby("rung").agg(n=("n_dev", "max"), k=("setting", "size"))
        ax.set_xticks(
            rungs, [f"rung {r}\n{int(info.at[r, 'n'])} facts\n{int(info.at[r, 'k'])} settings" for r in rungs]
        )
        ax.set_xlim(rungs[0] - 0.5, rungs[-1] + 0.5)
        ax.set_ylabel("dev Acc (%)")
        ax.set_title(plan.clean(title or "Successive halving on dev facts"))
        ax.legend(loc="best", frameon=False, fontsize=7)
        pin_fonts(ax, plan)
    return ax


def draw_real_size_trans(
    summary: pd.DataFrame, ax: Any = None, *, label: str = "language", title: str | None = None, source: str = "en"
) -> Any:
    """Trans before and after (the chosen setting) per row, with their bootstrap 95% CIs, an arrow between.

    Trans: the Jaccard (%) of the test facts answered right in the row's language and in ``source``.
    """
    src = language_name(source)
    s = estimate_columns(summary).reset_index(drop=True)
    cols = [f"trans_{c}{x}" for c in ("baseline", "chosen") for x in ("", "_low", "_high")]
    _require(s, [label, *cols], "summary")
    t = s.assign(label=s[label].astype(str), n_test=s["n_test"] if "n_test" in s.columns else np.nan)
    labels = _row_labels(t)
    plan = font_plan([title or "", *labels])
    y = np.arange(len(t))[::-1].astype(float)
    with matplotlib_rc(plan.rc()):
        ax = ax if ax is not None else new_axes(7.0, 1.2 + 0.6 * len(t))
        for cond, colour, offset, text in (
            ("baseline", "grey", 0.12, "before"),
            ("chosen", "tab:blue", -0.12, "after"),
        ):
            v, lo, hi = (t[f"trans_{cond}{x}"].astype(float) for x in ("", "_low", "_high"))
            ax.hlines(y + offset, lo, hi, color=colour, lw=1.5)
            ax.plot(v, y + offset, "o", color=colour, label=f"Trans {text} (95% CI)")
        for yy, b, a in zip(y, t["trans_baseline"].astype(float), t["trans_chosen"].astype(float)):
            if np.isfinite(b) and np.isfinite(a) and a != b:
                ax.annotate("", xy=(a, yy), xytext=(b, yy), arrowprops=dict(arrowstyle="->", color="tab:blue", lw=1))
        ax.set_yticks(y, [plan.clean(s) for s in labels])
        ax.set_ylim(-0.6, len(t) - 0.4)
        ax.set_xlabel(f"Trans (%): test facts answered right in both the language and {src} (Jaccard)")
        ax.set_title(plan.clean(title or f"Knowledge shared with {src}, before and after the chosen setting"))
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)
        pin_fonts(ax, plan)
    return ax
