"""Reduced precision against float32 on the same facts: probing top-1 agreement, P@1 changes, logits, knowledge neurons.

    python benchmarks/precision.py [--families llama gpt2 ...] [--gemma] [--language fr] [--n-facts 3]
        [--max-candidates 10] [--attr-prompts 2] [--top-k 20] [--dtypes bfloat16 float16] [--threads 1] [--quick]

Each model is loaded once in float32 and once per reduced dtype (``load_model(..., dtype=)``: weights
cast, every activation in that dtype).  On the same facts of ``--language`` (``--n-facts`` per relation
of the shipped ``data/facts``) it reports, per model and dtype:

* **top-1 agreement**: the share of facts whose top-ranked candidate is the same as in float32;
* **P@1 changes**: facts whose correctness (P@1) differs from float32, and Acc in both;
* **max |logit diff|**: the largest absolute logit difference over the real positions of the probe
  prompts, next to the largest float32 logit (its scale);
* **KN top-k overlap**: |top-k neurons in float32 ∩ top-k in the dtype| / k of the integrated-gradient
  scores (default rule and steps), averaged over ``--attr-prompts`` facts.

Models: tiny random models of every family (:data:`lrp2_interp.models.builders.ALL_FAMILIES`, random
weights, a tokenizer trained on the shipped facts) and, with ``--gemma``, the real Gemma-3-270m.
``--quick``: tiny families only, 1 fact per relation, 1 attribution prompt, 5 candidates (seconds; the
test's smoke run).  One line per model and dtype, then a markdown table.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import warnings

import torch

from lrp2_interp.attribution.attribute import AttributionConfig, attribute_many
from lrp2_interp.facts import load_facts
from lrp2_interp.models.builders import ALL_FAMILIES, RandomModelConfig, build_random_model
from lrp2_interp.models.loading import LanguageModel, load_model
from lrp2_interp.models.placement import ReducedPrecisionNote
from lrp2_interp.probing.probe import ProbeConfig, probe
from lrp2_interp.prompts import attribution_queries, fact_sentences, prompt_corpus

REPO = Path(__file__).resolve().parents[1] / "data" / "facts"
TINY = dict(n_layers=3, d_model=32, n_heads=4, d_mlp=64, max_positions=128)


class Parity(NamedTuple):  # not a dataclass: the tests load this script without registering its module
    model: str
    dtype: str
    n_facts: int
    top1_agreement: float  # share of facts with the same top-1 candidate
    p1_changes: int  # facts whose P@1 differs
    acc32: float
    acc: float
    max_logit_diff: float
    logit_scale: float
    kn_overlap: float  # mean top-k overlap of knowledge-neuron scores
    n_attr: int
    seconds: float

    def line(self, k: int) -> str:
        return (
            f"{self.model} {self.dtype}: top-1 agreement {100 * self.top1_agreement:.1f}% of {self.n_facts} facts | "
            f"P@1 changes {self.p1_changes} (Acc {self.acc32:.1f} -> {self.acc:.1f}) | max |logit diff| "
            f"{self.max_logit_diff:.3g} (largest float32 logit {self.logit_scale:.3g}) | KN top-{k} overlap "
            f"{self.kn_overlap:.2f} ({self.n_attr} prompts) | {self.seconds:.1f} s"
        )

    def row(self) -> str:
        return (
            f"| {self.model} | {self.dtype} | {100 * self.top1_agreement:.1f} | {self.p1_changes} / {self.n_facts} | "
            f"{self.max_logit_diff:.3g} / {self.logit_scale:.3g} | {self.kn_overlap:.2f} |"
        )


def logits_of(lm: LanguageModel, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits [n, pos, vocab] float32, real-position mask [n, pos])`` of ``prompts``."""
    batch = lm.encode(prompts)
    with torch.no_grad():
        return lm.logits(batch).float().cpu(), batch.attention_mask.bool().cpu()


def top_neurons(scores: torch.Tensor, k: int) -> set[int]:
    """Flat indices of the ``k`` largest scores ``[layers, d_mlp]``."""
    return set(scores.float().flatten().topk(min(k, scores.numel())).indices.tolist())


def compare(
    name: str, ref: LanguageModel, low: LanguageModel, facts, language: str, cfg: ProbeConfig, n_attr: int, k: int
) -> Parity:
    """Every parity figure of ``low`` against ``ref`` (the same model in float32) on the same facts."""
    t0 = time.time()
    a, b = probe(ref, facts, language, cfg).table, probe(low, facts, language, cfg).table
    assert list(a["lineid"]) == list(b["lineid"])
    agree = float((a["prediction"].to_numpy() == b["prediction"].to_numpy()).mean())
    changes = int((a["correct"].to_numpy() != b["correct"].to_numpy()).sum())
    prompts = prompt_corpus(facts, language, ref)
    la, mask = logits_of(ref, prompts)
    lb, _ = logits_of(low, prompts)
    diff = float((la[mask] - lb[mask]).abs().max())
    queries = attribution_queries(ref, facts, language)[:n_attr]
    overlap = 0.0
    if queries:
        ra = attribute_many(ref, [p for p, _ in queries], [g for _, g in queries], AttributionConfig(), progress=False)
        rb = attribute_many(low, [p for p, _ in queries], [g for _, g in queries], AttributionConfig(), progress=False)
        overlap = sum(len(top_neurons(x.scores, k) & top_neurons(y.scores, k)) / k for x, y in zip(ra, rb)) / len(ra)
    return Parity(
        name,
        str(low.dtype).removeprefix("torch."),
        len(a),
        agree,
        changes,
        100 * float(a["correct"].mean()),
        100 * float(b["correct"].mean()),
        diff,
        float(la[mask].abs().max()),
        overlap,
        len(queries),
        time.time() - t0,
    )


def main() -> list[Parity]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--families", nargs="+", default=list(ALL_FAMILIES), choices=ALL_FAMILIES)
    ap.add_argument("--gemma", action="store_true", help="add the real Gemma-3-270m")
    ap.add_argument("--language", default="fr")
    ap.add_argument("--n-facts", type=int, default=3, help="facts per relation")
    ap.add_argument("--max-candidates", type=int, default=10)
    ap.add_argument("--attr-prompts", type=int, default=2)
    ap.add_argument("--top-k", type=int, default=20)
    ap.add_argument("--dtypes", nargs="+", default=["bfloat16", "float16"], choices=["bfloat16", "float16"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.n_facts, args.attr_prompts, args.max_candidates, args.gemma = 1, 1, 5, False
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", ReducedPrecisionNote)  # this script measures what the note warns of
    facts = load_facts(REPO, ["en", args.language], max_facts_per_relation=args.n_facts, seed=0)
    cfg = ProbeConfig(max_candidates=args.max_candidates)
    corpus = fact_sentences(load_facts(REPO))
    models: list[tuple[str, str | Path]] = []
    tmp = tempfile.TemporaryDirectory()
    for fam in args.families:
        rc = RandomModelConfig(family=fam, **TINY)
        models.append((f"tiny {fam}", build_random_model(rc, corpus, Path(tmp.name) / fam, tokenizer_vocab_size=2000)))
    if args.gemma:
        models.append(("gemma-3-270m", "gemma-3-270m"))
    results = []
    for name, where in models:
        ref = load_model(where)
        for dt in args.dtypes:
            res = compare(
                name,
                ref,
                load_model(where, dtype=getattr(torch, dt)),
                facts,
                args.language,
                cfg,
                args.attr_prompts,
                args.top_k,
            )
            print(res.line(args.top_k), flush=True)
            results.append(res)
    print(
        f"\n| model | dtype | top-1 agreement % | P@1 changes | max logit diff / scale | KN top-{args.top_k} overlap |"
    )
    print("|---|---|---|---|---|---|")
    for res in results:
        print(res.row())
    tmp.cleanup()
    return results


if __name__ == "__main__":
    main()
