"""Probing metrics, transferability and their statistics.

* ``summarize``: per language and relation -- n facts, Acc (P@1, %), P@k, MRR.
* ``transferability``: Trans_l = Jaccard(correct_l, correct_en) over parallel facts.
* ``jaccard`` / ``jaccard_counts`` / ``overlap_rate``: the one definition of these ratios
  in the package (overlap tables, Trans, bootstrap CIs all use it).

Convention for undefined ratios: the Jaccard index of two empty sets and the
overlap rate of an empty set are NaN (not 1.0, not 0.0).  Means and bootstrap
CIs exclude NaN values and count them (``Estimate.n_undefined``,
``n_undefined`` columns), so "nothing to compare" never reads as "perfect agreement".
* ``bootstrap_ci``: percentile bootstrap over facts (seeded) for any statistic.
* ``estimate_columns``: a table's :class:`Estimate` cells as numeric ``X``, ``X_low``,
  ``X_high`` columns (what the summary CSVs hold; the markdown keeps ``12.3 [10.1, 14.5]``).
* ``paired_test``: exact-conditional McNemar test (two-sided binomial on the
  discordant pairs) for LRP2 vs baseline on the same facts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lrp2_interp.errors import InputError


def jaccard_counts(shared, n_a, n_b) -> np.ndarray:
    """Vectorised Jaccard from counts: shared / (n_a + n_b - shared); NaN where the union is empty."""
    shared, n_a, n_b = (np.asarray(x, dtype=float) for x in (shared, n_a, n_b))
    union = n_a + n_b - shared
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, shared / np.where(union > 0, union, 1.0), np.nan)


def rate_counts(shared, n_a) -> np.ndarray:
    """Vectorised overlap rate from counts: shared / n_a; NaN where ``n_a`` is 0."""
    shared, n_a = np.asarray(shared, dtype=float), np.asarray(n_a, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_a > 0, shared / np.where(n_a > 0, n_a, 1.0), np.nan)


def nanmean0(x: np.ndarray) -> np.ndarray:
    """Mean over axis 0 ignoring NaN; NaN (without a warning) where every value is NaN."""
    ok = ~np.isnan(x)
    n = ok.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.where(ok, x, 0.0).sum(0) / n, np.nan)


def jaccard(a: Iterable, b: Iterable) -> float:
    """|A n B| / |A u B|; NaN for two empty sets (undefined: nothing to compare)."""
    a, b = set(a), set(b)
    return float(jaccard_counts(len(a & b), len(a), len(b)))


def overlap_rate(a: Iterable, b: Iterable) -> float:
    """|A n B| / |A|: share of A also in B (NaN when A is empty)."""
    a, b = set(a), set(b)
    return float(rate_counts(len(a & b), len(a)))


def transferability(correct_l: Iterable[int], correct_en: Iterable[int]) -> float:
    """Trans_l in percent: Jaccard of the sets of correctly answered fact ids (NaN if both are empty)."""
    return 100.0 * jaccard(correct_l, correct_en)


def summarize(table: pd.DataFrame, ks: Sequence[int] = (1, 5, 10)) -> pd.DataFrame:
    """Per (language, relation) and an ``ALL`` row per language: n, P@k (%), MRR."""

    def agg(g: pd.DataFrame) -> pd.Series:
        out: dict[str, float] = {"n": len(g)}
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
    """A point estimate with a percentile bootstrap confidence interval.

    ``n_undefined``: resamples whose statistic was NaN (e.g. Trans of two empty
    sets); they are left out of the interval and counted here.
    """

    value: float
    low: float
    high: float
    level: float = 0.95
    n_boot: int = 1000
    n_undefined: int = 0

    def __str__(self) -> str:
        text = f"{self.value:.1f} [{self.low:.1f}, {self.high:.1f}]"
        return text + (f" ({self.n_undefined}/{self.n_boot} resamples undefined)" if self.n_undefined else "")


def estimate_columns(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with every column of :class:`Estimate` cells as three float columns ``X``, ``X_low``, ``X_high``.

    A column is expanded when each of its non-missing cells is an Estimate (missing
    cells give NaN in all three); other columns are left as they are, in place.
    """
    out = {}
    for name in table.columns:
        col = table[name]
        present = col[col.notna()]
        if len(present) and all(isinstance(v, Estimate) for v in present):
            for suffix, part in (("", "value"), ("_low", "low"), ("_high", "high")):
                values = [getattr(v, part) if isinstance(v, Estimate) else np.nan for v in col]
                out[f"{name}{suffix}"] = pd.Series(values, index=table.index, dtype=float)
        else:
            out[name] = col
    return pd.DataFrame(out, index=table.index)


def bootstrap_ci(
    samples: Sequence | np.ndarray,
    statistic: Callable[[np.ndarray], float],
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Bootstrap ``statistic`` over the rows of ``samples`` (resampled with replacement).

    Resamples where ``statistic`` is NaN (undefined) are excluded from the
    interval and counted in ``Estimate.n_undefined``.
    """
    if int(n_boot) < 1:
        raise InputError(f"n_boot must be at least 1, got {n_boot}", field="n_boot")
    if not 0.0 < float(level) < 1.0:
        raise InputError(f"level must be in (0, 1), got {level}", field="level")
    data = np.asarray(samples)
    value = float(statistic(data))
    if len(data) == 0:
        return Estimate(value, float("nan"), float("nan"), level, n_boot, n_boot)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(data), size=(n_boot, len(data)))
    stats = np.array([statistic(data[i]) for i in idx], dtype=float)
    ok = stats[~np.isnan(stats)]
    n_undefined = int(len(stats) - len(ok))
    if not len(ok):
        return Estimate(value, float("nan"), float("nan"), level, n_boot, n_undefined)
    alpha = (1.0 - level) / 2
    return Estimate(value, float(np.quantile(ok, alpha)), float(np.quantile(ok, 1 - alpha)), level, n_boot, n_undefined)


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

    def trans(x: np.ndarray) -> float:  # NaN when neither language answers any resampled fact
        return 100.0 * float(jaccard_counts((x[:, 0] & x[:, 1]).sum(), x[:, 0].sum(), x[:, 1].sum()))

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
