"""Layer numbering (block index vs the paper's 1-based layers) and the embedding-output shift point."""

from __future__ import annotations

import pytest
import torch

from lrp2_interp.errors import InputError
from lrp2_interp.layers import (
    EMBEDDINGS,
    block_index,
    check_shift_point,
    layer_label,
    layer_labels,
    paper_layer,
    shift_points,
)
from lrp2_interp.lrp2.projection import LRP2Config, lrp2_hooks, shifts
from lrp2_interp.lrp2.vectors import compute_language_vectors
from lrp2_interp.models.hooks import embed_hook, resid_post_hook, shift_point_hook
from lrp2_interp.prompts import prompt_corpus

pytestmark = pytest.mark.usefixtures("single_thread")


def test_paper_numbering_is_block_index_plus_one():
    assert [paper_layer(b) for b in (EMBEDDINGS, 0, 1, 11)] == [0, 1, 2, 12]
    assert [block_index(k) for k in (0, 1, 12)] == [EMBEDDINGS, 0, 11]
    assert shift_points(3) == (0, 1, 2) and shift_points(3, embeddings=True) == (-1, 0, 1, 2)
    assert layer_label(0) == "0 (L1)" and layer_label(EMBEDDINGS) == "emb (L0)" and layer_label(11) == "11 (L12)"
    assert layer_labels([0, 1.0, "all", float("nan")]) == ["0 (L1)", "1 (L2)", "all", "nan"]


def test_hook_of_each_shift_point():
    assert shift_point_hook(EMBEDDINGS) == embed_hook() == "blocks.0.hook_resid_pre"
    assert shift_point_hook(0) == resid_post_hook(0) == "blocks.0.hook_resid_post"
    assert check_shift_point(-1, 3) == -1 and check_shift_point(2, 3) == 2
    for bad in (-2, 3, 1.0, True):
        with pytest.raises(InputError, match="shift point"):
            check_shift_point(bad, 3)


@pytest.mark.parametrize("name", ["bert_lm", "gpt2_lm", "qwen2_lm", "gemma3"])
def test_embedding_hook_is_hf_hidden_state_zero_and_block_k_is_hidden_state_k_plus_one(request, name, tiny_model_dir):
    from lrp2_interp.models.loading import load_model

    lm = load_model(tiny_model_dir(name)) if name == "gemma3" else request.getfixturevalue(name)
    batch = lm.encode(["The capital of France is Paris ."])
    seen = {}
    hooks = [
        (lm.shift_point(b), (lambda x, hook, b=b: seen.__setitem__(b, x.detach().clone())))
        for b in shift_points(lm.n_layers, embeddings=True)
    ]
    lm.logits(batch, hooks)
    with torch.no_grad():
        hf = lm.bridge.original_model(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask, output_hidden_states=True
        ).hidden_states
    # the bridge-wrapped BERT records every layer's state twice: keep each state once
    hf = [h for i, h in enumerate(hf) if i == 0 or not torch.equal(h, hf[i - 1])]
    assert len(hf) == lm.n_layers + 1
    torch.testing.assert_close(seen[EMBEDDINGS], hf[0], atol=1e-5, rtol=1e-5)
    for b in range(lm.n_layers - 1):  # HF's last hidden state may carry the final norm
        torch.testing.assert_close(seen[b], hf[paper_layer(b)], atol=1e-5, rtol=1e-5)


def test_lrp2_at_the_embedding_output(bert_lm, fixture_facts):
    lm = bert_lm
    vec = compute_language_vectors(
        lm, {lg: prompt_corpus(fixture_facts, lg, lm) for lg in ("en", "fr")}, progress=False
    )
    assert set(vec.embeddings) == {"en", "fr"} and vec.embeddings["en"].shape == (lm.d_model,)
    cfg = LRP2Config(EMBEDDINGS, 1)
    delta = shifts(vec, "fr", cfg)
    torch.testing.assert_close(delta[EMBEDDINGS], vec.embeddings["en"] - vec.embeddings["fr"])
    hooks = lrp2_hooks(lm, vec, "fr", cfg)
    assert [name for name, _ in hooks] == ["blocks.0.hook_resid_pre", "blocks.1.hook_resid_post"]
    batch = lm.encode(["La capitale de la France est [MASK] ."])
    seen = {}
    lm.logits(batch, [(lm.shift_point(EMBEDDINGS), lambda x, hook: seen.__setitem__("clean", x.clone()))])
    lm.logits(batch, hooks + [(lm.shift_point(EMBEDDINGS), lambda x, hook: seen.__setitem__("shifted", x.clone()))])
    torch.testing.assert_close(seen["shifted"] - seen["clean"], delta[EMBEDDINGS].expand_as(seen["clean"]))
    assert len(lrp2_hooks(lm, vec, "fr", LRP2Config(EMBEDDINGS, EMBEDDINGS))) == 1  # m == n: one (identity) shift
    with pytest.raises(InputError, match="shift point"):
        LRP2Config(-2, 1).validate(lm.n_layers)


def test_sweep_tables_carry_paper_layer_numbers_and_accept_the_embedding_output(bert_lm, fixture_facts):
    from lrp2_interp.lrp2.sweep import SweepConfig, run_sweep
    from lrp2_interp.probing.probe import ProbeConfig

    lm = bert_lm
    facts = fixture_facts.parallel(["en", "fr"])
    vec = compute_language_vectors(lm, {lg: prompt_corpus(facts, lg, lm) for lg in ("en", "fr")}, progress=False)
    cfg = SweepConfig(language="fr", layers=(EMBEDDINGS, 0, 2), probe=ProbeConfig())
    assert cfg.pairs(lm.n_layers) == [(-1, 0), (-1, 2), (0, 2)]
    res = run_sweep(lm, facts, vec, cfg, progress=False)
    table = res.accuracy_table()
    cols = list(table.columns)
    assert cols[cols.index("n") + 1 : cols.index("n") + 3] == ["paper_m", "paper_n"]  # added next to m, n
    pairs = res.pairs_table()
    assert (pairs["paper_m"] == pairs["m"] + 1).all() and (pairs["paper_n"] == pairs["n"] + 1).all()
    assert pairs.loc[pairs["m"] == EMBEDDINGS, "paper_m"].tolist() == [0, 0]
    assert table.loc[table["condition"] == "baseline", "paper_m"].isna().all()
    with pytest.raises(InputError, match="out of range"):
        SweepConfig(language="fr", layers=(-2, 0)).pairs(lm.n_layers)


def test_vectors_without_an_embedding_row_refuse_the_embedding_shift_point(bert_lm):
    from lrp2_interp.lrp2.vectors import LanguageVectors

    v = torch.zeros(bert_lm.n_layers, bert_lm.d_model)
    old = LanguageVectors(bert_lm.name, bert_lm.n_layers, bert_lm.d_model, {"en": v, "fr": v})
    assert torch.equal(old.at("fr", 1), v[1])
    with pytest.raises(InputError, match="no embedding-output row"):
        old.at("fr", EMBEDDINGS)
    with pytest.raises(InputError, match="no language vector for 'de'"):
        old.at("de", EMBEDDINGS)
