"""float32 vs bfloat16-verified probing on a real model: speed, re-scored facts, P@1 flips, score errors.

    python benchmarks/bf16_scoring.py [--model gemma-3-270m] [--facts /work/shared/data/facts]
                                      [--languages fr] [--n-facts 100] [--max-candidates 10] [--threads 2]

Per language, in one process: the fast path with a float32 head (``ProbeConfig()``), then with a
bfloat16 head (``head_dtype="bfloat16"``, raw scores), then the verification
(:func:`lrp2_interp.probing.verified.verified_scores`: close top-1 calls re-scored in float32).
Reported: facts/s of float32 and of bfloat16 + verification, their ratio, the facts re-scored, the
P@1 rank flips of the verified result against float32 (must be 0) and of raw bfloat16, and the
largest ``|score_bf16 - score_fp32|`` per candidate and of the top-1 margin (the numbers behind
``BF16_MARGIN``).  The first ``--n-facts`` facts (relation order) of a load with a few facts per
relation are used.  The last line is
``bf16 scoring: facts F, threads T, fp32 X facts/s, bf16-verified Y facts/s, ratio R, re-scored N, P@1 flips P, max |err| E``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from lrp2_interp.facts import load_facts
from lrp2_interp.models.loading import load_model
from lrp2_interp.probing.fast import fast_scores
from lrp2_interp.probing.probe import ProbeConfig
from lrp2_interp.probing.types import fact_pools, rank_rows
from lrp2_interp.probing.verified import verified_scores


def _top1(order, pools, scores) -> list[str]:
    return [r["prediction"] for r in rank_rows(order, pools, scores)]


def run_language(lm, root: str, language: str, args) -> dict:
    per_rel = max(1, math.ceil(args.n_facts / 40))
    facts = load_facts(root, [language], max_facts_per_relation=per_rel, seed=0)
    keep = [f.lineid for f in facts.iter_facts(language)][: args.n_facts]
    facts = facts.restrict(keep)
    fp32_cfg = ProbeConfig(max_candidates=args.max_candidates)
    bf16_cfg = ProbeConfig(max_candidates=args.max_candidates, head_dtype="bfloat16")
    order, pools = fact_pools(facts, language, fp32_cfg)
    fast_scores(lm, facts.restrict(keep[:2]), language, fp32_cfg)  # warm-up (allocations, bf16 weight copy)
    fast_scores(lm, facts.restrict(keep[:2]), language, bf16_cfg)
    t = time.perf_counter()
    _, fp32 = fast_scores(lm, facts, language, fp32_cfg)
    t_fp32 = time.perf_counter() - t
    t = time.perf_counter()
    _, raw = fast_scores(lm, facts, language, bf16_cfg)
    t_raw = time.perf_counter() - t
    checked, rescored = verified_scores(lm, facts, language, order, pools, raw, bf16_cfg)
    t_bf16 = time.perf_counter() - t
    err = max(abs(raw[k][c] - fp32[k][c]) for k in fp32 for c in fp32[k])
    margin_err = 0.0
    for k, row in fp32.items():
        if len(row) > 1:
            best, second = sorted(row, key=lambda c: -row[c])[:2]
            margin_err = max(margin_err, abs((raw[k][best] - raw[k][second]) - (row[best] - row[second])))
    want = _top1(order, pools, fp32)
    return dict(
        language=language,
        facts=len(order),
        candidates=sum(len(p) for p in pools.values()),
        fp32_s=t_fp32,
        bf16_raw_s=t_raw,
        bf16_s=t_bf16,
        rescored=len(rescored),
        flips=sum(a != b for a, b in zip(_top1(order, pools, checked), want)),
        raw_flips=sum(a != b for a, b in zip(_top1(order, pools, raw), want)),
        max_err=err,
        max_margin_err=margin_err,
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="gemma-3-270m")
    ap.add_argument("--facts", default="/work/shared/data/facts")
    ap.add_argument("--languages", nargs="+", default=["fr"])
    ap.add_argument("--n-facts", type=int, default=100)
    ap.add_argument("--max-candidates", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    lm = load_model(args.model)
    rows = []
    for lang in args.languages:
        r = run_language(lm, args.facts, lang, args)
        rows.append(r)
        print(
            f"{lang}: {r['facts']} facts, {r['candidates']} candidates; fp32 {r['fp32_s']:.1f} s, bf16 raw "
            f"{r['bf16_raw_s']:.1f} s, bf16 + verification {r['bf16_s']:.1f} s; re-scored {r['rescored']}; "
            f"P@1 flips verified {r['flips']}, raw {r['raw_flips']}; max |err| per candidate {r['max_err']:.4f}, "
            f"of the top-1 margin {r['max_margin_err']:.4f}",
            flush=True,
        )
    n = sum(r["facts"] for r in rows)
    fp32_rate = n / sum(r["fp32_s"] for r in rows)
    bf16_rate = n / sum(r["bf16_s"] for r in rows)
    print(
        f"bf16 scoring: facts {n}, threads {args.threads}, fp32 {fp32_rate:.2f} facts/s, bf16-verified "
        f"{bf16_rate:.2f} facts/s, ratio {bf16_rate / fp32_rate:.2f}, re-scored {sum(r['rescored'] for r in rows)}, "
        f"P@1 flips {sum(r['flips'] for r in rows)}, max |err| {max(r['max_err'] for r in rows):.4f}"
    )


if __name__ == "__main__":
    main()
