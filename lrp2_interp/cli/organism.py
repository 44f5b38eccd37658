"""CLI commands for the offline default: ``organism`` (train or reuse) and ``demo``."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

# ``demo --model M --quick``: what a pretrained model skips to finish in minutes on 2 CPU cores
QUICK_PRETRAINED = dict(max_facts_per_relation=6, layers=(1, 4, 7, 10, 13, 16), max_candidates=10)


def _organism_config(args):
    from lrp2_interp.organism.config import OrganismConfig

    cfg = OrganismConfig()
    over = {
        k: v
        for k, v in {
            "facts_root": args.facts,
            "kind": args.kind,
            "epochs": args.epochs,
            "seed": args.organism_seed,
        }.items()
        if v is not None
    }
    return replace(cfg, **over)


def cmd_organism(args) -> None:
    import torch

    from lrp2_interp.organism.train import read_organism_info, train_organism

    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.time()
    path = train_organism(_organism_config(args), args.cache, force=args.force)
    info = read_organism_info(path)
    print(
        f"organism: {path}\n  trained in {info.train_seconds:.0f} s, final loss {info.final_loss:.3f}, "
        f"{info.n_lines} lines, {info.n_steps} steps"
    )
    print(f"model directory ready ({time.time() - t0:.1f} s); use it as --model {path}")


def cmd_demo(args) -> None:
    import torch

    from lrp2_interp.demo import DemoConfig, run_demo

    if args.threads:
        torch.set_num_threads(args.threads)
    t0, out = time.time(), Path(args.out)
    cfg = DemoConfig(
        organism=_organism_config(args),
        languages=tuple(args.languages) if args.languages else None,
        kn_facts_per_relation=args.kn_facts,
        n_boot=args.n_boot,
        n_perm=args.n_perm,
        model=args.model,
        device=args.device,
        dtype=args.dtype,
        max_facts_per_relation=args.max_facts,
        layers=tuple(args.layers) if args.layers else None,
        max_candidates=args.max_candidates,
        preset="paper" if args.paper else "default",
    )
    if args.quick:
        cfg = replace(cfg, kn_facts_per_relation=1, n_boot=200, n_perm=200, n_steps=8, target_delta=None)
        if args.model is not None:  # a pretrained model: fewer facts, layers and candidates (see README)
            given = {
                "max_facts_per_relation": args.max_facts,
                "layers": args.layers,
                "max_candidates": args.max_candidates,
            }
            cfg = replace(cfg, **{k: v for k, v in QUICK_PRETRAINED.items() if given[k] is None})
    run_demo(cfg, out, cache_dir=args.cache)
    print((out / "summary.md").read_text(encoding="utf-8"))
    print(f"results written to {out.resolve()} ({time.time() - t0:.1f} s)")


def register(sub) -> None:
    def organism_args(p):
        p.add_argument("--facts", default=None, help="mLAMA-layout facts to train on (default: data/facts)")
        p.add_argument("--kind", choices=("causal", "masked"), default=None)
        p.add_argument("--epochs", type=int, default=None)
        p.add_argument("--organism-seed", type=int, default=None)
        p.add_argument("--cache", default=None, help="organism cache (default: $LRP2_CACHE or ~/.cache/lrp2_interp)")
        p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")

    p = sub.add_parser("organism", help="train (or reuse) the offline multilingual model organism")
    organism_args(p)
    p.add_argument("--force", action="store_true", help="retrain even if cached")
    p.set_defaults(func=cmd_organism)

    p = sub.add_parser("demo", help="the whole mission on the organism: LRP2 sweep + knowledge neurons")
    organism_args(p)
    p.add_argument("--languages", nargs="+", default=None)
    p.add_argument("--kn-facts", type=int, default=3, help="held-out facts per relation for knowledge neurons")
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--n-perm", type=int, default=1000)
    p.add_argument("--model", default=None, help="a pretrained model (e.g. gemma-3-270m) instead of the organism")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=("float32", "float64", "bfloat16", "float16"))
    p.add_argument("--max-facts", type=int, default=None, help="pretrained model: facts per relation")
    p.add_argument("--layers", nargs="+", type=int, default=None, help="candidate layers for m and n")
    p.add_argument("--max-candidates", type=int, default=None, help="cap the candidate pool (gold + random)")
    p.add_argument("--quick", action="store_true", help="fewer facts, bootstrap and permutation draws (CI)")
    p.add_argument("--paper", action="store_true", help="the paper's choices (lrp2_interp.presets)")
    p.add_argument("--out", default="results/demo")
    p.set_defaults(func=cmd_demo)
