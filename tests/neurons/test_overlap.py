"""Overlap of English and language-l neuron sets, and the permutation control."""

from __future__ import annotations

import numpy as np
import pytest

from lrp2_interp.errors import InputError
from lrp2_interp.metrics import jaccard, overlap_rate
from lrp2_interp.neurons.control import ControlResult, null_intersections, permutation_control, unit_baseline_summary
from lrp2_interp.neurons.overlap import (
    OverlapResult,
    OverlapSummary,
    different_unit_overlap,
    overlap_by_layer,
    overlap_gain,
    overlap_table,
    pair_sets,
    summarize_overlap,
)
from lrp2_interp.neurons.sets import NeuronSet

A = NeuronSet(frozenset({(0, 1), (0, 2), (1, 3), (1, 4)}))


def _row(df, **kw):
    sel = np.logical_and.reduce([df[k] == v for k, v in kw.items()])
    assert sel.sum() == 1, kw
    return df[sel].iloc[0]


def test_self_disjoint_and_two_of_four():
    half = NeuronSet(frozenset({(0, 1), (1, 3), (2, 0), (2, 1)}))  # shares 2 of A's 4
    disjoint = NeuronSet(frozenset({(2, 5), (3, 6)}))
    sets = {
        ("en", "baseline", "u"): A,
        ("fr", "baseline", "u"): A,
        ("de", "baseline", "u"): disjoint,
        ("nl", "baseline", "u"): half,
    }
    result = overlap_table(sets)
    assert isinstance(result, OverlapResult)
    assert result.source == "en" and result.languages == ("fr", "de", "nl") and result.n_layers is None
    df = result.table
    fr, de, nl = (_row(df, language=lang) for lang in ("fr", "de", "nl"))
    assert fr["jaccard"] == 1.0 and fr["overlap_rate"] == 1.0 and fr["n_shared"] == 4
    assert de["jaccard"] == 0.0 and de["overlap_rate"] == 0.0
    assert nl["n_shared"] == 2 and nl["overlap_rate"] == 0.5 and nl["jaccard"] == pytest.approx(2 / 6)
    assert nl["jaccard"] == pytest.approx(jaccard(half.sites, A.sites))
    assert nl["overlap_rate"] == pytest.approx(overlap_rate(half.sites, A.sites))


def test_by_layer_counts_and_undefined_layers_are_nan():
    half = NeuronSet(frozenset({(0, 1), (1, 3), (2, 0), (2, 1)}))
    result = overlap_by_layer({("en", "c", "u"): A, ("nl", "c", "u"): half}, 4)
    assert result.n_layers == 4 and result.languages == ("nl",)
    df = result.table
    assert list(df["layer"]) == [0, 1, 2, 3]
    assert list(df["n_shared"]) == [1, 1, 0, 0] and list(df["n_target"]) == [1, 1, 2, 0]
    assert df["jaccard"].tolist()[:3] == [0.5, 0.5, 0.0]
    assert np.isnan(df["jaccard"].iloc[3]) and np.isnan(df["overlap_rate"].iloc[3])
    assert df["n_shared"].sum() == overlap_table({("en", "c", "u"): A, ("nl", "c", "u"): half}).table["n_shared"][0]


def test_pairing_uses_single_english_condition_and_reports_missing():
    sets = {("en", "baseline", "u"): A, ("fr", "baseline", "u"): A, ("fr", "lrp2", "u"): A}
    assert [k for k, _, _ in pair_sets(sets)] == [("fr", "baseline", "u"), ("fr", "lrp2", "u")]
    two = {("en", "baseline", "u"): A, ("en", "x", "u"): A, ("fr", "lrp2", "u"): A}
    with pytest.raises(InputError, match="no en neuron set"):
        pair_sets(two)
    with pytest.raises(InputError, match="other than"):
        pair_sets({("en", "baseline", "u"): A})


def test_gain_and_summary():
    half = NeuronSet(frozenset({(0, 1), (1, 3), (2, 0), (2, 1)}))
    sets = {("en", "baseline", ("P36", 1)): A, ("fr", "baseline", ("P36", 1)): half, ("fr", "lrp2", ("P36", 1)): A}
    result = overlap_table(sets)
    table = result.table
    assert set(table["unit"]) == {"P36:1"}
    gain = overlap_gain(table, value="overlap_rate")
    assert gain["gain"].tolist() == [0.5] and gain["baseline"].tolist() == [0.5]
    summary = summarize_overlap(result, "jaccard", n_boot=50)
    assert isinstance(summary, OverlapSummary) and summary.values == ("jaccard",) and summary.n_boot == 50
    summ = summary.table
    assert set(summ["condition"]) == {"baseline", "lrp2"}
    assert _row(summ, condition="lrp2")["mean"] == 1.0
    assert summary.mean("jaccard") == {"baseline": pytest.approx(2 / 6), "lrp2": 1.0}
    both = summarize_overlap(result, ("jaccard", "overlap_rate"), n_boot=50)
    assert list(both.table["value"]) == ["jaccard", "jaccard", "overlap_rate", "overlap_rate"]
    assert both.mean("overlap_rate") == {"baseline": 0.5, "lrp2": 1.0}
    by_layer_gain = overlap_gain(overlap_by_layer(sets, 3).table)
    assert len(by_layer_gain) == 3
    with pytest.raises(InputError, match="conditions"):
        overlap_gain(table, treated="nope")


def test_null_matches_hypergeometric_mean_and_sets_sampler():
    n_a, n_b, d = np.array([10, 0, 30, 64]), np.array([20, 5, 30, 8]), 64
    expected = n_a * n_b / d
    hyper = null_intersections(n_a, n_b, d, 4000, seed=0)
    sets = null_intersections(n_a, n_b, d, 1000, seed=0, sampler="sets")
    assert hyper.shape == (4000, 4) and sets.shape == (1000, 4)
    np.testing.assert_allclose(hyper.mean(0), expected, atol=0.15)
    np.testing.assert_allclose(sets.mean(0), expected, atol=0.3)
    assert (sets[:, 1] == 0).all() and (sets[:, 3] == 8).all()  # empty A / full A: deterministic
    np.testing.assert_allclose(sets.var(0), hyper.var(0), rtol=0.25, atol=0.05)


def test_permutation_control_chance_level_and_significance():
    rng = np.random.default_rng(0)
    d, layers = 200, 3
    en = NeuronSet(frozenset((l, int(i)) for l in range(layers) for i in rng.choice(d, 20, replace=False)))
    shared = sorted(en.sites)[:40]  # 40 of 60 shared: far above chance (3 x 20 x 20 / 200 = 6)
    fr = NeuronSet(frozenset(shared) | frozenset((l, d - 1 - i) for l in range(layers) for i in range(7)))
    rand = NeuronSet(frozenset((l, int(i)) for l in range(layers) for i in rng.choice(d, 20, replace=False)))
    sets = {("en", "baseline", "u"): en, ("fr", "baseline", "u"): fr, ("xx", "baseline", "u"): rand}
    control = permutation_control(sets, n_layers=layers, d_mlp=d, n_perm=2000, seed=3)
    assert isinstance(control, ControlResult)
    assert (control.n_layers, control.d_mlp, control.n_perm, control.seed) == (layers, d, 2000, 3)
    assert control.languages == ("fr", "xx") and not control.by_layer
    df = control.table
    fr_row, rand_row = _row(df, language="fr"), _row(df, language="xx")
    expected = (fr.per_layer_counts(layers) * en.per_layer_counts(layers)).sum() / d
    assert fr_row["expected_shared"] == pytest.approx(expected)
    assert fr_row["chance_shared"] == pytest.approx(expected, rel=0.05)
    assert fr_row["n_shared"] == len(fr.sites & en.sites) and fr_row["z"] > 5
    assert fr_row["p_value"] == pytest.approx(1 / 2001)
    assert fr_row["jaccard"] > fr_row["chance_jaccard"] and rand_row["p_value"] > 0.01
    by_layer = permutation_control(sets, n_layers=layers, d_mlp=d, n_perm=500, by_layer=True).table
    assert len(by_layer) == 2 * layers
    fr_layers = by_layer[by_layer["language"] == "fr"]
    np.testing.assert_allclose(
        fr_layers["expected_shared"], fr.per_layer_counts(layers) * en.per_layer_counts(layers) / d
    )
    again = permutation_control(sets, n_layers=layers, d_mlp=d, n_perm=2000, seed=3)
    assert again.table.equals(df)  # seeded
    summary = control.summary().set_index("language")
    assert summary.loc["fr", "share_above_chance"] == 1.0 and summary.loc["xx", "share_above_chance"] == 0.0
    assert summary.loc["fr", "chance_jaccard"] == pytest.approx(fr_row["chance_jaccard"])
    assert summary.loc["fr", "n_units"] == 1 and summary.loc["fr", "n_undefined"] == 0
    # alpha is a real threshold: fr's p-value is 1/2001, so alpha below it counts fr as not above chance
    assert control.summary(alpha=1 / 2001).set_index("language").loc["fr", "share_above_chance"] == 0.0


def test_permutation_control_self_overlap_and_empty_set():
    sets = {("en", "b", "u"): A, ("fr", "b", "u"): A, ("de", "b", "u"): NeuronSet(frozenset())}
    control = permutation_control(sets, n_layers=2, d_mlp=8, n_perm=200)
    df = control.table
    fr, de = _row(df, language="fr"), _row(df, language="de")
    assert fr["jaccard"] == 1.0 and fr["overlap_rate"] == 1.0
    assert de["n_shared"] == 0 and de["expected_shared"] == 0 and np.isnan(de["z"])
    assert de["p_value"] == 1.0  # the null always reaches 0
    summary = control.summary().set_index("language")
    assert summary.loc["de", "n_undefined"] == 0 and summary.loc["de", "jaccard"] == 0.0  # empty vs A: defined, 0


# ------------------------------------------------------------------ the paper's Table 2 baseline
def _table2_sets() -> dict:
    """Relation-level sets over 2 layers; the expected overlaps are worked out by hand in the test."""
    S = lambda *sites: NeuronSet(frozenset(sites))  # noqa: E731
    return {
        ("en", "baseline", "R1"): S((0, 1), (0, 2), (1, 1), (1, 2)),
        ("en", "baseline", "R2"): S((0, 1), (0, 3), (1, 5), (1, 6)),
        ("en", "baseline", "R3"): S((0, 4), (0, 5), (1, 1), (1, 7)),
        ("fr", "baseline", "R1"): S((0, 1), (0, 2), (1, 1), (1, 3)),  # R1: 3 shared; R2: (0,1); R3: (1,1)
        ("fr", "baseline", "R2"): S((0, 3), (0, 9), (1, 6), (1, 9)),  # R2: 2 shared; R1, R3: none
        ("fr", "baseline", "R3"): S((0, 1), (0, 5), (1, 1), (1, 2)),  # R3: 2; R1: 3; R2: (0,1)
        ("fr", "lrp2", "R1"): S((0, 1), (0, 2), (1, 1), (1, 2)),  # = en R1; R2: (0,1); R3: (1,1)
    }


def test_different_relation_overlap_by_hand():
    cross = different_unit_overlap(_table2_sets(), 2, by_layer=False)
    rate = cross.set_index(["condition", "unit", "comparison"])["overlap_rate"]
    assert rate[("baseline", "R1", "same")] == pytest.approx(3 / 4)
    assert rate[("baseline", "R1", "different")] == pytest.approx((1 / 4 + 1 / 4) / 2)
    assert rate[("baseline", "R2", "same")] == pytest.approx(2 / 4)
    assert rate[("baseline", "R2", "different")] == 0.0
    assert rate[("baseline", "R3", "different")] == pytest.approx((3 / 4 + 1 / 4) / 2)
    assert rate[("lrp2", "R1", "same")] == 1.0  # English has one condition: it is used for lrp2 too
    assert rate[("lrp2", "R1", "different")] == pytest.approx(1 / 4)
    jac = cross.set_index(["condition", "unit", "comparison"])["jaccard"]
    assert jac[("baseline", "R1", "same")] == pytest.approx(3 / 5)
    assert jac[("baseline", "R1", "different")] == pytest.approx((1 / 7 + 1 / 7) / 2)
    assert set(cross["n_pairs"]) == {1, 2}
    # same-unit rows are exactly the plain overlap table
    same = cross[cross["comparison"] == "same"].reset_index(drop=True)
    plain = overlap_table(_table2_sets()).table
    np.testing.assert_allclose(same["jaccard"], plain["jaccard"])
    # summary: mean over relations, same vs different, per condition
    summary = unit_baseline_summary(cross).set_index("condition")
    assert summary.loc["baseline", "same_overlap_rate"] == pytest.approx((3 / 4 + 2 / 4 + 2 / 4) / 3)
    assert summary.loc["baseline", "different_overlap_rate"] == pytest.approx((1 / 4 + 0 + 1 / 2) / 3)
    assert summary.loc["baseline", "n_units"] == 3 and summary.loc["lrp2", "n_units"] == 1


def test_different_relation_overlap_per_layer_with_chance_level():
    sets = _table2_sets()
    cross = different_unit_overlap(sets, 2)
    r1 = cross[(cross["condition"] == "baseline") & (cross["unit"] == "R1")].set_index(["layer", "comparison"])
    assert r1.loc[(0, "same"), "overlap_rate"] == 1.0 and r1.loc[(1, "same"), "overlap_rate"] == 0.5
    assert r1.loc[(0, "different"), "overlap_rate"] == pytest.approx((1 / 2 + 0) / 2)  # R2 shares (0,1)
    assert r1.loc[(1, "different"), "overlap_rate"] == pytest.approx((0 + 1 / 2) / 2)  # R3 shares (1,1)
    control = permutation_control(sets, n_layers=2, d_mlp=10, n_perm=200, by_layer=True)
    summary = unit_baseline_summary(cross, control)
    assert list(summary["paper_layer"]) == [1, 2, 1, 2]
    base0 = summary[(summary["condition"] == "baseline") & (summary["layer"] == 0)].iloc[0]
    assert base0["same_overlap_rate"] == pytest.approx((1 + 1 / 2 + 1 / 2) / 3)  # layer 0: 2/2, 1/2, 1/2
    # chance: 2 of 10 neurons against 2 of 10 -> expected overlap rate 2/10
    assert base0["chance_overlap_rate"] == pytest.approx(0.2, abs=0.05)
