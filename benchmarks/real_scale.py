"""The real-size held-out LRP2 answer on Gemma-3-270m: dev search, test scoring, controls, one table.

    python benchmarks/real_scale.py                       # every language of ../shared/data/facts but en
    python benchmarks/real_scale.py --languages fr ru zh  # a subset
    python benchmarks/real_scale.py --facts /path/to/mlama1.1 --model /path/or/hub-name

Per language (facts parallel with English; candidate pools by entity, 10 candidates):
the full grid of (m, n) pairs over the embedding output and every block (171 pairs for 18
blocks) is searched on dev facts by successive halving; the test facts are probed only at the
baseline, the chosen pair, ``--controls`` matched-control draws and the wrong-language control
(the next language in sorted order), plus English's baseline for Trans.  Resumable: rerun the
same command after an interruption (``--out`` holds the shards).  Writes ``summary.csv``,
``summary.md`` (headline + full table), ``search_{lang}.csv``, ``facts_{lang}.parquet``.

The last line reads::

    real-scale: languages L, test facts min T, wall W min, work vs full grid X, bf16 rank flips F, control draws K
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "facts"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="gemma-3-270m")
    ap.add_argument("--facts", default=str(SHARED))
    ap.add_argument("--languages", nargs="*", default=None, help="target languages (default: all but the source)")
    ap.add_argument("--source", default="en")
    ap.add_argument("--dev", type=int, default=200)
    ap.add_argument("--test", type=int, default=500)
    ap.add_argument("--first-rung", type=int, default=16)
    ap.add_argument("--eta", type=int, default=3)
    ap.add_argument("--controls", type=int, default=5)
    ap.add_argument("--candidates", type=int, default=10)
    ap.add_argument("--search", default="halving", choices=("halving", "full", "oracle"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument(
        "--head-dtype",
        default="float32",
        choices=("float32", "bfloat16"),
        help="unembedding dtype of the scoring paths; bfloat16 re-scores close calls in float32 (slower on AVX2 CPUs)",
    )
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--out", default=str(ROOT / "results" / "real_scale"))
    args = ap.parse_args(argv)

    from lrp2_interp.facts import load_facts
    from lrp2_interp.interventions.language_projection import LRP2Intervention
    from lrp2_interp.interventions.selection import SelectionConfig, select_and_score
    from lrp2_interp.interventions.summary import headline, summary_row
    from lrp2_interp.manifest import check_manifest, results_manifest
    from lrp2_interp.models.loading import load_model
    from lrp2_interp.probing.types import ProbeConfig
    from lrp2_interp.store import ShardStore

    torch.set_num_threads(args.threads)
    t0 = time.time()
    if not Path(args.facts).is_dir():
        print(f"real-scale: no fact folder at {args.facts} (skipped)")
        return 0
    facts = load_facts(args.facts)
    others = [g for g in facts.languages if g != args.source]
    langs = args.languages or others
    facts.check_languages([args.source, *langs], field="languages")
    lm = load_model(args.model, device=args.device, dtype=getattr(torch, args.dtype))
    config = SelectionConfig(
        max_dev=args.dev,
        max_test=args.test,
        search=args.search,
        first_rung=args.first_rung,
        eta=args.eta,
        n_controls=args.controls,
        probe=ProbeConfig(max_candidates=args.candidates, distractors="entity", head_dtype=args.head_dtype),
    )
    out = Path(args.out)
    check_manifest(out, results_manifest(config, facts=facts, lm=lm))
    store = ShardStore(out)
    rows, work, full = [], 0, 0
    for lang in langs:
        t_lang = time.time()
        wrong = others[(others.index(lang) + 1) % len(others)]
        inter = LRP2Intervention.for_model(lm, lang, source=args.source, wrong_language=wrong)
        n_pairs = len(inter.settings())
        bar = tqdm(desc=f"{lang} ({n_pairs} pairs)", unit="fact-cond", smoothing=0.05)
        res = select_and_score(lm, facts, inter, config, store=store, tick=bar.update)
        bar.close()
        row = summary_row(res, n_boot=args.n_boot)
        row["wall_min"] = round((time.time() - t_lang) / 60, 2)
        rows.append(row)
        work += res.work["fact_conditions"]
        full += res.work["full_grid"]
        res.search.to_csv(out / f"search_{lang}.csv", index=False)
        res.facts_table.to_parquet(out / f"facts_{lang}.parquet")
        print(headline(pd.DataFrame([row])).to_string(index=False), flush=True)
        summary = write_summary(out, rows, lm.name, args, t0)  # after every language: a partial run has a table
    wall = (time.time() - t0) / 60
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(headline(summary).to_string(index=False))
    print(f"peak RSS {peak:.0f} MB; fact-conditions probed {work:,} of {full:,} for the full grid")
    flips = (
        "n/a (float32)"
        if args.head_dtype == "float32"
        else "not measured (bfloat16 head, close calls re-scored in float32)"
    )
    print(
        f"real-scale: languages {len(langs)}, test facts min {int(summary['n_test'].min())}, wall {wall:.1f} min, "
        f"work vs full grid {full / max(1, work):.1f}, bf16 rank flips {flips}, control draws {args.controls}"
    )
    return 0


def write_summary(out: Path, rows: list[dict], model: str, args: argparse.Namespace, t0: float) -> pd.DataFrame:
    """``summary.csv`` and ``summary.md`` (headline, then the full table) of the languages done so far."""
    from lrp2_interp.interventions.summary import headline, markdown_table
    from lrp2_interp.metrics import estimate_columns

    summary = pd.DataFrame(rows)
    estimate_columns(summary).to_csv(out / "summary.csv", index=False)
    wall = (time.time() - t0) / 60
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    text = (
        f"# Real-size held-out LRP2: {model}\n\n"
        f"{len(rows)} languages; per language up to {args.dev} dev and {args.test} test facts, "
        f"{args.candidates} candidates drawn by entity; (m, n) searched on dev ({args.search}); "
        f"{args.controls} matched-control draws; wall {wall:.1f} min, peak RSS {peak:.0f} MB, "
        f"{args.threads} threads.\n\n"
        + markdown_table(headline(summary))
        + "\n## Full table\n\n"
        + markdown_table(estimate_columns(summary))
    )
    (out / "summary.md").write_text(text, encoding="utf-8")
    return summary


if __name__ == "__main__":
    sys.exit(main())
