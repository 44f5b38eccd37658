"""Probing throughput (facts/s) for a BERT-shaped and a BLOOM-shaped random model.

    python benchmarks/probing.py [--facts DIR] [--n-facts 100] [--threads 1] [--quick]

Random weights (accuracy is meaningless); the models are built from config with
the sizes of mBERT (12 x 768, d_mlp 3072, vocab 119,547) and BLOOM-560m (24 x 1024,
vocab 250,880; ``--vocab`` overrides), so the cost per fact is the real one.
Typed probing ranks every object of the relation: for masked LMs one forward per
(fact, object length), for causal LMs one sentence per (fact, candidate), so the
causal figure is also reported with the paper's candidate cap.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from lrp2_interp.mlama import load_facts  # noqa: E402
from lrp2_interp.models import load_model  # noqa: E402
from lrp2_interp.probing import ProbeConfig, probe  # noqa: E402
from lrp2_interp.tiny import RandomModelConfig, build_random_model  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "facts"
REPO = Path(__file__).resolve().parents[1] / "data" / "facts"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--facts", default=str(SHARED if SHARED.is_dir() else REPO))
    ap.add_argument("--language", default="en")
    ap.add_argument("--relations", nargs="+", default=["P36", "P30", "P17"])
    ap.add_argument("--n-facts", type=int, default=20, help="facts per relation")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-candidates", type=int, default=10, help="cap for the causal model (paper's setting)")
    ap.add_argument("--vocab", type=int, default=None, help="override both vocab sizes")
    ap.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke run")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    facts = load_facts(args.facts, [args.language], args.relations, max_facts_per_relation=args.n_facts)
    corpus = [facts.template(args.language, f.relation).template.replace("[X]", f.sub_label).replace("[Y]", f.obj_label)
              for f in facts.iter_facts(args.language)]
    sizes = {
        "bert": RandomModelConfig("bert", n_layers=12, d_model=768, n_heads=12, d_mlp=3072, max_positions=512,
                                  vocab_size=args.vocab or 119547),
        "bloom": RandomModelConfig("bloom", n_layers=24, d_model=1024, n_heads=16, d_mlp=4096,
                                   vocab_size=args.vocab or 250880),
    }
    if args.quick:
        sizes = {k: RandomModelConfig(k, n_layers=2, d_model=32, n_heads=4, d_mlp=64) for k in sizes}
    n = facts.n_facts(args.language)
    print(f"facts: {n} ({args.language}, {', '.join(args.relations)}) from {args.facts}; threads={args.threads}")
    with tempfile.TemporaryDirectory() as tmp:
        for fam, cfg in sizes.items():
            lm = load_model(build_random_model(cfg, corpus, Path(tmp) / fam))
            runs = [("all candidates", None)] if fam == "bert" else [(f"cap {args.max_candidates}", args.max_candidates)]
            for label, cap in runs:
                t = time.perf_counter()
                probe(lm, facts, args.language, ProbeConfig(max_candidates=cap, progress=False))
                dt = time.perf_counter() - t
                print(f"{fam:6s} {cfg.n_layers:2d}x{cfg.d_model:<5d} {label:15s} {n / dt:8.2f} facts/s ({dt:.1f} s)")
            del lm
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
