"""Command line: ``lrp2-interp {probe,vectors,sweep,run,...}``.

Every command writes its outputs (CSV/parquet + JSON config + PNG) into a results
folder and prints where they are.  Bad input exits with status 2 and one line
naming the file, line and field.  Commands that shard work (``sweep``, ``run``)
can be launched with ``torchrun --nproc_per_node K -m lrp2_interp.cli.main ...``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from lrp2_interp.errors import InputError
from lrp2_interp.facts import shipped_facts_root

REPO_DATA = shipped_facts_root(check=False)  # the shipped facts (package data or the checkout's data/facts)
DTYPES = ("float32", "float64", "bfloat16", "float16")


def default_facts() -> str:
    return str(shipped_facts_root())


# ------------------------------------------------------------------ shared arguments
def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="HF hub name (needs internet) or local save_pretrained directory")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=DTYPES)
    p.add_argument("--seed", type=int, default=0)


def _facts_args(p: argparse.ArgumentParser, languages: bool = True) -> None:
    p.add_argument("--facts", default=None, help="mLAMA-layout folder (default: the shipped data/facts)")
    if languages:
        p.add_argument("--languages", nargs="+", default=None, help="default: every language present")
    p.add_argument("--relations", nargs="+", default=None)
    p.add_argument("--max-facts", type=int, default=None, help="max facts per relation (same ids in every language)")


def _probe_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-candidates", type=int, default=None, help="cap the candidate pool (gold + random)")
    p.add_argument("--decoder-score", choices=("sum", "mean"), default="sum")


def _load(args, facts=None, *, objects: bool = False):
    """The model of ``--model``; with ``facts``, also refuse facts whose prompts exceed its positions
    and, with ``objects`` (commands that rank objects), objects its tokenizer does not cover."""
    import torch

    from lrp2_interp.models.loading import load_model

    torch.manual_seed(args.seed)
    lm = load_model(args.model, device=args.device, dtype=getattr(torch, args.dtype))
    if facts is not None:
        check_fact_lengths(lm, facts)
        if objects:
            check_object_coverage(lm, facts)
    return lm


def check_object_coverage(lm, facts) -> None:
    """Refuse a relation whose every object tokenizes to the unknown token only (a script the tokenizer
    does not cover): all its candidates would score the same, so Acc and Trans would silently be
    tie-breaking, not the model.  Partly covered relations are probed as they are."""
    from lrp2_interp.models.loading import unknown_only

    for (lang, rel), rows in facts.facts.items():
        if lang not in facts.languages or rel not in facts.relations or not rows:
            continue
        if all(unknown_only(lm, lm.token_ids(f.obj_label)) for f in rows):
            raise InputError(
                f"all {len(rows)} objects tokenize to the unknown token only, e.g. {rows[0].obj_label!r}: "
                f"the tokenizer of '{lm.name}' does not cover this script",
                file=facts.root / lang / f"{rel}.jsonl",
                field="obj_label",
            )


def check_fact_lengths(lm, facts, per_relation: int = 3) -> None:
    """Refuse a fact whose filled sentence is longer than the model's positions, naming its file and lineid.

    Only the ``per_relation`` facts with the longest labels of each file are tokenized
    (cheap); the batch encoder's own length check stays the backstop.
    """
    from lrp2_interp.prompts import render_filled

    limit = lm.max_positions
    if limit is None:
        return
    for (lang, rel), rows in facts.facts.items():
        if lang not in facts.languages or rel not in facts.relations:
            continue
        tpl = facts.template(lang, rel).template
        for fact in sorted(rows, key=lambda f: -(len(f.sub_label) + len(f.obj_label)))[:per_relation]:
            n = len(lm.tokenizer(render_filled(tpl, fact.sub_label, fact.obj_label))["input_ids"]) + 1
            if n > limit:
                raise InputError(
                    f"lineid {fact.lineid}: its prompt has {n} tokens, more than the {limit} positions "
                    f"of model '{lm.name}'",
                    file=facts.root / lang / f"{rel}.jsonl",
                    field="sub_label",
                )


def _facts(args, languages=None):
    from lrp2_interp.facts import load_facts

    if args.facts is None:
        args.facts = default_facts()
    return load_facts(
        args.facts,
        languages or getattr(args, "languages", None),
        args.relations,
        max_facts_per_relation=args.max_facts,
        seed=args.seed,
    )


def run_info(args, t0: float, **extra) -> dict:
    """What every ``run.json`` of the CLI records besides :func:`~lrp2_interp.files.run_metadata`'s provenance."""
    langs = getattr(args, "languages", None)
    return {
        "command": args.command,
        "facts": getattr(args, "facts", None),
        "languages": list(langs) if langs else None,
        "relations": getattr(args, "relations", None),
        "max_facts": getattr(args, "max_facts", None),
        "seed": getattr(args, "seed", None),
        "device": getattr(args, "device", None),
        "dtype": getattr(args, "dtype", None),
        "seconds": round(time.time() - t0, 1),
        **extra,
    }


def _probe_config(args):
    from lrp2_interp.probing.api import ProbeConfig

    return ProbeConfig(
        batch_size=args.batch_size,
        max_candidates=args.max_candidates,
        decoder_score=args.decoder_score,
        seed=args.seed,
    )


def _tokens(args) -> str:
    """Tokens averaged into language vectors: ``--tokens``, else the preset's (``--paper``: all tokens)."""
    from lrp2_interp.presets import get_preset

    return getattr(args, "tokens", None) or get_preset("paper" if getattr(args, "paper", False) else "default").tokens


def _done(out: Path, t0: float) -> None:
    print(f"results written to {out.resolve()} ({time.time() - t0:.1f} s)")


# ------------------------------------------------------------------ commands
def cmd_probe(args) -> None:
    from lrp2_interp.files import run_metadata, write_json, write_table
    from lrp2_interp.lrp2.projection import LRP2Config, lrp2_hooks
    from lrp2_interp.lrp2.vectors import LanguageVectors
    from lrp2_interp.metrics import summarize

    t0, out = time.time(), Path(args.out)
    facts = _facts(args)  # bad fact input fails before the model is loaded
    lm = _load(args, facts, objects=True)
    cfg = _probe_config(args)
    vectors = LanguageVectors.load(args.vectors) if args.vectors else None
    if args.lrp2 and vectors is None:
        raise InputError("--lrp2 needs --vectors (make them with `lrp2-interp vectors`)", field="vectors")
    tables = []
    for lang in facts.languages:
        hooks = None
        if args.lrp2:
            hooks = lrp2_hooks(lm, vectors, lang, LRP2Config(args.lrp2[0], args.lrp2[1], source=args.source))
        from lrp2_interp.probing.api import probe

        tables.append(probe(lm, facts, lang, cfg, fwd_hooks=hooks, progress=True).table)
    import pandas as pd

    table = pd.concat(tables, ignore_index=True)
    write_table(out / "predictions.csv", table)
    summary = summarize(table)
    write_table(out / "summary.csv", summary)
    write_json(
        out / "run.json",
        run_metadata(
            cfg,
            model_name=lm.name,
            **run_info(args, t0, languages=list(facts.languages), lrp2=args.lrp2, vectors=args.vectors),
        ),
    )
    print(summary[summary["relation"] == "ALL"].to_string(index=False))
    _done(out, t0)


def cmd_vectors(args) -> None:
    from lrp2_interp.lrp2.vectors import compute_language_vectors, read_sentences
    from lrp2_interp.prompts import prompt_corpus

    t0 = time.time()
    sentences, corpus, meta = {}, {}, {}
    if args.corpus:
        from lrp2_interp.corpus import load_corpus

        langs = args.languages or []
        if not langs:
            raise InputError("--corpus needs --languages (the languages to read from it)", field="--languages")
        pc = load_corpus(args.corpus, langs, layout=args.corpus_layout, split=args.corpus_split, limit=args.limit)
        sentences, corpus, meta = {k: list(v) for k, v in pc.sentences.items()}, pc.describe(), pc.records()
    for item in args.sentences or []:  # bad sentence files fail before the model is loaded
        if "=" not in item:
            raise InputError(f"expected LANG=FILE, got {item!r}", field="--sentences")
        lang, file = item.split("=", 1)
        if lang in sentences:
            raise InputError(f"language '{lang}' given twice", field="--sentences")
        sentences[lang] = read_sentences(file, args.limit)
        corpus[lang] = f"{file} (first {len(sentences[lang])} lines)"
    facts = _facts(args) if args.languages and not args.corpus else None
    lm = _load(args, facts)
    if facts is not None:
        for lang in facts.languages:
            if lang not in sentences:
                sentences[lang] = prompt_corpus(facts, lang, lm)
                corpus[lang] = f"probe prompts of {args.facts}"
    if not sentences:
        raise InputError("give --languages (probe prompts as corpus) and/or --sentences LANG=FILE", field="languages")
    vec = compute_language_vectors(lm, sentences, corpus=corpus, corpus_meta=meta, tokens=_tokens(args))
    path = vec.save(args.out)
    _done(path, t0)


def cmd_sweep(args) -> None:
    from lrp2_interp.distributed import init_distributed
    from lrp2_interp.files import run_metadata, write_json, write_table
    from lrp2_interp.lrp2.experiment import plot_sweep
    from lrp2_interp.lrp2.sweep import SweepConfig, run_sweep
    from lrp2_interp.lrp2.vectors import LanguageVectors, compute_language_vectors
    from lrp2_interp.prompts import prompt_corpus
    from lrp2_interp.store import check_manifest, file_sha256, results_manifest

    t0, out = time.time(), Path(args.out)
    dist = init_distributed(args.device)
    facts = _facts(args, [args.source, args.language]).parallel()
    lm = _load(args, facts, objects=True)
    cfg = SweepConfig(
        language=args.language,
        source=args.source,
        layers=tuple(args.layers) if args.layers else None,
        dev_fraction=args.dev_fraction,
        seed=args.seed,
        probe=_probe_config(args),
    )
    if args.unit_facts is not None:
        cfg = replace(cfg, unit_facts=args.unit_facts)
    cfg.pairs(lm.n_layers)  # layer range checked before any compute
    if args.vectors:
        vectors = LanguageVectors.load(args.vectors)
    else:
        vectors = compute_language_vectors(
            lm,
            {lg: prompt_corpus(facts, lg, lm) for lg in facts.languages},
            corpus=dict.fromkeys(facts.languages, f"probe prompts of {args.facts}"),
            tokens=_tokens(args),
        )
    check_manifest(
        out,
        results_manifest(
            cfg,
            facts=facts,
            lm=lm,
            vectors=vectors,
            vectors_file=(file_sha256(Path(args.vectors).with_suffix(".safetensors")) if args.vectors else None),
        ),
    )  # never mix shards
    res = run_sweep(lm, facts, vectors, cfg, store_dir=out, dist=dist)
    if res is not None:
        write_table(out / f"sweep_{args.language}.csv", res.accuracy_table())
        plot_sweep(res, out / f"sweep_{args.language}_gain.png")
        o, h = res.oracle(), res.heldout()
        write_json(
            out / "run.json",
            run_metadata(
                cfg,
                model_name=lm.name,
                **run_info(
                    args, t0, languages=list(facts.languages), oracle=o.to_dict(), heldout=h.to_dict(), world=dist.world
                ),
            ),
        )
        print(
            f"baseline {res.baseline()['acc']:.1f}% | oracle m={int(o['m'])} n={int(o['n'])}: {o['acc']:.1f}% | "
            f"held-out m={int(h['m'])} n={int(h['n'])}: test {h['test_acc']:.1f}% "
            f"(baseline test {res.baseline()['test_acc']:.1f}%)"
        )
        _done(out, t0)
    dist.close()


def cmd_run(args) -> None:
    from lrp2_interp.distributed import init_distributed
    from lrp2_interp.lrp2.experiment import ExperimentConfig, run_experiment

    t0, out = time.time(), Path(args.out)
    dist = init_distributed(args.device)
    langs = tuple(args.languages or ())
    facts = _facts(args, [args.source, *langs] if langs else None)
    lm = _load(args, facts, objects=True)
    if not langs:
        langs = tuple(lg for lg in facts.languages if lg != args.source)
    cfg = ExperimentConfig(
        languages=langs,
        source=args.source,
        layers=tuple(args.layers) if args.layers else None,
        dev_fraction=args.dev_fraction,
        seed=args.seed,
        n_boot=args.n_boot,
        probe=_probe_config(args),
    )
    vectors = None
    if _tokens(args) != "real":  # run_experiment's own vectors drop special tokens
        from lrp2_interp.lrp2.vectors import compute_language_vectors
        from lrp2_interp.prompts import prompt_corpus

        lg_all = [args.source, *langs]
        vectors = compute_language_vectors(
            lm,
            {lg: prompt_corpus(facts, lg, lm) for lg in lg_all},
            corpus=dict.fromkeys(lg_all, f"probe prompts of {args.facts}"),
            tokens=_tokens(args),
        )
        if dist.is_main:
            vectors.save(out / "vectors.safetensors")
    res = run_experiment(lm, facts, cfg, out, dist=dist, vectors=vectors)
    if res is not None:
        import json

        from lrp2_interp.files import write_json

        meta = json.loads((out / "run.json").read_text(encoding="utf-8"))
        write_json(out / "run.json", {**meta, **run_info(args, t0, languages=list(langs))})
        print((out / "summary.md").read_text(encoding="utf-8"))
        _done(out, t0)
    dist.close()


# ------------------------------------------------------------------ parser
def _preset_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--paper", action="store_true", help="the paper's choices (lrp2_interp.presets): all-token vectors")
    p.add_argument(
        "--tokens",
        choices=("real", "all"),
        default=None,
        help="tokens averaged into language vectors (default: real, i.e. special tokens dropped)",
    )


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
    p.add_argument("--corpus", default=None, help="parallel-corpus folder (OPUS-100 / FLORES / {lang}.txt layouts)")
    p.add_argument("--corpus-layout", default="auto", help="auto, flat, pair, opus100, flores or a {lang} pattern")
    p.add_argument("--corpus-split", default="train")
    _preset_args(p)
    p.add_argument("--out", required=True, help="output path (.safetensors + .json)")
    p.set_defaults(func=cmd_vectors)

    for name, func, hlp in (
        ("sweep", cmd_sweep, "accuracy for every (m, n) pair of one language"),
        ("run", cmd_run, "the full LRP2 experiment for several languages"),
    ):
        p = sub.add_parser(name, help=hlp)
        _model_args(p), _facts_args(p, languages=name == "run"), _probe_args(p)
        if name == "sweep":
            p.add_argument("--language", required=True)
            p.add_argument("--vectors", default=None, help="default: computed from the probe prompts")
            p.add_argument(
                "--unit-facts",
                type=int,
                default=None,
                help="facts per resumable unit (default: SweepConfig's; smaller = finer resume)",
            )
        else:
            p.add_argument("--n-boot", type=int, default=1000)
        p.add_argument("--source", default="en")
        p.add_argument(
            "--layers",
            nargs="+",
            type=int,
            default=None,
            help="candidate layers for m and n (block indices; -1 = the embedding output)",
        )
        _preset_args(p)
        p.add_argument("--dev-fraction", type=float, default=0.5)
        p.add_argument("--out", required=True)
        p.set_defaults(func=func)

    for register in _extra_commands():
        register(sub)
    return parser


def _extra_commands() -> list[Callable]:
    """Command groups defined in other modules (organism, knowledge neurons, demo)."""
    from lrp2_interp.cli import methods, neurons, organism

    return [organism.register, neurons.register, methods.register]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from transformers.utils import logging as hf_logging

    from lrp2_interp.cli.checks import check_args

    hf_logging.disable_progress_bar()  # our own tqdm bars report progress
    try:
        check_args(args)  # every argument checked before any model is loaded or file written
        args.func(args)
    except InputError as err:
        print(f"lrp2-interp: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
