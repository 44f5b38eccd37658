"""Wall time, CPU time and peak memory of each stage of the mission on a pretrained model.

    python benchmarks/real_model.py [--model gemma-3-270m] [--language fr] [--max-facts 3]
                                    [--layers 4 8 12] [--max-candidates 10] [--prompts 2] [--threads 2]

Stages, in one process: load (cached conversion folder), language vectors (probe
prompts of every shipped language), a sweep for one language over the given
layers, and knowledge-neuron attribution of a few prompts (every layer, 20 steps).
Peak RSS is the process maximum so far (``ru_maxrss``), so each figure includes
what was loaded before it.  The last line is
``real model: load <s>s, vectors <s>s, sweep <s>s/pair, attribution <s>s/prompt, peak <MB> MB``.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from lrp2_interp.attribution.attribute import AttributionConfig, attribute_neurons
from lrp2_interp.facts import available_languages, load_facts
from lrp2_interp.lrp2.sweep import SweepConfig, run_sweep
from lrp2_interp.lrp2.vectors import compute_language_vectors
from lrp2_interp.models.loading import load_model
from lrp2_interp.organism.organism_config import default_facts_root
from lrp2_interp.probing.probe import ProbeConfig
from lrp2_interp.prompts import prompt_corpus, render_query


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Stage:
    """Times one stage (wall and CPU) and records the peak RSS after it."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> Stage:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu
        print(
            f"  {self.name:<40} {self.wall:8.1f} s wall {self.cpu:8.1f} s CPU   peak RSS {_peak_mb():7.0f} MB",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="gemma-3-270m")
    ap.add_argument("--language", default="fr")
    ap.add_argument("--max-facts", type=int, default=3, help="facts per relation in the sweep")
    ap.add_argument("--layers", nargs="+", type=int, default=[4, 8, 12])
    ap.add_argument("--max-candidates", type=int, default=10)
    ap.add_argument("--prompts", type=int, default=2, help="prompts to attribute")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    root = default_facts_root()
    print(f"{args.model}: {args.threads} thread(s), shipped facts {root}", flush=True)
    with Stage("load (cached folder)") as load:
        lm = load_model(args.model)
    langs = available_languages(root)
    facts = load_facts(root, langs)
    with Stage(f"vectors ({len(langs)} languages, {facts.n_facts('en')} prompts each)") as vec:
        vectors = compute_language_vectors(lm, {lg: prompt_corpus(facts, lg, lm) for lg in langs}, progress=False)
    sub = load_facts(root, ["en", args.language], max_facts_per_relation=args.max_facts).parallel()
    cfg = SweepConfig(
        language=args.language,
        layers=tuple(args.layers),
        probe=ProbeConfig(max_candidates=args.max_candidates),
    )
    n_pairs = len(cfg.pairs(lm.n_layers))
    with Stage(f"sweep {args.language}: {sub.n_facts(args.language)} facts x ({n_pairs} pairs + baseline)") as sw:
        run_sweep(lm, sub, vectors, cfg, progress=False)
    per_pair = sw.wall / (n_pairs + 1)
    print(
        f"  -> {per_pair:.1f} s per pair; a full {lm.n_layers}-layer grid ({lm.n_layers * (lm.n_layers - 1) // 2}"
        f" pairs) on these facts: about {per_pair * (lm.n_layers * (lm.n_layers - 1) // 2 + 1) / 60:.0f} min"
    )
    en = [f for f in facts.iter_facts("en") if not facts.template("en", f.relation).template.startswith("[Y]")]
    en = en[: args.prompts]
    acfg = AttributionConfig(n_steps=20)
    with Stage(f"attribution: {len(en)} prompt(s), {lm.n_layers} layers, 20 steps") as att:
        deltas = []
        for f in en:
            prompt = render_query(facts.template("en", f.relation).template, f.sub_label, lm.kind)
            res = attribute_neurons(lm, prompt, " " + f.obj_label, acfg, progress=False)
            deltas.append(res.deltas.abs().max().item())
    print(f"  attribution path {res.path}; max |completeness delta| {max(deltas):.2e}")
    print(
        f"real model: load {load.wall:.1f}s, vectors {vec.wall:.1f}s, sweep {per_pair:.1f}s/pair, "
        f"attribution {att.wall / len(en):.1f}s/prompt, peak {_peak_mb():.0f} MB"
    )


if __name__ == "__main__":
    main()
