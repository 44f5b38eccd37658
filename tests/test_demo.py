"""The one-command demo on the offline organism (slow: trains the organism once, then cached)."""

from __future__ import annotations

import pandas as pd
import pytest

from lrp2_interp.cli.main import main


@pytest.mark.slow
def test_demo_command_writes_results_folder(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--languages", "fr", "ru", "--out", str(out)]) == 0
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["language"]) == ["en", "fr", "ru"]
    for col in (
        "acc_baseline",
        "test_acc_heldout",
        "test_gain_random_control",
        "jaccard_baseline",
        "jaccard_lrp2",
        "rel_same_baseline",
        "rel_diff_baseline",
        "rel_same_lrp2",
        "rel_diff_lrp2",
        "rel_chance",
    ):
        assert col in summary.columns
    md = (out / "summary.md").read_text()
    assert "| fr |" in md and "trained in" in md and "Table 2" in md
    for name in (
        "heatmap_shared_neurons_baseline.png",
        "heatmap_overlap_gain.png",
        "similarity.png",
        "lrp2/sweep_fr_gain.png",
        "neurons/ru/permutation_control.csv",
        "neurons/fr/causal.csv",
        "neurons/fr/relation_overlap_summary.csv",
        "neurons/fr/heatmap_relation_overlap.png",
    ):
        assert (out / name).is_file(), name
    # English sees every fact: the organism must have learned them (a broken training run fails here)
    en_acc = float(summary.loc[summary["language"] == "en", "acc_baseline"].iloc[0].split()[0])
    assert en_acc > 50.0
    assert "results written to" in capsys.readouterr().out
