"""Throughput and peak memory on one device: attribution (prompts/s), probing and the (m, n) sweep (fact-conditions/s).

    python benchmarks/gpu.py [--device cuda] [--dtype bfloat16] [--model gemma-3-270m] [--language fr]
        [--n-facts 10] [--max-candidates 10] [--sweep-layers 6] [--attr-prompts 8] [--quick]

``benchmarks/gpu.sh`` runs it on one CUDA GPU in bfloat16.  One line per measurement:

* ``attribution``: knowledge-neuron IG of ``--attr-prompts`` facts (default rule), prompts/s;
* ``probing``: ``probe`` of ``--n-facts`` facts per relation (fast path), fact-conditions/s (one condition);
* ``sweep``: the cached (m, n) engine over every pair of ``--sweep-layers`` evenly spaced layers plus the
  baseline, fact-conditions/s (facts x (pairs + 1));

each with the peak memory of that step (CUDA: the allocator's peak; CPU: peak RSS, Linux VmHWM).
Language vectors come from the probe prompts.  ``--quick``: a tiny random Gemma-3 instead of the real
model, 1 fact per relation, 3 sweep layers, 2 prompts (seconds; what the test runs with ``--device cpu``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from lrp2_interp.attribution.attribute import AttributionConfig, attribute_many
from lrp2_interp.facts import load_facts
from lrp2_interp.lrp2.projection import LRP2Config, shifts
from lrp2_interp.lrp2.sweep_engine import sweep_scores
from lrp2_interp.lrp2.vectors import compute_language_vectors
from lrp2_interp.models.builders import RandomModelConfig, build_random_model
from lrp2_interp.models.loading import load_model
from lrp2_interp.models.placement import ReducedPrecisionNote
from lrp2_interp.probing.probe import ProbeConfig, probe
from lrp2_interp.probing.types import fact_pools
from lrp2_interp.prompts import attribution_queries, fact_sentences, prompt_corpus

REPO = Path(__file__).resolve().parents[1] / "data" / "facts"


def reset_peak(device: torch.device) -> None:
    """Start a new peak-memory window."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak(device: torch.device) -> str:
    """The peak memory of the window: CUDA allocator peak, else peak RSS."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return f"peak GPU memory {torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB"
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return f"peak RSS {int(line.split()[1]) / 1024:.0f} MiB"
    return "peak memory n/a"


def measure(device: torch.device, fn):
    """``(result, seconds, peak text)`` of ``fn()``."""
    reset_peak(device)
    t = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return out, time.perf_counter() - t, peak(device)


def main() -> list[str]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16", "float16"])
    ap.add_argument("--model", default="gemma-3-270m")
    ap.add_argument("--language", default="fr")
    ap.add_argument("--n-facts", type=int, default=10, help="facts per relation")
    ap.add_argument("--max-candidates", type=int, default=10)
    ap.add_argument("--sweep-layers", type=int, default=6)
    ap.add_argument("--attr-prompts", type=int, default=8)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    warnings.simplefilter("ignore", ReducedPrecisionNote)  # the parity table is benchmarks/precision.py's
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --device cpu")
    tmp = tempfile.TemporaryDirectory()
    model: str | Path = args.model
    if args.quick:
        args.n_facts, args.sweep_layers, args.attr_prompts = 1, 3, 2
        cfg = RandomModelConfig("gemma3", n_layers=4, d_model=64, n_heads=4, d_mlp=128)
        model = build_random_model(cfg, fact_sentences(load_facts(REPO)), Path(tmp.name) / "gemma3", 2000)
    lm = load_model(model, device=args.device, dtype=getattr(torch, args.dtype))
    dev = lm.device
    facts = load_facts(REPO, ["en", args.language], max_facts_per_relation=args.n_facts, seed=0)
    lang, n = args.language, facts.n_facts(args.language)
    lines = [
        f"gpu benchmark: {args.model if not args.quick else 'tiny random gemma3'} on {dev} "
        f"({torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'CPU'}), {args.dtype}"
    ]
    print(lines[0], flush=True)
    queries = attribution_queries(lm, facts, lang)[: args.attr_prompts]
    acfg = AttributionConfig()
    attribute_many(lm, [queries[0][0]], [queries[0][1]], acfg, progress=False)  # warm-up (kernels, allocator)
    _, sec, mem = measure(
        dev, lambda: attribute_many(lm, [p for p, _ in queries], [g for _, g in queries], acfg, progress=False)
    )
    lines.append(
        f"attribution: {len(queries) / sec:.2f} prompts/s ({len(queries)} prompts, {acfg.method} "
        f"{acfg.n_steps} steps, all {lm.n_layers} layers, {sec:.1f} s), {mem}"
    )
    print(lines[-1], flush=True)
    pcfg = ProbeConfig(max_candidates=args.max_candidates)
    _, sec, mem = measure(dev, lambda: probe(lm, facts, lang, pcfg))
    lines.append(f"probing: {n / sec:.2f} fact-conditions/s ({n} facts x 1 condition, {sec:.1f} s), {mem}")
    print(lines[-1], flush=True)
    vec = compute_language_vectors(lm, {lg: prompt_corpus(facts, lg, lm) for lg in ("en", lang)})
    step = max(1, lm.n_layers // args.sweep_layers)
    layers = list(range(0, lm.n_layers, step))[: args.sweep_layers]
    pairs = [(m, k) for m in layers for k in layers if m < k]
    order, pools = fact_pools(facts, lang, pcfg)
    _, sec, mem = measure(
        dev,
        lambda: sweep_scores(
            lm, facts, lang, order, pools, pcfg, pairs, lambda m, k: shifts(vec, lang, LRP2Config(m, k))
        ),
    )
    conds = len(pairs) + 1
    lines.append(
        f"sweep: {n * conds / sec:.2f} fact-conditions/s ({n} facts x {conds} conditions: baseline + "
        f"{len(pairs)} pairs of layers {layers}, {sec:.1f} s), {mem}"
    )
    print(lines[-1], flush=True)
    tmp.cleanup()
    return lines


if __name__ == "__main__":
    main()
