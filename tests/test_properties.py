"""Property-based tests (hypothesis): projection algebra, overlap metrics, ranking, statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lrp2_interp.facts import Fact
from lrp2_interp.lrp2.projection import LRP2Config, shifts
from lrp2_interp.lrp2.vectors import LanguageVectors
from lrp2_interp.metrics import bootstrap_ci, jaccard, overlap_rate, paired_test, transferability
from lrp2_interp.models.hooks import ShiftHook, full_lengths
from lrp2_interp.probing.probe import rank_row

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------ projection algebra
@st.composite
def vectors_and_layers(draw):
    n_layers = draw(st.integers(1, 5))
    d = draw(st.integers(1, 16))
    seed = draw(st.integers(0, 2**16))
    gen = torch.Generator().manual_seed(seed)
    scale = draw(st.sampled_from([1e-3, 1.0, 50.0]))
    vecs = {lang: torch.randn(n_layers, d, generator=gen) * scale for lang in ("en", "fr", "zh")}
    m = draw(st.integers(0, n_layers - 1))
    n = draw(st.integers(m, n_layers - 1))
    resid = torch.randn(draw(st.integers(1, 3)), draw(st.integers(1, 6)), d, generator=gen) * scale
    return LanguageVectors("toy", n_layers, d, vecs), m, n, resid


def _apply(delta, resid, positions="all"):
    return ShiftHook(delta, positions).bind(full_lengths(resid))(resid, None)  # resid: unpadded rows


@FAST
@given(vectors_and_layers(), st.sampled_from(["fr", "zh"]))
def test_lsrp_after_lirp_at_the_same_layer_is_identity(case, lang):
    vecs, m, n, resid = case
    # LIRP at layer m (from the pair (m, n)), then LSRP at that same layer (from the pair (0, m))
    lirp = shifts(vecs, lang, LRP2Config(m, n))[m] if m != n else vecs["en"][m] - vecs[lang][m]
    lsrp = shifts(vecs, lang, LRP2Config(0, m))[m] if m != 0 else vecs[lang][m] - vecs["en"][m]
    back = _apply(lsrp, _apply(lirp, resid))
    tol = 1e-5 * (1 + float(resid.abs().max()) + float(lirp.abs().max()))
    assert (back - resid).abs().max() <= tol
    # ... and the combined m == n shift is (numerically) zero
    combined = shifts(vecs, lang, LRP2Config(m, m))
    assert list(combined) == [m]
    assert combined[m].abs().max() <= tol


@FAST
@given(vectors_and_layers(), st.sampled_from(["all", (0,), (-1,), (0, -1)]))
def test_projecting_the_source_language_is_exactly_identity(case, positions):
    vecs, m, n, resid = case
    for delta in shifts(vecs, "en", LRP2Config(m, n)).values():
        assert torch.count_nonzero(delta) == 0
        assert torch.equal(_apply(delta, resid, positions), resid)


@FAST
@given(vectors_and_layers(), st.sampled_from(["fr", "zh"]))
def test_shifts_are_vector_differences_and_opposite_at_one_layer(case, lang):
    vecs, m, n, resid = case
    assume(m != n)  # m == n is covered by test_lsrp_after_lirp_at_the_same_layer_is_identity
    s = shifts(vecs, lang, LRP2Config(m, n))
    assert torch.equal(s[m], vecs["en"][m] - vecs[lang][m])
    assert torch.equal(s[n], vecs[lang][n] - vecs["en"][n])
    # the shift hook adds exactly delta at every position
    out = _apply(s[m], resid)
    torch.testing.assert_close(
        out - resid, s[m].expand_as(resid), atol=1e-5 * (1 + float(resid.abs().max())), rtol=1e-5
    )


@FAST
@given(vectors_and_layers(), st.lists(st.integers(-6, 5), min_size=1, max_size=3))
def test_position_hook_touches_only_those_positions(case, positions):
    vecs, m, _n, resid = case
    pos = resid.shape[1]
    positions = tuple(p for p in positions if -pos <= p < pos)
    assume(positions)
    delta = vecs["en"][m] - vecs["fr"][m]
    out = _apply(delta, resid, positions)
    chosen = {p % pos for p in positions}
    for p in range(pos):
        if p in chosen:
            assert torch.allclose(out[:, p], resid[:, p] + delta)
        else:
            assert torch.equal(out[:, p], resid[:, p])
    assert resid.shape == out.shape


@FAST
@given(vectors_and_layers(), st.integers(0, 1000))
def test_random_control_keeps_norms(case, seed):
    vecs, m, n, _ = case
    real = shifts(vecs, "fr", LRP2Config(m, n))
    rand = shifts(vecs, "fr", LRP2Config(m, n, control="random", seed=seed))
    if m == n:  # two random directions are combined: no norm guarantee, but determinism
        assert torch.equal(rand[m], shifts(vecs, "fr", LRP2Config(m, n, control="random", seed=seed))[m])
        return
    for layer in real:
        assert torch.allclose(rand[layer].norm(), real[layer].norm(), rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------ overlap metrics
small_sets = st.sets(st.integers(0, 30), max_size=15)


@FAST
@given(small_sets, small_sets)
def test_overlap_metrics_bounds_and_symmetry(a, b):
    j = jaccard(a, b)
    if not (a or b):  # undefined for two empty sets (NaN convention, issue 11)
        assert math.isnan(j) and math.isnan(transferability(a, b))
        return
    assert 0.0 <= j <= 1.0 and j == jaccard(b, a)
    r = overlap_rate(a, b)
    if a:
        assert 0.0 <= r <= 1.0
        assert j <= r  # |A n B| / |A u B| <= |A n B| / |A|
    else:
        assert math.isnan(r)
    assert (j == 1.0) == (a == b)
    assert transferability(a, b) == pytest.approx(100 * j)


@FAST
@given(small_sets)
def test_self_overlap_is_one(a):
    assume(a)  # the empty set's self-overlap is undefined (NaN)
    assert jaccard(a, a) == 1.0
    assert transferability(a, set(a)) == 100.0
    assert overlap_rate(a, a) == 1.0


# ------------------------------------------------------------------ ranking
@st.composite
def pools(draw):
    labels = draw(st.lists(st.text("abcdefgh", min_size=1, max_size=4), min_size=1, max_size=10, unique=True))
    scores = draw(st.lists(st.sampled_from([-3.0, -1.5, -1.0, 0.0]), min_size=len(labels), max_size=len(labels)))
    gold = draw(st.sampled_from(labels))
    perm = draw(st.permutations(range(len(labels))))
    return labels, scores, gold, perm


@FAST
@given(pools())
def test_rank_row_is_invariant_to_candidate_order(case):
    labels, scores, gold, perm = case
    fact = Fact(7, "P1", "en", "s", gold)
    a = rank_row(fact, labels, scores)
    b = rank_row(fact, [labels[i] for i in perm], [scores[i] for i in perm])
    assert a == b
    # by hand: higher score first, ties by label
    best = max(scores)
    assert a["prediction"] == min(l for l, s in zip(labels, scores) if s == best)
    g = scores[labels.index(gold)]
    assert a["rank"] == 1 + sum(s > g or (s == g and l < gold) for l, s in zip(labels, scores))
    assert a["correct"] == (a["rank"] == 1) and a["n_candidates"] == len(labels)


# ------------------------------------------------------------------ statistics
@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-100, 100, allow_nan=False), min_size=1, max_size=30), st.integers(0, 100))
def test_bootstrap_ci_contains_point_estimate_and_is_seeded(data, seed):
    est = bootstrap_ci(data, np.mean, n_boot=200, seed=seed)
    tol = 1e-9 * (1 + max(abs(x) for x in data))
    assert est.low - tol <= est.value <= est.high + tol
    assert est == bootstrap_ci(data, np.mean, n_boot=200, seed=seed)


@FAST
@given(st.lists(st.tuples(st.booleans(), st.booleans()), max_size=40))
def test_paired_test_symmetry_and_bounds(pairs):
    after = [a for a, _ in pairs]
    before = [b for _, b in pairs]
    ab, ba = paired_test(after, before), paired_test(before, after)
    assert ab["p_value"] == ba["p_value"]
    assert (ab["gained"], ab["lost"]) == (ba["lost"], ba["gained"])
    assert 0.0 < ab["p_value"] <= 1.0
    if ab["gained"] == ab["lost"]:
        assert ab["p_value"] == 1.0


@FAST
@given(st.lists(st.booleans(), max_size=40))
def test_paired_test_without_discordant_pairs(x):
    assert paired_test(x, x) == {"gained": 0, "lost": 0, "p_value": 1.0}
