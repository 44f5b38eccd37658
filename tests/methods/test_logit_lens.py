"""Logit lens: the last layer is the model's own output; queries, LRP2 composition and the plot, every family."""

from __future__ import annotations

import pytest
import torch

from lrp2_interp.errors import InputError
from lrp2_interp.lrp2.projection import LRP2Config, lrp2_hooks
from lrp2_interp.lrp2.vectors import compute_language_vectors
from lrp2_interp.methods.logit_lens import (
    decode_residual,
    lens_curve,
    lens_queries,
    logit_lens,
    plot_lens,
)
from lrp2_interp.models.loading import load_model
from lrp2_interp.prompts import prompt_corpus

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module", params=["bert", "bloom", "gpt2", "qwen2", "gemma3"])
def lm(request, tiny_model_dir):
    return load_model(tiny_model_dir(request.param))


def test_last_layer_equals_the_model_output(lm):
    batch = lm.encode(["La capitale de Japon est Tokyo .", "Kenya"])
    with torch.no_grad():
        logits, cache = lm.bridge.run_with_cache(batch.input_ids, attention_mask=batch.attention_mask)
        decoded = decode_residual(lm, cache[f"blocks.{lm.n_layers - 1}.hook_resid_post"])
    assert torch.allclose(decoded, logits, atol=1e-4)


def test_lens_table_and_last_layer_probabilities(lm, fixture_facts):
    table = logit_lens(lm, fixture_facts, "fr")
    queries = lens_queries(lm, fixture_facts, "fr")
    assert len(table) == len(queries) * lm.n_layers
    assert table["p_target"].between(0, 1).all() and table["p_source"].between(0, 1).all()
    # the last layer's probability is the model's own next-token (or mask) probability
    q = queries[0]
    batch = lm.encode([q.text])
    with torch.no_grad():
        probs = torch.softmax(lm.logits(batch).float(), -1)[0]
    pos = (
        int((batch.input_ids[0] == lm.mask_token_id).nonzero()[0])
        if lm.kind == "masked"
        else int(batch.attention_mask.sum()) - 1
    )
    last = table[
        (table["lineid"] == q.lineid) & (table["relation"] == q.relation) & (table["layer"] == lm.n_layers - 1)
    ]
    assert float(last["p_target"].iloc[0]) == pytest.approx(float(probs[pos, q.target_token]), rel=1e-4, abs=1e-7)
    assert float(last["p_source"].iloc[0]) == pytest.approx(float(probs[pos, q.source_token]), rel=1e-4, abs=1e-7)


def test_english_queries_read_the_same_token_twice(gpt2_lm, fixture_facts):
    table = logit_lens(gpt2_lm, fixture_facts, "en")
    assert table["same_token"].all()
    assert (table["p_target"] == table["p_source"]).all()
    with pytest.raises(InputError, match="same first token"):
        lens_curve(table)


def test_lrp2_changes_the_lens_and_the_plot(gpt2_lm, fixture_facts, tmp_path):
    lm = gpt2_lm
    vec = compute_language_vectors(lm, {g: prompt_corpus(fixture_facts, g, lm) for g in ("en", "fr")}, progress=False)
    base = logit_lens(lm, fixture_facts, "fr")
    shifted = logit_lens(
        lm, fixture_facts, "fr", fwd_hooks=lrp2_hooks(lm, vec, "fr", LRP2Config(0, 2)), condition="lrp2"
    )
    assert (base["layer"] == 0).any()
    b0, s0 = base[base.layer == 0]["p_target"].to_numpy(), shifted[shifted.layer == 0]["p_target"].to_numpy()
    assert not (abs(b0 - s0) < 1e-9).all()
    import pandas as pd

    both = pd.concat([base, shifted])
    curve = lens_curve(both, include_same_token=True)
    assert set(curve["condition"]) == {"baseline", "lrp2"} and len(curve) == 2 * 2 * lm.n_layers
    png = plot_lens(both, tmp_path / "lens.png", include_same_token=True)
    assert png.is_file() and png.with_suffix(".csv").is_file()
