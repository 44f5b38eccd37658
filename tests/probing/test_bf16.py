"""bfloat16 head with verified rankings: bf16 alone flips a constructed near-tie, the verified path gives float32's P@1."""

from __future__ import annotations

import dataclasses
import itertools

import pandas as pd
import pytest
import torch

from lrp2_interp.errors import InputError
from lrp2_interp.models.layer_runner import LayerRunner
from lrp2_interp.models.loading import load_model
from lrp2_interp.probing import verified
from lrp2_interp.probing.fast import fast_scores
from lrp2_interp.probing.head import head_logits
from lrp2_interp.probing.probe import ProbeConfig, probe, probe_scores
from lrp2_interp.probing.types import fact_pools, rank_rows
from lrp2_interp.prompts import candidate_rows

pytestmark = pytest.mark.usefixtures("single_thread")
BF16 = ProbeConfig(head_dtype="bfloat16")


def test_config_refuses_bad_head_dtype_and_margin():
    for kw, field in (
        ({"head_dtype": "float16"}, "head_dtype"),
        ({"verify_margin": -0.1}, "verify_margin"),
        ({"verify_margin": float("nan")}, "verify_margin"),
    ):
        with pytest.raises(InputError) as err:
            ProbeConfig(**kw)
        assert err.value.field == field
    assert ProbeConfig().head_dtype == "float32" and ProbeConfig().verify_margin == verified.BF16_MARGIN


@pytest.mark.parametrize("family", ["bert", "gpt2", "qwen2", "gemma3"])
def test_bf16_head_is_the_float32_head_rounded(tiny_model_dir, family):
    """Same weight, bias and soft-capping as the model's own head; float32 is the runner's head unchanged."""
    lm = load_model(tiny_model_dir(family))
    u = torch.randn(7, lm.d_model, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), LayerRunner(lm) as runner:
        ref = runner.logits(u)
        assert torch.equal(head_logits(runner, u, "float32"), ref)
        bf = head_logits(runner, u, "bfloat16")
    assert bf.dtype == torch.float32 and bf.shape == ref.shape
    err = (bf - ref).abs().max().item()
    assert 0 < err < 0.02 * max(1.0, ref.abs().max().item())


def _near_tie(lm, facts):
    """Make two candidates of P36 differ only by +0.01 on the later label's head bias (both made top-2).

    Their unembedding rows are made equal and bfloat16-exact (tied input embeddings too), and their
    biases 20 and 20.01, which round to the same bfloat16 number: bfloat16 scores tie (the earlier
    label wins), float32 prefers the later label by 0.01 nats.
    """
    fact = facts.facts_of("en", "P36")[0]
    tpl = facts.template("en", "P36").template
    golds = sorted({f.obj_label for f in facts.facts_of("en", "P36")})
    cands = sorted(facts.candidates("en", "P36"))

    def token_of(label):
        if lm.kind == "masked":
            ids = lm.token_ids(label)
            return ids[0] if len(ids) == 1 else None
        return candidate_rows(lm, tpl, fact.sub_label, [label])[0]

    for a, b in itertools.combinations(cands, 2):
        if a not in golds and b not in golds:
            continue
        ta, tb = token_of(a), token_of(b)
        if ta is None or tb is None:
            continue
        if lm.kind == "causal":
            diff = [i for i, (x, y) in enumerate(zip(ta, tb)) if x != y]
            if len(ta) != len(tb) or len(diff) != 1:
                continue
            ta, tb = ta[diff[0]], tb[diff[0]]
        break
    else:
        raise AssertionError("no pair of candidates differing in one token")
    with torch.no_grad(), LayerRunner(lm) as runner:
        w, bias = runner.unembed.weight, runner.unembed.bias
        w[tb] = w[ta] = w[ta].bfloat16().float()
        bias[ta], bias[tb] = 20.0, 20.01
        assert torch.tensor([20.0, 20.01]).bfloat16().unique().numel() == 1
    return a, b


@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_bf16_p1_equals_float32_where_bf16_alone_flips(tiny_model_dir, fixture_facts, family):
    lm = load_model(tiny_model_dir(family))  # a private copy: its head is edited
    facts = fixture_facts.restrict_relations(["P36"])
    early, late = _near_tie(lm, facts)
    order, _ = fact_pools(facts, "en", BF16)
    fp32 = pd.DataFrame(rank_rows(order, *fast_scores(lm, facts, "en", ProbeConfig())))
    raw = pd.DataFrame(rank_rows(order, *fast_scores(lm, facts, "en", BF16)))  # bf16, not verified
    assert (fp32["prediction"] == late).all() and (raw["prediction"] == early).all()
    assert not fp32["correct"].equals(raw["correct"])  # bf16 alone changes P@1
    got = probe(lm, facts, "en", BF16).table
    want = probe(lm, facts, "en", ProbeConfig()).table
    assert got["prediction"].equals(want["prediction"]) and got["correct"].equals(want["correct"])
    tight = probe(lm, facts, "en", dataclasses.replace(BF16, verify_margin=0.001)).table  # 0.01 > margin >= 0
    assert tight["correct"].equals(want["correct"])  # bf16 ties (margin 0) are always close calls


def test_close_calls_margin_and_merge():
    pools = {("P1", 1): ["a", "b", "c"], ("P1", 2): ["a", "b"], ("P1", 3): ["a"]}
    scores = {("P1", 1): {"a": -1.0, "b": -1.25, "c": -9.0}, ("P1", 2): {"a": -5.0, "b": -1.0}, ("P1", 3): {"a": 0.0}}
    keys = list(pools)
    assert verified.close_calls(keys, pools, scores, 0.25) == {("P1", 1)}
    assert verified.close_calls(keys, pools, scores, 0.24) == set()
    assert verified.close_calls(keys, pools, scores, 4.0) == {("P1", 1), ("P1", 2)}
    merged = verified.merge(scores, {("P1", 2): {"a": -0.5, "b": -1.0}})
    assert merged[("P1", 2)]["a"] == -0.5 and merged[("P1", 1)] == scores[("P1", 1)] and scores[("P1", 2)]["a"] == -5.0


def test_float32_head_never_rescores(monkeypatch, gpt2_lm, fixture_facts):
    def boom(*a, **k):
        raise AssertionError("re-scored under a float32 head")

    monkeypatch.setattr("lrp2_interp.probing.probe.verified_scores", boom)
    probe_scores(gpt2_lm, fixture_facts, "en", ProbeConfig(max_candidates=4))


def test_rescore_of_a_subset_equals_the_full_float32_scores(qwen2_lm, fixture_facts):
    cfg = ProbeConfig(max_candidates=5, head_dtype="bfloat16")
    order, pools = fact_pools(fixture_facts, "fr", cfg)
    _, full = probe_scores(qwen2_lm, fixture_facts, "fr", verified.float32_config(cfg), exact=True)
    some = order[1::3]
    got = verified.rescore(qwen2_lm, fixture_facts, "fr", some, pools, cfg, exact=True)
    assert set(got) == {(f.relation, f.lineid) for f in some}
    for key, row in got.items():
        for cand, s in row.items():
            assert s == pytest.approx(full[key][cand], abs=1e-5)
