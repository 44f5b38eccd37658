"""Knowledge-neuron integrated gradients on tiny random models (all offline, seconds)."""

from __future__ import annotations

import importlib.util
import re
from dataclasses import replace

import pytest
import torch

from lrp2_interp.attribution.attribute import attribute_many, attribute_neurons, stack_scores
from lrp2_interp.attribution.fast import ig as fast_ig
from lrp2_interp.attribution.fast.family_parts import Hooks
from lrp2_interp.attribution.fast.ig import GoldProb
from lrp2_interp.attribution.ig_config import AttributionConfig
from lrp2_interp.errors import InputError

PROMPT = {"masked": "the capital of france is [MASK] .", "causal": "the capital of france is"}
OBJECT = {"masked": "paris", "causal": " paris"}

pytestmark = pytest.mark.usefixtures("single_thread")


def _case(lm):
    return PROMPT[lm.kind], OBJECT[lm.kind]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def test_gold_prob_matches_autograd_softmax():
    torch.manual_seed(0)
    t = torch.randn(5, 8, dtype=torch.float64, requires_grad=True)
    W, b = torch.randn(30, 8, dtype=torch.float64), torch.randn(30, dtype=torch.float64)
    for log_prob in (False, True):
        f = GoldProb.apply(t, W, b, 7, log_prob)
        lp = torch.log_softmax(t @ W.T + b, -1)[:, 7]
        ref = lp if log_prob else lp.exp()
        assert torch.allclose(f, ref, atol=1e-12)
        g, g_ref = torch.autograd.grad(f.sum(), t)[0], torch.autograd.grad(ref.sum(), t)[0]
        assert torch.allclose(g, g_ref, atol=1e-12)


# ---------------------------------------------------------------- completeness
@pytest.mark.parametrize("fam", ["bert", "bloom"])
@pytest.mark.parametrize("path", ["reference", "fast"])
def test_completeness_per_layer(lm_of, fam, path):
    lm = lm_of(fam)
    prompt, obj = _case(lm)
    res = attribute_neurons(lm, prompt, obj, AttributionConfig(n_steps=32, method="gausslegendre", path=path))
    assert res.path == path and res.scores.shape == (3, lm.d_mlp) and res.activations.shape == (1, 3, lm.d_mlp)
    change = res.f_input - res.f_baseline  # [n_layers]
    gap = res.scores.sum(1).double() - change
    assert gap.abs().max() < 1e-4 and res.deltas.abs().max() < 1e-4
    assert torch.allclose(gap, res.deltas, atol=1e-12)
    # non-vacuous: probabilities of a random model are small, so also hold the gap to 1e-6 of the change itself
    assert change.abs().max() > 1e-5 and gap.abs().max() < 1e-6 * change.abs().max()


# ---------------------------------------------------------------- by hand on the plain HF model
def _hf_manual_ig(model_dir, fam, layer, alphas, weights):
    """Riemann sum of d p(gold)/d a with torch.autograd on the HF model itself (no TransformerLens)."""
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    cls = AutoModelForMaskedLM if fam == "bert" else AutoModelForCausalLM
    model = cls.from_pretrained(model_dir, dtype=torch.float64, attn_implementation="eager").eval()
    if fam == "bert":
        ids = tok(PROMPT["masked"], return_tensors="pt")["input_ids"]
        pos = int((ids[0] == tok.mask_token_id).nonzero()[0])
        gold = tok(OBJECT["masked"], add_special_tokens=False)["input_ids"][0]
    else:
        body = tok(PROMPT["causal"], add_special_tokens=False)["input_ids"]
        ids = torch.tensor([[tok.bos_token_id] + body])
        pos = ids.shape[1] - 1
        gold = tok(OBJECT["causal"], add_special_tokens=False)["input_ids"][0]
    state = {}

    if fam == "bert":  # the intermediate (dense + GELU) output is the FFN post-activation
        module = model.bert.encoder.layer[layer].intermediate

        def hook(mod, args, out):
            state["clean"] = out[0, pos].detach().clone()
            if "x" in state:
                out = out.clone()
                out[:, pos] = state["x"]
            return out

        handle = module.register_forward_hook(hook)
    else:  # BLOOM: the input of dense_4h_to_h
        module = model.transformer.h[layer].mlp.dense_4h_to_h

        def hook(mod, args):
            (x,) = args
            state["clean"] = x[0, pos].detach().clone()
            if "x" in state:
                x = x.clone()
                x[:, pos] = state["x"]
            return (x,)

        handle = module.register_forward_pre_hook(hook)
    with torch.no_grad():
        model(input_ids=ids)
    a = state["clean"]
    total = torch.zeros_like(a)
    for alpha, w in zip(alphas, weights):
        state["x"] = (alpha * a).requires_grad_(True)
        prob = torch.softmax(model(input_ids=ids).logits[0, pos], -1)[gold]
        total += w * torch.autograd.grad(prob, state["x"])[0]
    handle.remove()
    return a * total


@pytest.mark.parametrize("fam", ["bert", "bloom"])
@pytest.mark.parametrize("method", ["riemann_left", "kn_linspace"])
def test_matches_manual_riemann_sum_on_hf_model(model_dirs, lm_of, fam, method):
    n, layer = 6, 1
    alphas = [k / n for k in range(n)] if method == "riemann_left" else [k / (n - 1) for k in range(n)]
    manual = _hf_manual_ig(model_dirs[fam], fam, layer, alphas, [1 / n] * n)
    lm = lm_of(fam)
    prompt, obj = _case(lm)
    for path in ("reference", "fast"):
        res = attribute_neurons(
            lm, prompt, obj, AttributionConfig(n_steps=n, method=method, layers=(layer,), path=path)
        )
        assert _rel(res.scores[0], manual) < 1e-6, path


# ---------------------------------------------------------------- fast == reference
@pytest.mark.parametrize("fam", ["bert", "bloom", "gpt2", "qwen2"])
def test_functional_forward_matches_transformerlens_logits(lm_of, fam):
    lm = lm_of(fam)
    ids = torch.tensor(lm.tokenizer(PROMPT[lm.kind])["input_ids"])
    fm = fast_ig.fast_model(lm)
    with torch.no_grad():
        cache = fm.family.clean(ids, Hooks())
        ours = fm.family.head(cache.final)  # [pos, vocab]
        theirs = lm.bridge(ids[None])[0]
    assert torch.allclose(ours, theirs, atol=1e-10) and theirs.abs().max() > 1e-3


@pytest.mark.parametrize("fam", ["bert", "bloom", "gpt2", "qwen2"])
def test_fast_path_equals_reference_float64(lm_of, fam):
    lm = lm_of(fam)
    prompt, obj = _case(lm)
    for cfg in (
        AttributionConfig(),
        AttributionConfig(log_prob=True, method="riemann_trapezoid", layers=(0, 2)),
    ):
        ref = attribute_neurons(lm, prompt, obj, replace(cfg, path="reference"))
        fast = attribute_neurons(lm, prompt, obj, replace(cfg, path="fast"))
        assert fast.path == "fast" and ref.path == "reference" and fast.layers == ref.layers
        assert _rel(fast.scores, ref.scores) < 1e-6
        assert torch.allclose(fast.activations, ref.activations, atol=1e-10)
        assert torch.allclose(fast.f_baseline, ref.f_baseline, atol=1e-10)
        assert torch.allclose(fast.deltas, ref.deltas, atol=1e-8)


@pytest.mark.parametrize("fam", ["bert", "bloom"])
def test_fast_path_equals_reference_float32(lm_of, fam):
    lm = lm_of(fam, torch.float32)
    prompt, obj = _case(lm)
    ref = attribute_neurons(lm, prompt, obj, AttributionConfig(path="reference"))
    fast = attribute_neurons(lm, prompt, obj, AttributionConfig(path="fast"))
    assert fast.scores.dtype == torch.float32 and _rel(fast.scores, ref.scores) < 1e-4


@pytest.mark.parametrize("fam", ["bert", "gpt2"])
def test_multi_token_object_sum_mode(lm_of, fam):
    lm = lm_of(fam)
    ids = (
        lm.token_ids("france" if fam == "bert" else " capital")[:1]
        + lm.token_ids("paris" if fam == "bert" else " of")[:1]
    )
    prompt = "the capital of [MASK] [MASK] ." if fam == "bert" else PROMPT["causal"]
    first = attribute_neurons(lm, prompt, ids, AttributionConfig(path="fast"))
    both = {
        p: attribute_neurons(lm, prompt, ids, AttributionConfig(target_token="sum", path=p))
        for p in ("reference", "fast")
    }
    assert both["fast"].target_ids == tuple(ids) and first.target_ids == tuple(ids[:1])
    assert len(set(both["fast"].target_positions)) == 2 and both["fast"].activations.shape == (2, 3, lm.d_mlp)
    assert both["fast"].target_positions[0] == first.target_positions[0]
    assert torch.allclose(both["fast"].activations[0], first.activations[0])
    assert _rel(both["fast"].scores, both["reference"].scores) < 1e-6
    assert _rel(both["fast"].scores, first.scores) > 1e-3  # the second token contributes


def test_unsupported_family_falls_back_to_reference(lm_of, monkeypatch):
    lm = lm_of("bert")
    monkeypatch.setattr(fast_ig, "FAMILIES", {})
    res = attribute_neurons(lm, *_case(lm), AttributionConfig(layers=(2,)))
    assert res.path == "reference"
    with pytest.raises(InputError, match="fast attribution path"):
        attribute_neurons(lm, *_case(lm), AttributionConfig(path="fast"))


# ---------------------------------------------------------------- batch API and input errors
def test_attribute_many_equals_single_calls(lm_of):
    lm = lm_of("bloom")
    prompts, objs = [PROMPT["causal"], "berlin is the capital of"], [" paris", " germany"]
    cfg = AttributionConfig(layers=(1, 2), memory_budget_mb=0.01)  # tiny budget: one step per Captum batch
    many = attribute_many(lm, prompts, objs, cfg)
    assert [r.prompt for r in many] == prompts and all(r.config == cfg for r in many)
    single = attribute_neurons(lm, prompts[1], objs[1], AttributionConfig(layers=(1, 2)))
    assert _rel(many[1].scores, single.scores) < 1e-10
    assert stack_scores(many).shape == (2, 2, lm.d_mlp)
    top = many[0].top(3)
    assert len(top) == 3 and top[0][0] in (1, 2) and top[0][2] == float(many[0].scores.max())


@pytest.mark.parametrize(
    "prompt, target, cfg, match",
    [
        ("no mask here .", "paris", AttributionConfig(), "mask tokens"),
        ("[MASK] [MASK] [MASK] .", "paris", AttributionConfig(), "mask tokens"),
        ("[MASK] .", [5, 6], AttributionConfig(target_token="sum"), "one mask per target token"),
        ("[MASK] .", "paris", AttributionConfig(layers=(3,)), "out of range"),
        ("[MASK] .", "paris", AttributionConfig(method="simpson"), "unknown method"),
        ("[MASK] .", "paris", AttributionConfig(n_steps=0), "n_steps"),
        ("[MASK] .", [], AttributionConfig(), "tokenizes to nothing"),
    ],
)
def test_bad_input_is_an_input_error(lm_of, prompt, target, cfg, match):
    with pytest.raises(InputError, match=match):
        attribute_neurons(lm_of("bert"), prompt, target, cfg)


# ---------------------------------------------------------------- benchmark smoke run
def test_benchmark_quick_smoke(monkeypatch, capsys):
    from bench_loader import run_benchmark

    run_benchmark("attribution", ["--quick", "--prompts", "2"], monkeypatch)
    out = capsys.readouterr().out
    assert out.count("ours, knowledge-neurons' rule (kn_linspace, 20 steps)") == 3 and "BLOOM" in out and "Gemma" in out
    last = out.strip().splitlines()[-1]
    m = re.fullmatch(
        r"attribution speed-up: same-rule ([0-9.]+)x, equal-accuracy ([0-9.]+)x, "
        r"max diff same-rule ([0-9.e+-]+)",
        last,
    )
    if importlib.util.find_spec("knowledge_neurons") is not None:  # installed: the comparison must run and agree
        assert "knowledge-neurons 0.0.2 get_scores" in out and m is not None and float(m.group(3)) < 1e-9, last
    else:  # not installed: the benchmark must say so instead of silently comparing nothing
        assert last == "attribution speed-up: same-rule n/a, equal-accuracy n/a, max diff same-rule n/a"
