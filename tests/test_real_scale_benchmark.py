"""The real-size scripts end to end on a tiny model and the shipped facts: table, last line, resume, neurons."""

from __future__ import annotations

import re

import pandas as pd
from bench_loader import run_benchmark

from lrp2_interp.facts import shipped_facts_root


def test_real_scale_then_neurons_on_a_tiny_model(repo_model_dir, tmp_path, monkeypatch, capsys):
    model = str(repo_model_dir("gpt2", n_layers=3))
    out = tmp_path / "rs"
    args = ["--model", model, "--facts", str(shipped_facts_root()), "--languages", "fr", "es", "--dev", "10"]
    args += ["--test", "12", "--first-rung", "4", "--controls", "2", "--threads", "1", "--n-boot", "50"]
    run_benchmark("real_scale", [*args, "--out", str(out)], monkeypatch)
    lines = capsys.readouterr().out.splitlines()
    last = lines[-1]
    assert re.fullmatch(
        r"real-scale: languages 2, test facts min 12, wall \d+\.\d min, work vs full grid \d+\.\d, "
        r"bf16 rank flips n/a \(float32\), control draws 2",
        last,
    ), last
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["language"]) == ["fr", "es"] and (summary["n_test"] == 12).all()
    facts = pd.read_parquet(out / "facts_fr.parquet")
    test_conditions = set(facts.loc[facts["split"] == "test", "condition"])
    wrong = {c for c in test_conditions if c.startswith("wrong language (")}
    assert len(wrong) == 1 and "(fr)" not in next(iter(wrong))  # the next language of the fact set
    assert test_conditions - wrong == {
        "baseline",
        "chosen",
        "source baseline",
        "matched control 0",
        "matched control 1",
    }
    assert (out / "summary.md").read_text().count("| fr |") >= 1

    before = (out / "summary.csv").read_text()
    run_benchmark("real_scale", [*args, "--out", str(out)], monkeypatch)  # resumed: every unit is stored
    assert (out / "summary.csv").read_text().split("wall_min")[0] == before.split("wall_min")[0]
    resumed = pd.read_csv(out / "summary.csv").drop(columns="wall_min")
    assert resumed.equals(summary.drop(columns="wall_min"))
    capsys.readouterr()

    nargs = ["--model", model, "--facts", str(shipped_facts_root()), "--results", str(out), "--languages", "fr"]
    nargs += ["--facts-per-language", "4", "--n-perm", "20", "--n-boot", "50", "--threads", "1"]
    run_benchmark("real_scale_neurons", [*nargs, "--out", str(tmp_path / "kn")], monkeypatch)
    last = capsys.readouterr().out.splitlines()[-1]
    assert re.fullmatch(
        r"real-scale neurons: languages 1, facts per language 4 \(Jaccard defined for (\d)-\1\), wall \d+\.\d min", last
    ), last
    kn = pd.read_csv(tmp_path / "kn" / "summary.csv")
    assert kn.loc[0, "chosen"] == summary.loc[0, "chosen"]
    assert kn.loc[0, "gain"] == kn.loc[0, "jaccard_lrp2"] - kn.loc[0, "jaccard_baseline"]
