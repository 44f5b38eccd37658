"""Paired statistics: the exact interval agrees with McNemar, clustered intervals are wider, sign-flip p."""

from __future__ import annotations

import numpy as np
import pytest

from lrp2_interp.errors import InputError
from lrp2_interp.metrics import gain_ci
from lrp2_interp.paired import (
    clopper_pearson,
    cluster_gain_ci,
    exact_gain_ci,
    mcnemar_p,
    relation_signflip_test,
    signflip_test,
)


def test_clopper_pearson_hand_checked():
    lo, hi = clopper_pearson(3, 10)
    assert lo == pytest.approx(0.0667395, abs=1e-6) and hi == pytest.approx(0.6524529, abs=1e-6)
    assert clopper_pearson(0, 5)[0] == 0.0 and clopper_pearson(5, 5)[1] == 1.0


def test_the_case_that_disagreed_before_now_agrees():
    """27 facts, 4 gained, 0 lost: percentile bootstrap excluded 0, exact McNemar p = 0.125."""
    after = np.array([1] * 4 + [0] * 23, bool)
    before = np.zeros(27, bool)
    assert mcnemar_p(after, before) == pytest.approx(0.125)
    boot = gain_ci(after, before, n_boot=2000)
    assert boot.low > 0  # the old per-fact bootstrap excludes 0 ...
    exact = exact_gain_ci(after, before)
    assert exact.low < 0 < exact.high  # ... the exact interval does not, like the test


def test_exact_interval_excludes_zero_iff_mcnemar_rejects():
    rng = np.random.default_rng(0)
    for _ in range(400):
        n = int(rng.integers(5, 120))
        a, b = rng.random(n) < rng.random(), rng.random(n) < rng.random()
        e, p = exact_gain_ci(a, b), mcnemar_p(a, b)
        assert (e.low > 0 or e.high < 0) == (p < 0.05)


def test_cluster_interval_is_wider_when_relations_move_together():
    rel = np.repeat(np.arange(6), 20)
    effect = np.isin(rel, [0, 1])  # the whole gain sits in two relations
    after, before = effect.copy(), np.zeros(120, bool)
    fact_ci = gain_ci(after, before, n_boot=500)
    cl = cluster_gain_ci(after, before, rel, n_boot=500)
    assert cl.value == pytest.approx(fact_ci.value)
    assert cl.high - cl.low > 2 * (fact_ci.high - fact_ci.low)


def test_relation_signflip_exact_small_case():
    rel = np.array([0, 0, 1, 1, 2])
    after = np.array([1, 1, 1, 0, 1], bool)
    before = np.array([0, 0, 0, 0, 0], bool)
    # relation sums 2, 1, 1: |sum| = 4 reached only by all-positive / all-negative: 2 of 8
    assert relation_signflip_test(after, before, rel) == pytest.approx(0.25)
    assert relation_signflip_test(before, before, rel) == 1.0


def test_signflip_on_continuous_differences():
    """Jaccard gains are not booleans: cluster sums 0.4, 0.3, 0.05 reach |0.75| only with all signs equal."""
    diff = np.array([0.5, -0.1, 0.3, 0.05])
    rel = np.array(["a", "a", "b", "c"])
    assert signflip_test(diff, rel) == pytest.approx(0.25)
    assert signflip_test(np.array([0.4, -0.1, 0.3]), np.array(["a", "b", "c"])) == pytest.approx(0.5)  # 0.6: 4 of 8
    assert signflip_test(np.zeros(3), np.array(["a", "b", "c"])) == 1.0


def test_resample_counts_are_bounded():
    with pytest.raises(InputError, match="n_boot"):
        cluster_gain_ci([True], [False], [0], n_boot=50_000_000)
