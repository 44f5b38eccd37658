"""The generic causal-decoder fast path (fast/generic.py), many facts per pass (batch.py, fast/decoder_engine.py) and
adaptive steps."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from lrp2_interp.attribution.attribute import attribute_neurons
from lrp2_interp.attribution.fast import ig as fast_ig
from lrp2_interp.attribution.fast.family_parts import Hooks
from lrp2_interp.attribution.fast.generic import GenericDecoder
from lrp2_interp.attribution.ig_config import AttributionConfig
from lrp2_interp.errors import InputError
from lrp2_interp.lrp2.projection import LRP2Config, lrp2_hooks
from lrp2_interp.lrp2.vectors import LanguageVectors
from lrp2_interp.models.loading import load_model

pytestmark = pytest.mark.usefixtures("single_thread")

DECODERS = ["gemma3", "bloom", "gpt2", "qwen2"]
PROMPT, OBJECT = "the capital of france is", " paris"


@pytest.fixture(scope="module")
def lms(tmp_path_factory, tiny_corpus):
    """Tiny decoders of every family, block weights scaled x8 so the FFNs matter (float64)."""
    from transformers import AutoModelForCausalLM

    from lrp2_interp.models.builders import RandomModelConfig, build_random_model

    out = {}
    for fam in DECODERS:
        d = build_random_model(
            RandomModelConfig(fam, n_layers=3, d_model=32, n_heads=4, d_mlp=48),
            tiny_corpus,
            tmp_path_factory.mktemp(f"gen-{fam}"),
            tokenizer_vocab_size=300,
        )
        model = AutoModelForCausalLM.from_pretrained(d)
        with torch.no_grad():
            for name, param in model.named_parameters():
                if param.dim() == 2 and any(k in name for k in (".h.", ".layers.")):
                    param.mul_(8.0)
        model.save_pretrained(d)
        out[fam] = {dt: load_model(d, dtype=dt) for dt in (torch.float64, torch.float32)}
    return out


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("fam", DECODERS)
def test_every_decoder_takes_the_generic_path(lms, fam):
    lm = lms[fam][torch.float64]
    assert isinstance(fast_ig.fast_model(lm).family, GenericDecoder)
    assert attribute_neurons(lm, PROMPT, OBJECT, AttributionConfig(layers=(1,))).path == "fast"


@pytest.mark.parametrize("fam", DECODERS)
def test_generic_forward_matches_transformerlens_logits(lms, fam):
    lm = lms[fam][torch.float64]
    ids = torch.tensor([lm.tokenizer.bos_token_id] + lm.token_ids(PROMPT))
    fm = fast_ig.fast_model(lm)
    assert isinstance(fm.family, GenericDecoder)
    with torch.no_grad():
        cache = fm.family.clean(ids, Hooks())
        ours, theirs = fm.family.head(cache.final), lm.bridge(ids[None])[0]
    assert torch.allclose(ours, theirs, atol=1e-10) and theirs.abs().max() > 1e-3


def _vectors(lm) -> LanguageVectors:
    gen = torch.Generator().manual_seed(0)
    return LanguageVectors(
        lm.name,
        lm.n_layers,
        lm.d_model,
        {lang: torch.randn(lm.n_layers, lm.d_model, generator=gen, dtype=torch.float64) for lang in ("en", "fr")},
    )


def _double(act, hook=None):
    return 2 * act


@pytest.mark.parametrize("fam", DECODERS)
def test_generic_path_equals_reference_float64(lms, fam):
    """Scores, activations, baselines and deltas of the generic path equal TransformerLens + Captum, also with
    LRP2 hooks (all positions / the last one) and an FFN hook."""
    lm = lms[fam][torch.float64]
    vec = _vectors(lm)
    hook_sets = {
        "none": [],
        "lrp2 all": lrp2_hooks(lm, vec, "fr", LRP2Config(m=0, n=1)),
        "lrp2 last": lrp2_hooks(lm, vec, "fr", LRP2Config(m=0, n=2, positions=(-1,))),
        "mlp_post 1 doubled": [(lm.mlp_post(1), _double)],
    }
    plain = None
    for name, hooks in hook_sets.items():
        for cfg in (
            AttributionConfig(n_steps=6),
            AttributionConfig(n_steps=5, method="kn_linspace", log_prob=True, layers=(0, 2)),
        ):
            ref = attribute_neurons(lm, PROMPT, OBJECT, replace(cfg, path="reference"), fwd_hooks=hooks)
            fast = attribute_neurons(lm, PROMPT, OBJECT, replace(cfg, path="fast"), fwd_hooks=hooks)
            assert fast.path == "fast" and _rel(fast.scores, ref.scores) < 1e-6, (name, cfg.method)
            assert torch.allclose(fast.activations, ref.activations, atol=1e-10)
            assert torch.allclose(fast.f_baseline, ref.f_baseline, atol=1e-10)
            assert torch.allclose(fast.deltas, ref.deltas, atol=1e-8)
            if cfg.method == "riemann_left":
                plain = fast.scores if name == "none" else plain
                assert name == "none" or _rel(fast.scores, plain) > 1e-4, name  # the hooks changed the scores


def _layer_scaled(seen: set):
    """A hook that reads ``hook.name`` and calls ``hook.layer()`` (as TransformerLens HookPoints offer)."""

    def hook_fn(act, hook):
        seen.add((hook.name, hook.layer()))
        return act * (1.0 + 0.5 * hook.layer()) if ".mlp." in hook.name else act + 0.1 * (hook.layer() + 1)

    return hook_fn


def test_user_hooks_get_the_hook_point_on_generic_and_batched_paths(lms):
    """Gemma-3 (generic decoder path) and attribute_batch hand hooks the bridge's HookPoint, as the reference path
    does: same names seen, same scores."""
    from lrp2_interp.attribution.batch import attribute_batch

    lm = lms["gemma3"][torch.float64]
    cfg = AttributionConfig(n_steps=4)
    names = (lm.mlp_post(1), lm.resid_post(0), lm.resid_post(2))
    seen: dict[str, set] = {"reference": set(), "fast": set(), "batch": set()}
    res = {
        path: attribute_neurons(
            lm, PROMPT, OBJECT, replace(cfg, path=path), fwd_hooks=[(n, _layer_scaled(seen[path])) for n in names]
        )
        for path in ("reference", "fast")
    }
    items = [(PROMPT, OBJECT, [(n, _layer_scaled(seen["batch"])) for n in names]), ("the capital", " of", None)]
    (batched, _) = attribute_batch(lm, items, cfg, progress=False)
    assert res["fast"].path == "fast" and seen["fast"] == seen["reference"] == seen["batch"]
    assert {layer for _, layer in seen["fast"]} == {0, 1, 2}
    assert _rel(res["fast"].scores, res["reference"].scores) < 1e-6
    assert _rel(batched.scores, res["reference"].scores) < 1e-6
    plain = attribute_neurons(lm, PROMPT, OBJECT, cfg, progress=False)
    assert _rel(res["fast"].scores, plain.scores) > 1e-3


def test_generic_multi_token_sum_equals_reference(lms):
    lm = lms["gemma3"][torch.float64]
    ids = lm.token_ids(" capital")[:1] + lm.token_ids(" of")[:1]
    res = {
        p: attribute_neurons(lm, PROMPT, ids, AttributionConfig(target_token="sum", n_steps=4, path=p))
        for p in ("reference", "fast")
    }
    assert len(res["fast"].target_positions) == 2
    assert _rel(res["fast"].scores, res["reference"].scores) < 1e-6


# ---------------------------------------------------------------- adaptive steps
def test_adaptive_steps_meet_the_completeness_target_float32(lms):
    """Gemma-3 float32: the post-FFN RMSNorm puts the whole integral near alpha = 0; 8 Gauss-Legendre points
    miss 1e-4 and the adaptive rule raises the steps per layer until |delta| < 1e-4."""
    lm = lms["gemma3"][torch.float32]
    fixed = attribute_neurons(lm, PROMPT, OBJECT, AttributionConfig(n_steps=8, method="gausslegendre"))
    assert fixed.deltas.abs().max() > 1e-4 and fixed.steps == (8, 8, 8)
    cfg = AttributionConfig(n_steps=8, method="gausslegendre", target_delta=1e-4, max_steps=1024)
    adaptive = attribute_neurons(lm, PROMPT, OBJECT, cfg)
    assert adaptive.deltas.abs().max() < 1e-4
    assert min(adaptive.steps) == 8 or fixed.deltas.abs().min() > 1e-4
    assert max(adaptive.steps) > 8 and all(s in (8, 16, 32, 64, 128, 256, 512, 1024) for s in adaptive.steps)
    for i, s in enumerate(adaptive.steps):  # a layer's scores are those of a plain call at its steps
        plain = attribute_neurons(
            lm, PROMPT, OBJECT, AttributionConfig(n_steps=s, method="gausslegendre", layers=(adaptive.layers[i],))
        )
        assert torch.allclose(plain.scores[0], adaptive.scores[i], rtol=0, atol=1e-6 * float(plain.scores.abs().max()))


@pytest.mark.parametrize(
    "kw, match", [(dict(target_delta=0.0), "target_delta"), (dict(n_steps=20, max_steps=10), "max_steps")]
)
def test_adaptive_bad_settings_are_input_errors(lms, kw, match):
    with pytest.raises(InputError, match=match):
        attribute_neurons(lms["gemma3"][torch.float64], PROMPT, OBJECT, AttributionConfig(**kw))


# ---------------------------------------------------------------- many facts per pass
@pytest.mark.parametrize("fam", DECODERS)
def test_batched_facts_equal_one_at_a_time(lms, fam):
    """Prompts of different lengths, baseline and LRP2 conditions, a two-token target, in shared passes."""
    from lrp2_interp.attribution.batch import attribute_batch

    lm = lms[fam][torch.float64]
    hooks = lrp2_hooks(lm, _vectors(lm), "fr", LRP2Config(m=0, n=1, positions=(-1,)))
    two = lm.token_ids(" capital")[:1] + lm.token_ids(" of")[:1]
    items = [(PROMPT, OBJECT, None), ("the capital", " of", hooks), (PROMPT, OBJECT, hooks), ("capital", two, None)]
    assert len({len(lm.token_ids(p)) for p, _, _ in items}) == 3  # the passes need padding
    for cfg, per_pass in (
        (AttributionConfig(n_steps=5), 3),
        (
            AttributionConfig(n_steps=4, method="gausslegendre", target_delta=1e-8, target_token="sum", layers=(0, 2)),
            8,
        ),
    ):
        many = attribute_batch(lm, items, cfg, facts_per_pass=per_pass)
        assert [r.prompt for r in many] == [p for p, _, _ in items] and all(r.config == cfg for r in many)
        for (prompt, target, h), got in zip(items, many):
            one = attribute_neurons(lm, prompt, target, cfg, fwd_hooks=h)
            # HF upcasts attention softmax to float32: padded rows sum in another order (~1e-8 relative)
            assert _rel(got.scores, one.scores) < 1e-6, (prompt, cfg.method)
            assert torch.allclose(got.deltas, one.deltas, atol=1e-9) and got.steps == one.steps
            assert torch.allclose(got.f_baseline, one.f_baseline, atol=1e-10)
            assert torch.allclose(got.f_input, one.f_input, atol=1e-12)
            assert got.target_positions == one.target_positions and torch.equal(got.activations, one.activations)
        if cfg.target_delta is not None:
            assert any(max(r.steps) > 4 for r in many)


def test_batched_masked_lm_runs_one_at_a_time(tiny_model_dir):
    from lrp2_interp.attribution.batch import attribute_batch

    lm = load_model(tiny_model_dir("bert"))
    prompt = "Paris is the capital of [MASK] ."
    cfg = AttributionConfig(n_steps=3, layers=(1,))
    (got,) = attribute_batch(lm, [(prompt, "France", None)], cfg)
    assert torch.equal(got.scores, attribute_neurons(lm, prompt, "France", cfg).scores)
    with pytest.raises(InputError, match="facts_per_pass"):
        attribute_batch(lm, [(prompt, "France", None)], cfg, facts_per_pass=0)


# ---------------------------------------------------------------- the real model
def test_accuracy_benchmark_quick_smoke(monkeypatch, capsys):
    from bench_loader import run_benchmark

    bench = run_benchmark("attribution_accuracy", ["--quick", "--models", "mbert"], monkeypatch)
    out = capsys.readouterr().out
    rows = {
        line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| ") and "steps" not in line
    }
    assert set(rows) == set(bench.METHODS)
    # Captum's trapezoid weights sum to (n - 1) / n: at 5 steps the vector is ~20% short on a near-linear model
    l2_trapezoid_5 = float(rows["riemann_trapezoid"].split("|")[2].split("/")[0])
    assert 0.1 < l2_trapezoid_5 < 0.3
