"""Probing metrics and statistics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lrp2_interp.metrics import (
    Estimate,
    accuracy_ci,
    bootstrap_ci,
    estimate_columns,
    gain_ci,
    jaccard,
    overlap_rate,
    paired_test,
    summarize,
    transferability,
    transferability_ci,
)


def test_jaccard_and_overlap_rate_by_hand():
    assert jaccard({1, 2, 3}, {2, 3, 4}) == pytest.approx(2 / 4)
    assert jaccard([1, 1, 2], (2, 1)) == 1.0  # sets, not multisets
    assert math.isnan(jaccard(set(), set()))  # undefined, see test_empty_sets_are_undefined_not_perfect
    assert jaccard({1}, set()) == 0.0
    assert overlap_rate({1, 2, 3, 4}, {4, 5}) == pytest.approx(1 / 4)
    assert overlap_rate({4, 5}, {1, 2, 3, 4}) == pytest.approx(1 / 2)
    assert math.isnan(overlap_rate(set(), {1}))


def test_transferability_by_hand():
    assert transferability([1, 2, 3], [1, 2, 3]) == 100.0
    assert transferability([1, 2], [3, 4]) == 0.0
    assert transferability([1, 2, 3], [2, 3, 4, 5]) == pytest.approx(100 * 2 / 5)
    assert math.isnan(transferability([], []))  # undefined: nothing to compare


def _table() -> pd.DataFrame:
    rows = [
        ("en", "A", 1, 1),
        ("en", "A", 2, 2),
        ("en", "A", 3, 6),
        ("en", "B", 4, 1),
        ("en", "B", 5, 1),
        ("fr", "A", 1, 3),
    ]
    return pd.DataFrame(
        [{"language": l, "relation": r, "lineid": i, "rank": k, "correct": k == 1} for l, r, i, k in rows]
    )


def test_summarize_by_hand():
    s = summarize(_table())
    assert list(s.columns) == ["language", "relation", "n", "Acc", "P@5", "P@10", "MRR"]
    assert list(zip(s["language"], s["relation"])) == [
        ("en", "A"),
        ("en", "B"),
        ("en", "ALL"),
        ("fr", "A"),
        ("fr", "ALL"),
    ]
    s = s.set_index(["language", "relation"])
    expect = {
        ("en", "A"): (3, 100 / 3, 200 / 3, 100.0, (1 + 1 / 2 + 1 / 6) / 3),
        ("en", "B"): (2, 100.0, 100.0, 100.0, 1.0),
        ("en", "ALL"): (5, 60.0, 80.0, 100.0, (1 + 1 / 2 + 1 / 6 + 1 + 1) / 5),
        ("fr", "A"): (1, 0.0, 100.0, 100.0, 1 / 3),
        ("fr", "ALL"): (1, 0.0, 100.0, 100.0, 1 / 3),
    }
    for key, (n, acc, p5, p10, mrr) in expect.items():
        row = s.loc[key]
        assert row["n"] == n
        assert row[["Acc", "P@5", "P@10", "MRR"]].astype(float).tolist() == pytest.approx([acc, p5, p10, mrr])
    assert s["n"].dtype.kind == "i"


def test_summarize_custom_ks():
    s = summarize(_table(), ks=(1, 2)).set_index(["language", "relation"])
    assert s.loc[("en", "A"), "P@2"] == pytest.approx(200 / 3)
    assert "P@5" not in s.columns


def test_bootstrap_ci_by_hand():
    const = bootstrap_ci(np.full(10, 3.0), np.mean, n_boot=50)
    assert (const.value, const.low, const.high) == (3.0, 3.0, 3.0)
    data = np.arange(20, dtype=float)
    a = bootstrap_ci(data, np.mean, seed=1)
    b = bootstrap_ci(data, np.mean, seed=1)
    c = bootstrap_ci(data, np.mean, seed=2)
    assert a == b and (a.low, a.high) != (c.low, c.high)
    assert a.value == 9.5 and a.low < 9.5 < a.high
    assert a.n_boot == 1000 and a.level == 0.95
    narrow = bootstrap_ci(data, np.mean, seed=1, level=0.5)
    assert a.low <= narrow.low <= narrow.high <= a.high
    # the percentile interval of a mean of 20 values 0..19: about +-1.96 * sd / sqrt(n)
    half = 1.96 * data.std() / math.sqrt(len(data))
    assert a.high - a.low == pytest.approx(2 * half, rel=0.2)


def test_bootstrap_ci_empty():
    e = bootstrap_ci(np.array([]), lambda x: float(len(x)))
    assert e.value == 0.0 and math.isnan(e.low) and math.isnan(e.high)


def test_accuracy_gain_and_transferability_ci():
    acc = accuracy_ci([True, False, True, True], n_boot=200)
    assert acc.value == 75.0 and 0.0 <= acc.low <= 75.0 <= acc.high <= 100.0
    same = [True, False, True, False, True]
    g = gain_ci(same, same, n_boot=200)
    assert (g.value, g.low, g.high) == (0.0, 0.0, 0.0)
    all_gain = gain_ci([True] * 4, [False] * 4, n_boot=200)
    assert (all_gain.value, all_gain.low, all_gain.high) == (100.0, 100.0, 100.0)
    t = transferability_ci([True, True, False, False], [True, False, True, False], n_boot=200)
    assert t.value == pytest.approx(100 / 3)
    assert t.value == pytest.approx(transferability({0, 1}, {0, 2}))
    assert math.isnan(transferability_ci([False, False], [False, False], n_boot=10).value)


def test_estimate_str():
    assert str(Estimate(12.345, 10.0, 14.96)) == "12.3 [10.0, 15.0]"


def test_estimate_columns_are_numbers_next_to_each_other(tmp_path):
    from lrp2_interp.files import write_table

    table = pd.DataFrame(
        {
            "language": ["en", "fr"],
            "acc": [Estimate(12.345, 10.0, 14.96), Estimate(50.0, 40.5, 60.25)],
            "gain": [None, Estimate(-1.5, -3.0, 0.5)],  # the source language has no gain
            "p": [np.nan, 0.25],
            "oracle_m": [None, 2],
        }
    )
    out = estimate_columns(table)
    assert list(out.columns) == [
        "language",
        "acc",
        "acc_low",
        "acc_high",
        "gain",
        "gain_low",
        "gain_high",
        "p",
        "oracle_m",
    ]
    assert out["acc"].tolist() == [12.345, 50.0] and out["acc_high"].tolist() == [14.96, 60.25]
    assert math.isnan(out.loc[0, "gain"]) and out.loc[1, "gain_low"] == -3.0
    assert out["p"].equals(table["p"]) and out["language"].equals(table["language"])
    back = pd.read_csv(write_table(tmp_path / "summary.csv", out))
    assert back["acc_low"].tolist() == [10.0, 40.5] and back["gain"].tolist()[1] == -1.5
    assert back["oracle_m"].tolist()[1] == 2


@pytest.mark.parametrize(
    "after, before, gained, lost, p",
    [
        ([1, 1, 1, 1, 1], [0, 0, 0, 0, 0], 5, 0, 2 / 32),
        ([1, 1, 1, 1, 1, 1, 0], [0, 0, 0, 0, 0, 0, 1], 6, 1, 2 * (1 + 7) / 128),
        ([1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1], 3, 3, 1.0),
        ([1, 0, 1, 0], [1, 0, 1, 0], 0, 0, 1.0),
        ([1] * 10 + [1] * 3, [0] * 10 + [1] * 3, 10, 0, 2 / 1024),
    ],
)
def test_paired_test_by_hand(after, before, gained, lost, p):
    res = paired_test([bool(x) for x in after], [bool(x) for x in before])
    assert (res["gained"], res["lost"]) == (gained, lost)
    assert res["p_value"] == pytest.approx(p)


# ------------------------------------------------------------------ issue 11: one NaN convention
def test_empty_sets_are_undefined_not_perfect():
    """Jaccard/Trans of two empty sets is NaN everywhere (was 1.0 / 100% here and NaN in overlap tables)."""
    from lrp2_interp.metrics import jaccard_counts, rate_counts
    from lrp2_interp.neurons.overlap import overlap_table
    from lrp2_interp.neurons.sets import NeuronSet

    assert math.isnan(jaccard(set(), set())) and math.isnan(transferability(set(), set()))
    assert math.isnan(overlap_rate(set(), {1}))
    np.testing.assert_array_equal(jaccard_counts([0, 1, 2], [0, 1, 3], [0, 2, 2]), [np.nan, 0.5, 2 / 3])
    np.testing.assert_array_equal(rate_counts([0, 1], [0, 4]), [np.nan, 0.25])
    empty = NeuronSet(frozenset())
    table = overlap_table({("en", "baseline", "u"): empty, ("fr", "baseline", "u"): empty}).table
    assert math.isnan(table["jaccard"].iloc[0])  # the same convention as metrics.jaccard


def test_trans_ci_excludes_and_counts_undefined_resamples():
    """One shared correct fact among many wrong ones: resamples without it are undefined, not 100%."""
    correct_l = [True] + [False] * 9
    correct_en = [True] + [False] * 9
    est = transferability_ci(correct_l, correct_en, n_boot=400, seed=0)
    assert est.value == 100.0
    assert est.n_undefined > 0  # about (9/10)^10 = 35% of the resamples miss the one correct fact
    assert (est.low, est.high) == (100.0, 100.0)  # before: 0.0 [0.0, 100.0] would have mixed them in
    assert "resamples undefined" in str(est)
    none = transferability_ci([False] * 3, [False] * 3, n_boot=50)
    assert math.isnan(none.value) and math.isnan(none.low) and none.n_undefined == 50


def test_bootstrap_rejects_zero_resamples():
    from lrp2_interp.errors import InputError

    with pytest.raises(InputError, match="n_boot"):
        bootstrap_ci(np.ones(3), np.mean, n_boot=0)
