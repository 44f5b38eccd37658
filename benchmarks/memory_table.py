"""The README's attribution memory table: 1B / 7B / 70B shapes in float32 and bfloat16, from the one estimate.

    python benchmarks/memory_table.py [--n-pos 16] [--steps 8] [--budget-mb 2048]

Every figure comes from :func:`lrp2_interp.attribution.memory.estimate` (the function that sizes the
Captum passes): knowledge-neuron attribution of every layer of one ``--n-pos``-token prompt on the fast
path at ``--steps`` steps within ``--budget-mb`` of autograd memory per pass.  Shapes (published configs):
Llama-3.2-1B, BLOOM-7b1 (multilingual, 250,880-token vocabulary), Llama-3.1-70B.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lrp2_interp.attribution.ig_config import AttributionConfig
from lrp2_interp.attribution.memory import ModelShape, estimate

SHAPES = {
    "1B (Llama-3.2-1B)": ModelShape(16, 2048, 8192, 32, 128256, params=1_235_814_400),
    "7B (BLOOM-7b1)": ModelShape(30, 4096, 16384, 32, 250880, params=7_069_016_064),
    "70B (Llama-3.1-70B)": ModelShape(80, 8192, 28672, 64, 128256, params=70_553_706_496),
}


def table(n_pos: int, steps: int, budget_mb: float) -> list[str]:
    """Markdown rows: model, dtype, weights, MB per row, rows per pass, passes per prompt, estimated peak."""
    rows = [
        "| model | dtype | weights GB | MB per (layer, step) row | rows per pass | passes per prompt | peak GB "
        "| reference path: MB per row |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, shape in SHAPES.items():
        for dtype, itemsize in (("float32", 4), ("bfloat16", 2)):
            e = estimate(shape, itemsize, n_pos=n_pos, n_steps=steps, budget_mb=budget_mb)
            rows.append(
                f"| {name} | {dtype} | {e.weights_mb / 1024:.1f} | {e.row_mb:.1f} | {e.rows_per_pass} | {e.passes} | "
                f"{e.peak_mb / 1024:.1f} | {e.reference_row_mb:.0f} |"
            )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-pos", type=int, default=16)
    ap.add_argument("--steps", type=int, default=AttributionConfig().n_steps)
    ap.add_argument("--budget-mb", type=float, default=AttributionConfig().memory_budget_mb)
    args = ap.parse_args()
    print("\n".join(table(args.n_pos, args.steps, args.budget_mb)))


if __name__ == "__main__":
    main()
