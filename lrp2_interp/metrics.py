"""Probing metrics, transferability and their statistics.

* ``summarize``: per language and relation -- n facts, Acc (P@1, %), P@k, MRR.
* ``transferability``: Trans_l = Jaccard(correct_l, correct_en) over parallel facts.
* ``bootstrap_ci``: percentile bootstrap over facts (seeded) for any statistic.
* ``paired_test``: exact-conditional McNemar test (two-sided binomial on the
  discordant pairs) for LRP2 vs baseline on the same facts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd


def jaccard(a: Iterable, b: Iterable) -> float:
    """|A n B| / |A u B|; 1.0 for two empty sets (they agree perfectly)."""
    a, b = set(a), set(b)
    union = a | b
    return 1.0 if not union else len(a & b) / len(union)


def overlap_rate(a: Iterable, b: Iterable) -> float:
    """|A n B| / |A|: share of A also in B (0.0 when A is empty)."""
    a, b = set(a), set(b)
    return len(a & b) / len(a) if a else 0.0


def transferability(correct_l: Iterable[int], correct_en: Iterable[int]) -> float:
    """Trans_l in percent: Jaccard of the sets of correctly answered fact ids."""
    return 100.0 * jaccard(correct_l, correct_en)


def summarize(table: pd.DataFrame, ks: Sequence[int] = (1, 5, 10)) -> pd.DataFrame:
    """Per (language, relation) and an ``ALL`` row per language: n, P@k (%), MRR."""

    def agg(g: pd.DataFrame) -> pd.Series:
        out = {"n": len(g)}
        for k in ks:
            out[f"P@{k}"] = 100.0 * float((g["rank"] <= k).mean()) if k > 1 else 100.0 * float(g["correct"].mean())
        out["MRR"] = float((1.0 / g["rank"]).mean())
        return pd.Series(out)

    parts = []
    for lang, g in table.groupby("language", sort=True):
        per_rel = g.groupby("relation", sort=True).apply(agg, include_groups=False).reset_index()
        per_rel.insert(0, "language", lang)
        total = agg(g).to_frame().T
        total.insert(0, "relation", "ALL")
        total.insert(0, "language", lang)
        parts += [per_rel, total]
    out = pd.concat(parts, ignore_index=True)
    out["n"] = out["n"].astype(int)
    return out.rename(columns={"P@1": "Acc"})


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a percentile bootstrap confidence interval."""

    value: float
    low: float
    high: float
    level: float = 0.95
    n_boot: int = 1000

    def __str__(self) -> str:
        return f"{self.value:.1f} [{self.low:.1f}, {self.high:.1f}]"


def bootstrap_ci(samples: Sequence | np.ndarray, statistic: Callable[[np.ndarray], float], *,
                 n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> Estimate:
    """Bootstrap ``statistic`` over the rows of ``samples`` (resampled with replacement)."""
    data = np.asarray(samples)
    value = float(statistic(data))
    if len(data) == 0:
        return Estimate(value, float("nan"), float("nan"), level, n_boot)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(data), size=(n_boot, len(data)))
    stats = np.array([statistic(data[i]) for i in idx])
    alpha = (1.0 - level) / 2
    return Estimate(value, float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha)), level, n_boot)


def accuracy_ci(correct: Sequence[bool], **kw) -> Estimate:
    """Acc (%) with a bootstrap CI over facts."""
    return bootstrap_ci(np.asarray(correct, dtype=float), lambda x: 100.0 * x.mean(), **kw)


def gain_ci(correct_after: Sequence[bool], correct_before: Sequence[bool], **kw) -> Estimate:
    """Paired accuracy gain (points) after - before, bootstrapped over the same facts."""
    pairs = np.stack([np.asarray(correct_after, float), np.asarray(correct_before, float)], axis=1)
    return bootstrap_ci(pairs, lambda x: 100.0 * (x[:, 0].mean() - x[:, 1].mean()), **kw)


def transferability_ci(correct_l: Sequence[bool], correct_en: Sequence[bool], **kw) -> Estimate:
    """Trans_l (%) with a bootstrap CI; inputs are aligned per parallel fact."""
    pairs = np.stack([np.asarray(correct_l, bool), np.asarray(correct_en, bool)], axis=1)

    def trans(x: np.ndarray) -> float:
        union = (x[:, 0] | x[:, 1]).sum()
        return 100.0 if union == 0 else 100.0 * (x[:, 0] & x[:, 1]).sum() / union

    return bootstrap_ci(pairs, trans, **kw)


def paired_test(correct_after: Sequence[bool], correct_before: Sequence[bool]) -> dict[str, float]:
    """Exact McNemar test: counts of discordant pairs and the two-sided p-value."""
    a = np.asarray(correct_after, bool)
    b = np.asarray(correct_before, bool)
    gained, lost = int((a & ~b).sum()), int((~a & b).sum())
    n = gained + lost
    if n == 0:
        return {"gained": 0, "lost": 0, "p_value": 1.0}
    k = min(gained, lost)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return {"gained": gained, "lost": lost, "p_value": min(1.0, 2 * tail)}
