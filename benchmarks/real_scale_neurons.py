"""Knowledge neurons at real size: overlap with English with and without LRP2 at each language's chosen pair.

    python benchmarks/real_scale_neurons.py                          # fr ru zh, 100 test facts each
    python benchmarks/real_scale_neurons.py --languages fr --facts-per-language 20

Reads the folder of ``benchmarks/real_scale.py`` (``--results``): each language's chosen (m, n)
(``summary.csv``, chosen on dev facts) and its test facts (``facts_{lang}.parquet``).  On the
first ``--facts-per-language`` of those test facts (in the run's order) it runs the
knowledge-neuron analysis of :func:`lrp2_interp.neurons.pipeline.run_knowledge_analysis` (the
language's vectors fitted on the same dev facts as in the real-size run; English and l attributed
without LRP2, l also with LRP2 at the chosen pair; no causal check) and reports, per language:

* the per-fact Jaccard overlap with English's neurons, baseline vs LRP2, the paired gain with a
  per-fact and a relation-clustered bootstrap CI and a relation sign-flip p;
* the permutation control (chance overlap of sets of the same sizes);
* the paper's Table 2 on per-relation sets: same relation vs different relations vs chance.

Each language is resumable (its own folder under ``--out``).  The last line reads::

    real-scale neurons: languages L, facts per language N (Jaccard defined for A-B), wall W min
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "facts"


def chosen_pairs(results: Path) -> dict[str, tuple[int, int]]:
    """Language -> chosen (m, n) from a real-size ``summary.csv``."""
    summary = pd.read_csv(results / "summary.csv")
    out = {}
    for lang, chosen in zip(summary["language"], summary["chosen"]):
        m, n = (int(v) for v in str(chosen).strip("()").split(","))
        out[str(lang)] = (m, n)
    return out


def split_of(results: Path, language: str) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(dev keys, test keys) of one language in the real-size run, in the run's order."""
    t = pd.read_parquet(results / f"facts_{language}.parquet")
    base = t[(t["condition"] == "baseline") & (t["language"] == language)]
    keys = {s: [(str(r), int(i)) for r, i in zip(g["relation"], g["lineid"])] for s, g in base.groupby("split")}
    return keys.get("dev", []), keys.get("test", [])


def paired_overlap(ov: pd.DataFrame, language: str, n_boot: int, seed: int) -> dict:
    """Per-fact Jaccard baseline vs LRP2 for ``language``: means, paired gain, per-fact and clustered CIs, p."""
    from lrp2_interp.paired import cluster_bootstrap_ci, signflip_test

    t = ov[ov["language"] == language]
    wide = t.pivot_table(index="unit", columns="condition", values="jaccard", aggfunc="first").dropna()
    rel = np.array([str(u).rpartition(":")[0] or str(u) for u in wide.index])
    base, lrp = wide["baseline"].to_numpy(float), wide["lrp2"].to_numpy(float)
    diff = lrp - base
    kw = dict(n_boot=n_boot, seed=seed)
    fact_ci = cluster_bootstrap_ci(diff, np.arange(len(diff)), np.mean, **kw)
    rel_ci = cluster_bootstrap_ci(diff, rel, np.mean, **kw)
    return {
        "language": language,
        "n_facts": len(diff),
        "n_relations": len(set(rel)),
        "jaccard_baseline": float(base.mean()),
        "jaccard_lrp2": float(lrp.mean()),
        "gain": float(diff.mean()),
        "gain_fact_ci": f"[{fact_ci.low:+.4f}, {fact_ci.high:+.4f}]",
        "gain_relation_ci": f"[{rel_ci.low:+.4f}, {rel_ci.high:+.4f}]",
        "p_relation": signflip_test(diff, rel, seed=seed),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="gemma-3-270m")
    ap.add_argument("--facts", default=str(SHARED))
    ap.add_argument("--results", default=str(ROOT / "results" / "real_scale"))
    ap.add_argument("--languages", nargs="*", default=["fr", "ru", "zh"])
    ap.add_argument("--source", default="en")
    ap.add_argument("--facts-per-language", type=int, default=100)
    ap.add_argument("--n-perm", type=int, default=1000)
    ap.add_argument("--n-boot", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "results" / "real_scale_neurons"))
    args = ap.parse_args(argv)

    from lrp2_interp.facts import load_facts
    from lrp2_interp.interventions.language_projection import LRP2Intervention
    from lrp2_interp.models.loading import load_model
    from lrp2_interp.neurons.pipeline import KnowledgeConfig, run_knowledge_analysis

    torch.set_num_threads(args.threads)
    t0 = time.time()
    results = Path(args.results)
    if not Path(args.facts).is_dir() or not (results / "summary.csv").is_file():
        print(f"real-scale neurons: needs {args.facts} and a real-size run in {results} (skipped)")
        return 0
    pairs = chosen_pairs(results)
    missing = [g for g in args.languages if g not in pairs]
    if missing:
        print(
            f"real-scale neurons: {results / 'summary.csv'}: no chosen pair for {', '.join(missing)}", file=sys.stderr
        )
        return 2
    facts = load_facts(args.facts, [args.source, *args.languages])
    lm = load_model(args.model)
    rows, tables, controls = [], [], []
    for lang in tqdm(args.languages, desc="languages"):
        dev, test = split_of(results, lang)
        keys = test[: args.facts_per_language]
        pair = facts.select_languages([args.source, lang])
        inter = LRP2Intervention.for_model(lm, lang, source=args.source).fit(lm, pair.restrict_keys(dev))
        config = KnowledgeConfig(
            languages=(lang,),
            lrp2={lang: pairs[lang]},
            source=args.source,
            causal=None,
            n_perm=args.n_perm,
            n_boot=args.n_boot,
        )
        res = run_knowledge_analysis(lm, pair.restrict_keys(keys), inter.vectors, config, Path(args.out) / lang)
        assert res is not None  # single process
        row = paired_overlap(res.overlap_fact.table, lang, args.n_boot, 0)
        row["chosen"] = f"({pairs[lang][0]}, {pairs[lang][1]})"
        row["n_attributed"] = len(keys)  # n_facts: those whose Jaccard is defined in both conditions
        rows.append(row)
        perm = res.control.summary()
        controls.append(perm[perm["language"] == lang])
        tables.append(res.relation_baseline.assign(language_run=lang))
        print(pd.DataFrame([row]).to_string(index=False), flush=True)
    out = Path(args.out)
    summary = pd.DataFrame(rows)
    summary.to_csv(out / "summary.csv", index=False)
    pd.concat(controls, ignore_index=True).to_csv(out / "permutation_summary.csv", index=False)
    pd.concat(tables, ignore_index=True).to_csv(out / "relation_overlap_summary.csv", index=False)
    wall = (time.time() - t0) / 60
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(summary.to_string(index=False))
    print(pd.concat(controls, ignore_index=True).to_string(index=False))
    print(pd.concat(tables, ignore_index=True).to_string(index=False))
    print(f"peak RSS {peak:.0f} MB, {args.threads} threads")
    print(
        f"real-scale neurons: languages {len(rows)}, facts per language {int(summary['n_attributed'].min())} "
        f"(Jaccard defined for {int(summary['n_facts'].min())}-{int(summary['n_facts'].max())}), wall {wall:.1f} min"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
