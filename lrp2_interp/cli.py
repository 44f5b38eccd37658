"""Command line: ``lrp2-interp {probe,vectors,sweep,run,...}``.

Every command writes its outputs (CSV/parquet + JSON config + PNG) into a results
folder and prints where they are.  Bad input exits with status 2 and one line
naming the file, line and field.  Commands that shard work (``sweep``, ``run``)
can be launched with ``torchrun --nproc_per_node K -m lrp2_interp.cli ...``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

from .errors import InputError

REPO_DATA = Path(__file__).resolve().parents[1] / "data" / "facts"
DTYPES = ("float32", "float64", "bfloat16", "float16")


def default_facts() -> str:
    return str(REPO_DATA)


# ------------------------------------------------------------------ shared arguments
def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="HF hub name (needs internet) or local save_pretrained directory")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=DTYPES)
    p.add_argument("--seed", type=int, default=0)


def _facts_args(p: argparse.ArgumentParser, languages: bool = True) -> None:
    p.add_argument("--facts", default=default_facts(), help="mLAMA-layout folder (default: the shipped data/facts)")
    if languages:
        p.add_argument("--languages", nargs="+", default=None, help="default: every language present")
    p.add_argument("--relations", nargs="+", default=None)
    p.add_argument("--max-facts", type=int, default=None, help="max facts per relation (same ids in every language)")


def _probe_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-candidates", type=int, default=None, help="cap the candidate pool (gold + random)")
    p.add_argument("--decoder-score", choices=("sum", "mean"), default="sum")


def _load(args):
    import torch

    from .models import load_model

    torch.manual_seed(args.seed)
    return load_model(args.model, device=args.device, dtype=getattr(torch, args.dtype))


def _facts(args, languages=None):
    from .mlama import load_facts

    return load_facts(args.facts, languages or getattr(args, "languages", None), args.relations,
                      max_facts_per_relation=args.max_facts, seed=args.seed)


def _probe_config(args, progress: bool = True):
    from .probing import ProbeConfig

    return ProbeConfig(batch_size=args.batch_size, max_candidates=args.max_candidates,
                       decoder_score=args.decoder_score, seed=args.seed, progress=progress)


def _done(out: Path, t0: float) -> None:
    print(f"results written to {out.resolve()} ({time.time() - t0:.1f} s)")


# ------------------------------------------------------------------ commands
def cmd_probe(args) -> None:
    from .io import run_metadata, write_json, write_table
    from .metrics import summarize
    from .projection import LRP2Config, lrp2_hooks
    from .vectors import LanguageVectors

    t0, out = time.time(), Path(args.out)
    facts = _facts(args)  # bad fact input fails before the model is loaded
    lm = _load(args)
    cfg = _probe_config(args)
    vectors = LanguageVectors.load(args.vectors) if args.vectors else None
    if args.lrp2 and vectors is None:
        raise InputError("--lrp2 needs --vectors (make them with `lrp2-interp vectors`)", field="vectors")
    tables = []
    for lang in facts.languages:
        hooks = None
        if args.lrp2:
            hooks = lrp2_hooks(lm, vectors, lang, LRP2Config(args.lrp2[0], args.lrp2[1], source=args.source))
        from .probing import probe

        tables.append(probe(lm, facts, lang, cfg, fwd_hooks=hooks).table)
    import pandas as pd

    table = pd.concat(tables, ignore_index=True)
    write_table(out / "predictions.csv", table)
    summary = summarize(table)
    write_table(out / "summary.csv", summary)
    write_json(out / "run.json", run_metadata(cfg, command="probe", model_name=lm.name, facts=args.facts,
                                              lrp2=args.lrp2, vectors=args.vectors, seed=args.seed))
    print(summary[summary["relation"] == "ALL"].to_string(index=False))
    _done(out, t0)


def cmd_vectors(args) -> None:
    from .vectors import compute_language_vectors, prompt_corpus, read_sentences

    t0 = time.time()
    lm = _load(args)
    sentences, corpus = {}, {}
    for item in args.sentences or []:
        if "=" not in item:
            raise InputError(f"expected LANG=FILE, got {item!r}", field="--sentences")
        lang, file = item.split("=", 1)
        sentences[lang] = read_sentences(file, args.limit)
        corpus[lang] = f"{file} (first {len(sentences[lang])} lines)"
    if args.languages:
        facts = _facts(args)
        for lang in facts.languages:
            if lang not in sentences:
                sentences[lang] = prompt_corpus(facts, lang, lm)
                corpus[lang] = f"probe prompts of {args.facts}"
    if not sentences:
        raise InputError("give --languages (probe prompts as corpus) and/or --sentences LANG=FILE", field="languages")
    vec = compute_language_vectors(lm, sentences, corpus=corpus)
    path = vec.save(args.out)
    _done(path, t0)


def cmd_sweep(args) -> None:
    from .distributed import init_distributed
    from .experiment import plot_sweep
    from .io import run_metadata, write_json, write_table
    from .sweep import SweepConfig, run_sweep
    from .vectors import LanguageVectors, compute_language_vectors, prompt_corpus

    t0, out = time.time(), Path(args.out)
    dist = init_distributed(args.device)
    facts = _facts(args, [args.source, args.language]).parallel()
    lm = _load(args)
    if args.vectors:
        vectors = LanguageVectors.load(args.vectors)
    else:
        vectors = compute_language_vectors(lm, {lg: prompt_corpus(facts, lg, lm) for lg in facts.languages},
                                           corpus={lg: f"probe prompts of {args.facts}" for lg in facts.languages})
    cfg = SweepConfig(language=args.language, source=args.source, layers=tuple(args.layers) if args.layers else None,
                      dev_fraction=args.dev_fraction, seed=args.seed, probe=_probe_config(args, progress=False))
    res = run_sweep(lm, facts, vectors, cfg, store_dir=out, dist=dist)
    if res is not None:
        write_table(out / f"sweep_{args.language}.csv", res.accuracy_table())
        plot_sweep(res, out / f"sweep_{args.language}_gain.png")
        o, h = res.oracle(), res.heldout()
        write_json(out / "run.json", run_metadata(cfg, command="sweep", model_name=lm.name, facts=args.facts,
                                                  oracle=o.to_dict(), heldout=h.to_dict(), world=dist.world))
        print(f"baseline {res.baseline()['acc']:.1f}% | oracle m={int(o['m'])} n={int(o['n'])}: {o['acc']:.1f}% | "
              f"held-out m={int(h['m'])} n={int(h['n'])}: test {h['test_acc']:.1f}% "
              f"(baseline test {res.baseline()['test_acc']:.1f}%)")
        _done(out, t0)
    dist.close()


def cmd_run(args) -> None:
    from .distributed import init_distributed
    from .experiment import ExperimentConfig, run_experiment

    t0, out = time.time(), Path(args.out)
    dist = init_distributed(args.device)
    langs = tuple(args.languages or ())
    facts = _facts(args, [args.source, *langs] if langs else None)
    lm = _load(args)
    if not langs:
        langs = tuple(lg for lg in facts.languages if lg != args.source)
    cfg = ExperimentConfig(languages=langs, source=args.source, layers=tuple(args.layers) if args.layers else None,
                           dev_fraction=args.dev_fraction, seed=args.seed, n_boot=args.n_boot,
                           probe=_probe_config(args, progress=False))
    res = run_experiment(lm, facts, cfg, out, dist=dist)
    if res is not None:
        print((out / "summary.md").read_text(encoding="utf-8"))
        _done(out, t0)
    dist.close()


# ------------------------------------------------------------------ parser
COMMANDS: dict[str, tuple[str, Callable]] = {}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lrp2-interp", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("probe", help="typed mLAMA probing (optionally with LRP2)")
    _model_args(p), _facts_args(p), _probe_args(p)
    p.add_argument("--lrp2", nargs=2, type=int, metavar=("M", "N"), default=None)
    p.add_argument("--vectors", default=None, help="language vectors (.safetensors) for --lrp2")
    p.add_argument("--source", default="en")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("vectors", help="compute language vectors")
    _model_args(p), _facts_args(p)
    p.add_argument("--sentences", nargs="+", default=None, metavar="LANG=FILE", help="one sentence per line")
    p.add_argument("--limit", type=int, default=10000, help="max sentences per file (paper: ~10k)")
    p.add_argument("--out", required=True, help="output path (.safetensors + .json)")
    p.set_defaults(func=cmd_vectors)

    for name, func, hlp in (("sweep", cmd_sweep, "accuracy for every (m, n) pair of one language"),
                            ("run", cmd_run, "the full LRP2 experiment for several languages")):
        p = sub.add_parser(name, help=hlp)
        _model_args(p), _facts_args(p, languages=name == "run"), _probe_args(p)
        if name == "sweep":
            p.add_argument("--language", required=True)
            p.add_argument("--vectors", default=None, help="default: computed from the probe prompts")
        else:
            p.add_argument("--n-boot", type=int, default=1000)
        p.add_argument("--source", default="en")
        p.add_argument("--layers", nargs="+", type=int, default=None, help="candidate layers for m and n")
        p.add_argument("--dev-fraction", type=float, default=0.5)
        p.add_argument("--out", required=True)
        p.set_defaults(func=func)

    for register in _extra_commands():
        register(sub)
    return parser


def _extra_commands() -> list[Callable]:
    """Command groups defined in other modules (organism, knowledge neurons, demo)."""
    from . import cli_methods, cli_neurons, cli_organism

    return [cli_organism.register, cli_neurons.register, cli_methods.register]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own tqdm bars report progress
    try:
        args.func(args)
    except InputError as err:
        print(f"lrp2-interp: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
