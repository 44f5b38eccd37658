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


def test_the_full_grid_computes_without_writing_and_its_save_writes_the_runners_tables(
    bert_lm, fixture_facts, tmp_path, monkeypatch
):
    """full_grid writes nothing (computed vectors included); ExperimentResult.save writes what run_full_grid
    leaves, with the same bytes for every table."""
    from lrp2_interp.lrp2.full_grid import full_grid

    cfg = ExperimentConfig(
        languages=("fr",), design="full-grid", layers=(0, 1, 2), n_boot=20, probe=ProbeConfig(max_candidates=5)
    )
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    res = full_grid(bert_lm, fixture_facts, cfg, random_control=False, progress=False)
    assert res is not None and res.vectors is not None
    assert not any(tmp_path.rglob("*.*")), "the full grid wrote a file"
    saved = res.save(tmp_path / "saved")
    run_full_grid(bert_lm, fixture_facts, cfg, tmp_path / "run", random_control=False, progress=False)
    for name in ("summary.csv", "summary.md", "sweep_fr.csv", "probe_baseline.csv", "figures.md"):
        assert (saved / name).read_bytes() == (tmp_path / "run" / name).read_bytes(), name
    assert (saved / "vectors.safetensors").is_file() and (saved / "sweep_fr_gain.png").is_file()
