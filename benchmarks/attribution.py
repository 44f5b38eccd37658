"""Knowledge-neuron attribution speed: lrp2_interp vs EleutherAI knowledge-neurons 0.0.2.

    python benchmarks/attribution.py [--prompts 3] [--threads 1] [--steps 20] [--quick]
                                     [--bloom-vocab 250880] [--reference] [--no-bloom]

Random weights, real sizes: a BertForMaskedLM shaped like mBERT (12 x 768, d_mlp 3072,
vocab 119,547, seed 0) and a BloomForCausalLM shaped like bloom-560m (24 x 1024,
16 heads, d_mlp 4096, vocab 250,880 unless ``--bloom-vocab``).  Both tools run in
this one process on the same ~10-token prompts, all layers, the same number of
steps, probability space and the same quadrature: knowledge-neurons' own rule
(alphas ``linspace(0, 1, steps)``, weights ``1/steps``), which lrp2_interp calls
``method="kn_linspace"``.  One untimed warm-up prompt per tool precedes the timing.
knowledge-neurons runs with its defaults (``batch_size=10``) on a plain HF copy of
the model; lrp2_interp on the TransformerLens-wrapped one (``path="fast"``).

knowledge-neurons 0.0.2 (``pip install knowledge-neurons==0.0.2``, the ``bench``
extra) imports and runs unchanged with transformers 5.x: no monkeypatch needed.
It is skipped (with a note) when not installed.
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

from lrp2_interp.attribution import AttributionConfig, attribute_neurons  # noqa: E402
from lrp2_interp.models import load_model  # noqa: E402
from lrp2_interp.tiny import RandomModelConfig, build_random_model  # noqa: E402

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


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def masked_prompt(prompt: str) -> str:
    return f"{prompt} [MASK] ."


def timed(fn, items) -> tuple[float, float, list]:
    """(wall s/item, CPU s/item, results): CPU time is what counts on a shared machine."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = [fn(*item) for item in items]
    return (time.perf_counter() - w0) / len(items), (time.process_time() - c0) / len(items), out


def run_ours(lm, prompts, objects, steps: int, budget_mb: float) -> tuple[float, float, list[torch.Tensor]]:
    cfg = AttributionConfig(n_steps=steps, method="kn_linspace", path="fast", progress=False,
                            memory_budget_mb=budget_mb)
    attribute_neurons(lm, prompts[0], objects[0], cfg)  # warm-up
    return timed(lambda p, o: attribute_neurons(lm, p, o, cfg).scores, list(zip(prompts, objects)))


def run_kn(model_dir: Path, prompts, objects, steps: int) -> tuple[float, float, list[torch.Tensor]] | None:
    try:
        from knowledge_neurons import KnowledgeNeurons
    except ImportError as err:
        print(f"knowledge-neurons not installed ({err}); pip install knowledge-neurons==0.0.2")
        return None
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    model = AutoModelForMaskedLM.from_pretrained(model_dir).eval()
    tok = AutoTokenizer.from_pretrained(model_dir)
    kn = KnowledgeNeurons(model, tok, model_type="bert", device="cpu")
    batch = 10 if steps % 10 == 0 else steps  # the library asserts steps % batch_size == 0
    kn.get_scores(prompts[0], objects[0], batch_size=batch, steps=steps, pbar=False)  # warm-up
    return timed(lambda p, o: kn.get_scores(p, o, batch_size=batch, steps=steps, pbar=False).detach(),
                 list(zip(prompts, objects)))


def bench_bert(args, root: Path) -> None:
    size = (RandomModelConfig("bert", n_layers=2, d_model=64, n_heads=4, d_mlp=256, vocab_size=1000) if args.quick
            else RandomModelConfig("bert", n_layers=12, d_model=768, n_heads=12, d_mlp=3072, max_positions=512,
                                   vocab_size=119547, seed=0))
    model_dir = build_random_model(size, CORPUS, root / "bert")
    lm = load_model(model_dir)
    facts = [FACTS[i % len(FACTS)] for i in range(args.prompts)]
    prompts, objects = [masked_prompt(p) for p, _ in facts], [o for _, o in facts]
    n_tok = [len(lm.tokenizer(p)["input_ids"]) for p in prompts]
    print(f"BERT {size.n_layers}x{size.d_model} d_mlp {size.d_mlp} vocab {lm.bridge.cfg.d_vocab}: "
          f"{args.prompts} prompts of {min(n_tok)}-{max(n_tok)} tokens, {args.steps} steps, "
          f"{torch.get_num_threads()} thread(s); peak RSS after load {peak_rss_mb():.0f} MB")
    w_ours, c_ours, ours = run_ours(lm, prompts, objects, args.steps, args.budget_mb)
    print(f"  lrp2_interp (fast, kn_linspace): {c_ours:.2f} s/prompt CPU ({w_ours:.2f} s wall); "
          f"peak RSS {peak_rss_mb():.0f} MB")
    if args.reference:
        cfg = AttributionConfig(n_steps=args.steps, method="kn_linspace", path="reference", progress=False)
        w_ref, c_ref, (ref,) = timed(lambda p, o: attribute_neurons(lm, p, o, cfg).scores, [(prompts[0], objects[0])])
        print(f"  lrp2_interp (reference TL+Captum loop): {c_ref:.2f} s/prompt CPU ({w_ref:.2f} s wall); "
              f"max |fast - reference| / max = {(ref - ours[0]).abs().max() / ref.abs().max():.2e}")
    # knowledge-neurons looks the gold token up with convert_tokens_to_ids: give it our exact first token
    kn = run_kn(model_dir, prompts, [lm.tokenizer.convert_ids_to_tokens(lm.token_ids(o)[0]) for o in objects], args.steps)
    if kn is None:
        return
    w_kn, c_kn, theirs = kn
    diff = max(float((a - b).abs().max()) for a, b in zip(ours, theirs))
    scale = max(float(b.abs().max()) for b in theirs)
    print(f"  knowledge-neurons 0.0.2 get_scores: {c_kn:.2f} s/prompt CPU ({w_kn:.2f} s wall); "
          f"peak RSS {peak_rss_mb():.0f} MB")
    print(f"  speed-up {c_kn / c_ours:.1f}x CPU ({w_kn / w_ours:.1f}x wall); max |ours - kn| = {diff:.3e} "
          f"(relative to max |score| {diff / scale:.2e})")


def bench_bloom(args, root: Path) -> None:
    size = (RandomModelConfig("bloom", n_layers=2, d_model=64, n_heads=4, vocab_size=1000) if args.quick
            else RandomModelConfig("bloom", n_layers=24, d_model=1024, n_heads=16, d_mlp=4096,
                                   vocab_size=args.bloom_vocab, seed=0))
    lm = load_model(build_random_model(size, CORPUS, root / "bloom"))
    facts = [FACTS[i % len(FACTS)] for i in range(args.prompts)]
    prompts, objects = [p for p, _ in facts], [" " + o for _, o in facts]
    n_tok = [len(lm.token_ids(p)) + 1 for p in prompts]
    w, c, _ = run_ours(lm, prompts, objects, args.steps, args.budget_mb)
    print(f"BLOOM {size.n_layers}x{size.d_model} d_mlp {4 * size.d_model} vocab {lm.bridge.cfg.d_vocab}: "
          f"{args.prompts} prompts of {min(n_tok)}-{max(n_tok)} tokens (with BOS), {args.steps} steps, "
          f"{torch.get_num_threads()} thread(s)")
    print(f"  lrp2_interp (fast, kn_linspace): {c:.2f} s/prompt CPU ({w:.2f} s wall); peak RSS {peak_rss_mb():.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--bloom-vocab", type=int, default=250880)
    ap.add_argument("--budget-mb", type=float, default=AttributionConfig().memory_budget_mb,
                    help="lrp2_interp memory_budget_mb")
    ap.add_argument("--reference", action="store_true", help="also time the reference path on one prompt")
    ap.add_argument("--no-bloom", action="store_true")
    ap.add_argument("--quick", action="store_true", help="tiny sizes, runs in seconds (smoke test)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        bench_bert(args, Path(tmp))
        if not args.no_bloom:
            bench_bloom(args, Path(tmp))


if __name__ == "__main__":
    main()
