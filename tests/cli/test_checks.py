"""Issue 11: the CLI never gives a silently wrong result, and bad input is one line, exit 2, nothing written."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pandas as pd
import pytest

from lrp2_interp.cli.main import REPO_DATA, main
from lrp2_interp.errors import InputError

SMALL = ["--facts", str(REPO_DATA), "--relations", "P36", "P30", "--max-facts", "5"]


@pytest.fixture(scope="module")
def bert(repo_model_dir) -> str:
    return str(repo_model_dir("bert"))


def _fails(argv, capsys, needle: str, out: Path | None = None) -> str:
    """``main(argv)`` exits 2 with one stderr line containing ``needle``; ``out`` is not created."""
    assert main(argv) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip() and "it/s]" not in ln]
    assert len(lines) == 1 and lines[0].startswith("lrp2-interp: error: "), lines
    assert needle in lines[0], lines[0]
    if out is not None:
        assert not out.exists(), f"{out} was written by a failed run"
    return lines[0]


ARGS = [  # (argv without --model/--out, needle)
    (["probe", "--languages", "en", "fr", "--relations", "P36", "--max-facts", "-2"], "--max-facts"),
    (["probe", "--languages", "fr", "fr", *SMALL], "fr given more than once"),
    (["probe", "--languages", "fr", "--relations", "P36", "P36"], "P36 given more than once"),
    (["sweep", "--language", "en", *SMALL], "source language"),
    (["run", "--languages", "en", "fr", *SMALL], "source language"),
    (["neurons", "--languages", "fr", "--lrp2", "fr=0,2", "zz=0,2", *SMALL], "zz"),
    (["similarity", "--languages", "fr", "--lrp2", "zz=0,2", *SMALL], "zz"),
    (["neurons", "--languages", "fr", "--lrp2", "fr=0,2", "fr=1,2", *SMALL], "given twice"),
    (["sweep", "--language", "fr", "--dev-fraction", "1", *SMALL], "--dev-fraction"),
    (["run", "--languages", "fr", "--dev-fraction", "0", *SMALL], "--dev-fraction"),
    (["run", "--languages", "fr", "--dev-fraction", "1.5", *SMALL], "--dev-fraction"),
    (["run", "--languages", "fr", "--n-boot", "0", *SMALL], "--n-boot"),
    (["run", "--languages", "fr", "--controls", "-1", *SMALL], "--controls"),
    (["run", "--languages", "fr", "--controls", "1001", *SMALL], "--controls"),
    (["run", "--languages", "fr", "--max-dev", "0", *SMALL], "--max-dev"),
    (["run", "--languages", "fr", "--max-test", "-3", *SMALL], "--max-test"),
    (["run", "--languages", "fr", "--first-rung", "0", *SMALL], "--first-rung"),
    (["run", "--languages", "fr", "--eta", "1", *SMALL], "--eta"),
    (["probe", "--languages", "fr", "--batch-size", "0", *SMALL], "--batch-size"),
    (["lape", "--kn-facts", "-1", *SMALL], "--kn-facts"),
    (["sweep", "--language", "fr", "--layers", "-2", "2", *SMALL], "--layers"),  # -1 is the embedding output
    (["probe", "--languages", "fr", "--device", "bogus", *SMALL], "--device"),
    (["probe", "--languages", "fr", "--device", "cuda:99", *SMALL], "--device"),
    (["attribute", "--prompt", "The capital of France is [MASK] .", "--target", "Paris", "--top", "-3"], "--top"),
    (["attribute", "--prompt", "x " * 20_001 + "[MASK]", "--target", "Paris"], "--prompt"),
    (
        ["attribute", "--prompt", "The capital of France is [MASK] .", "--target", "Paris", "--target-delta", "0"],
        "--target-delta",
    ),
    (
        ["attribute", "--prompt", "The capital of France is [MASK] .", "--target", "Paris", "--max-steps", "0"],
        "--max-steps",
    ),
]


@pytest.mark.parametrize("argv, needle", ARGS, ids=[" ".join(a[:3]) + f" [{n}]" for a, n in ARGS])
def test_bad_argument_is_one_line_before_any_work(bert, tmp_path, capsys, argv, needle):
    out = tmp_path / "out"
    _fails([argv[0], "--model", bert, *argv[1:], "--out", str(out)], capsys, needle, out)


def test_default_arguments_pass_the_checks(tmp_path):
    """``lape``'s default ``--kn-facts 0`` (no overlap) was refused as "must be at least 1": lape never ran
    without the option."""
    from lrp2_interp.cli.checks import check_args
    from lrp2_interp.cli.main import build_parser

    out = ["--out", str(tmp_path / "o")]
    for argv in (["lape", "--model", "m"], ["demo"], ["lens", "--model", "m", "--languages", "fr"]):
        check_args(build_parser().parse_args([*argv, *out]))
    check_args(build_parser().parse_args(["organism"]))
    with pytest.raises(InputError, match="--kn-facts"):
        check_args(build_parser().parse_args(["demo", "--kn-facts", "0", *out]))


def test_out_that_is_a_file_or_below_one(bert, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _fails(["probe", "--model", bert, "--languages", "fr", *SMALL, "--out", str(blocker)], capsys, "not a folder")
    _fails(["probe", "--model", bert, "--languages", "fr", *SMALL, "--out", str(blocker / "sub")], capsys, "is a file")


def test_out_not_writable_is_refused(bert, tmp_path, capsys, monkeypatch):
    """Checked with os.access (root can write anywhere, so the permission answer is simulated)."""
    import lrp2_interp.cli.checks as checks

    monkeypatch.setattr(checks.os, "access", lambda path, mode: False)
    _fails(
        ["probe", "--model", bert, "--languages", "fr", *SMALL, "--out", str(tmp_path / "o")],
        capsys,
        "not writable",
        tmp_path / "o",
    )


def test_attribute_target_of_unknown_tokens_only_and_overlong_prompt(bert, tmp_path, capsys):
    out = tmp_path / "a"
    _fails(
        [
            "attribute",
            "--model",
            bert,
            "--prompt",
            "The capital of France is [MASK] .",
            "--target",
            "\u0a2a\u0a70\u0a1c\u0a3e\u0a2c",
            "--out",
            str(out),
        ],
        capsys,
        "unknown token",
        out,
    )
    _fails(
        ["attribute", "--model", bert, "--prompt", "Paris " * 300 + "[MASK] .", "--target", "Paris", "--out", str(out)],
        capsys,
        "positions",
        out,
    )


def test_fact_longer_than_the_models_positions_names_the_file(bert, tmp_path, capsys):
    root = tmp_path / "facts"
    shutil.copytree(REPO_DATA, root)
    path = root / "fr" / "P36.jsonl"
    rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    rows[0]["sub_label"] = "Paris " * 300
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    line = _fails(
        [
            "probe",
            "--model",
            bert,
            "--facts",
            str(root),
            "--languages",
            "fr",
            "--relations",
            "P36",
            "--out",
            str(tmp_path / "o"),
        ],
        capsys,
        "positions",
        tmp_path / "o",
    )
    assert str(path) in line and f"lineid {rows[0]['lineid']}" in line


def test_missing_relative_model_path_is_not_a_hub_message(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = _fails(
        ["probe", "--model", "models/nope", "--languages", "fr", *SMALL, "--out", "o"], capsys, "no such model folder"
    )
    assert "\n" not in line


# ------------------------------------------------------------------ stale shards
def test_sweep_rerun_with_other_relations_is_refused_not_mixed(bert, tmp_path, capsys):
    """A sweep with --relations P30 after one with P36 P37 P30 reported the old table (exit 0)."""
    out = tmp_path / "sweep"
    base = [
        "sweep",
        "--model",
        bert,
        "--facts",
        str(REPO_DATA),
        "--language",
        "fr",
        "--max-facts",
        "5",
        "--layers",
        "0",
        "2",
        "--out",
        str(out),
    ]
    assert main([*base, "--relations", "P36", "P37", "P30"]) == 0
    capsys.readouterr()
    table = (out / "sweep_fr.csv").read_bytes()
    _fails([*base, "--relations", "P30"], capsys, "another run")
    _fails([*base[:-2], "--max-facts", "4", "--out", str(out), "--relations", "P36", "P37", "P30"], capsys, "facts")
    assert (out / "sweep_fr.csv").read_bytes() == table  # nothing overwritten
    assert main([*base, "--relations", "P36", "P37", "P30"]) == 0  # the same settings resume
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["facts"]["relations"] == ["P36", "P37", "P30"] and manifest["model"]["weights_sha256"]
    fresh = tmp_path / "fresh"
    assert main([*base[:-1], str(fresh), "--relations", "P30"]) == 0
    assert len(pd.read_csv(fresh / "sweep_fr.csv")) == 2  # baseline + (0, 2) on P30 only


def test_sweep_with_another_model_is_refused(repo_model_dir, bert, tmp_path, capsys):
    out = tmp_path / "sweep"
    args = ["sweep", "--language", "fr", *SMALL, "--layers", "0", "2", "--out", str(out)]
    assert main([args[0], "--model", bert, *args[1:]]) == 0
    capsys.readouterr()
    _fails([args[0], "--model", str(repo_model_dir("bloom")), *args[1:]], capsys, "model")


def test_shards_without_a_manifest_are_refused(bert, tmp_path, capsys):
    out = tmp_path / "old"
    (out / "shards").mkdir(parents=True)
    pd.DataFrame({"x": [1]}).to_parquet(out / "shards" / "fr-baseline.parquet")
    _fails(["sweep", "--model", bert, "--language", "fr", *SMALL, "--out", str(out)], capsys, "no manifest.json")


# ------------------------------------------------------------------ run.json, integer columns, file modes
def test_run_json_records_the_selection_and_time(bert, tmp_path):
    for cmd, extra in (
        ("probe", ["--languages", "en", "fr"]),
        ("sweep", ["--language", "fr", "--layers", "0", "2"]),
        ("similarity", ["--languages", "fr", "--lrp2", "fr=0,2"]),
    ):
        out = tmp_path / cmd
        assert main([cmd, "--model", bert, *extra, *SMALL, "--out", str(out)]) == 0
        meta = json.loads((out / "run.json").read_text())
        assert meta["command"] == cmd and meta["relations"] == ["P36", "P30"] and meta["max_facts"] == 5
        assert meta["languages"] and meta["seconds"] >= 0 and meta["version"]


def test_integer_columns_are_written_as_integers(bert, tmp_path):
    out = tmp_path / "run"
    assert (
        main(
            [
                "run",
                "--model",
                bert,
                "--languages",
                "fr",
                *SMALL,
                "--layers",
                "0",
                "2",
                "--n-boot",
                "20",
                "--design",
                "full-grid",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    sweep = (out / "sweep_fr.csv").read_text().splitlines()
    header = sweep[0].split(",")
    m, n = header.index("m"), header.index("n")
    assert [row.split(",")[m : n + 1] for row in sweep[1:]] == [["", ""], ["0", "2"]]
    summary = pd.read_csv(out / "summary.csv", dtype=str, keep_default_na=False)
    for col in ("heldout_m", "heldout_n", "oracle_m", "n_test", "n_facts"):
        assert all(v == "" or v.isdigit() for v in summary[col]), (col, list(summary[col]))
    meta = json.loads((out / "run.json").read_text())
    assert meta["complete"] is True and meta["relations"] == ["P36", "P30"] and meta["max_facts"] == 5
    assert meta["languages"] == ["fr"] and meta["seconds"] > 0


def test_held_out_summary_integers_and_a_changed_selection_setting_is_one_line(bert, tmp_path, capsys):
    """The default (held-out) run: chosen m and n and the counts are integers; rerunning into the same --out
    with another selection setting is refused in one line naming it, and leaves the results as they were."""
    out = tmp_path / "run"
    argv = ["run", "--model", bert, "--languages", "fr", *SMALL, "--n-boot", "20", "--out", str(out)]
    assert main([*argv, "--controls", "1"]) == 0
    summary = pd.read_csv(out / "summary.csv", dtype=str, keep_default_na=False)
    for col in ("chosen_m", "chosen_n", "n_dev", "n_test", "min_candidates"):
        assert all(v.lstrip("-").isdigit() for v in summary[col]), (col, list(summary[col]))
    assert json.loads((out / "run.json").read_text())["config"]["n_controls"] == 1
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != "run.json"}
    capsys.readouterr()
    line = _fails([*argv, "--controls", "2"], capsys, "differs in: config.n_controls")
    assert "another run" in line
    _fails([*argv, "--controls", "1", "--search", "oracle"], capsys, "differs in: config.search")
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != "run.json"} == before
    assert main([*argv, "--controls", "1"]) == 0  # the same settings resume


def test_results_follow_the_umask(bert, tmp_path):
    import os

    old = os.umask(0o022)
    try:
        out = tmp_path / "p"
        assert main(["probe", "--model", bert, "--languages", "fr", *SMALL, "--out", str(out)]) == 0
    finally:
        os.umask(old)
    for name in ("predictions.csv", "summary.csv", "run.json"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644, name


def _gurmukhi_objects(tmp_path: Path, language: str = "fr", relation: str = "P36") -> Path:
    root = tmp_path / "facts"
    shutil.copytree(REPO_DATA, root)
    path = root / language / f"{relation}.jsonl"
    rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    letters = "\u0a15\u0a16\u0a17\u0a18\u0a19\u0a1a\u0a1b\u0a1c\u0a1d\u0a1e"
    rows = [
        {**r, "obj_label": letters[i % 10] + letters[(i // 10) % 10] + letters[(i // 100) % 10], "obj_aliases": []}
        for i, r in enumerate(rows)
    ]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return root


def test_relation_in_a_script_the_tokenizer_lacks_is_refused(bert, tmp_path, capsys):
    """All objects [UNK]: every candidate scores the same and Acc is tie-breaking (was exit 0)."""
    root = _gurmukhi_objects(tmp_path)
    out = tmp_path / "o"
    line = _fails(
        [
            "sweep",
            "--model",
            bert,
            "--facts",
            str(root),
            "--language",
            "fr",
            "--relations",
            "P36",
            "--max-facts",
            "4",
            "--out",
            str(out),
        ],
        capsys,
        "unknown token only",
        out,
    )
    assert str(root / "fr" / "P36.jsonl") in line
    _fails(
        [
            "neurons",
            "--model",
            bert,
            "--facts",
            str(root),
            "--languages",
            "fr",
            "--lrp2",
            "fr=0,2",
            "--relations",
            "P36",
            "--max-facts",
            "4",
            "--steps",
            "2",
            "--out",
            str(out),
        ],
        capsys,
        "unknown token",
        out,
    )


def test_bad_sentence_files_fail_before_the_model_loads(tmp_path, capsys):
    """Non-UTF-8 bytes or a 2M-character line in a --sentences file: file and line, not a traceback."""
    bad, huge = tmp_path / "bad.txt", tmp_path / "huge.txt"
    bad.write_bytes(b"bonjour\n\xff\xfe caf\xe9\n")
    huge.write_text("a" * 2_000_000 + "\n", encoding="utf-8")
    out = tmp_path / "v" / "vec"
    # the model path does not exist: the sentence files must be refused before it is even looked at
    line = _fails(
        ["vectors", "--model", str(tmp_path / "no-model"), "--sentences", f"fr={bad}", "--out", str(out)],
        capsys,
        f"{bad}:2: not UTF-8",
    )
    line = _fails(
        ["vectors", "--model", str(tmp_path / "no-model"), "--sentences", f"fr={huge}", "--out", str(out)],
        capsys,
        f"{huge}:1: line is longer than",
    )
    assert not out.parent.exists() and line


def test_run_with_a_layer_out_of_range_writes_nothing(bert, tmp_path, capsys):
    out = tmp_path / "run"
    _fails(
        ["run", "--model", bert, "--languages", "fr", *SMALL, "--layers", "0", "9", "--out", str(out)],
        capsys,
        "out of range",
        out,
    )
