"""The command runner: results-folder guard, run.json written last, execution settings out of the manifest."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

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


def _speed_configs() -> dict[str, Any]:
    """A default instance of every config class with speed fields, by class name."""
    from lrp2_interp.attribution.ig_config import AttributionConfig
    from lrp2_interp.demo import DemoConfig
    from lrp2_interp.lrp2.similarity import SimilarityConfig
    from lrp2_interp.lrp2.sweep import SweepConfig
    from lrp2_interp.methods.alignment import AlignmentConfig
    from lrp2_interp.methods.lape import LapeConfig
    from lrp2_interp.neurons.causal import CausalConfig
    from lrp2_interp.probing.types import ProbeConfig

    configs = [
        AttributionConfig(),
        DemoConfig(),
        SimilarityConfig(),
        SweepConfig(language="fr"),
        AlignmentConfig(language="fr"),
        LapeConfig(),
        CausalConfig(),
        ProbeConfig(),
    ]
    return {type(c).__name__: c for c in configs}


def test_every_speed_field_is_an_execution_setting_of_its_config():
    configs = _speed_configs()
    assert set(configs) == set(SPEED_FIELDS)
    assert check_speed_fields([type(c) for c in configs.values()]) == []


#: a value of every execution setting that some config's speed field repeats, none of them a config's default
SPEED_VALUES = {
    "batch_size": 7,
    "memory_mb": 5,
    "memory_budget_mb": 3.0,
    "path": "reference",
    "engine": "per_pair",
    "device": "cuda:3",
}


def test_configure_reaches_every_speed_field():
    """Every SPEED_FIELDS entry is set by ExecutionConfig.configure, alone and nested in a mapping and a tuple."""
    from lrp2_interp.manifest import settings

    named = {field for fields in SPEED_FIELDS.values() for field in fields}
    assert named <= set(SPEED_VALUES), f"give a value for {sorted(named - set(SPEED_VALUES))}"
    execution = ExecutionConfig(**{name: SPEED_VALUES[name] for name in named})
    for name, config in _speed_configs().items():
        nested = execution.configure({"configs": (config,)})["configs"][0]
        for fed in (execution.configure(config), nested):
            for field in sorted(SPEED_FIELDS[name]):
                assert getattr(config, field) != SPEED_VALUES[field], f"{name}.{field}: pick a non-default value"
                assert getattr(fed, field) == SPEED_VALUES[field], f"configure does not set {name}.{field}"
            assert settings(fed) == settings(config), name  # the rest (what a manifest records) unchanged


def test_configure_sets_nested_speed_fields_and_leaves_the_rest():
    from lrp2_interp.attribution.ig_config import AttributionConfig
    from lrp2_interp.demo import DemoConfig
    from lrp2_interp.interventions.selection import SelectionConfig
    from lrp2_interp.methods.compare import CompareConfig
    from lrp2_interp.methods.lape import LapeConfig
    from lrp2_interp.methods.registry import MethodOptions
    from lrp2_interp.neurons.causal import CausalConfig
    from lrp2_interp.neurons.pipeline import KnowledgeConfig
    from lrp2_interp.probing.types import ProbeConfig

    probe = ProbeConfig(max_candidates=10, distractors="entity", seed=3)
    compare = CompareConfig(selection=SelectionConfig(max_dev=7, probe=probe), n_boot=99)
    options = MethodOptions(ridge=0.5, lape=LapeConfig(top_rate=0.02))
    knowledge = KnowledgeConfig(languages=("fr",), lrp2={"fr": (0, 2)}, attribution=AttributionConfig(n_steps=4))
    execution = ExecutionConfig(batch_size=8, memory_budget_mb=100.0)

    c, o, k = execution.configure((compare, options, knowledge))
    assert c == CompareConfig(
        selection=SelectionConfig(
            max_dev=7, probe=ProbeConfig(max_candidates=10, distractors="entity", seed=3, batch_size=8)
        ),
        n_boot=99,
    )
    assert c.selection.probe.memory_mb == 1024 and c.selection.probe.path == "fast"  # not given: unchanged
    assert o == MethodOptions(ridge=0.5, lape=LapeConfig(top_rate=0.02, batch_size=8))
    assert k.attribution == AttributionConfig(n_steps=4, memory_budget_mb=100.0)  # memory_budget_mb, not memory_mb
    assert k.causal == CausalConfig(n_random=3, batch_size=8)
    assert k.lrp2 == {"fr": (0, 2)} and k.languages == ("fr",) and k.neurons is knowledge.neurons
    assert execution.configure({"probe": probe, "n": 1}) == {"probe": dataclasses.replace(probe, batch_size=8), "n": 1}

    assert ExecutionConfig().configure(compare) is compare  # nothing to set: the object itself
    assert ExecutionConfig(batch_size=32).configure(probe) is probe  # already so
    demo = DemoConfig(n_boot=5)
    fed = ExecutionConfig(device="cuda:1", batch_size=8).configure(demo)
    assert fed == DemoConfig(n_boot=5, device="cuda:1") and fed.organism is demo.organism  # OrganismConfig: none


def test_batch_size_reaches_the_probe_config_through_configure(repo_model_dir, tmp_path, monkeypatch, capsys):
    import lrp2_interp.probing.probe as probing

    configured, probed = [], []
    configure, probe = ExecutionConfig.configure, probing.probe

    def configure_spy(self, config):
        out = configure(self, config)
        configured.append((config, out))
        return out

    def probe_spy(lm, facts, lang, cfg, **kw):
        probed.append(cfg)
        return probe(lm, facts, lang, cfg, **kw)

    monkeypatch.setattr(ExecutionConfig, "configure", configure_spy)
    monkeypatch.setattr(probing, "probe", probe_spy)
    out = tmp_path / "out"
    argv = ["probe", "--model", str(repo_model_dir("bert")), *FACTS, "--languages", "fr", "--out", str(out)]
    assert main([*argv, "--batch-size", "3", "--max-candidates", "4"]) == 0
    assert [c.batch_size for c in probed] == [3] and probed[0].max_candidates == 4
    (given, fed), *_ = configured
    assert given.batch_size == 32 and fed is probed[0]  # built with the default, set by configure
    first = (out / "manifest.json").read_text(encoding="utf-8")

    assert main([*argv, "--max-candidates", "4"]) == 0  # another batch size: the same run, resumed
    assert probed[1].batch_size == 32 and dataclasses.replace(probed[1], batch_size=3) == probed[0]
    assert (out / "manifest.json").read_text(encoding="utf-8") == first
    capsys.readouterr()


def test_a_manifest_leaves_out_the_speed_fields_of_configs():
    from lrp2_interp.manifest import settings
    from lrp2_interp.probing.types import ProbeConfig

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
