"""LAPE language-specific neurons: entropy and selection by hand, hooks, effects, every family."""

from __future__ import annotations

import math

import pytest
import torch

from lrp2_interp.errors import InputError
from lrp2_interp.methods.controls import random_mask_like
from lrp2_interp.methods.lape import (
    ActivationStats,
    LapeConfig,
    activation_stats,
    lape_entropy,
    scale_hooks,
    select_language_neurons,
    steer_hooks,
)
from lrp2_interp.methods.lape_effects import (
    activation_shift,
    deactivation_table,
    fact_corpus,
    knowledge_overlap,
    language_loss,
    own_language_margin,
    shift_summary,
)
from lrp2_interp.models.loading import load_model
from lrp2_interp.neurons.sets import NeuronSet

pytestmark = pytest.mark.usefixtures("single_thread")


def test_entropy_by_hand():
    p = torch.tensor([[0.9, 0.0, 0.0], [0.2, 0.2, 0.2], [0.5, 0.5, 0.0], [0.0, 0.0, 0.0]])
    ent = lape_entropy(p)
    assert ent[0] == 0.0  # active in one language only
    assert ent[1] == pytest.approx(math.log(3))  # uniform over 3 languages
    assert ent[2] == pytest.approx(math.log(2))
    assert ent[3] == float("inf")  # never active: not a candidate


def _stats(probs):
    return ActivationStats(("en", "fr"), probs, torch.zeros_like(probs))


def test_selection_by_hand():
    # 1 layer x 10 neurons x 2 languages; neuron 0 fires only in fr, neuron 1 only in en, the rest everywhere a bit
    probs = torch.full((1, 10, 2), 0.1)
    probs[0, 0] = torch.tensor([0.0, 0.9])
    probs[0, 1] = torch.tensor([0.8, 0.0])
    probs[0, 2] = torch.tensor([0.7, 0.7])  # often active but in both: high entropy
    res = select_language_neurons(_stats(probs), LapeConfig(top_rate=0.2, filter_rate=0.85, activation_bar_ratio=0.85))
    assert res.selected[0].nonzero().flatten().tolist() == [0, 1]
    assert res.sites("fr") == {(0, 0)} and res.sites("en") == {(0, 1)}
    low_filter = select_language_neurons(
        _stats(probs), LapeConfig(top_rate=0.3, filter_rate=0.0, activation_bar_ratio=0.85)
    )
    assert low_filter.selected.sum() == 3  # the 10 % entropy-tied rest competes once unfiltered
    counts = res.counts()
    assert counts.set_index("language")["n_neurons"].to_dict() == {"en": 1, "fr": 1}


def test_config_checked():
    with pytest.raises(InputError, match="top_rate"):
        LapeConfig(top_rate=2.0)


@pytest.fixture(scope="module", params=["bert", "bloom", "gpt2", "qwen2", "gemma3"])
def lm(request, tiny_model_dir):
    return load_model(tiny_model_dir(request.param))


def test_probabilities_match_the_activation_sign(lm, fixture_facts):
    """P(act > 0) read at hook_pre equals the share of tokens whose activation (act_fn(pre)) is positive."""
    sents = fact_corpus(fixture_facts, "fr")[:6]
    stats = activation_stats(lm, {"fr": sents, "en": fact_corpus(fixture_facts, "en")[:6]})
    assert stats.probs.shape == (lm.n_layers, lm.d_mlp, 2) and ((stats.probs >= 0) & (stats.probs <= 1)).all()
    batch = lm.encode(sents)
    keep = lm.real_token_mask(batch)
    _, cache = lm.bridge.run_with_cache(batch.input_ids, attention_mask=batch.attention_mask)
    post = cache["blocks.0.mlp.hook_post"][keep]  # [tokens, d_mlp]
    if "blocks.0.mlp.hook_pre_linear" not in cache:  # ungated: post = act(pre), act > 0 iff pre > 0
        assert torch.allclose(stats.probs[0, :, 0], (post > 0).float().mean(0), atol=1e-6)
    assert torch.allclose(stats.means[0, :, 0], post.double().mean(0).float(), atol=1e-5)


def test_hooks_and_effects(lm, fixture_facts):
    facts = fixture_facts.parallel(["en", "fr", "ru"])
    corpora = {g: fact_corpus(facts, g) for g in ("en", "fr", "ru")}
    neurons = select_language_neurons(activation_stats(lm, corpora), LapeConfig(top_rate=0.05))
    base = language_loss(lm, facts, "fr")
    assert base > 0
    # factor 1 is the identity; deactivating everything changes the loss
    every = torch.ones(lm.n_layers, lm.d_mlp, dtype=torch.bool)
    assert language_loss(lm, facts, "fr", scale_hooks(lm, every, 1.0)) == pytest.approx(base, rel=1e-5)
    assert abs(language_loss(lm, facts, "fr", scale_hooks(lm, every, 0.0)) - base) > 1e-5  # random models: small
    assert steer_hooks(lm, neurons, "fr", strength=0.0) == []
    table = deactivation_table(lm, facts, neurons)
    assert len(table) == 3 * 2 * 3 and set(table["control"]) == {"lape", "random"}
    margin = own_language_margin(table)
    assert list(margin["deactivated"]) == ["en", "fr", "ru"]
    kn = NeuronSet(frozenset(neurons.sites("fr")) | {(0, 0)})
    ov = knowledge_overlap(neurons, {"kn_fr": kn})
    fr = ov[ov["language"] == "fr"].iloc[0]
    assert fr["shared"] == len(neurons.sites("fr")) and fr["n_knowledge"] == len(kn)
    shift = activation_shift(lm, neurons, corpora["fr"], steer_hooks(lm, neurons, "fr", mode="to_source"))
    assert set(shift_summary(shift).columns) >= {"p_before", "p_after", "change"}


def test_scale_hooks_zero_the_masked_neurons(gpt2_lm):
    lm = gpt2_lm
    mask = torch.zeros(lm.n_layers, lm.d_mlp, dtype=torch.bool)
    mask[1, [3, 5]] = True
    seen = {}
    read = [("blocks.1.mlp.hook_post", lambda x, hook: seen.__setitem__("x", x.clone()))]
    with torch.no_grad():
        lm.logits(lm.encode(["La capitale de Japon est Tokyo ."]), scale_hooks(lm, mask, 0.0) + read)
    assert seen["x"][..., [3, 5]].abs().max() == 0 and seen["x"][..., 4].abs().max() > 0
    with pytest.raises(InputError, match="shape"):
        scale_hooks(lm, mask[:1], 0.0)


def test_random_mask_keeps_per_layer_counts():
    mask = torch.zeros(3, 20, dtype=torch.bool)
    mask[0, :4] = True
    mask[2, 5:6] = True
    r = random_mask_like(mask, seed=1)
    assert r.sum(1).tolist() == [4, 0, 1] and not torch.equal(r, mask)
