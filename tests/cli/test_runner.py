"""The command runner: results-folder guard, run.json written last, execution settings out of the manifest."""

from __future__ import annotations

import argparse
import dataclasses
import json

import pytest

from lrp2_interp.cli.main import REPO_DATA, main
from lrp2_interp.cli.runner import NOT_SETTINGS, Runner, cli_settings
from lrp2_interp.errors import InputError
from lrp2_interp.execution import SPEED_FIELDS, SPEED_OPTIONS, ExecutionConfig, check_speed_fields

FACTS = ["--facts", str(REPO_DATA), "--relations", "P36", "--max-facts", "3"]


def _args(out, **extra) -> argparse.Namespace:
    return argparse.Namespace(command="probe", out=str(out), overwrite=False, seed=0, **extra)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_the_runner_guards_the_folder_and_writes_run_json_complete_last(tmp_path, capsys):
    out = tmp_path / "out"
    with Runner(_args(out, max_candidates=5, batch_size=4)) as run:
        assert run.folder({"n": 1}) == out
        run.finish({"command": "probe", "complete": False, "n": 1}, report="the report")
    meta = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert meta == {"command": "probe", "n": 1, "complete": True} and list(meta)[-1] == "complete"
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "the report" and printed[1].startswith(f"results written to {out.resolve()} (")

    with Runner(_args(out, max_candidates=5, batch_size=99)) as run:  # a speed-only option: the same run
        run.folder({"n": 1})
    assert json.loads((out / "run.json").read_text(encoding="utf-8"))["complete"] is False  # under way again
    with pytest.raises(InputError, match=r"differs in: options.max_candidates: 5 -> 6"):
        Runner(_args(out, max_candidates=6, batch_size=4)).folder({"n": 1})
    with pytest.raises(InputError, match=r"config.n: 1 -> 2"):
        Runner(_args(out, max_candidates=5)).folder({"n": 2})
    args = _args(out, max_candidates=6)
    args.overwrite = True
    Runner(args).folder({"n": 2})
    assert not (out / "run.json").exists()  # started clean


def test_execution_settings_are_the_speed_only_options():
    assert {f.name for f in dataclasses.fields(ExecutionConfig)} == SPEED_OPTIONS <= NOT_SETTINGS
    assert "dtype" not in SPEED_OPTIONS  # dtype changes numbers: recorded in the manifest as the model's dtype
    args = argparse.Namespace(
        command="probe", device="cuda:1", batch_size=8, threads=2, max_memory=["0=1GiB"], max_candidates=5, dtype="x"
    )
    assert cli_settings(args) == {"max_candidates": 5}
    execution = ExecutionConfig.from_options(args)
    assert (execution.device, execution.batch_size, execution.threads) == ("cuda:1", 8, 2)
    assert execution.max_memory == ("0=1GiB",) and ExecutionConfig.from_options(argparse.Namespace()).device == "cpu"


def test_every_speed_field_is_an_execution_setting_of_its_config():
    from lrp2_interp.attribution.ig_config import AttributionConfig
    from lrp2_interp.demo import DemoConfig
    from lrp2_interp.lrp2.similarity import SimilarityConfig
    from lrp2_interp.lrp2.sweep import SweepConfig
    from lrp2_interp.methods.alignment import AlignmentConfig
    from lrp2_interp.methods.lape import LapeConfig
    from lrp2_interp.neurons.causal import CausalConfig
    from lrp2_interp.probing.types import ProbeConfig

    classes = [
        AttributionConfig,
        DemoConfig,
        SimilarityConfig,
        SweepConfig,
        AlignmentConfig,
        LapeConfig,
        CausalConfig,
        ProbeConfig,
    ]
    assert {c.__name__ for c in classes} == set(SPEED_FIELDS)
    assert check_speed_fields(classes) == []


def test_a_manifest_leaves_out_the_speed_fields_of_configs():
    from lrp2_interp.probing.types import ProbeConfig
    from lrp2_interp.store import settings

    recorded = settings(ProbeConfig(batch_size=3, memory_mb=5, path="reference"))
    assert not {"batch_size", "memory_mb", "path"} & set(recorded) and "max_candidates" in recorded


def test_vectors_into_one_output_with_other_settings_are_refused_or_started_clean(repo_model_dir, tmp_path, capsys):
    vec = tmp_path / "v"
    argv = ["vectors", "--model", str(repo_model_dir("bert")), *FACTS, "--languages", "en", "fr", "--out", str(vec)]
    assert main(argv) == 0
    first = vec.with_suffix(".safetensors").read_bytes()
    assert (tmp_path / "v.manifest.json").is_file()
    capsys.readouterr()

    assert main([*argv, "--tokens", "all"]) == 2  # other settings into the same output
    err = _one_error_line(capsys)
    assert "another run" in err and "tokens" in err and "--overwrite" in err
    assert vec.with_suffix(".safetensors").read_bytes() == first  # a refused run writes nothing

    assert main(argv) == 0  # the same settings: accepted (computed again)
    assert main([*argv, "--tokens", "all", "--overwrite"]) == 0
    assert json.loads((tmp_path / "v.manifest.json").read_text(encoding="utf-8"))["options"]["tokens"] == "all"
    capsys.readouterr()
    assert main([*argv, "--tokens", "all"]) == 0  # the new run again: accepted
    capsys.readouterr()
    assert main(argv) == 2
    assert "tokens" in _one_error_line(capsys)


def test_vectors_without_a_manifest_are_not_replaced_silently(repo_model_dir, tmp_path, capsys):
    vec = tmp_path / "v"
    vec.with_suffix(".safetensors").write_bytes(b"made by an older version")
    argv = ["vectors", "--model", str(repo_model_dir("bert")), *FACTS, "--languages", "en", "--out", str(vec)]
    assert main(argv) == 2
    assert "settings unknown" in _one_error_line(capsys)
    assert main([*argv, "--overwrite"]) == 0
