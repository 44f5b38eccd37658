"""preset="paper" / --paper: the paper's four choices in one go, end to end on tiny models."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from lrp2_interp.cli.main import REPO_DATA, main
from lrp2_interp.errors import InputError
from lrp2_interp.neurons.neuron_config import NeuronConfig
from lrp2_interp.presets import get_preset

pytestmark = pytest.mark.usefixtures("single_thread")
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "corpus" / "templates"
FACT_ARGS = ["--facts", str(REPO_DATA), "--relations", "P36", "P30", "--max-facts", "4"]


def test_presets():
    paper, default = get_preset("paper"), get_preset("default")
    assert paper.tokens == "all" and paper.neurons == NeuronConfig.paper()
    assert default.tokens == "real" and default.neurons == NeuronConfig()
    with pytest.raises(InputError, match="unknown preset"):
        get_preset("nope")


def test_vectors_command_paper_switch_with_a_corpus(repo_model_dir, tmp_path):
    out = tmp_path / "v"
    assert (
        main(
            [
                "vectors",
                "--model",
                str(repo_model_dir("bert")),
                "--corpus",
                str(SAMPLE),
                "--languages",
                "en",
                "fr",
                "--limit",
                "20",
                "--paper",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["tokens"] == "all"
    rec = meta["corpus_meta"]["fr"]
    assert rec["corpus"] == "templates" and rec["file"] == "train.en-fr.fr" and rec["n_used"] == 20
    assert len(rec["file_sha256"]) == 64 and len(rec["sha256"]) == 64
    assert (
        main(
            [
                "vectors",
                "--model",
                str(repo_model_dir("bert")),
                "--languages",
                "en",
                "fr",
                *FACT_ARGS,
                "--out",
                str(tmp_path / "d"),
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "d.json").read_text())["tokens"] == "real"


def test_neurons_command_paper_switch(repo_model_dir, tmp_path):
    out = tmp_path / "kn"
    assert (
        main(
            [
                "neurons",
                "--model",
                str(repo_model_dir("bert")),
                "--languages",
                "fr",
                "--lrp2",
                "fr=0,2",
                *FACT_ARGS,
                "--steps",
                "4",
                "--n-perm",
                "50",
                "--no-causal",
                "--paper",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    rel = pd.read_csv(out / "neurons_relation.csv")
    counts = rel.groupby(["language", "condition", "unit", "layer"]).size()
    assert (counts == 20).all() and len(counts) == 3 * 2 * 3  # (en, fr, fr+lrp2) x 2 relations x 3 layers
    summary = pd.read_csv(out / "relation_overlap_summary.csv")
    assert set(summary["condition"]) == {"baseline", "lrp2"}
    for col in ("same_overlap_rate", "different_overlap_rate", "chance_overlap_rate", "same_jaccard"):
        assert summary[col].between(0, 1).all(), col
    # with 20 of 64 neurons per layer on both sides the chance overlap rate is about 20/64
    assert summary["chance_overlap_rate"].iloc[0] == pytest.approx(20 / 64, abs=0.03)
    by_layer = pd.read_csv(out / "relation_overlap_by_layer.csv")
    assert list(by_layer["paper_layer"][:3]) == [1, 2, 3] and (by_layer["paper_layer"] == by_layer["layer"] + 1).all()
    assert (out / "heatmap_relation_overlap.png").is_file()
    assert "paper_layer" in pd.read_csv(out / "overlap_by_layer.csv").columns


def test_sweep_command_paper_switch_and_embedding_layer(repo_model_dir, tmp_path):
    out = tmp_path / "sweep"
    assert (
        main(
            [
                "sweep",
                "--model",
                str(repo_model_dir("bert")),
                "--language",
                "fr",
                *FACT_ARGS,
                "--layers",
                "-1",
                "0",
                "2",
                "--paper",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    table = pd.read_csv(out / "sweep_fr.csv")
    pairs = table[table["condition"] != "baseline"]
    assert list(zip(pairs["m"], pairs["n"])) == [(-1, 0), (-1, 2), (0, 2)]
    assert list(zip(pairs["paper_m"], pairs["paper_n"])) == [(0, 1), (0, 3), (1, 3)]
    assert (out / "sweep_fr_gain.png").is_file()
