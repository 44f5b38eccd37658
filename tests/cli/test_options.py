"""Options generated from config dataclasses: types, choices, defaults, the config built back, and no drift."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

from lrp2_interp.attribution.attribute import AttributionConfig
from lrp2_interp.cli.main import command_parsers
from lrp2_interp.cli.options import ConfigOptions, Option, field_default
from lrp2_interp.demo import DemoConfig
from lrp2_interp.execution import SPEED_OPTIONS, ExecutionConfig
from lrp2_interp.interventions.selection import SelectionConfig
from lrp2_interp.lrp2.full_grid import ExperimentConfig
from lrp2_interp.lrp2.projection import LRP2Config
from lrp2_interp.lrp2.sweep import SweepConfig
from lrp2_interp.methods.compare import CompareConfig
from lrp2_interp.methods.lape import LapeConfig
from lrp2_interp.methods.registry import MethodOptions
from lrp2_interp.neurons.neuron_config import NeuronConfig
from lrp2_interp.neurons.pipeline import KnowledgeConfig
from lrp2_interp.organism.train import OrganismConfig
from lrp2_interp.probing.types import ProbeConfig

Mode = Literal["a", "b"]


@dataclass(frozen=True)
class Toy:
    name: str
    steps: int = 8
    rate: float | None = None
    mode: Mode = "b"
    layers: tuple[int, ...] | None = None
    sizes: tuple[float, ...] = (0.5, 1.0)
    verbose: bool = False
    table: dict[str, int] = field(default_factory=dict)
    loud: bool = True


TOY = ConfigOptions(
    Toy,
    (
        Option("name"),
        Option("steps", flag="--n", help="steps"),
        Option("rate"),
        Option("mode"),
        Option("layers"),
        Option("sizes"),
        Option("verbose"),
    ),
)


def _toy_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(exit_on_error=False)
    TOY.add_to(p)
    return p


def test_options_take_type_choices_and_default_from_the_dataclass():
    p = _toy_parser()
    assert TOY.build(p.parse_args(["--name", "x"])) == Toy("x")
    args = p.parse_args(
        ["--name", "x", "--n", "3", "--rate", "0.25", "--mode", "a", "--layers", "1", "-1", "--sizes", "2", "--verbose"]
    )
    assert TOY.build(args) == Toy("x", 3, 0.25, "a", (1, -1), (2.0,), True)
    assert isinstance(args.n, int) and isinstance(args.sizes[0], float)
    assert TOY.defaults() == {
        "name": None,
        "n": 8,
        "rate": None,
        "mode": "b",
        "layers": None,
        "sizes": [0.5, 1.0],
        "verbose": False,
    }


@pytest.mark.parametrize("argv", [[], ["--name", "x", "--mode", "c"], ["--name", "x", "--n", "1.5"]])
def test_missing_required_or_bad_values_are_refused_by_argparse(argv):
    with pytest.raises((argparse.ArgumentError, SystemExit)):
        _toy_parser().parse_args(argv)


def test_build_fixes_the_fields_without_options():
    args = _toy_parser().parse_args(["--name", "x"])
    assert TOY.build(args, table={"k": 1}).table == {"k": 1}


@pytest.mark.parametrize("name", ["table", "loud"])
def test_fields_that_cannot_be_options_are_refused(name):
    with pytest.raises(TypeError, match=name):
        ConfigOptions(Toy, (Option(name),)).add_to(argparse.ArgumentParser())


def test_unknown_field_is_refused():
    with pytest.raises(KeyError, match="nope"):
        ConfigOptions(Toy, (Option("nope"),)).add_to(argparse.ArgumentParser())
    with pytest.raises(KeyError, match="nope"):
        field_default(Toy, "nope")


# ------------------------------------------------------------------ no drift between the CLI and the configs
#: --batch-size is not here: an execution setting (default None), fed into the configs by ExecutionConfig.configure
PROBE = {"max_candidates": (ProbeConfig, "max_candidates")}
PROBE["decoder_score"] = (ProbeConfig, "decoder_score")
ATTRIBUTION = {
    "steps": (AttributionConfig, "n_steps"),
    "method": (AttributionConfig, "method"),
    "target_delta": (AttributionConfig, "target_delta"),
    "max_steps": (AttributionConfig, "max_steps"),
    "log_prob": (AttributionConfig, "log_prob"),
    "target_token": (AttributionConfig, "target_token"),
}
ORGANISM = {
    "facts": (OrganismConfig, "facts_root"),
    "kind": (OrganismConfig, "kind"),
    "epochs": (OrganismConfig, "epochs"),
    "organism_seed": (OrganismConfig, "seed"),
}
COMPARE = {
    **PROBE,
    "seed": (CompareConfig, "seed"),
    "source": (MethodOptions, "source"),
    "layers": (MethodOptions, "lrp2_layers"),
    "sigmas": (MethodOptions, "sigmas"),
    "site": (MethodOptions, "site"),
    "ridge": (MethodOptions, "ridge"),
    "rule": (MethodOptions, "rule"),
    "strengths": (MethodOptions, "strengths"),
    "steer_layers": (MethodOptions, "steer_layers"),
    "alphas": (MethodOptions, "alphas"),
    "dev_fraction": (SelectionConfig, "dev_fraction"),
    "max_dev": (SelectionConfig, "max_dev"),
    "max_test": (SelectionConfig, "max_test"),
    "search": (SelectionConfig, "search"),
    "n_controls": (SelectionConfig, "n_controls"),
    "n_boot": (CompareConfig, "n_boot"),
    "top_rate": (LapeConfig, "top_rate"),
}
#: subcommand -> (its minimal argv, {dest: (config, field)} for every option that mirrors a config field)
MIRRORS: dict[str, tuple[list[str], dict[str, tuple[type, str]]]] = {
    "probe": (
        ["--model", "m", "--out", "o"],
        {**PROBE, "seed": (ProbeConfig, "seed"), "source": (LRP2Config, "source")},
    ),
    "vectors": (["--model", "m", "--out", "o"], {}),
    "sweep": (
        ["--model", "m", "--language", "fr", "--out", "o"],
        {
            **PROBE,
            "seed": (SweepConfig, "seed"),
            "language": (SweepConfig, "language"),
            "source": (SweepConfig, "source"),
            "layers": (SweepConfig, "layers"),
            "dev_fraction": (SweepConfig, "dev_fraction"),
            "unit_facts": (SweepConfig, "unit_facts"),
        },
    ),
    "run": (
        ["--model", "m", "--out", "o"],
        {
            **PROBE,
            "seed": (ExperimentConfig, "seed"),
            "source": (ExperimentConfig, "source"),
            "layers": (ExperimentConfig, "layers"),
            "dev_fraction": (ExperimentConfig, "dev_fraction"),
            "n_boot": (ExperimentConfig, "n_boot"),
            "design": (ExperimentConfig, "design"),
            "search": (ExperimentConfig, "search"),
            "controls": (ExperimentConfig, "n_controls"),
            "max_dev": (ExperimentConfig, "max_dev"),
            "max_test": (ExperimentConfig, "max_test"),
            "first_rung": (ExperimentConfig, "first_rung"),
            "eta": (ExperimentConfig, "eta"),
        },
    ),
    "attribute": (["--model", "m", "--prompt", "p", "--target", "t", "--out", "o"], ATTRIBUTION),
    "neurons": (
        ["--model", "m", "--languages", "fr", "--lrp2", "fr=0,2", "--out", "o"],
        {
            **ATTRIBUTION,
            "seed": (KnowledgeConfig, "seed"),
            "source": (KnowledgeConfig, "source"),
            "n_perm": (KnowledgeConfig, "n_perm"),
            "languages": (KnowledgeConfig, "languages"),
            "lrp2": (KnowledgeConfig, "lrp2"),
            "threshold": (NeuronConfig, "threshold"),
        },
    ),
    "similarity": (["--model", "m", "--languages", "fr", "--out", "o"], {"source": (LRP2Config, "source")}),
    "compare": (
        ["--model", "m", "--languages", "fr", "--out", "o"],
        {**COMPARE, "methods": (MethodOptions, "methods")},
    ),
    "align": (["--model", "m", "--languages", "fr", "--out", "o"], COMPARE),
    "lape": (
        ["--model", "m", "--out", "o"],
        {
            "top_rate": (LapeConfig, "top_rate"),
            "filter_rate": (LapeConfig, "filter_rate"),
            "bar_ratio": (LapeConfig, "activation_bar_ratio"),
        },
    ),
    "lens": (["--model", "m", "--languages", "fr", "--out", "o"], {}),
    "organism": ([], ORGANISM),
    "demo": (
        [],
        {
            **ORGANISM,
            "languages": (DemoConfig, "languages"),
            "kn_facts": (DemoConfig, "kn_facts_per_relation"),
            "n_boot": (DemoConfig, "n_boot"),
            "n_perm": (DemoConfig, "n_perm"),
            "model": (DemoConfig, "model"),
            "dtype": (DemoConfig, "dtype"),
            "max_facts": (DemoConfig, "max_facts_per_relation"),
            "layers": (DemoConfig, "layers"),
            "max_candidates": (DemoConfig, "max_candidates"),
            "design": (DemoConfig, "design"),
            "search": (DemoConfig, "search"),
        },
    ),
}
#: options named like a field of their command's configs that deliberately default otherwise
NOT_MIRRORS = {
    ("compare", "affine"),  # None: affine exactly when --site resid
    ("align", "affine"),
    ("neurons", "top_k"),  # only read with --paper, whose default is 20
    ("run", "languages"),  # None: every language of the facts but the source
    ("similarity", "seed"),  # the run's seed; LRP2Config.seed only draws random-control directions
}


def _as_parsed(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def test_every_subcommand_is_listed():
    assert set(command_parsers()) == set(MIRRORS)


@pytest.mark.parametrize("command", sorted(MIRRORS))
def test_options_mirroring_a_config_field_have_its_default(command):
    argv, mirrors = MIRRORS[command]
    parser = command_parsers()[command]
    args = parser.parse_args(argv)
    for dest, (config, name) in mirrors.items():
        default = field_default(config, name)
        if default is dataclasses.MISSING:  # required on the command line too
            flag = "--" + dest.replace("_", "-")
            i = argv.index(flag)
            with pytest.raises(SystemExit):
                parser.parse_args(argv[:i] + argv[i + 2 :])
            continue
        assert getattr(args, dest) == _as_parsed(default), f"{command} --{dest} != {config.__name__}.{name}"


@pytest.mark.parametrize("command", sorted(MIRRORS))
def test_no_option_named_like_a_config_field_escapes_the_table(command):
    """An option added by hand with a config field's name must be listed (and so checked) above."""
    argv, mirrors = MIRRORS[command]
    fields = {f.name for config, _ in mirrors.values() for f in dataclasses.fields(config)}
    dests = set(vars(command_parsers()[command].parse_args(argv)))
    # execution settings (--batch-size, --device) reach the configs through ExecutionConfig.configure instead
    unlisted = sorted(
        d for d in dests & fields if d not in mirrors and (command, d) not in NOT_MIRRORS and d not in SPEED_OPTIONS
    )
    assert not unlisted, f"{command}: {unlisted} mirror a config field but are not checked"


def test_defaults_build_the_default_configs():
    """The configs the commands build from default arguments are the dataclasses' defaults."""
    from lrp2_interp.cli.inputs import probe_config
    from lrp2_interp.cli.lrp2 import experiment_options, sweep_options
    from lrp2_interp.cli.neurons import attribution_config
    from lrp2_interp.cli.organism import demo_options, organism_options

    sub = command_parsers()
    args = sub["sweep"].parse_args(MIRRORS["sweep"][0])
    assert probe_config(args) == ProbeConfig()
    assert ExecutionConfig.from_options(args).configure(probe_config(args)) == ProbeConfig()
    assert sweep_options().build(args, probe=ProbeConfig()) == SweepConfig(language="fr")
    args = sub["run"].parse_args(MIRRORS["run"][0])
    assert experiment_options().build(args, languages=("fr",)) == ExperimentConfig(languages=("fr",))
    assert attribution_config(sub["attribute"].parse_args(MIRRORS["attribute"][0])) == AttributionConfig()
    args = sub["demo"].parse_args([])
    assert organism_options().build(args) == OrganismConfig()
    assert demo_options().build(args) == DemoConfig()
    assert ExecutionConfig.from_options(args).configure(demo_options().build(args)) == DemoConfig()
