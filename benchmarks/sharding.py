"""Speed-up of a sharded sweep: 1 process vs ``torchrun --nproc_per_node K`` (gloo, CPU).

    python benchmarks/sharding.py [--procs 2] [--layers 6] [--d-model 256] [--max-facts 20]

Each process runs with one torch thread, so K processes use K cores.  Both runs
do the same (m, n) sweep from scratch into fresh folders, and the final tables are
checked to be identical.  Wall time includes process start-up and model loading.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--max-facts", type=int, default=20)
    args = ap.parse_args()

    from lrp2_interp.cli.main import REPO_DATA
    from lrp2_interp.facts import load_facts
    from lrp2_interp.models.builders import RandomModelConfig, build_random_model
    from lrp2_interp.prompts import fact_sentences

    fs = load_facts(REPO_DATA)
    corpus = fact_sentences(fs)
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as tmp:
        model = build_random_model(
            RandomModelConfig("bloom", n_layers=args.layers, d_model=args.d_model, n_heads=8, d_mlp=4 * args.d_model),
            corpus,
            Path(tmp) / "m",
        )
        sweep = ["sweep", "--model", str(model), "--language", "fr", "--max-facts", str(args.max_facts)]
        times, tables = {}, {}
        for procs in (1, args.procs):
            out = Path(tmp) / f"out{procs}"
            launcher = (
                [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}"]
                if procs > 1
                else [sys.executable]
            )
            t = time.perf_counter()
            subprocess.run(
                [*launcher, "-m", "lrp2_interp.cli.main", *sweep, "--out", str(out)],
                check=True,
                env=env,
                capture_output=True,
            )
            times[procs] = time.perf_counter() - t
            tables[procs] = pd.read_csv(out / "sweep_fr.csv")
        pd.testing.assert_frame_equal(tables[1], tables[args.procs])
        n_units = len(tables[1])
    print(
        f"sweep of {n_units} units (baseline + pairs), bloom {args.layers}x{args.d_model}, "
        f"{args.max_facts} facts/relation"
    )
    print(
        f"1 process: {times[1]:.1f} s | {args.procs} processes: {times[args.procs]:.1f} s | "
        f"speed-up {times[1] / times[args.procs]:.2f}x (ideal {args.procs}x); tables identical"
    )


if __name__ == "__main__":
    main()
