"""Cosine similarity of parallel English / language-l queries per layer, with and without LRP2."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from capitals import CAPITALS, capital_lm, write_facts

from lrp2_interp.errors import InputError
from lrp2_interp.facts import FactSet
from lrp2_interp.lrp2.projection import LRP2Config
from lrp2_interp.lrp2.similarity import (
    COLUMNS,
    SimilarityConfig,
    SimilarityResult,
    centred_cosines,
    layer_cosines,
    linear_cka,
    parallel_prompts,
    similarity_by_layer,
    similarity_table,
    target_states,
)
from lrp2_interp.lrp2.vectors import LanguageVectors, compute_language_vectors
from lrp2_interp.models.loading import LanguageModel
from lrp2_interp.plots import similarity_plot
from lrp2_interp.prompts import prompt_corpus

pytestmark = pytest.mark.usefixtures("single_thread")  # tiny models run fastest on one thread


@pytest.fixture(scope="module")
def facts(tmp_path_factory) -> FactSet:
    return write_facts(tmp_path_factory.mktemp("facts"), reverse_nl=True)


@pytest.fixture(scope="module", params=["bert", "gpt2"])
def lm(request, facts, tmp_path_factory) -> LanguageModel:
    return capital_lm(request.param, facts, tmp_path_factory.mktemp(request.param), n_layers=3)


def test_parallel_prompts_are_aligned_by_lineid(lm, facts):
    prompts = parallel_prompts(lm, facts, ["en", "nl"])
    assert len(prompts["en"]) == len(prompts["nl"]) == len(CAPITALS)
    for (_, en, nl, _), p_en, p_nl in zip(CAPITALS, prompts["en"], prompts["nl"]):
        assert en in p_en and nl in p_nl
    assert sorted(prompts["en"]) == sorted(prompt_corpus(facts, "en", lm))


def test_self_similarity_is_one_at_every_layer(lm, facts):
    result = similarity_by_layer(lm, facts, "en", config=SimilarityConfig(position="both"))
    assert isinstance(result, SimilarityResult)
    assert result.languages == ("en",) and result.lrp2 == {"en": None} and result.config.position == "both"
    df = result.table
    assert list(df.columns) == COLUMNS
    assert len(df) == 2 * lm.n_layers and set(df["position"]) == {"mean", "target"}
    np.testing.assert_allclose(df["cosine"], 1.0, atol=1e-5)
    np.testing.assert_allclose(df["centred_cosine"], 1.0, atol=1e-5)  # identical sets: 1, not NaN or 0
    np.testing.assert_allclose(df["cka"], 1.0, atol=1e-5)
    assert (df["n_facts"] == len(CAPITALS)).all() and (df["condition"] == "baseline").all()


def test_lrp2_with_equal_vectors_leaves_similarity_unchanged(lm, facts):
    v = torch.randn(lm.n_layers, lm.d_model, generator=torch.Generator().manual_seed(0))
    vectors = LanguageVectors(lm.name, lm.n_layers, lm.d_model, {"en": v, "nl": v.clone()})
    result = similarity_by_layer(lm, facts, "nl", vectors, LRP2Config(0, 2), config=SimilarityConfig(position="both"))
    assert result.lrp2 == {"nl": LRP2Config(0, 2)}
    df = result.table
    assert len(df) == 2 * 2 * lm.n_layers
    base = df[df["condition"] == "baseline"].reset_index(drop=True)
    lrp = df[df["condition"] == "lrp2"].reset_index(drop=True)
    np.testing.assert_allclose(lrp["cosine"], base["cosine"], atol=1e-6)
    assert (lrp["m"] == 0).all() and (lrp["n"] == 2).all() and base["m"].isna().all()
    assert (base["cosine"] < 0.9999).any()  # en and nl prompts differ


def test_lrp2_moves_mean_states_towards_english(lm, facts):
    sentences = {lang: prompt_corpus(facts, lang, lm) for lang in ("en", "nl")}
    vectors = compute_language_vectors(lm, sentences, progress=False)
    df = similarity_by_layer(lm, facts, "nl", vectors, LRP2Config(0, 2)).table
    at_m = df[df["layer"] == 0].set_index("condition")["cosine"]
    assert at_m["lrp2"] > at_m["baseline"]  # language offset removed at layer m
    centred = df[df["layer"] == 0].set_index("condition")["centred_cosine"]
    assert centred["lrp2"] - centred["baseline"] > at_m["lrp2"] - at_m["baseline"]  # the centred cosine shows it more


def test_centred_cosine_and_cka_of_known_sets():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(6, 3, 16, generator=gen)  # [n facts, layers, d]
    centre = a.mean(0)
    np.testing.assert_allclose(centred_cosines(a, a, centre), 1.0, atol=1e-6)
    np.testing.assert_allclose(linear_cka(a, a), 1.0, atol=1e-6)
    # CKA ignores a rotation, a scale and a shift common to all facts; a different arrangement scores lower
    q, _ = torch.linalg.qr(torch.randn(16, 16, generator=gen))
    np.testing.assert_allclose(linear_cka(a, 3 * a @ q + 5), 1.0, atol=1e-5)
    assert (linear_cka(a, torch.randn(6, 3, 16, generator=gen)) < 0.9).all()
    # two languages that differ by an offset only: raw cosine near 1, centred cosine exposes the offset
    shared, offset = 50 * torch.ones(16), torch.zeros(16)
    offset[0] = 3.0
    en, fr = shared + offset + 0.1 * a, shared - offset + 0.1 * a
    both = (en.mean(0) + fr.mean(0)) / 2
    assert (layer_cosines(en, fr) > 0.99).all() and (centred_cosines(en, fr, both) < -0.5).all()
    # one fact: the centred states are zero, so the centred cosine is NaN (undefined), and so is CKA
    one = a[:1]
    assert centred_cosines(one, one, one.mean(0)).isnan().all() and linear_cka(one, one).isnan().all()
    with pytest.raises(InputError, match="shape"):
        centred_cosines(a, a[:2], centre)


def test_target_states_and_cosines_shapes(lm, facts):
    prompts = parallel_prompts(lm, facts, ["en", "nl"])
    states = target_states(lm, prompts["en"], batch_size=2)  # [n, L, d]
    assert states.shape == (len(CAPITALS), lm.n_layers, lm.d_model)
    cos = layer_cosines(states, states)
    assert cos.shape == (len(CAPITALS), lm.n_layers) and torch.allclose(cos, torch.ones_like(cos))
    with pytest.raises(InputError, match="shape"):
        layer_cosines(states, states[:2])


def test_table_plot_and_errors(lm, facts, tmp_path):
    result = similarity_table(lm, facts, ["en", "nl"])
    assert result.languages == ("en", "nl") and result.lrp2 == {"en": None, "nl": None}
    table = result.table
    assert set(table["language"]) == {"en", "nl"} and len(table) == 2 * lm.n_layers
    assert {"cosine", "centred_cosine", "centred_cosine_sd", "cka"} <= set(table.columns)
    png = similarity_plot(table, tmp_path / "similarity.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(pd.read_csv(tmp_path / "similarity.csv")) == len(table)
    result.to_csv(tmp_path / "table.csv")
    assert pd.read_csv(tmp_path / "table.csv")["cosine"].tolist() == pytest.approx(table["cosine"].tolist())
    with pytest.raises(InputError, match="vectors"):
        similarity_by_layer(lm, facts, "nl", None, LRP2Config(0, 1))
    with pytest.raises(InputError, match="not in the fact set"):
        similarity_by_layer(lm, facts, "xx")


def test_result_plots_onto_an_axes_with_integer_layer_ticks(lm, facts, tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    monkeypatch.chdir(tmp_path)
    result = similarity_table(lm, facts, ["nl"])
    frame = result.to_frame()
    assert frame.equals(result.table) and frame is not result.table
    fig, axes = plt.subplots(1, 3)
    try:
        for ax, measure in zip(axes, ("cosine", "centred_cosine", "cka")):
            assert result.plot(ax, measure=measure) is ax
            assert list(ax.get_xticks()) == list(range(lm.n_layers))  # integer ticks, one per layer
            assert [t.get_text() for t in ax.get_xticklabels()] == [f"{b} (L{b + 1})" for b in range(lm.n_layers)]
        assert "removing the mean over languages" in axes[1].get_title() and "CKA" in axes[2].get_title()
        new = result.plot()  # no ax: a new figure
        assert new.figure is not fig and new.get_ylabel() == "centred cosine"
        plt.close(new.figure)
    finally:
        plt.close(fig)
    assert list(tmp_path.iterdir()) == []  # plotting writes no file
    png = result.save(tmp_path / "out")
    assert png == tmp_path / "out" / "similarity.png" and png.read_bytes()[:4] == b"\x89PNG"
    assert list(pd.read_csv(tmp_path / "out" / "similarity.csv").columns) == COLUMNS
