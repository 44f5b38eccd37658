"""Suppressing / enhancing neuron sets at the target positions: identities and the table."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from capitals import CAPITALS, capital_lm, write_facts

from lrp2_interp.errors import InputError
from lrp2_interp.facts import FactSet
from lrp2_interp.lrp2.projection import LRP2Config, lrp2_hooks
from lrp2_interp.lrp2.vectors import LanguageVectors
from lrp2_interp.models.loading import LanguageModel
from lrp2_interp.neurons.causal import (
    COLUMNS,
    CausalConfig,
    CausalResult,
    causal_effect,
    gold_probability,
    gold_queries,
    scale_neurons_hooks,
    summarize_causal,
)
from lrp2_interp.neurons.sets import NeuronSet

pytestmark = pytest.mark.usefixtures("single_thread")  # tiny models run fastest on one thread


@pytest.fixture(scope="module")
def facts(tmp_path_factory) -> FactSet:
    return write_facts(tmp_path_factory.mktemp("facts"))


@pytest.fixture(scope="module", params=["bert", "gpt2"])
def lm(request, facts, tmp_path_factory) -> LanguageModel:
    return capital_lm(request.param, facts, tmp_path_factory.mktemp(request.param), n_layers=2)


def test_gold_queries_mark_where_object_tokens_are_predicted(lm, facts):
    for q, (_, _, _, obj) in zip(gold_queries(lm, facts, "en", target_token="all"), CAPITALS):
        assert len(q.targets) == len(q.gold) >= 1
        if lm.kind == "masked":
            assert all(q.input_ids[p] == lm.mask_token_id for p in q.targets)
            assert list(q.gold) == lm.token_ids(obj)
        else:  # teacher forcing: the token after each target (but the last) is the gold token
            assert q.targets[-1] == len(q.input_ids) - 1
            assert [q.input_ids[p + 1] for p in q.targets[:-1]] == list(q.gold[:-1])
            assert lm.tokenizer.decode(list(q.gold)).strip() == obj
    for q, full in zip(gold_queries(lm, facts, "en"), gold_queries(lm, facts, "en", target_token="all")):
        assert q.targets == full.targets[:1] and q.gold == full.gold[:1]  # "first" (the default)
        if lm.kind == "causal":
            assert q.input_ids == full.input_ids[: q.targets[0] + 1] and q.targets[0] == len(q.input_ids) - 1
    with pytest.raises(InputError, match="target_token"):
        gold_queries(lm, facts, "en", target_token="last")


def test_enhancing_by_one_is_the_identity(lm, facts):
    queries = gold_queries(lm, facts, "nl", target_token="all")
    base = gold_probability(lm, queries, batch_size=3)
    assert base.shape == (len(CAPITALS),) and ((base > 0) & (base < 1)).all()
    every = torch.ones(lm.n_layers, lm.d_mlp, dtype=torch.bool)
    same = gold_probability(lm, queries, masks=every, factor=1.0, batch_size=3)
    torch.testing.assert_close(same, base)
    changed = gold_probability(lm, queries, masks=every, factor=0.0)
    assert not torch.allclose(changed, base)


def test_suppressing_a_whole_layer_equals_zero_ablation(lm, facts):
    queries = gold_queries(lm, facts, "en", target_token="all")
    batch = lm.pad_ids([q.input_ids for q in queries])
    mask = torch.zeros(lm.n_layers, lm.d_mlp, dtype=torch.bool)
    mask[1] = True
    zero = [(lm.mlp_post(1), lambda x, hook: torch.zeros_like(x))]
    torch.testing.assert_close(lm.logits(batch, scale_neurons_hooks(lm, mask, 0.0)), lm.logits(batch, zero))
    # at the target positions only: same as zeroing the layer there
    target = torch.zeros(batch.input_ids.shape, dtype=torch.bool)
    for i, q in enumerate(queries):
        target[i, list(q.targets)] = True

    def zero_at_targets(x, hook):
        return x.masked_fill(target[:, :, None], 0.0)

    torch.testing.assert_close(
        lm.logits(batch, scale_neurons_hooks(lm, mask, 0.0, target)),
        lm.logits(batch, [(lm.mlp_post(1), zero_at_targets)]),
    )
    with pytest.raises(InputError, match="does not fit"):
        scale_neurons_hooks(lm, torch.ones(3, 5, dtype=torch.bool), 0.0)


def test_neuron_hooks_compose_with_lrp2(lm, facts):
    gen = torch.Generator().manual_seed(0)
    vectors = LanguageVectors(
        lm.name,
        lm.n_layers,
        lm.d_model,
        {
            "en": torch.randn(lm.n_layers, lm.d_model, generator=gen),
            "nl": torch.randn(lm.n_layers, lm.d_model, generator=gen),
        },
    )
    hooks = lrp2_hooks(lm, vectors, "nl", LRP2Config(0, 1))
    queries = gold_queries(lm, facts, "nl")
    with_lrp2 = gold_probability(lm, queries, fwd_hooks=hooks)
    assert not torch.allclose(with_lrp2, gold_probability(lm, queries))
    every = torch.ones(lm.n_layers, lm.d_mlp, dtype=torch.bool)
    torch.testing.assert_close(gold_probability(lm, queries, masks=every, factor=1.0, fwd_hooks=hooks), with_lrp2)


def test_causal_effect_table_and_random_control(lm, facts):
    sets = {
        ("P36", 1): NeuronSet(frozenset({(0, 1), (0, 2), (1, 3)})),
        ("P36", 2): NeuronSet(frozenset({(1, 0)})),
        ("P36", 3): NeuronSet(frozenset()),
    }  # fact 4 has no set: skipped
    v = torch.randn(lm.n_layers, lm.d_model, generator=torch.Generator().manual_seed(1))
    vectors = LanguageVectors(lm.name, lm.n_layers, lm.d_model, {"en": v, "nl": v.clone()})
    cfg = CausalConfig(n_random=1, seed=5)
    result = causal_effect(lm, facts, sets, "nl", vectors, LRP2Config(0, 1), config=cfg)
    assert isinstance(result, CausalResult)
    assert result.config == cfg and result.language == "nl" and result.lrp2 == LRP2Config(0, 1)
    table = result.table
    assert list(table.columns) == COLUMNS
    assert len(table) == 3 * 2 * (1 + 1) * 3  # (en, nl, nl+lrp2) x interventions x (knowledge + random) x facts
    assert set(table["lineid"]) == {1, 2, 3}
    assert (table.groupby("lineid")["n_neurons"].first().to_dict()) == {1: 3, 2: 1, 3: 0}
    empty = table[table["lineid"] == 3]
    np.testing.assert_allclose(empty["change"], 0.0, atol=1e-7)  # nothing to scale
    # v_nl == v_en: LRP2 is the identity, so its rows equal the baseline's
    nl = table[table["language"] == "nl"]
    base = nl[nl["condition"] == "baseline"].reset_index(drop=True)
    lrp = nl[nl["condition"] == "lrp2"].reset_index(drop=True)
    np.testing.assert_allclose(lrp["p_after"], base["p_after"], rtol=1e-5, atol=1e-7)
    # the random control is seeded: the same sets whatever the interventions
    again = causal_effect(lm, facts, sets, "nl", config=replace(cfg, interventions=(("suppress", 0.0),))).table
    assert causal_effect(lm, facts, sets, "nl", config=cfg).lrp2 is None
    first = table[(table["condition"] == "baseline") & (table["intervention"] == "suppress")].reset_index(drop=True)
    assert (again["neurons"] == first["neurons"]).all()
    chunked = causal_effect(lm, facts, sets, "nl", config=replace(cfg, batch_size=2)).table  # facts in two chunks
    np.testing.assert_allclose(
        chunked["p_after"], table[table["condition"] == "baseline"]["p_after"], rtol=1e-5, atol=1e-7
    )
    np.testing.assert_allclose(again["p_after"], first["p_after"], rtol=1e-5, atol=1e-7)
    summary = summarize_causal(table)
    assert {"mean_change", "mean_rel_change", "rel_change_vs_random"} <= set(summary.columns)
    assert len(summary) == 3 * 2 * 2
    assert result.summary().equals(summary)


def test_single_set_for_every_fact_and_errors(lm, facts):
    one = NeuronSet(frozenset({(0, 0)}))
    table = causal_effect(lm, facts, one, "nl", config=CausalConfig(n_random=0, interventions=(("x1", 1.0),))).table
    assert len(table) == 2 * len(CAPITALS) and set(table["neurons"]) == {"knowledge"}
    np.testing.assert_allclose(table["change"], 0.0, atol=1e-7)
    with pytest.raises(InputError, match="vectors"):
        causal_effect(lm, facts, one, "nl", None, LRP2Config(0, 1))
    with pytest.raises(InputError, match="no parallel fact"):
        causal_effect(lm, facts, {("P99", 1): one}, "nl")
