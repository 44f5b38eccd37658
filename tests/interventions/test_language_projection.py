"""LRP2 as an Intervention: the matched random control keeps norms, cancellation and the identity at m == n."""

from __future__ import annotations

import pytest
import torch

from lrp2_interp.interventions.language_projection import LRP2Intervention, plane_rotation
from lrp2_interp.lrp2.vectors import LanguageVectors

D, L = 64, 5


def _vectors() -> LanguageVectors:
    g = torch.Generator().manual_seed(0)
    common = torch.randn(L, D, generator=g) * 5  # the direction all languages share
    vec = {lang: common + torch.randn(L, D, generator=g) for lang in ("en", "fr", "zh")}
    emb = {lang: torch.randn(D, generator=g) for lang in vec}
    return LanguageVectors("toy", L, D, vec, embeddings=emb)


@pytest.fixture
def inter() -> LRP2Intervention:
    return LRP2Intervention("fr", n_layers=L, vectors=_vectors(), wrong_language="zh")


def _cos(a, b):
    return float(a @ b / (a.norm() * b.norm()))


@pytest.mark.parametrize("pair", [(0, 1), (1, 3), (-1, 4), (2, 4)])
def test_matched_control_keeps_norms_and_the_angle_between_lirp_and_lsrp(inter, pair):
    m, n = pair
    real = inter.shifts(pair)
    for seed in range(3):
        ctl = inter.control_shifts(pair, seed)
        assert set(ctl) == {m, n}
        for layer in (m, n):
            assert float(ctl[layer].norm()) == pytest.approx(float(real[layer].norm()), rel=1e-5)
        assert _cos(ctl[m], ctl[n]) == pytest.approx(_cos(real[m], real[n]), abs=1e-5)
        assert abs(_cos(ctl[m], real[m])) < 0.9  # a new direction


def test_matched_control_is_the_identity_at_m_equal_n(inter):
    assert torch.count_nonzero(inter.shifts((2, 2))[2]) == 0
    for seed in range(3):
        assert torch.count_nonzero(inter.control_shifts((2, 2), seed)[2]) == 0


def test_control_draws_differ_across_seeds_pairs_and_languages(inter):
    a = inter.control_shifts((0, 3), 0)[0]
    assert not torch.allclose(a, inter.control_shifts((0, 3), 1)[0])
    b = inter.control_shifts((0, 2), 0)[0]
    assert not torch.allclose(a / a.norm(), b / b.norm())
    other = LRP2Intervention("zh", n_layers=L, vectors=inter.vectors)
    c = other.control_shifts((0, 3), 0)[0]
    assert not torch.allclose(a / a.norm(), c / c.norm())
    assert torch.equal(a, inter.control_shifts((0, 3), 0)[0])  # seeded: reproducible


def test_wrong_language_control_uses_the_other_languages_vectors(inter):
    v = inter.vectors
    ((name, hooks),) = inter.extra_controls((1, 3)).items()
    assert name == "wrong language (zh)"
    deltas = [fn.delta for _, fn in hooks]
    assert torch.allclose(deltas[0], v.at("en", 1) - v.at("zh", 1))
    assert torch.allclose(deltas[1], v.at("zh", 3) - v.at("en", 3))


def test_plane_rotation_is_exact_on_a_hand_checkable_case():
    a, b = torch.tensor([1.0, 0, 0, 0]), torch.tensor([-2.0, 0.5, 0, 0])
    ra, rb = plane_rotation([a, b], seed=7)
    assert float(ra.norm()) == pytest.approx(1.0) and float(rb.norm()) == pytest.approx(float(b.norm()))
    assert float(ra @ rb) == pytest.approx(float(a @ b), abs=1e-6)
    (z,) = plane_rotation([torch.zeros(4)], seed=1)
    assert torch.count_nonzero(z) == 0


def test_settings_cover_every_pair_with_the_embedding_shift_point(inter):
    pairs = inter.settings()
    assert len(pairs) == 15 and (-1, 0) in pairs and all(m < n for m, n in pairs)  # 6 points: C(6, 2)
