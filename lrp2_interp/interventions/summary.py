"""The held-out answer as numbers: test gain with its intervals and tests, the controls, Trans.

One row per :class:`~lrp2_interp.interventions.selection.SelectionResult`:

* baseline and chosen test Acc; the **test gain** with the exact interval that agrees with the
  exact McNemar test (it governs: ``gain_low``/``gain_high``), the per-fact bootstrap interval and
  the relation-clustered bootstrap interval; McNemar p and the relation sign-flip p;
* the **matched controls**: mean gain over the draws and its range (min, max), and each draw;
* every **extra control** (e.g. the wrong-language one): its gain with the exact interval;
* **Trans** (Jaccard of the facts l and the source answer correctly, %) before and after, over the
  same candidate entities, with per-fact bootstrap CIs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lrp2_interp.interventions.selection import BASELINE, CHOSEN, SOURCE, SelectionResult
from lrp2_interp.metrics import Estimate, accuracy_ci, gain_ci, transferability_ci
from lrp2_interp.paired import cluster_gain_ci, exact_gain_ci, mcnemar_p, relation_signflip_test


def summary_row(result: SelectionResult, *, n_boot: int = 1000, seed: int = 0) -> dict:
    """One summary row (:class:`~lrp2_interp.metrics.Estimate` cells for estimates)."""
    kw = dict(n_boot=n_boot, seed=seed)
    base = result.correct(BASELINE)
    after = result.correct(CHOSEN).reindex(base.index)
    rel = base.index.get_level_values("relation").to_numpy()
    b, a = base.to_numpy(), after.to_numpy()
    src = result.correct(SOURCE, result.source).reindex(base.index).to_numpy()
    t = result.facts_table
    test = t[(t["split"] == "test") & (t["language"] == result.language) & (t["condition"] == BASELINE)]
    row: dict = {
        "language": result.language,
        "method": result.method,
        "chosen": result.chosen_label,
        "n_dev": result.work["n_dev"],
        "n_test": len(b),
        "n_relations": len(set(rel)),
        "min_candidates": int(test["n_candidates"].min()),
        "acc_baseline": accuracy_ci(b, **kw),
        "acc_chosen": accuracy_ci(a, **kw),
        "gain": exact_gain_ci(a, b),
        "gain_fact_ci": gain_ci(a, b, **kw),
        "gain_relation_ci": cluster_gain_ci(a, b, rel, **kw),
        "p_mcnemar": mcnemar_p(a, b),
        "p_relation": relation_signflip_test(a, b, rel, seed=seed),
    }
    controls = [c for c in result.conditions() if c.startswith("matched control ")]
    gains = [exact_gain_ci(result.correct(c).reindex(base.index).to_numpy(), b).value for c in controls]
    if gains:
        row["control_gain_mean"] = float(np.mean(gains))
        row["control_gain_min"] = float(np.min(gains))
        row["control_gain_max"] = float(np.max(gains))
        row["control_gains"] = " ".join(f"{g:+.1f}" for g in gains)
    for c in result.conditions():
        if c in (BASELINE, CHOSEN) or c in controls:
            continue
        row[c] = exact_gain_ci(result.correct(c).reindex(base.index).to_numpy(), b)
    row["trans_baseline"] = transferability_ci(b, src, **kw)
    row["trans_chosen"] = transferability_ci(a, src, **kw)
    row["acc_source"] = accuracy_ci(src, **kw)
    return row


def headline(summary: pd.DataFrame) -> pd.DataFrame:
    """The short table: language, baseline, chosen, test gain [exact CI], p, controls, Trans."""
    out = pd.DataFrame(
        {
            "language": summary["language"],
            "n test": summary["n_test"],
            "baseline Acc": summary["acc_baseline"].map(lambda e: f"{e.value:.1f}"),
            "chosen": summary["chosen"],
            "test gain [95% exact CI]": summary["gain"].map(str),
            "relation-clustered CI": summary["gain_relation_ci"].map(lambda e: f"[{e.low:.1f}, {e.high:.1f}]"),
            "p (McNemar)": summary["p_mcnemar"].map(lambda p: f"{p:.3g}"),
            "p (relations)": summary["p_relation"].map(lambda p: f"{p:.3g}"),
        }
    )
    if "control_gain_mean" in summary:
        out["matched control: mean [min, max]"] = [
            f"{m:+.1f} [{lo:+.1f}, {hi:+.1f}]"
            for m, lo, hi in zip(summary["control_gain_mean"], summary["control_gain_min"], summary["control_gain_max"])
        ]
    wrong = [c for c in summary.columns if c.startswith("wrong language")]
    if wrong:
        out["wrong-language control"] = [
            next((f"{r[c].value:+.1f} ({c[16:-1]})" for c in wrong if isinstance(r[c], Estimate)), "")
            for _, r in summary.iterrows()
        ]
    out["Trans before -> after"] = [
        f"{b.value:.1f} -> {a.value:.1f}" for b, a in zip(summary["trans_baseline"], summary["trans_chosen"])
    ]
    return out


def markdown_table(table: pd.DataFrame) -> str:
    """A plain Markdown table of ``table`` (cells as text; floats with 3 significant digits)."""
    cells = table.astype(object).where(table.notna(), "")
    lines = ["| " + " | ".join(map(str, cells.columns)) + " |", "|" + "---|" * len(cells.columns)]
    for _, r in cells.iterrows():
        lines.append("| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in r.values) + " |")
    return "\n".join(lines) + "\n"
