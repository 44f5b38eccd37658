"""Knowledge-neuron attribution speed at the same rule and at equal accuracy: lrp2_interp vs knowledge-neurons 0.0.2.

    python benchmarks/attribution.py [--prompts 3] [--threads 1] [--ref-steps 128] [--quick]
                                     [--bloom-vocab 250880] [--no-mbert] [--no-bloom] [--no-gemma] [--reference] [--paths]

One process, the same ~10-token prompts, all layers, probability space; CPU seconds per prompt
(``time.process_time``, 1 thread: the development machine is shared), one untimed warm-up per tool.

* **mBERT shape** (random ``BertForMaskedLM``, 12 x 768, d_mlp 3072, vocab 119,547, seed 0):
  knowledge-neurons 0.0.2 ``get_scores`` (its rule: alphas ``linspace(0, 1, 20)``, weights 1/20,
  ``batch_size=10``, on a plain HF copy); ours with that rule (``method="kn_linspace"``, 20 steps:
  identical scores, max difference printed); ours at the default rule and steps
  (``AttributionConfig()``), whose accuracy is checked against knowledge-neurons' -- both measured
  against Gauss-Legendre with ``--ref-steps`` points (relative L2 distance of the attribution vector and
  Jaccard of the selected neurons, score > 0.2 x max) -- and whose steps are doubled until it is at
  least as accurate (the line says how many it used).
* **BLOOM-560m shape** (random ``BloomForCausalLM``, 24 x 1024, vocab 250,880 unless ``--bloom-vocab``)
  and **Gemma-3-270m** (the real model, ``load_model("gemma-3-270m")``): ours only (knowledge-neurons
  0.0.2 has no BLOOM or Gemma support), same rule and default rule, the same accuracy columns.

After each model a memory line: the peak resident memory since that model was loaded (Linux VmHWM; on
CUDA also the allocator's peak) next to :func:`lrp2_interp.attribution.memory.estimate`'s figures.

The last line reads ``attribution speed-up: same-rule <x>x, equal-accuracy <y>x, max diff same-rule <d>``
(mBERT shape; ``<d>`` is the largest absolute score difference to knowledge-neurons).
knowledge-neurons 0.0.2 (``pip install -e '.[bench]'``) runs unchanged with transformers 5.x; without it
the mBERT line reports ours only and the last line says ``n/a``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from lrp2_interp.attribution.attribute import attribute_neurons
from lrp2_interp.attribution.ig_config import AttributionConfig
from lrp2_interp.attribution.queries import queries
from lrp2_interp.models.builders import RandomModelConfig, build_random_model
from lrp2_interp.models.loading import load_model

# (prompt, object), lower-case: the saved BERT tokenizer reloads with lowercase=True, and every word is in the
# tokenizer's training corpus, so each masked prompt is 10-12 tokens with [CLS]/[SEP]
FACTS = [
    ("the capital city of france is the town of", "paris"),
    ("the official language spoken in japan is", "japanese"),
    ("albert einstein was born in the country of", "germany"),
    ("the eiffel tower is located in the city of", "paris"),
    ("the river thames flows through the city of", "london"),
    ("the currency used in the united states is the", "dollar"),
]
CORPUS = [f"{p} {o} ." for p, o in FACTS] * 20
GEMMA_FACTS = [
    ("The capital city of France is the town of", " Paris"),
    ("The official language spoken in Japan is", " Japanese"),
    ("Albert Einstein was born in the country of", " Germany"),
    ("The Eiffel Tower is located in the city of", " Paris"),
]
SAME_RULE = dict(method="kn_linspace", n_steps=20)


def peak_rss_mb() -> float:
    """Peak resident memory since the last :func:`reset_peak` (Linux VmHWM), else of the whole process."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def reset_peak() -> None:
    """Start a new peak-memory window (Linux: ``clear_refs`` 5 resets VmHWM; CUDA: the allocator's peak)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def rss_mb() -> float:
    """Resident memory now (Linux VmRSS; 0 where unknown)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def memory_line(lm, n_pos: int, budget_mb: float, start_mb: float, ref_steps: int) -> str:
    """Measured peak (RSS; CUDA: allocated) of this model's runs next to the one estimate
    (attribution.memory.estimate) of its largest pass (the Gauss-Legendre reference) and of the default rule."""
    from lrp2_interp.attribution.memory import ModelShape, estimate

    hf = lm.bridge.original_model
    shape = ModelShape(
        lm.n_layers,
        lm.d_model,
        lm.d_mlp,
        int(lm.bridge.cfg.n_heads),
        int(hf.get_output_embeddings().weight.shape[0]),
        params=sum(p.numel() for p in hf.parameters()),
        causal=lm.kind == "causal",
    )
    itemsize = torch.empty((), dtype=lm.dtype).element_size()
    default = estimate(shape, itemsize, n_pos=n_pos, n_steps=AttributionConfig().n_steps, budget_mb=budget_mb)
    largest = estimate(shape, itemsize, n_pos=n_pos, n_steps=max(ref_steps, 20), budget_mb=budget_mb)
    gpu = (
        f"peak CUDA allocated {torch.cuda.max_memory_allocated() / 2**20:.0f} MB, " if lm.device.type == "cuda" else ""
    )
    return (
        f"  memory (budget {budget_mb:.0f} MB): {gpu}peak RSS {peak_rss_mb():.0f} MB over this model's runs (RSS "
        f"{start_mb:.0f} MB when they began) | estimate: weights {default.weights_mb:.0f} MB; largest pass "
        f"({max(ref_steps, 20)} steps) {largest.rows_per_pass} rows x {largest.row_mb:.1f} MB = peak "
        f"{largest.peak_mb:.0f} MB; default rule {default.rows_per_pass} rows/pass, {default.passes} pass(es) "
        f"per prompt = peak {default.peak_mb:.0f} MB"
    )


def timed(fn, items) -> tuple[float, list]:
    """(CPU s/item, results) after one untimed warm-up call."""
    fn(*items[0])
    c0 = time.process_time()
    out = [fn(*item) for item in items]
    return (time.process_time() - c0) / len(items), out


def selected(scores: torch.Tensor) -> set[int]:
    flat = scores.flatten()
    return set((flat > 0.2 * flat.max()).nonzero().flatten().tolist())


def accuracy(scores: list[torch.Tensor], ref: list[torch.Tensor]) -> tuple[float, float]:
    """(mean relative L2 distance, mean Jaccard of the selected sets) to the reference scores."""
    l2 = [float((s.double() - r.double()).norm() / r.double().norm()) for s, r in zip(scores, ref)]
    jac = [len(selected(s) & selected(r)) / max(1, len(selected(s) | selected(r))) for s, r in zip(scores, ref)]
    return sum(l2) / len(l2), sum(jac) / len(jac)


class Ours:
    def __init__(self, lm, prompts, objects, budget_mb: float):
        self.lm, self.items, self.budget = lm, list(zip(prompts, objects)), budget_mb

    def config(self, **kw) -> AttributionConfig:
        return AttributionConfig(path="fast", memory_budget_mb=self.budget, **kw)

    def run(self, cfg: AttributionConfig) -> tuple[float, list[torch.Tensor]]:
        return timed(lambda p, o: attribute_neurons(self.lm, p, o, cfg, progress=False).scores, self.items)

    def scores(self, cfg: AttributionConfig) -> list[torch.Tensor]:
        return [attribute_neurons(self.lm, p, o, cfg, progress=False).scores for p, o in self.items]


def equal_accuracy(ours: Ours, ref, target_l2: float, max_steps: int = 512):
    """The default rule at the default steps, doubled until its error is <= target_l2: (cfg, s/prompt, acc)."""
    cfg = ours.config(**{k: getattr(AttributionConfig(), k) for k in ("method", "n_steps")})
    while True:
        sec, scores = ours.run(cfg)
        acc = accuracy(scores, ref)
        if acc[0] <= target_l2 or cfg.n_steps * 2 > max_steps:
            return cfg, sec, acc
        cfg = replace(cfg, n_steps=cfg.n_steps * 2)


def fmt(name: str, sec: float, acc: tuple[float, float] | None = None) -> str:
    tail = f"; rel L2 to GL-ref {acc[0]:.2e}, Jaccard {acc[1]:.3f}" if acc else ""
    return f"  {name}: {sec:.2f} s/prompt CPU{tail}"


def run_kn(model_dir: Path, prompts, objects, steps: int) -> tuple[float, list[torch.Tensor]] | None:
    try:
        from knowledge_neurons import KnowledgeNeurons
    except ImportError as err:
        print(f"  knowledge-neurons not installed ({err}); pip install knowledge-neurons==0.0.2")
        return None
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    model = AutoModelForMaskedLM.from_pretrained(model_dir).eval()
    tok = AutoTokenizer.from_pretrained(model_dir)
    kn = KnowledgeNeurons(model, tok, model_type="bert", device="cpu")
    batch = 10 if steps % 10 == 0 else steps  # the library asserts steps % batch_size == 0
    return timed(
        lambda p, o: kn.get_scores(p, o, batch_size=batch, steps=steps, pbar=False).detach(),
        list(zip(prompts, objects)),
    )


class Shape(NamedTuple):  # immutable; not a dataclass: tests load this script without registering the module
    """One benchmarked model: its random shape (``--quick`` and full size) or, at full size, a real model."""

    label: str
    quick: RandomModelConfig
    full: RandomModelConfig | str  # a random shape, or the name of a real model for load_model
    quick_label: str | None = None  # the label at --quick, where it differs


def shapes(bloom_vocab: int = 250880) -> dict[str, Shape]:
    """The benchmarked models by name (``--quick``: tiny random models of the same families)."""
    return {
        "mbert": Shape(
            "mBERT shape (random)",
            RandomModelConfig("bert", n_layers=2, d_model=64, n_heads=4, d_mlp=256, vocab_size=1000),
            RandomModelConfig(
                "bert", n_layers=12, d_model=768, n_heads=12, d_mlp=3072, max_positions=512, vocab_size=119547, seed=0
            ),
        ),
        "bloom": Shape(
            "BLOOM-560m shape (random)",
            RandomModelConfig("bloom", n_layers=2, d_model=64, n_heads=4, vocab_size=1000),
            RandomModelConfig(
                "bloom", n_layers=24, d_model=1024, n_heads=16, d_mlp=4096, vocab_size=bloom_vocab, seed=0
            ),
        ),
        "gemma": Shape(
            "Gemma-3-270m",
            RandomModelConfig("gemma3", n_layers=2, d_model=64, n_heads=4, d_mlp=128, vocab_size=1000),
            "gemma-3-270m",
            quick_label="Gemma-3 (tiny random)",
        ),
    }


def load_case(shape: Shape, n_prompts: int, quick: bool, root: Path) -> tuple[str, object, Path | None, list, list]:
    """(label, lm, model_dir or None for a real model, prompts, objects) of ``n_prompts`` facts."""
    size = shape.quick if quick else shape.full
    if isinstance(size, str):
        facts = [GEMMA_FACTS[i % len(GEMMA_FACTS)] for i in range(n_prompts)]
        return shape.label, load_model(size), None, [p for p, _ in facts], [o for _, o in facts]
    model_dir = build_random_model(size, CORPUS, root / size.family)
    lm = load_model(model_dir)
    facts = [FACTS[i % len(FACTS)] for i in range(n_prompts)]
    if lm.kind == "masked":
        prompts, objects = [f"{p} [MASK] ." for p, _ in facts], [o for _, o in facts]
    else:
        prompts, objects = [p for p, _ in facts], [" " + o for _, o in facts]
    return (shape.quick_label or shape.label) if quick else shape.label, lm, model_dir, prompts, objects


def bench(label: str, lm, model_dir: Path | None, prompts, objects, args) -> tuple[float, float, float] | None:
    """Same rule and equal accuracy on one model; with knowledge-neurons on a random masked LM.

    Returns (speed-up at the same rule, at equal accuracy, max score difference) against knowledge-neurons,
    or None where it did not run."""
    n_tok = [int(queries(lm, p, o, AttributionConfig())[0].ids.shape[0]) for p, o in zip(prompts, objects)]
    print(
        f"{label}: {lm.n_layers} layers x {lm.d_model}, d_mlp {lm.d_mlp}, vocab {lm.bridge.cfg.d_vocab}: "
        f"{len(prompts)} prompts of {min(n_tok)}-{max(n_tok)} tokens, {torch.get_num_threads()} thread(s)"
    )
    reset_peak()  # the peak printed below is this model's: weights, caches and attribution
    start_mb = rss_mb()
    ours = Ours(lm, prompts, objects, args.budget_mb)
    ref = ours.scores(ours.config(method="gausslegendre", n_steps=args.ref_steps))
    c_same, same = ours.run(ours.config(**SAME_RULE))
    acc_same = accuracy(same, ref)
    print(fmt("ours, knowledge-neurons' rule (kn_linspace, 20 steps)", c_same, acc_same))
    if args.reference:
        res = attribute_neurons(lm, prompts[0], objects[0], AttributionConfig(path="reference", **SAME_RULE))
        print(
            f"  ours, reference path (TL + Captum), 1 prompt: max |fast - reference| / max "
            f"{float((res.scores - same[0]).abs().max() / res.scores.abs().max()):.2e}"
        )
    kn = None
    if lm.kind == "masked" and model_dir is not None:  # knowledge-neurons 0.0.2 has no BLOOM or Gemma support
        # knowledge-neurons looks the gold token up with convert_tokens_to_ids: give it our exact first token
        kn_objects = [lm.tokenizer.convert_ids_to_tokens(lm.token_ids(o)[0]) for o in objects]
        kn = run_kn(model_dir, prompts, kn_objects, 20)
    target = acc_same[0]
    if kn is not None:
        c_kn, theirs = kn
        acc_kn = accuracy(theirs, ref)
        diff = max(float((a - b).abs().max()) for a, b in zip(same, theirs))
        print(
            fmt("knowledge-neurons 0.0.2 get_scores (its rule, 20 steps)", c_kn, acc_kn)
            + f"; max |ours - kn| {diff:.1e} (max |score| {max(float(t.abs().max()) for t in theirs):.1e})"
        )
        target = acc_kn[0]
    cfg, c_eq, acc_eq = equal_accuracy(ours, ref, target)
    print(
        fmt(f"ours, default rule ({cfg.method}, {cfg.n_steps} steps)", c_eq, acc_eq)
        + f"; {c_same / c_eq:.1f}x the same-rule speed at equal or better accuracy; peak RSS {peak_rss_mb():.0f} MB"
    )
    print(memory_line(lm, max(n_tok), args.budget_mb, start_mb, args.ref_steps))
    return (c_kn / c_same, c_kn / c_eq, diff) if kn is not None else None


def bench_paths(lm, prompts, objects) -> None:
    """BLOOM shape, default rule: the generic decoder path one prompt at a time vs attribute_batch (all per pass)."""
    from lrp2_interp.attribution.batch import attribute_batch

    cfg = AttributionConfig(path="fast")
    items = list(zip(prompts, objects))
    sec_one, one = timed(lambda: [attribute_neurons(lm, p, o, cfg, progress=False).scores for p, o in items], [()])
    sec_bat, bat = timed(
        lambda: [
            r.scores
            for r in attribute_batch(
                lm, [(p, o, None) for p, o in items], cfg, facts_per_pass=len(items), progress=False
            )
        ],
        [()],
    )
    rel = max(float((x - y).abs().max() / y.abs().max()) for x, y in zip(bat[0], one[0]))
    n = len(items)
    print(
        f"  paths, default rule: one prompt per pass {sec_one / n:.2f} s/prompt CPU, attribute_batch ({n} per pass) "
        f"{sec_bat / n:.2f}; max rel diff batched to one at a time {rel:.1e}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ref-steps", type=int, default=128, help="Gauss-Legendre points of the accuracy reference")
    ap.add_argument("--bloom-vocab", type=int, default=250880)
    ap.add_argument(
        "--budget-mb", type=float, default=AttributionConfig().memory_budget_mb, help="lrp2_interp memory_budget_mb"
    )
    ap.add_argument("--reference", action="store_true", help="also check the reference path on one prompt")
    ap.add_argument("--no-mbert", action="store_true")
    ap.add_argument("--no-bloom", action="store_true")
    ap.add_argument("--no-gemma", action="store_true")
    ap.add_argument(
        "--paths",
        action="store_true",
        help="BLOOM: also time attribute_batch (all prompts per pass) against one prompt at a time",
    )
    ap.add_argument("--quick", action="store_true", help="tiny sizes, 1-2 prompts, runs in seconds (smoke test)")
    args = ap.parse_args()
    if args.quick:
        args.ref_steps = 32
    torch.set_num_threads(args.threads)
    names = ["mbert"] * (not args.no_mbert) + ["bloom"] * (not args.no_bloom) + ["gemma"] * (not args.no_gemma)
    ratios = None
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            label, lm, model_dir, prompts, objects = load_case(
                shapes(args.bloom_vocab)[name], args.prompts, args.quick, Path(tmp)
            )
            got = bench(label, lm, model_dir, prompts, objects, args)
            ratios = got if name == "mbert" else ratios
            if name == "bloom" and args.paths:
                bench_paths(lm, prompts, objects)
            del lm
    if ratios is None:
        print("attribution speed-up: same-rule n/a, equal-accuracy n/a, max diff same-rule n/a")
    else:
        print(
            f"attribution speed-up: same-rule {ratios[0]:.1f}x, equal-accuracy {ratios[1]:.1f}x, "
            f"max diff same-rule {ratios[2]:.1e}"
        )


if __name__ == "__main__":
    main()
