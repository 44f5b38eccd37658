"""CLI commands for the offline default: ``organism`` (train or reuse) and ``demo``."""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import TYPE_CHECKING

from lrp2_interp.cli.inputs import DTYPES, Subparsers, add_out_args
from lrp2_interp.cli.options import ConfigOptions, Option
from lrp2_interp.cli.runner import Runner, runs

if TYPE_CHECKING:
    from lrp2_interp.demo import DemoConfig
    from lrp2_interp.organism.train import OrganismConfig

# ``demo --model M --quick``: what a pretrained model skips to finish in minutes on 2 CPU cores
QUICK_FACTS, QUICK_LAYERS, QUICK_CANDIDATES = 6, (1, 4, 7, 10, 13, 16), 10


def organism_options() -> ConfigOptions[OrganismConfig]:
    from lrp2_interp.organism.train import OrganismConfig

    return ConfigOptions(
        OrganismConfig,
        (
            Option("facts_root", flag="--facts", help="mLAMA-layout facts to train on (default: data/facts)"),
            Option("kind"),
            Option("epochs"),
            Option("seed", flag="--organism-seed"),
        ),
    )


def demo_options() -> ConfigOptions[DemoConfig]:
    from lrp2_interp.demo import DemoConfig

    return ConfigOptions(
        DemoConfig,
        (
            Option("languages"),
            Option(
                "kn_facts_per_relation", flag="--kn-facts", help="held-out facts per relation for knowledge neurons"
            ),
            Option("n_boot"),
            Option("n_perm"),
            Option("model", help="a pretrained model (e.g. gemma-3-270m) instead of the organism"),
            Option("dtype", choices=DTYPES),
            Option("max_facts_per_relation", flag="--max-facts", help="pretrained model: facts per relation"),
            Option("layers", help="candidate layers for m and n"),
            Option("max_candidates", help="cap the candidate pool (gold + random)"),
            Option("design", help="heldout: (m, n) searched on dev facts; full-grid: every (m, n) on every fact"),
            Option("search", help="held-out design: halving, full, or oracle (chosen on test facts: optimistic)"),
        ),
    )


def quick(cfg: DemoConfig) -> DemoConfig:
    """``--quick``: fewer draws and steps; for a pretrained model also fewer facts, layers and candidates
    (each only where not given)."""
    cfg = replace(cfg, kn_facts_per_relation=1, n_boot=200, n_perm=200, n_steps=8, target_delta=None)
    if cfg.model is None:
        return cfg
    return replace(
        cfg,
        max_facts_per_relation=QUICK_FACTS if cfg.max_facts_per_relation is None else cfg.max_facts_per_relation,
        layers=QUICK_LAYERS if cfg.layers is None else cfg.layers,
        max_candidates=QUICK_CANDIDATES if cfg.max_candidates is None else cfg.max_candidates,
    )


@runs()
def cmd_organism(args: argparse.Namespace, run: Runner) -> None:
    from lrp2_interp.organism.train import read_organism_info, train_organism

    path = train_organism(organism_options().build(args), args.cache, force=args.force)
    info = read_organism_info(path)
    print(
        f"organism: {path}\n  trained in {info.train_seconds:.0f} s, final loss {info.final_loss:.3f}, "
        f"{info.n_lines} lines, {info.n_steps} steps"
    )
    print(f"model directory ready ({run.seconds():.1f} s); use it as --model {path}")


@runs()
def cmd_demo(args: argparse.Namespace, run: Runner) -> None:
    from lrp2_interp.demo import run_demo

    cfg = demo_options().build(
        args, organism=organism_options().build(args), preset="paper" if args.paper else "default"
    )
    if args.quick:
        cfg = quick(cfg)
    cfg = run.execution.configure(cfg)  # --device
    out = run.folder(cfg)  # the config names the model (the organism's settings, or --model) and the facts
    res = run_demo(cfg, out, cache_dir=args.cache)
    run.finish({**res.record, "seconds": run.seconds()}, report=res.markdown())


def _organism_args(p: argparse.ArgumentParser) -> None:
    organism_options().add_to(p)
    p.add_argument("--cache", default=None, help="organism cache (default: $LRP2_CACHE or ~/.cache/lrp2_interp)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")


def register(sub: Subparsers) -> None:
    """Add ``organism`` and ``demo`` to the subparsers ``sub``."""
    p = sub.add_parser("organism", help="train (or reuse) the offline multilingual model organism")
    _organism_args(p)
    p.add_argument("--force", action="store_true", help="retrain even if cached")
    p.set_defaults(func=cmd_organism)

    p = sub.add_parser("demo", help="the whole mission on the organism: LRP2 (m, n) search + knowledge neurons")
    _organism_args(p)
    demo_options().add_to(p)
    p.add_argument("--device", default="cpu", help="where the model runs (speed only); default: %(default)s")
    p.add_argument("--quick", action="store_true", help="fewer facts, bootstrap and permutation draws (CI)")
    p.add_argument("--paper", action="store_true", help="the paper's choices (lrp2_interp.presets)")
    add_out_args(p, required=False, default="results/demo")
    p.set_defaults(func=cmd_demo)
