"""End-to-end CLI runs on tiny local models: tables, heatmaps, run.json, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lrp2_interp.cli.main import REPO_DATA, main

FACT_ARGS = ["--facts", str(REPO_DATA), "--relations", "P36", "P30", "--max-facts", "8"]


@pytest.fixture(scope="module")
def model_dirs(repo_model_dir) -> dict[str, Path]:
    return {fam: repo_model_dir(fam) for fam in ("bert", "bloom")}


@pytest.mark.parametrize("family", ["bert", "bloom"])
def test_probe_command_writes_tables(model_dirs, tmp_path, capsys, family):
    out = tmp_path / "probe"
    assert (
        main(["probe", "--model", str(model_dirs[family]), "--languages", "en", "zh", *FACT_ARGS, "--out", str(out)])
        == 0
    )
    pred = pd.read_csv(out / "predictions.csv")
    assert set(pred["language"]) == {"en", "zh"}
    assert len(pred) == 2 * 16  # 8 facts x 2 relations x 2 languages
    assert (pred["rank"] >= 1).all() and (pred["rank"] <= pred["n_candidates"]).all()
    meta = json.loads((out / "run.json").read_text())
    assert meta["model_name"] == str(model_dirs[family]) and meta["seed"] == 0
    assert "results written to" in capsys.readouterr().out


def test_vectors_then_probe_with_lrp2(model_dirs, tmp_path):
    vec = tmp_path / "vec" / "v"
    assert (
        main(["vectors", "--model", str(model_dirs["bloom"]), "--languages", "en", "fr", *FACT_ARGS, "--out", str(vec)])
        == 0
    )
    assert vec.with_suffix(".safetensors").is_file() and vec.with_suffix(".json").is_file()
    out = tmp_path / "probe_lrp2"
    assert (
        main(
            [
                "probe",
                "--model",
                str(model_dirs["bloom"]),
                "--languages",
                "fr",
                *FACT_ARGS,
                "--lrp2",
                "0",
                "2",
                "--vectors",
                str(vec.with_suffix(".safetensors")),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert json.loads((out / "run.json").read_text())["lrp2"] == {"fr": [0, 2]}  # the deprecated form: every language


def test_sweep_command_writes_table_and_heatmap(model_dirs, tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["sweep", "--model", str(model_dirs["bert"]), "--language", "fr", *FACT_ARGS, "--out", str(out)]) == 0
    table = pd.read_csv(out / "sweep_fr.csv")
    assert len(table) == 1 + 3  # baseline + pairs (0,1) (0,2) (1,2)
    assert {"acc", "dev_acc", "test_acc", "gain"} <= set(table.columns)
    png = out / "sweep_fr_gain.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "held-out m=" in capsys.readouterr().out
    assert not list(out.rglob("*.tmp*")), "temporary files left behind"


def test_run_command_summary_of_the_full_grid(model_dirs, tmp_path):
    out = tmp_path / "run"
    assert (
        main(
            [
                "run",
                "--model",
                str(model_dirs["bloom"]),
                "--languages",
                "fr",
                "ru",
                *FACT_ARGS,
                "--n-boot",
                "50",
                "--design",
                "full-grid",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["language"]) == ["en", "fr", "ru"]
    md = (out / "summary.md").read_text()
    assert "held-out" in md and "| fr |" in md
    for lang in ("fr", "ru"):
        assert (out / f"sweep_{lang}_gain.png").is_file()


def test_run_command_defaults_to_the_held_out_design(model_dirs, tmp_path, capsys):
    """``run`` without --design: (m, n) searched on dev facts by successive halving; test facts probed only
    at the baseline, the chosen pair, the matched controls and the wrong-language control (+ English)."""
    out = tmp_path / "run"
    argv = ["run", "--model", str(model_dirs["bloom"]), "--languages", "fr", "ru", *FACT_ARGS]
    assert main([*argv, "--first-rung", "3", "--controls", "2", "--n-boot", "50", "--out", str(out)]) == 0
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["language"]) == ["fr", "ru"] and set(summary["search"]) == {"halving"}
    for lang, wrong in (("fr", "ru"), ("ru", "fr")):
        facts = pd.read_parquet(out / f"facts_{lang}.parquet")
        assert set(facts.loc[facts["split"] == "test", "condition"]) == {
            "baseline",
            "chosen",
            "source baseline",
            "matched control 0",
            "matched control 1",
            f"wrong language ({wrong})",
        }
        search = pd.read_csv(out / f"search_{lang}.csv")
        assert search["rung"].nunique() > 1 and search.loc[search["rung"] == 0, "n_dev"].iloc[0] == 3
        assert not (out / f"sweep_{lang}.csv").exists()
    printed = capsys.readouterr().out
    assert "held-out design" in printed and "the full grid (every pair on every fact) needs" in printed
    meta = json.loads((out / "run.json").read_text())
    assert meta["config"]["design"] == "heldout" and meta["complete"] is True and meta["work"]["full_grid"] > 0


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["probe", "--model", "/nonexistent/model", "--out", "x"], "/nonexistent/model"),
        (["probe", "--model", "MODEL", "--languages", "xx", "--out", "x"], "unknown language 'xx'"),
        (["probe", "--model", "MODEL", "--relations", "P999", "--out", "x"], "unknown relation 'P999'"),
        (["sweep", "--model", "MODEL", "--language", "fr", "--layers", "0", "7", "--out", "x"], "out of range"),
    ],
)
def test_bad_input_exits_2_with_one_line(model_dirs, tmp_path, capsys, argv, needle):
    argv = [str(model_dirs["bert"]) if a == "MODEL" else a for a in argv]
    argv[argv.index("--out") + 1] = str(tmp_path / "x")
    assert main(argv) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if "error" in ln.lower()]
    assert len(err) == 1 and needle in err[0] and err[0].startswith("lrp2-interp: error:")


def test_console_script_entry_point(model_dirs, tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.run(
        [sys.executable, "-m", "lrp2_interp.cli.main", "probe", "--model", "/nonexistent", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_attribute_defaults_follow_the_config_and_target_delta_is_met(repo_model_dir, tmp_path):
    """The CLI once hard-coded riemann_left x 20 steps (not the config's default) and had no adaptive steps."""
    from lrp2_interp.attribution.attribute import AttributionConfig

    out = tmp_path / "attr"
    assert (
        main(
            [
                "attribute",
                "--model",
                str(repo_model_dir("gemma3")),
                "--prompt",
                "The capital of France is",
                "--target",
                " Paris",
                "--target-delta",
                "1e-4",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    run = json.loads((out / "run.json").read_text())
    cfg = run["config"]
    assert (cfg["method"], cfg["n_steps"], cfg["target_delta"]) == (
        AttributionConfig().method,
        AttributionConfig().n_steps,
        1e-4,
    )
    deltas = pd.read_csv(out / "deltas.csv")
    assert deltas["delta"].abs().max() < 1e-4
