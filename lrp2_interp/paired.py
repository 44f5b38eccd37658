"""Paired comparisons of two conditions on the same facts, with uncertainty that respects relations.

Facts of one relation share a template, so they are not independent.  For a gain
``after - before`` (in points) on the same facts this module gives:

* :func:`exact_gain_ci` -- the interval that agrees with the exact McNemar test by construction:
  the Clopper-Pearson interval of ``p = gained / (gained + lost)`` (the exact test's parameter)
  mapped to the gain ``(gained + lost) / n * (2p - 1)``.  The two-sided exact test rejects
  ``gain = 0`` at level ``1 - level`` exactly when this interval excludes 0, so the two never
  disagree; it governs the summaries (conditional on the number of discordant facts);
* :func:`cluster_bootstrap_ci` -- a two-stage bootstrap: relations resampled with replacement,
  then facts within each drawn relation (shown next to the per-fact bootstrap of
  :mod:`lrp2_interp.metrics`);
* :func:`relation_signflip_test` -- a relation-stratified permutation test: under "no effect"
  the per-relation sums of the paired differences are symmetric about 0, so their signs are
  flipped at random (all ``2^k`` patterns when few relations differ, else ``n_perm`` draws).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np

from lrp2_interp.errors import InputError
from lrp2_interp.metrics import Estimate, paired_test

MAX_RESAMPLES = 1_000_000  # n_boot / n_perm above this would allocate gigabytes


def _pair(after: Sequence[bool], before: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(after, bool), np.asarray(before, bool)
    if a.shape != b.shape or a.ndim != 1:
        raise InputError(f"paired conditions need equal 1-D shapes, got {a.shape} and {b.shape}", field="facts")
    return a, b


def _check_count(n: int, name: str) -> int:
    if not 1 <= int(n) <= MAX_RESAMPLES:
        raise InputError(f"{name} must be between 1 and {MAX_RESAMPLES:,}, got {n}", field=name)
    return int(n)


def _upper_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed in log space (no overflow for large n)."""
    if p <= 0.0:
        return 1.0 if k <= 0 else 0.0
    if p >= 1.0:
        return 1.0
    lp, lq, lg = math.log(p), math.log1p(-p), math.lgamma(n + 1)
    return float(
        sum(math.exp(lg - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp + (n - i) * lq) for i in range(k, n + 1))
    )


def _solve(f: Callable[[float], float], target: float) -> float:
    """The p in [0, 1] where the increasing function ``f`` crosses ``target`` (bisection to 1e-12)."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if f(mid) < target else (lo, mid)
    return (lo + hi) / 2


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval of a binomial proportion, ``k`` successes of ``n``."""
    alpha = 1.0 - level
    lo = 0.0 if k == 0 else _solve(lambda p: _upper_tail(k, n, p), alpha / 2)
    hi = 1.0 if k == n else _solve(lambda p: _upper_tail(k + 1, n, p), 1 - alpha / 2)
    return lo, hi


def exact_gain_ci(after: Sequence[bool], before: Sequence[bool], level: float = 0.95) -> Estimate:
    """Gain (points) with the exact conditional interval that agrees with the exact McNemar test."""
    a, b = _pair(after, before)
    n = len(a)
    gained, lost = int((a & ~b).sum()), int((~a & b).sum())
    d = gained + lost
    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), level, 0)
    value = 100.0 * (gained - lost) / n
    if d == 0:
        return Estimate(0.0, 0.0, 0.0, level, 0)
    lo, hi = clopper_pearson(gained, d, level)
    scale = 100.0 * d / n
    return Estimate(value, scale * (2 * lo - 1), scale * (2 * hi - 1), level, 0)


def cluster_bootstrap_ci(
    samples: np.ndarray,
    clusters: Sequence,
    statistic: Callable[[np.ndarray], float],
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Two-stage bootstrap of ``statistic`` over rows of ``samples``: clusters, then rows within each."""
    n_boot = _check_count(n_boot, "n_boot")
    data = np.asarray(samples)
    labels = np.asarray(clusters)
    if len(labels) != len(data):
        raise InputError(f"{len(labels)} cluster labels for {len(data)} samples", field="clusters")
    value = float(statistic(data)) if len(data) else float("nan")
    groups = [np.flatnonzero(labels == c) for c in np.unique(labels)] if len(data) else []
    if not groups:
        return Estimate(value, float("nan"), float("nan"), level, n_boot, n_boot)
    rng = np.random.default_rng(seed)
    stats = np.empty(n_boot)
    for i in range(n_boot):
        drawn = rng.integers(0, len(groups), size=len(groups))
        idx = np.concatenate([rng.choice(groups[g], size=len(groups[g])) for g in drawn])
        stats[i] = statistic(data[idx])
    ok = stats[~np.isnan(stats)]
    if not len(ok):
        return Estimate(value, float("nan"), float("nan"), level, n_boot, n_boot)
    alpha = (1.0 - level) / 2
    return Estimate(
        value, float(np.quantile(ok, alpha)), float(np.quantile(ok, 1 - alpha)), level, n_boot, n_boot - len(ok)
    )


def cluster_gain_ci(after: Sequence[bool], before: Sequence[bool], clusters: Sequence, **kw) -> Estimate:
    """Paired gain (points) with the relation-clustered bootstrap interval."""
    a, b = _pair(after, before)
    pairs = np.stack([a, b], axis=1).astype(float)
    return cluster_bootstrap_ci(pairs, clusters, lambda x: 100.0 * (x[:, 0].mean() - x[:, 1].mean()), **kw)


def relation_signflip_test(
    after: Sequence[bool], before: Sequence[bool], clusters: Sequence, *, n_perm: int = 10_000, seed: int = 0
) -> float:
    """Two-sided p of the relation-stratified sign-flip test of ``sum(after - before) = 0``."""
    a, b = _pair(after, before)
    return signflip_test(a.astype(int) - b.astype(int), clusters, n_perm=n_perm, seed=seed)


def signflip_test(diff: Sequence[float], clusters: Sequence, *, n_perm: int = 10_000, seed: int = 0) -> float:
    """Two-sided p of the cluster sign-flip test of ``sum(diff) = 0`` (paired differences, any numbers).

    Under the null each cluster's summed difference is symmetric about 0, so its sign is flipped
    at random (all ``2^k`` patterns for k <= 16 non-zero clusters, else ``n_perm`` draws).
    """
    n_perm = _check_count(n_perm, "n_perm")
    d = np.asarray(diff, dtype=float)
    labels = np.asarray(clusters)
    if len(labels) != len(d):
        raise InputError(f"{len(labels)} cluster labels for {len(d)} differences", field="clusters")
    sums = np.array([d[labels == c].sum() for c in np.unique(labels)], dtype=float)
    sums = sums[sums != 0]
    if not len(sums):
        return 1.0
    observed = abs(sums.sum())
    tol = 1e-9 * max(1.0, float(np.abs(sums).sum()))
    if len(sums) <= 16:  # every sign pattern
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=len(sums))))
        return float(np.mean(np.abs(signs @ sums) >= observed - tol))
    rng = np.random.default_rng(seed)
    signs = rng.choice((1.0, -1.0), size=(n_perm, len(sums)))
    hits = int(np.sum(np.abs(signs @ sums) >= observed - tol))
    return (hits + 1) / (n_perm + 1)


def mcnemar_p(after: Sequence[bool], before: Sequence[bool]) -> float:
    """The exact McNemar p-value (the test :func:`exact_gain_ci` agrees with)."""
    a, b = _pair(after, before)
    return float(paired_test(a.tolist(), b.tolist())["p_value"])
