"""Our default vs the paper's token choice for language vectors: vector cosines and LRP2 sweep gains.

    python benchmarks/paper_choices.py --model organism --out results/paper_choices/organism
    python benchmarks/paper_choices.py --model gemma-3-270m --languages fr zh --layers 2 6 10 14 17 \\
        --max-facts 5 --max-candidates 5 --out results/paper_choices/gemma

For each token choice (``real``: special tokens dropped, ours; ``all``: every
token, the paper) the language vectors are computed from the probe prompts, and

* ``cosine.csv``: per language and layer, the cosine between the two vectors
  (``cos_vector``) and between the two LRP2 shift directions ``v_en - v_l``
  (``cos_shift``), plus the norms of the shift; layers in both numberings, the
  embedding output included (block -1 = paper layer 0);
* ``gains.csv``: the (m, n) sweep of each language with each vector set: the
  baseline, the oracle pair (best on all facts, the paper's choice) and the
  held-out pair (best on dev facts, scored on test facts) with their gains (points).

Organism: probed on the facts each language never saw (as in the demo); vectors
from every fact's probe prompt.  Other models: the shipped ``data/facts`` (or
``--facts``), ``--max-facts`` per relation, parallel to English.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd
import torch
import torch.nn.functional as F

from lrp2_interp.files import write_table
from lrp2_interp.layers import EMBEDDINGS, paper_layer
from lrp2_interp.lrp2.sweep import SweepConfig, run_sweep
from lrp2_interp.lrp2.vectors import compute_language_vectors
from lrp2_interp.probing.probe import ProbeConfig
from lrp2_interp.prompts import prompt_corpus

REPO = Path(__file__).resolve().parents[1] / "data" / "facts"
TOKENS = ("real", "all")


def load(args):
    """(lm, facts for vectors, {lang: facts to probe})."""
    if args.model == "organism":
        from lrp2_interp.organism.organism_config import OrganismConfig, load_organism_facts
        from lrp2_interp.organism.train import load_organism, organism_facts

        lm, info = load_organism(OrganismConfig(), progress=False)
        facts = load_organism_facts(info.config)
        splits = organism_facts(info, facts)
        langs = args.languages or [lg for lg in info.config.languages if lg in splits]
        return lm, facts, {lg: splits[lg].held_out for lg in langs}
    from lrp2_interp.facts import load_facts
    from lrp2_interp.models.loading import load_model

    lm = load_model(args.model)
    langs = args.languages or ["fr"]
    facts = load_facts(args.facts, ["en", *langs], max_facts_per_relation=args.max_facts, seed=0).parallel()
    return lm, facts, {lg: facts.parallel(["en", lg]) for lg in langs}


def cosine_table(vecs: dict, langs) -> pd.DataFrame:
    rows = []
    for lang in langs:
        for b in range(EMBEDDINGS, vecs["real"].n_layers):
            v = {t: vecs[t].at(lang, b) for t in TOKENS}
            s = {t: vecs[t].at("en", b) - vecs[t].at(lang, b) for t in TOKENS}
            rows.append(
                {
                    "language": lang,
                    "layer": b,
                    "paper_layer": paper_layer(b),
                    "cos_vector": float(F.cosine_similarity(v["real"], v["all"], dim=0)),
                    "cos_shift": float(F.cosine_similarity(s["real"], s["all"], dim=0)),
                    "shift_norm_real": float(s["real"].norm()),
                    "shift_norm_all": float(s["all"].norm()),
                }
            )
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="organism", help="'organism' or a load_model name/directory")
    ap.add_argument("--facts", default=str(REPO))
    ap.add_argument("--languages", nargs="+", default=None)
    ap.add_argument("--layers", nargs="+", type=int, default=None, help="sweep layers (block indices)")
    ap.add_argument("--max-facts", type=int, default=None)
    ap.add_argument("--max-candidates", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    t0 = time.time()
    lm, facts, probe_sets = load(args)
    langs = list(probe_sets)
    sents = {lg: prompt_corpus(facts, lg, lm) for lg in ["en", *langs]}
    vecs = {t: compute_language_vectors(lm, sents, tokens=t, progress=False) for t in TOKENS}
    cos = cosine_table(vecs, langs)
    write_table(out / "cosine.csv", cos)
    print(cos.round(3).to_string(index=False), flush=True)
    probe_cfg = ProbeConfig(max_candidates=args.max_candidates, seed=0)
    rows = []
    for lang in langs:
        for t in TOKENS:
            cfg = SweepConfig(language=lang, layers=tuple(args.layers) if args.layers else None, probe=probe_cfg)
            res = run_sweep(lm, probe_sets[lang], vecs[t], cfg, progress=False)
            base, o, h = res.baseline(), res.oracle(), res.heldout()
            rows.append(
                {
                    "language": lang,
                    "tokens": t,
                    "n_facts": res.facts_table.query("condition == 'baseline'").shape[0],
                    "acc_baseline": base["acc"],
                    "oracle_m": int(o["m"]),
                    "oracle_n": int(o["n"]),
                    "oracle_paper": f"({paper_layer(o['m'])}, {paper_layer(o['n'])})",
                    "gain_oracle": o["gain"],
                    "heldout_m": int(h["m"]),
                    "heldout_n": int(h["n"]),
                    "heldout_paper": f"({paper_layer(h['m'])}, {paper_layer(h['n'])})",
                    "test_gain_heldout": h["test_gain"],
                    "mean_gain_all_pairs": float(res.pairs_table()["gain"].mean()),
                    "seconds": round(time.time() - t0, 1),
                }
            )
            print(pd.DataFrame(rows[-1:]).round(2).to_string(index=False), flush=True)
            write_table(out / f"sweep_{lang}_{t}.csv", res.accuracy_table())
    gains = pd.DataFrame(rows)
    write_table(out / "gains.csv", gains)
    print(gains.round(2).to_string(index=False))
    print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
