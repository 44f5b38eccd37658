"""The fast probing path equals the reference: five families, with and without LRP2, both decoder scores."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from lrp2_interp.lrp2.projection import LRP2Config
from lrp2_interp.models.hooks import ShiftHook
from lrp2_interp.models.layer_runner import LayerRunner
from lrp2_interp.probing.fast import fast_scores, supports
from lrp2_interp.probing.probe import ProbeConfig, probe, probe_scores

pytestmark = pytest.mark.usefixtures("single_thread")
FAMILIES = ["bert", "bloom", "gpt2", "qwen2", "gemma3"]


@pytest.fixture(scope="module", params=FAMILIES)
def lm(request, tiny_model_dir):
    from lrp2_interp.models.loading import load_model

    return load_model(tiny_model_dir(request.param))


def _shift_hooks(lm, positions="all"):
    g = torch.Generator().manual_seed(0)
    return [(lm.resid_post(j), ShiftHook(3 * torch.randn(lm.d_model, generator=g), positions)) for j in (0, 1)]


@pytest.mark.parametrize("decoder_score", ["sum", "mean"])
@pytest.mark.parametrize("hooked", [False, True])
def test_fast_scores_equal_reference(lm, fixture_facts, decoder_score, hooked):
    hooks = _shift_hooks(lm) if hooked else None
    cfg = ProbeConfig(decoder_score=decoder_score, batch_size=5)
    pools_f, fast = fast_scores(lm, fixture_facts, "ru", cfg, hooks, exact=True)
    pools_r, ref = probe_scores(lm, fixture_facts, "ru", dataclasses.replace(cfg, path="reference"), hooks)
    assert pools_f == pools_r
    for key in ref:
        for cand, s in ref[key].items():
            assert fast[key][cand] == pytest.approx(s, abs=1e-5, rel=1e-6), (key, cand)
    a = probe(lm, fixture_facts, "ru", cfg, hooks).table
    b = probe(lm, fixture_facts, "ru", dataclasses.replace(cfg, path="reference"), hooks).table
    assert a.equals(b)


def test_tiny_memory_budget_changes_nothing(lm, fixture_facts):
    cfg = ProbeConfig(max_candidates=6)
    _, a = fast_scores(lm, fixture_facts, "en", cfg, exact=True)
    _, b = fast_scores(lm, fixture_facts, "en", dataclasses.replace(cfg, memory_mb=1, batch_size=2), exact=True)
    for key in a:
        for cand in a[key]:
            assert b[key][cand] == pytest.approx(a[key][cand], abs=1e-5, rel=1e-6)


def test_the_kv_cache_pass_does_not_warn_on_every_batch(lm, fixture_facts):
    """transformers 5 calls ``past_key_values`` deprecated; the fast path passes it on purpose (the bridge reads that name)."""
    import warnings

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        fast_scores(lm, fixture_facts, "en", ProbeConfig(max_candidates=4, batch_size=3), exact=True)
    assert not [w for w in seen if "past_key_values" in str(w.message)]


def test_hooks_the_fast_path_cannot_honour_fall_back(lm, fixture_facts):
    """A closure hook (or LRP2 at chosen positions) on a causal LM runs the reference path, with its results."""
    odd = [(lm.resid_post(1), lambda x, hook: x * 1.5)]
    positional = _shift_hooks(lm, positions=(1, -2))
    for hooks in (odd, positional):
        assert supports(lm, hooks) == (lm.kind == "masked")
        cfg = ProbeConfig(max_candidates=5)
        a = probe(lm, fixture_facts, "en", cfg, hooks).table
        b = probe(lm, fixture_facts, "en", dataclasses.replace(cfg, path="reference"), hooks).table
        assert a.equals(b)
    assert not supports(lm, [("unembed.hook_in", lambda x, hook: x)])


def test_layer_runner_replay_and_head_equal_the_model(lm):
    """Replaying every block from the captured calls, then the head, gives the bridge's own logits."""
    batch = lm.encode(["Paris is the capital of France .", "Rome ."])
    with torch.no_grad():
        full = lm.logits(batch)  # [b, pos, vocab]
        with LayerRunner(lm) as runner:
            cap = runner.capture(lambda: lm.logits(batch))
            h = cap.states[0]
            for j in range(1, lm.n_layers):
                h = runner.run_block(j, cap.calls[j], h)
                assert torch.allclose(h, cap.states[j], atol=1e-5)
            u = runner.head_in(h)
            assert torch.allclose(u, cap.head_in, atol=1e-5)
            real = batch.attention_mask.bool()
            got = runner.logits(u[real])
    assert torch.allclose(got, full[real].float(), atol=1e-4)


def test_lrp2_sweep_config_positions_are_all():
    """The cached sweep applies shifts at every position: that is LRP2Config's default."""
    assert LRP2Config(0, 1).positions == "all"
