"""The full-grid LRP2 experiment's results folder: summary CSV with numeric estimates, markdown with ``12.3 [10.1, 14.5]``."""

from __future__ import annotations

import pandas as pd
import pytest

from lrp2_interp.lrp2.full_grid import ExperimentConfig, run_full_grid
from lrp2_interp.metrics import Estimate
from lrp2_interp.probing.probe import ProbeConfig

pytestmark = pytest.mark.usefixtures("single_thread")


def test_summary_csv_holds_numbers_and_the_markdown_the_intervals(bert_lm, fixture_facts, tmp_path):
    cfg = ExperimentConfig(
        languages=("fr",), layers=(0, 1), n_boot=30, probe=ProbeConfig(max_candidates=4), design="full-grid"
    )
    res = run_full_grid(bert_lm, fixture_facts, cfg, tmp_path, progress=False)
    disk = pd.read_csv(tmp_path / "summary.csv")
    md = (tmp_path / "summary.md").read_text()
    assert list(disk["language"]) == ["en", "fr"]
    for name in ("acc_baseline", "acc_oracle", "test_gain_heldout", "trans_baseline", "test_gain_random_control"):
        est = res.summary.loc[1, name]
        assert isinstance(est, Estimate), name
        assert (disk.loc[1, name], disk.loc[1, f"{name}_low"], disk.loc[1, f"{name}_high"]) == pytest.approx(
            (est.value, est.low, est.high), rel=1e-12
        ), name
        assert disk[f"{name}_low"].dtype == float and str(est) in md, name
    assert disk.loc[0, "acc_baseline"] == pytest.approx(res.summary.loc[0, "acc_baseline"].value)
    assert pd.isna(disk.loc[0, "acc_oracle"]) and pd.isna(disk.loc[0, "heldout_m"])  # English: no LRP2 columns
    assert disk.loc[1, "heldout_m"] == res.summary.loc[1, "heldout_m"]


def test_the_full_grid_writes_the_gallery_of_its_gain_heatmaps(bert_lm, fixture_facts, tmp_path):
    cfg = ExperimentConfig(
        languages=("fr",), layers=(0, 1), n_boot=10, probe=ProbeConfig(max_candidates=4), design="full-grid"
    )
    run_full_grid(bert_lm, fixture_facts, cfg, tmp_path, random_control=False, progress=False)
    text = (tmp_path / "figures.md").read_text(encoding="utf-8")
    assert "![LRP2 gain over the baseline for every (m, n), fr](sweep_fr_gain.png)" in text
    assert [p.name for p in tmp_path.rglob("*.png")] == ["sweep_fr_gain.png"]
