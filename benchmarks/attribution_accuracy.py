"""Accuracy per unit of work of every quadrature rule of knowledge-neuron IG, against Gauss-Legendre 128.

    python benchmarks/attribution_accuracy.py [--models organism gemma mbert] [--prompts 2]
                                              [--steps 5 10 20 40] [--ref-steps 128] [--quick] [--out F.json]

For each model, prompt, rule (riemann_left/right/middle/trapezoid, gausslegendre, kn_linspace) and step
count, all layers are attributed on the fast path (equal to the reference path: tests) and compared with
Gauss-Legendre at ``--ref-steps`` points:

* ``max|delta|``: the largest completeness error ``|sum(attr) - (f(x) - f(0))|`` over layers (probability
  space), and ``delta/change``: mean over layers of ``|delta|`` over mean ``|f(x) - f(0)|``;
* ``rel L2``: ``||s - s_ref|| / ||s_ref||`` of the whole attribution vector (all layers x neurons);
* ``Jaccard``: of the selected neuron set with the reference's (Dai et al.'s rule: score > 0.2 x the
  prompt's largest score).

Work is ``steps`` model evaluations per layer (every rule costs the same per step).  Models:
``organism`` (the offline model organism, trained or reused from ``$LRP2_CACHE``), ``gemma``
(``load_model("gemma-3-270m")``), ``mbert`` (random weights, mBERT's sizes, seed 0).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from lrp2_interp.attribution.attribute import attribute_neurons
from lrp2_interp.attribution.ig_config import METHODS, AttributionConfig

GEMMA_FACTS = [
    ("The capital of France is", " Paris"),
    ("The official language of Japan is", " Japanese"),
    ("The Eiffel Tower is located in the city of", " Paris"),
    ("The currency of the United States is the", " dollar"),
]


def selected(scores: torch.Tensor) -> set[int]:
    flat = scores.flatten()
    return set((flat > 0.2 * flat.max()).nonzero().flatten().tolist())


def jaccard(a: set[int], b: set[int]) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def model_cases(name: str, n_prompts: int, quick: bool, tmp: Path):
    """(lm, [(prompt, object)]) of one benchmark model."""
    from lrp2_interp.models.loading import load_model

    if name == "gemma":
        return load_model("gemma-3-270m"), GEMMA_FACTS[:n_prompts]
    if name == "mbert":
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from attribution import load_case, shapes  # the speed benchmark's model and prompts

        _, lm, _, prompts, objects = load_case(shapes()["mbert"], n_prompts, quick, tmp)
        return lm, list(zip(prompts, objects))
    if name == "organism":
        from lrp2_interp.organism.organism_config import load_organism_facts
        from lrp2_interp.organism.train import load_organism
        from lrp2_interp.prompts import render_prefix

        lm, info = load_organism(progress=False)
        facts = load_organism_facts(info.config)
        cases = []
        for f in facts.iter_facts("en"):
            prompt = render_prefix(facts.template("en", f.relation).template, f.sub_label)
            cases.append((prompt, " " + f.obj_label))
            if len(cases) == n_prompts:
                break
        return lm, cases
    raise SystemExit(f"unknown model {name!r}")


def run_model(name: str, args, tmp: Path) -> list[dict]:
    lm, cases = model_cases(name, args.prompts, args.quick, tmp)
    rows: list[dict] = []
    t0 = time.perf_counter()
    for i, (prompt, obj) in enumerate(cases):

        def attr(method: str, steps: int, prompt: str = prompt, obj: str = obj):
            cfg = AttributionConfig(n_steps=steps, method=method, path="fast")
            return attribute_neurons(lm, prompt, obj, cfg, progress=False)

        ref = attr("gausslegendre", args.ref_steps)
        ref_sel, change = selected(ref.scores), (ref.f_input - ref.f_baseline).abs()
        for method in METHODS:
            for steps in args.steps:
                res = attr(method, steps)
                d = res.deltas.abs()
                rows.append(
                    dict(
                        model=name,
                        prompt=i,
                        method=method,
                        steps=steps,
                        max_delta=float(d.max()),
                        rel_delta=float(d.mean() / change.mean()),
                        rel_l2=float((res.scores - ref.scores).norm() / ref.scores.norm()),
                        jaccard=jaccard(selected(res.scores), ref_sel),
                    )
                )
        print(
            f"  {name}: prompt {i + 1}/{len(cases)} done ({time.perf_counter() - t0:.0f} s); ref max|delta| "
            f"{float(ref.deltas.abs().max()):.1e}, |selected| {len(ref_sel)}",
            flush=True,
        )
    return rows


def table(rows: list[dict], ref_steps: int) -> str:
    """Markdown, per model: rules x step counts; each cell ``rel L2 / Jaccard / max|delta|`` (means over
    prompts; max|delta|: the largest over layers and prompts)."""
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        steps = sorted({r["steps"] for r in mine})
        out += [
            f"**{model}** (reference: Gauss-Legendre {ref_steps}; cell: rel L2 / Jaccard / max abs delta)",
            "",
            "| rule | " + " | ".join(f"{n} steps" for n in steps) + " |",
            "|---|" + "---|" * len(steps),
        ]
        for method in METHODS:
            cells = []
            for n in steps:
                sel = [r for r in mine if (r["method"], r["steps"]) == (method, n)]
                if not sel:
                    cells.append("")
                    continue
                l2, jac = (sum(r[k] for r in sel) / len(sel) for k in ("rel_l2", "jaccard"))
                cells.append(f"{l2:.1e} / {jac:.2f} / {max(r['max_delta'] for r in sel):.0e}")
            out.append(f"| {method} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["organism", "gemma", "mbert"])
    ap.add_argument("--prompts", type=int, default=2)
    ap.add_argument("--steps", type=int, nargs="+", default=[5, 10, 20, 40])
    ap.add_argument("--ref-steps", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="tiny mBERT shape, 1 prompt, steps 5 10 (smoke run)")
    ap.add_argument("--out", type=Path, default=None, help="also write the rows as JSON")
    args = ap.parse_args()
    if args.quick:
        args.prompts, args.steps, args.ref_steps = 1, [5, 10], 32
    torch.set_num_threads(args.threads)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            rows += run_model(name, args, Path(tmp))
            if args.out:
                args.out.write_text(json.dumps(rows, indent=1))
    print(table(rows, args.ref_steps))


if __name__ == "__main__":
    main()
