"""Knowledge-neuron selection on hand-made score tensors."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from lrp2_interp.errors import InputError
from lrp2_interp.files import write_table
from lrp2_interp.neurons.neuron_config import NeuronConfig
from lrp2_interp.neurons.neuron_selection import (
    coarse_mask,
    refine_mask,
    score_tensor,
    select_grouped,
    select_neurons,
    threshold_mask,
    topk_mask,
)
from lrp2_interp.neurons.sets import (
    NeuronSet,
    parse_unit,
    random_like,
    random_masks,
    sets_from_frame,
    sets_to_frame,
    unit_name,
)


def _scores() -> torch.Tensor:
    """[2 layers, 5 neurons]; max 10 at (1, 4)."""
    return torch.tensor([[1.0, 2.5, 2.0, -3.0, 0.0], [10.0 * 0.19, 5.0, 0.0, 2.0, 10.0]])


def test_coarse_threshold_on_hand_made_scores():
    ns = select_neurons(_scores(), NeuronConfig(threshold=0.2))
    # >= 0.2 x 10 = 2.0 over all layers: (0,1)=2.5, (0,2)=2.0 (equal counts), (1,1)=5, (1,3)=2, (1,4)=10
    assert ns.sites == {(0, 1), (0, 2), (1, 1), (1, 3), (1, 4)}
    assert ns.n_prompts == 1 and ns.scores[(1, 4)] == pytest.approx(10.0)
    assert list(ns.per_layer_counts(2)) == [2, 3]
    assert ns.layers == (0, 1)
    mask = ns.as_mask(2, 5)
    assert mask.shape == (2, 5) and mask.sum() == 5 and mask[1, 4] and not mask[1, 0]
    assert NeuronSet.from_mask(mask).sites == ns.sites


def test_threshold_is_relative_to_each_prompts_max_and_skips_nonpositive_prompts():
    scores = torch.stack([_scores(), 100 * _scores(), -torch.ones(2, 5)])  # [3, 2, 5]
    mask = threshold_mask(scores, 0.2)
    assert torch.equal(mask[0], mask[1])  # scale invariant
    assert not mask[2].any()  # max <= 0: nothing
    assert threshold_mask(scores, 0.0)[0].sum() == 9  # >= 0: every non-negative score


def test_topk_per_layer_per_prompt():
    mask = topk_mask(_scores().unsqueeze(0), 2)[0]
    assert mask.sum(1).tolist() == [2, 2]
    assert mask[0, 1] and mask[0, 2] and mask[1, 1] and mask[1, 4]
    assert topk_mask(_scores().unsqueeze(0), 99).all()  # k larger than d_mlp: everything


def test_refinement_keeps_exactly_neurons_in_at_least_p_of_prompts():
    # 4 prompts, 1 layer, 5 neurons; neuron j in 1..4 is selected in exactly j prompts
    scores = torch.zeros(4, 1, 5)
    for j in range(1, 5):
        scores[:j, 0, j] = 1.0
    scores[:, 0, 0] = 0.1  # below 0.2 x max in every prompt
    cfg = lambda p: NeuronConfig(threshold=0.2, share=p)  # noqa: E731
    assert select_neurons(scores, cfg(0.5)).sites == {(0, 2), (0, 3), (0, 4)}  # >= 2 of 4
    assert select_neurons(scores, cfg(0.75)).sites == {(0, 3), (0, 4)}  # >= 3 of 4
    assert select_neurons(scores, cfg(0.7)).sites == {(0, 3), (0, 4)}  # ceil(2.8) = 3
    assert select_neurons(scores, cfg(1.0)).sites == {(0, 4)}
    assert select_neurons(scores, cfg(0.0)).sites == {(0, 1), (0, 2), (0, 3), (0, 4)}  # at least one prompt
    assert select_neurons(scores, NeuronConfig(refine="none")).sites == {(0, 1), (0, 2), (0, 3), (0, 4)}
    freq = select_neurons(scores, cfg(0.5)).frequency
    assert freq[(0, 2)] == pytest.approx(0.5) and freq[(0, 3)] == pytest.approx(0.75)


def test_topk_then_most_frequent_over_all_layers():
    gen = torch.Generator().manual_seed(0)
    scores = torch.rand(6, 3, 20, generator=gen)
    scores[:, 2, 7] += 5.0  # always in the top-k of layer 2
    scores[:4, 0, 3] += 5.0  # in 4 of 6 prompts
    cfg = NeuronConfig(coarse="topk", top_k=2, refine="frequent", top_frequent=2, level="relation")
    assert cfg.frequent_scope == "all"
    ns = select_neurons(scores, cfg)
    assert ns.sites == {(2, 7), (0, 3)}
    counts = coarse_mask(scores, cfg).sum(0)
    assert refine_mask(coarse_mask(scores, cfg), scores, cfg).sum() == 2
    assert counts[2, 7] == 6 and counts[0, 3] >= 4


def _paper_scores() -> torch.Tensor:
    """``[3 prompts, 2 layers, 40]``: prompt p's top-20 of layer 0 are neurons 5p..5p+19, of layer 1 20..39."""
    scores = -torch.arange(40.0).expand(3, 2, 40) * 1e-3  # below every "top" neuron, all distinct
    scores = scores.clone()
    for p in range(3):
        scores[p, 0, 5 * p : 5 * p + 20] = 1.0 + torch.arange(20.0) * 1e-3
        scores[p, 1, 20:40] = 1.0 + torch.arange(20.0) * 1e-3
    return scores


def test_paper_preset_is_top20_per_layer_then_20_most_frequent_per_layer_per_relation():
    cfg = NeuronConfig.paper()
    assert cfg == NeuronConfig(
        coarse="topk", top_k=20, refine="frequent", top_frequent=20, level="relation", frequent_scope="layer"
    )
    scores = _paper_scores()
    coarse = coarse_mask(scores, cfg)
    assert coarse.sum((1, 2)).tolist() == [40, 40, 40]  # 20 per layer per prompt
    assert set(torch.nonzero(coarse[2, 0]).flatten().tolist()) == set(range(10, 30))
    # layer 0 counts: 10..19 in 3 prompts, 5..9 and 20..24 in 2, 0..4 and 25..29 in 1 -> the 20 most frequent
    ns = select_neurons(scores, cfg)
    assert ns.per_layer_counts(2).tolist() == [20, 20]
    assert {i for l, i in ns.sites if l == 0} == set(range(5, 25))
    assert {i for l, i in ns.sites if l == 1} == set(range(20, 40))
    # ranking over all layers at once keeps only 20 in total (the former preset's behaviour)
    pooled = select_neurons(scores, NeuronConfig(**{**cfg.__dict__, "frequent_scope": "all"}))
    assert len(pooled) == 20 and pooled.per_layer_counts(2).tolist() != [20, 20]
    # per relation: prompts of two relations are refined separately
    keys = [("P1", 1), ("P1", 2), ("P1", 3), ("P2", 4), ("P2", 5), ("P2", 6)]
    sets = select_grouped(torch.cat([scores, scores.flip(-1)]), keys, cfg)
    assert list(sets) == ["P1", "P2"] and sets["P1"].sites == ns.sites
    assert {i for l, i in sets["P2"].sites if l == 1} == set(range(0, 20))
    with pytest.raises(InputError, match="frequent_scope"):
        NeuronConfig(frequent_scope="x").validate()


def test_layers_of_partial_attribution_map_rows_to_model_layers():
    result = SimpleNamespace(scores=_scores(), layers=(4, 9))  # an attribution result of two layers
    ns = select_neurons(result)
    assert {layer for layer, _ in ns.sites} == {4, 9}
    assert list(ns.per_layer_counts(12)[[4, 9]]) == [2, 3]
    t, rows = score_tensor([result, result])
    assert t.shape == (2, 2, 5) and rows == (4, 9)
    with pytest.raises(InputError, match="3 layers given"):
        score_tensor(_scores(), layers=(0, 1, 2))
    with pytest.raises(InputError, match="shape"):
        score_tensor(torch.zeros(5))


def test_select_grouped_by_fact_and_by_relation():
    base = _scores()
    other = torch.zeros(2, 5)
    other[0, 0] = 1.0
    scores = torch.stack([base, base, other, other])  # 4 prompts
    facts = [("P36", 1), ("P36", 1), ("P36", 2), ("P30", 3)]
    by_fact = select_grouped(scores, facts, NeuronConfig(level="fact"), label="fr/")
    assert list(by_fact) == [("P36", 1), ("P36", 2), ("P30", 3)]
    assert by_fact[("P36", 1)].sites == select_neurons(base).sites
    assert by_fact[("P36", 2)].sites == {(0, 0)} and by_fact[("P36", 2)].label == "fr/P36:2"
    by_rel = select_grouped(scores, facts, NeuronConfig(level="relation", share=0.5))
    assert set(by_rel) == {"P36", "P30"}
    # P36 has 3 prompts: base twice (2/3 >= 0.5) and other once (1/3 < 0.5)
    assert by_rel["P36"].sites == select_neurons(base).sites and by_rel["P36"].n_prompts == 3
    assert unit_name(("P36", 2)) == "P36:2" and unit_name("P36") == "P36"
    with pytest.raises(InputError, match="fact keys"):
        select_grouped(scores, facts[:2])


def test_config_validation():
    with pytest.raises(InputError, match="share"):
        select_neurons(_scores(), NeuronConfig(share=1.5))
    with pytest.raises(InputError, match="coarse"):
        select_neurons(_scores(), NeuronConfig(coarse="best"))  # type: ignore[arg-type]


def test_random_sets_keep_per_layer_sizes_and_are_seeded():
    sizes = np.array([3, 0, 7, 16])
    masks = random_masks(sizes, 16, 50, seed=1)  # [50, 4, 16]
    assert masks.shape == (50, 4, 16)
    assert (masks.sum(-1) == torch.as_tensor(sizes)).all()
    assert torch.equal(masks, random_masks(sizes, 16, 50, seed=1))
    assert not torch.equal(masks, random_masks(sizes, 16, 50, seed=2))
    ns = select_neurons(_scores())
    rnd = random_like(ns, 3, 5, seed=0)
    assert list(rnd.per_layer_counts(3)) == list(ns.per_layer_counts(3))
    with pytest.raises(InputError):
        random_masks([17], 16, 1)


def test_to_frame_lists_sites_with_scores():
    df = select_neurons(_scores(), label="en/P36").to_frame()
    assert list(df.columns) == ["label", "layer", "neuron", "score", "frequency"]
    assert len(df) == 5 and (df["frequency"] == 1.0).all()
    assert df.set_index(["layer", "neuron"]).loc[(1, 4), "score"] == pytest.approx(10.0)


def test_selection_from_attribution_results(tmp_path):
    """The attribution module's results plug straight into select_neurons / select_grouped."""
    attribution = pytest.importorskip("lrp2_interp.attribution.attribute")
    from lrp2_interp.models.builders import RandomModelConfig, build_random_model
    from lrp2_interp.models.loading import load_model

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        corpus = [
            "The capital of France is Paris .",
            "Paris is the capital of France .",
            "The capital of Spain is Madrid .",
            "Madrid is the capital of Spain .",
        ]
        lm = load_model(
            build_random_model(
                RandomModelConfig(family="bert", n_layers=2), corpus, tmp_path / "m", tokenizer_vocab_size=200
            )
        )
        prompts = [f"The capital of {s} is {lm.mask_token} ." for s in ("France", "Spain")] + [
            f"{lm.mask_token} is the capital of {s} ." for s in ("France", "Spain")
        ]
        targets = ["Paris", "Madrid", "Paris", "Madrid"]
        cfg = attribution.AttributionConfig(n_steps=3, layers=(1,))
        results = attribution.attribute_many(lm, prompts, targets, cfg, progress=False)
    finally:
        torch.set_num_threads(before)
    keys = [("P36", 1), ("P36", 2), ("P36", 1), ("P36", 2)]
    per_fact = select_grouped(results, keys, NeuronConfig(share=1.0))
    assert set(per_fact) == {("P36", 1), ("P36", 2)}
    for key, ns in per_fact.items():
        assert ns.n_prompts == 2 and all(layer == 1 for layer, _ in ns.sites)
        alone = [select_neurons(r) for r, k in zip(results, keys) if k == key]
        assert ns.sites == alone[0].sites & alone[1].sites  # share=1.0: in both templates
    assert select_neurons(results[0]).sites <= {(1, i) for i in range(lm.d_mlp)}


def test_sets_frame_round_trip_keeps_empty_sets(tmp_path):
    sets = {
        ("fr", "lrp2", ("P36", 2)): select_neurons(_scores(), label="x"),
        ("fr", "baseline", "P30"): NeuronSet(frozenset()),
    }
    df = sets_to_frame(sets)
    assert list(df.columns[:5]) == ["language", "condition", "unit", "layer", "neuron"] and len(df) == 6
    write_table(tmp_path / "neurons.csv", df)
    back = sets_from_frame(pd.read_csv(tmp_path / "neurons.csv"))
    assert set(back) == set(sets)
    assert back[("fr", "lrp2", ("P36", 2))].sites == sets[("fr", "lrp2", ("P36", 2))].sites
    assert back[("fr", "lrp2", ("P36", 2))].scores[(1, 4)] == pytest.approx(10.0)
    assert len(back[("fr", "baseline", "P30")]) == 0
    assert parse_unit("P36:12") == ("P36", 12) and parse_unit("P36") == "P36"
