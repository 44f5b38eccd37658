"""Learned alignment (INCLINE): hand-checked maps, identities, LRP2 as a translation, control, every family."""

from __future__ import annotations

import pytest
import torch

from lrp2_interp.errors import InputError
from lrp2_interp.lrp2.projection import LRP2Config, lrp2_hooks
from lrp2_interp.lrp2.vectors import compute_language_vectors, mean_states
from lrp2_interp.methods.alignment import (
    AlignmentConfig,
    AlignmentMaps,
    alignment_hooks,
    fit_alignment,
    solve_map,
    translation_maps,
)
from lrp2_interp.models.hooks import mlp_out_hook
from lrp2_interp.models.loading import load_model
from lrp2_interp.prompts import prompt_corpus, translation_prompts

pytestmark = pytest.mark.usefixtures("single_thread")

TEXTS = ["La capitale de Japon est Tokyo .", "La langue officielle de Brésil est le portugais ."]


@pytest.fixture(scope="module", params=["bert", "bloom", "gpt2", "qwen2", "gemma3"])
def lm(request, tiny_model_dir):
    return load_model(tiny_model_dir(request.param))


def _maps(lm, w, b=None, site="mlp_out", layers=None):
    layers = tuple(range(lm.n_layers)) if layers is None else layers
    w = w.expand(len(layers), lm.d_model, lm.d_model).clone()
    b = torch.zeros(len(layers), lm.d_model) if b is None else b
    return AlignmentMaps(AlignmentConfig("fr", site=site, layers=layers), lm.name, lm.d_model, layers, w, b)


def _logits(lm, hooks):
    with torch.no_grad():
        return lm.logits(lm.encode(TEXTS), hooks).float()


def test_solve_map_recovers_a_known_map():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(50, 6, generator=gen, dtype=torch.float64)
    w_true, b_true = (
        torch.randn(6, 6, generator=gen, dtype=torch.float64),
        torch.randn(6, generator=gen, dtype=torch.float64),
    )
    w, b, r2 = solve_map(x, x @ w_true, affine=False)
    assert torch.allclose(w.double(), w_true, atol=1e-4) and b.abs().max() == 0 and r2 == pytest.approx(1.0)
    w, b, r2 = solve_map(x, x @ w_true + b_true, affine=True)
    assert torch.allclose(w.double(), w_true, atol=1e-4) and torch.allclose(b.double(), b_true, atol=1e-4)
    w, _, _ = solve_map(x, x, affine=False)  # mapping a space onto itself: the identity
    assert torch.allclose(w, torch.eye(6, dtype=w.dtype), atol=1e-5)


def test_ridge_shrinks_the_map():
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(4, 8, generator=gen), torch.randn(4, 8, generator=gen)  # fewer rows than dims
    w0, _, r0 = solve_map(x, y)
    w1, _, r1 = solve_map(x, y, ridge=10.0)
    assert r0 == pytest.approx(1.0, abs=1e-6)  # min-norm interpolation fits exactly
    assert w1.norm() < w0.norm() and r1 < r0


def test_sigma_zero_and_zero_map_give_the_baseline(lm):
    base = _logits(lm, None)
    maps = _maps(lm, torch.eye(lm.d_model))
    assert alignment_hooks(lm, maps, 0.0) == []
    zero = _maps(lm, torch.zeros(lm.d_model, lm.d_model))
    assert torch.allclose(_logits(lm, alignment_hooks(lm, zero, 0.7)), base, atol=1e-5)


def test_identity_map_scales_the_ffn_output(lm):
    """W = I: a <- a + sigma a = (1 + sigma) a; sigma = -1 removes every FFN output."""
    got = _logits(lm, alignment_hooks(lm, _maps(lm, torch.eye(lm.d_model)), -1.0))
    zero_ffn = [(mlp_out_hook(i), lambda x, hook: torch.zeros_like(x)) for i in range(lm.n_layers)]
    assert torch.allclose(got, _logits(lm, zero_ffn), atol=1e-4)
    doubled = [(mlp_out_hook(i), lambda x, hook: 2 * x) for i in range(lm.n_layers)]
    assert torch.allclose(
        _logits(lm, alignment_hooks(lm, _maps(lm, torch.eye(lm.d_model)), 1.0)), _logits(lm, doubled), atol=1e-4
    )
    assert not torch.allclose(got, _logits(lm, None), atol=1e-3)  # the hook point really feeds the model


def test_interpolate_rule_identity_map_is_the_identity(lm):
    base = _logits(lm, None)
    eye = _maps(lm, torch.eye(lm.d_model))
    assert torch.allclose(_logits(lm, alignment_hooks(lm, eye, 0.8, rule="interpolate")), base, atol=1e-5)
    # interpolate with W = 0 at sigma = 1 lands on 0: every FFN output removed, as add with W = I at sigma = -1
    zero = _maps(lm, torch.zeros(lm.d_model, lm.d_model))
    assert torch.allclose(
        _logits(lm, alignment_hooks(lm, zero, 1.0, rule="interpolate")),
        _logits(lm, alignment_hooks(lm, eye, -1.0)),
        atol=1e-4,
    )
    with pytest.raises(InputError, match="rule"):
        alignment_hooks(lm, eye, 0.5, rule="mix")


def test_lrp2_is_alignment_restricted_to_a_translation(lm, fixture_facts):
    vec = compute_language_vectors(lm, {g: prompt_corpus(fixture_facts, g, lm) for g in ("en", "fr")}, progress=False)
    from lrp2_interp.lrp2.projection import shifts

    cfg = LRP2Config(0, lm.n_layers - 1)
    maps = translation_maps(lm, shifts(vec, "fr", cfg), AlignmentConfig("fr", site="resid"))
    assert maps.weights.abs().max() == 0
    got = _logits(lm, alignment_hooks(lm, maps, 1.0))
    assert torch.allclose(got, _logits(lm, lrp2_hooks(lm, vec, "fr", cfg)), atol=1e-4)


def test_positions_restrict_the_change(gpt2_lm):
    lm = gpt2_lm
    maps = _maps(lm, torch.zeros(lm.d_model, lm.d_model), b=torch.ones(lm.n_layers, lm.d_model), site="resid")
    seen = {}
    reader = [(f"blocks.{lm.n_layers - 1}.hook_resid_post", lambda x, hook: seen.__setitem__("x", x.clone()))]
    batch = lm.encode(TEXTS)
    with torch.no_grad():
        lm.logits(batch, reader)
        before = seen["x"]
        lm.logits(batch, alignment_hooks(lm, maps, 1.0, positions=(-1,)) + reader)
    diff = (seen["x"] - before).abs().sum(-1)  # [b, pos]
    last = batch.attention_mask.sum(1) - 1
    for row in range(len(TEXTS)):
        changed = (diff[row] > 1e-6).nonzero().flatten().tolist()
        assert changed[0] == int(last[row])  # nothing before the last real token moves (causal)


def test_fit_maps_translations_and_random_control(gpt2_lm, fixture_facts):
    lm = gpt2_lm
    src, tgt = translation_prompts(lm, fixture_facts, "fr", "en")
    assert len(src) == len(tgt) == len(fixture_facts.parallel(["en", "fr"]).lineids("fr")) > 5
    cfg = AlignmentConfig("fr", layers=(0, 2))
    maps = fit_alignment(lm, src, tgt, cfg)
    assert maps.layers == (0, 2) and maps.weights.shape == (2, lm.d_model, lm.d_model) and maps.n_pairs == len(src)
    pooled = dict(hook_names=[lm.mlp_out(0)], keep_empty=True, float32=True)
    x = mean_states(lm, src, **pooled)[:, 0]
    y = mean_states(lm, tgt, **pooled)[:, 0]
    fitted = ((x @ maps.weight(0) - y) ** 2).sum()
    assert fitted < ((x - y) ** 2).sum() and fitted < (y**2).sum()  # least squares beats identity and zero
    ctl = maps.random_like(seed=3)
    assert torch.allclose(ctl.weights.flatten(1).norm(dim=1), maps.weights.flatten(1).norm(dim=1), rtol=1e-4)
    assert not torch.allclose(ctl.weights, maps.weights)
    assert torch.equal(ctl.weights, maps.random_like(seed=3).weights)
    affine = fit_alignment(lm, src, tgt, AlignmentConfig("fr", site="resid", affine=True, layers=(1,)))
    assert affine.bias(1).abs().max() > 0


def test_bad_input(gpt2_lm, bert_lm):
    with pytest.raises(InputError, match="parallel"):
        fit_alignment(gpt2_lm, ["a", "b"], ["a"], AlignmentConfig("fr"))
    with pytest.raises(InputError, match="site"):
        fit_alignment(gpt2_lm, ["a", "b"], ["a", "b"], AlignmentConfig("fr", site="attn"))
    with pytest.raises(InputError, match="layers"):
        fit_alignment(gpt2_lm, ["a", "b"], ["a", "b"], AlignmentConfig("fr", layers=(9,)))
    maps = _maps(gpt2_lm, torch.eye(gpt2_lm.d_model))
    with pytest.raises(InputError, match="not"):
        alignment_hooks(bert_lm, maps, 0.5)
