"""Extra forward hooks in knowledge-neuron attribution: applied alike on the fast and the reference path, handed the
bridge's HookPoint on both, LRP2's hooks, the shared clean rows under hooks, and progress bars."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from lrp2_interp.attribution.attribute import attribute_many, attribute_neurons
from lrp2_interp.attribution.fast import ig as fast_ig
from lrp2_interp.attribution.ig_config import AttributionConfig

PROMPT = {"masked": "the capital of france is [MASK] .", "causal": "the capital of france is"}
OBJECT = {"masked": "paris", "causal": " paris"}

pytestmark = pytest.mark.usefixtures("single_thread")


def _case(lm):
    return PROMPT[lm.kind], OBJECT[lm.kind]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def test_shared_clean_rows_equal_reference(lm_of, monkeypatch):
    """kn_linspace has alpha = 1: BERT's rows at the clean activation share one backward (SharedClean)."""
    calls = []
    orig = fast_ig.SharedClean.apply
    monkeypatch.setattr(fast_ig.SharedClean, "apply", lambda *a: calls.append(len(a[1])) or orig(*a))
    lm = lm_of("bert")
    prompt, obj = _case(lm)
    hook_sets = {
        "none": [],
        "mlp_post 1 doubled + resid 0 ablated at pos 1": [
            (lm.mlp_post(1), lambda a, hook=None: 2 * a),
            (lm.resid_post(0), _zero_position_one),
        ],
    }
    for layers in (None, (0, 2), (1, 2)):
        for name, hooks in hook_sets.items():
            cfg = AttributionConfig(method="kn_linspace", n_steps=7, layers=layers)
            ref = attribute_neurons(lm, prompt, obj, replace(cfg, path="reference"), fwd_hooks=hooks)
            calls.clear()
            fast = attribute_neurons(lm, prompt, obj, replace(cfg, path="fast"), fwd_hooks=hooks)
            assert calls == [len(fast.layers)], (layers, name)
            assert _rel(fast.scores, ref.scores) < 1e-6, (layers, name)
            assert torch.allclose(fast.f_input, ref.f_input, atol=1e-12)
            assert torch.allclose(fast.deltas, ref.deltas, atol=1e-8)


# ---------------------------------------------------------------- extra hooks
def _zero_resid(act, hook=None):
    return torch.zeros_like(act)


def _zero_position_one(act, hook=None):  # ablate one token's residual stream
    out = act.clone()
    out[:, 1] = 0.0
    return out


def _shift_position_one(act, hook=None):  # LRP2-like: shift a single position (not along ones: LayerNorm ignores that)
    out = act.clone()
    out[:, 1] = out[:, 1] + torch.linspace(-1.0, 1.0, act.shape[-1], dtype=act.dtype)
    return out


def _double_inplace(act, hook=None):  # returns None: an in-place hook, as TransformerLens allows
    act.mul_(2.0)


@pytest.mark.parametrize("fam", ["bert", "bloom"])
def test_fwd_hooks_are_applied_on_both_paths(lm_of, fam):
    lm = lm_of(fam)
    prompt, obj = _case(lm)
    plain = attribute_neurons(lm, prompt, obj, AttributionConfig(path="fast"))
    hook_sets = {
        "zero resid 0 at pos 1": [(lm.resid_post(0), _zero_position_one)],
        "shift pos 1 at 1 and 2": [(lm.resid_post(1), _shift_position_one), (lm.resid_post(2), _shift_position_one)],
        "mlp_post 1 doubled + resid 1 ablated at pos 1": [
            (lm.mlp_post(1), lambda a, hook=None: 2 * a),
            (lm.resid_post(1), _zero_position_one),
        ],
        "in-place on mlp_post 2": [(lm.mlp_post(2), _double_inplace)],
    }
    for name, hooks in hook_sets.items():
        ref = attribute_neurons(lm, prompt, obj, AttributionConfig(path="reference"), fwd_hooks=hooks)
        fast = attribute_neurons(lm, prompt, obj, AttributionConfig(path="fast"), fwd_hooks=hooks)
        assert fast.path == "fast"
        assert _rel(fast.scores, ref.scores) < 1e-6, name
        assert _rel(fast.scores, plain.scores) > 1e-3, name  # the hooks did change the scores
    # zeroing the whole residual stream after block 0 cuts layer 0 off the output: exactly zero scores
    for path in ("reference", "fast"):
        zeroed = attribute_neurons(
            lm, prompt, obj, AttributionConfig(path=path), fwd_hooks=[(lm.resid_post(0), _zero_resid)]
        )
        assert zeroed.scores[0].abs().max() == 0 and plain.scores[0].abs().max() > 0
    # a doubled mlp_post at layer 1 doubles the clean activation the attribution starts from
    doubled = attribute_neurons(lm, prompt, obj, AttributionConfig(), fwd_hooks=[(lm.mlp_post(1), _double_inplace)])
    assert torch.allclose(doubled.activations[0, 1], 2 * plain.activations[0, 1])


class LayerHook:
    """A user hook that, like many TransformerLens hooks, reads ``hook.name`` and calls ``hook.layer()``: scales the
    FFN activations / shifts position 1 of the residual stream by a layer-dependent amount; records what it saw."""

    def __init__(self):
        self.seen: set[tuple[str, int]] = set()

    def __call__(self, act, hook):
        self.seen.add((hook.name, hook.layer()))
        out = act.clone()
        if ".mlp." in hook.name:
            return out * (1.0 + 0.5 * hook.layer())
        out[:, 1] = out[:, 1] + (hook.layer() + 1) * torch.linspace(-1.0, 1.0, act.shape[-1], dtype=act.dtype)
        return out


@pytest.mark.parametrize("fam", ["bert", "bloom"])
def test_user_hooks_get_the_same_hook_point_on_both_paths(lm_of, fam):
    """The fast path hands user hooks the bridge's HookPoint (same ``.name``, working ``.layer()``) as the
    reference path does: identical scores, and the hook saw the same names on both paths."""
    lm = lm_of(fam)
    prompt, obj = _case(lm)
    plain = attribute_neurons(lm, prompt, obj, AttributionConfig(path="fast"))
    seen, res = {}, {}
    for path in ("reference", "fast"):
        hook = LayerHook()
        names = (lm.mlp_post(0), lm.resid_post(0), lm.mlp_post(2), lm.resid_post(1))
        hooks = [(name, hook) for name in names]
        res[path] = attribute_neurons(lm, prompt, obj, AttributionConfig(path=path), fwd_hooks=hooks)
        seen[path] = hook.seen
    assert res["fast"].path == "fast" and seen["fast"] == seen["reference"]
    assert {layer for _, layer in seen["fast"]} == {0, 1, 2}
    assert _rel(res["fast"].scores, res["reference"].scores) < 1e-6
    assert _rel(res["fast"].scores, plain.scores) > 1e-3  # the hooks changed the scores
    # the names the hook saw (the bridge's own) address the same hook points: same scores on the fast path
    by_own_name = [(name, LayerHook()) for name, _ in sorted(seen["fast"], key=lambda s: (s[1], s[0]))]
    again = attribute_neurons(lm, prompt, obj, AttributionConfig(path="fast"), fwd_hooks=by_own_name)
    assert _rel(again.scores, res["fast"].scores) < 1e-12


def test_progress_is_an_argument_not_a_setting(lm_of, capsys):
    lm = lm_of("bert")
    cfg = AttributionConfig(path="reference", layers=(2,), n_steps=2)
    quiet = attribute_neurons(lm, *_case(lm), cfg, progress=False)
    assert "IG layers" not in capsys.readouterr().err
    shown = attribute_neurons(lm, *_case(lm), cfg, progress=True)
    assert "IG layers (reference)" in capsys.readouterr().err
    assert torch.equal(quiet.scores, shown.scores)
    attribute_many(lm, [_case(lm)[0]] * 2, [_case(lm)[1]] * 2, cfg, progress=False)
    assert "knowledge-neuron IG" not in capsys.readouterr().err


@pytest.mark.parametrize("fam", ["bert", "qwen2"])
def test_lrp2_hooks_fast_equals_reference(lm_of, fam):
    from lrp2_interp.lrp2.projection import LRP2Config, lrp2_hooks
    from lrp2_interp.lrp2.vectors import LanguageVectors

    lm = lm_of(fam)
    gen = torch.Generator().manual_seed(0)
    vecs = LanguageVectors(
        lm.name,
        lm.n_layers,
        lm.d_model,
        {lang: torch.randn(lm.n_layers, lm.d_model, generator=gen, dtype=torch.float64) for lang in ("en", "fr")},
    )
    prompt, obj = _case(lm)
    plain = attribute_neurons(lm, prompt, obj, AttributionConfig(path="fast"))
    for positions in ("all", (-1,), (1, -2)):
        hooks = lrp2_hooks(lm, vecs, "fr", LRP2Config(m=0, n=1, positions=positions))
        ref = attribute_neurons(lm, prompt, obj, AttributionConfig(path="reference"), fwd_hooks=hooks)
        fast = attribute_neurons(lm, prompt, obj, AttributionConfig(), fwd_hooks=hooks)
        assert fast.path == "fast" and _rel(fast.scores, ref.scores) < 1e-6, positions
        assert _rel(fast.scores, plain.scores) > 1e-3, positions


def test_extra_hooks_is_a_deprecated_alias_of_fwd_hooks_that_warns_once(lm_of, monkeypatch):
    import warnings

    from lrp2_interp.errors import InputError
    from lrp2_interp.models import hooks as hooks_module

    monkeypatch.setattr(hooks_module, "_WARNED", set())
    lm = lm_of("gpt2")
    prompt, obj = _case(lm)
    hooks = [(lm.mlp_post(1), _double_inplace)]
    new = attribute_neurons(lm, prompt, obj, fwd_hooks=hooks, progress=False)
    with pytest.warns(DeprecationWarning, match="use fwd_hooks="):
        old = attribute_neurons(lm, prompt, obj, extra_hooks=hooks, progress=False)
    torch.testing.assert_close(old.scores, new.scores)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second use stays silent: one warning per function and process
        attribute_neurons(lm, prompt, obj, extra_hooks=hooks, progress=False)
    with pytest.warns(DeprecationWarning, match="attribute_many"):
        many = attribute_many(lm, [prompt], [obj], extra_hooks=hooks, progress=False)
    torch.testing.assert_close(many[0].scores, new.scores)
    with pytest.raises(InputError, match="fwd_hooks= only"):
        attribute_neurons(lm, prompt, obj, fwd_hooks=hooks, extra_hooks=hooks)
