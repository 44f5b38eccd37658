"""CLI commands for LRP2 itself: ``probe``, ``vectors``, ``sweep``, ``run``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from lrp2_interp.cli.checks import check_vectors
from lrp2_interp.cli.inputs import (
    Subparsers,
    add_facts_args,
    add_lrp2_arg,
    add_model_args,
    add_out_args,
    add_preset_args,
    add_probe_args,
    facts_folder,
    language_vectors,
    load_facts_for,
    load_model_for,
    lrp2_pairs,
    lrp2_record,
    probe_config,
    rankable_facts,
    vector_tokens,
    write_excluded,
)
from lrp2_interp.cli.options import ConfigOptions, Option
from lrp2_interp.cli.runner import Runner, runs
from lrp2_interp.errors import InputError

if TYPE_CHECKING:
    from lrp2_interp.lrp2.full_grid import ExperimentConfig
    from lrp2_interp.lrp2.projection import LRP2Config
    from lrp2_interp.lrp2.sweep import SweepConfig

LAYERS_HELP = "candidate layers for m and n (block indices; -1 = the embedding output)"


def lrp2_options() -> ConfigOptions[LRP2Config]:
    from lrp2_interp.lrp2.projection import LRP2Config

    return ConfigOptions(LRP2Config, (Option("source"),))


def sweep_options() -> ConfigOptions[SweepConfig]:
    from lrp2_interp.lrp2.sweep import SweepConfig

    return ConfigOptions(
        SweepConfig,
        (
            Option("language"),
            Option("source"),
            Option("layers", help=LAYERS_HELP),
            Option("dev_fraction"),
            Option("unit_facts", help="facts per resumable unit (smaller = finer resume)"),
        ),
    )


def experiment_options() -> ConfigOptions[ExperimentConfig]:
    from lrp2_interp.lrp2.full_grid import ExperimentConfig

    return ConfigOptions(
        ExperimentConfig,
        (
            Option("source"),
            Option("layers", help=LAYERS_HELP),
            Option("dev_fraction"),
            Option("n_boot"),
            Option(
                "design",
                help="heldout: (m, n) searched on dev facts, test facts probed only at the baseline, the choice and "
                "its controls; full-grid: every (m, n) on every fact (per-pair heatmaps)",
            ),
            Option(
                "search",
                help="held-out design: halving (successive halving on dev facts), full (every pair on every dev "
                "fact) or oracle (chosen on dev and test facts: optimistic)",
            ),
            Option("n_controls", flag="--controls", metavar="K", help="held-out design: matched-control draws"),
            Option("max_dev", help="held-out design: dev facts per language"),
            Option("max_test", help="held-out design: test facts per language"),
            Option("first_rung", help="successive halving: dev facts every pair is scored on first"),
            Option("eta", help="successive halving: keep 1/eta of the pairs, eta times the dev facts, per rung"),
        ),
    )


# ------------------------------------------------------------------ commands
@runs()
def cmd_probe(args: argparse.Namespace, run: Runner) -> None:
    import pandas as pd

    from lrp2_interp.files import run_metadata, write_table
    from lrp2_interp.lrp2.projection import lrp2_hooks
    from lrp2_interp.lrp2.vectors import LanguageVectors
    from lrp2_interp.metrics import summarize
    from lrp2_interp.probing.probe import probe

    facts = load_facts_for(args)  # bad fact input fails before the model is loaded
    pairs = lrp2_pairs(args, facts.languages)
    if pairs and not args.vectors:
        raise InputError("--lrp2 needs --vectors (make them with `lrp2-interp vectors`)", field="vectors")
    lm = load_model_for(args, facts, objects=True)
    facts, excluded = rankable_facts(lm, facts)
    cfg = run.execution.configure(probe_config(args))
    vectors = LanguageVectors.load(args.vectors) if args.vectors else None
    configs = {lang: lrp2_options().build(args, m=m, n=n) for lang, (m, n) in pairs.items()}
    hooks_of = {lang: lrp2_hooks(lm, vectors, lang, c) for lang, c in configs.items()} if vectors else {}
    out = run.folder({"probe": cfg, "lrp2": configs}, facts=facts, lm=lm, vectors=vectors)
    tables = [
        probe(lm, facts, lang, cfg, fwd_hooks=hooks_of.get(lang), progress=True).table for lang in facts.languages
    ]
    table = pd.concat(tables, ignore_index=True)
    write_table(out / "predictions.csv", table)
    summary = summarize(table)
    write_table(out / "summary.csv", summary)
    n_excluded = write_excluded(out, excluded)
    info = run.info(
        languages=list(facts.languages), lrp2=lrp2_record(pairs), vectors=args.vectors, n_excluded=n_excluded
    )
    run.finish(
        run_metadata(cfg, model_name=lm.name, **info),
        report=summary[summary["relation"] == "ALL"].to_string(index=False),
    )


@runs()
def cmd_vectors(args: argparse.Namespace, run: Runner) -> None:
    from lrp2_interp.lrp2.vectors import compute_language_vectors, vectors_path

    sentences, corpus, meta = read_vector_corpus(args)  # bad sentence files fail before the model is loaded
    facts = load_facts_for(args) if args.languages and not args.corpus else None
    lm = load_model_for(args, facts)
    if facts is not None:
        from lrp2_interp.prompts import prompt_corpus

        for lang in facts.languages:
            if lang not in sentences:
                sentences[lang] = prompt_corpus(facts, lang, lm)
                corpus[lang] = f"probe prompts of {facts_folder(args)}"
    if not sentences:
        raise InputError("give --languages (probe prompts as corpus) and/or --sentences LANG=FILE", field="languages")
    target = vectors_path(args.out)
    tokens = vector_tokens(args)
    run.files(target, [target, target.with_suffix(".json")], {"tokens": tokens, "sentences": digest(sentences)}, lm=lm)
    vec = compute_language_vectors(lm, sentences, corpus=corpus, corpus_meta=meta, tokens=tokens)
    run.done(vec.save(target))


def read_vector_corpus(args: argparse.Namespace) -> tuple[dict[str, list[str]], dict[str, str], dict[str, Any]]:
    """The sentences of ``--corpus`` and ``--sentences`` per language, how each corpus is described, its records."""
    from lrp2_interp.lrp2.vectors import read_sentences

    sentences: dict[str, list[str]] = {}
    corpus: dict[str, str] = {}
    meta: dict[str, Any] = {}
    if args.corpus:
        from lrp2_interp.corpus import load_corpus

        langs = args.languages or []
        if not langs:
            raise InputError("--corpus needs --languages (the languages to read from it)", field="--languages")
        pc = load_corpus(args.corpus, langs, layout=args.corpus_layout, split=args.corpus_split, limit=args.limit)
        sentences, corpus, meta = {k: list(v) for k, v in pc.sentences.items()}, pc.describe(), pc.records()
    for item in args.sentences or []:
        if "=" not in item:
            raise InputError(f"expected LANG=FILE, got {item!r}", field="--sentences")
        lang, file = item.split("=", 1)
        if lang in sentences:
            raise InputError(f"language '{lang}' given twice", field="--sentences")
        sentences[lang] = read_sentences(file, args.limit)
        corpus[lang] = f"{file} (first {len(sentences[lang])} lines)"
    return sentences, corpus, meta


def digest(sentences: dict[str, list[str]]) -> str:
    """A sha256 of the sentences per language: the vectors' corpus recorded by content."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(sentences, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@runs(distributed=True)
def cmd_sweep(args: argparse.Namespace, run: Runner) -> None:
    from lrp2_interp.files import run_metadata, write_table
    from lrp2_interp.lrp2.full_grid import plot_sweep
    from lrp2_interp.lrp2.sweep import run_sweep
    from lrp2_interp.lrp2.vectors import LanguageVectors
    from lrp2_interp.store import ShardStore

    facts = load_facts_for(args, [args.source, args.language]).parallel()
    lm = load_model_for(args, facts, objects=True)
    facts, excluded = rankable_facts(lm, facts)
    cfg = run.execution.configure(sweep_options().build(args, seed=args.seed, probe=probe_config(args)))
    cfg.pairs(lm.n_layers)  # layer range checked before any compute
    given = LanguageVectors.load(args.vectors) if args.vectors else None
    if given is not None:
        check_vectors(given, lm, [args.source, args.language])
    out = run.folder(cfg, facts=facts, lm=lm, vectors=given)  # never mix shards
    vectors = given if given is not None else language_vectors(args, lm, facts)
    res = run_sweep(lm, facts, vectors, cfg, store=ShardStore(out), dist=run.dist)
    if res is None:  # ranks other than 0
        return
    write_table(out / f"sweep_{args.language}.csv", res.accuracy_table())
    plot_sweep(res, out / f"sweep_{args.language}_gain.png")
    o, h = res.oracle(), res.heldout()
    info = run.info(
        languages=list(facts.languages),
        oracle=o.to_dict(),
        heldout=h.to_dict(),
        world=run.dist.world,
        n_excluded=write_excluded(out, excluded),
    )
    run.finish(
        run_metadata(cfg, model_name=lm.name, **info),
        report=f"baseline {res.baseline()['acc']:.1f}% | oracle m={int(o['m'])} n={int(o['n'])}: {o['acc']:.1f}% | "
        f"held-out m={int(h['m'])} n={int(h['n'])}: test {h['test_acc']:.1f}% "
        f"(baseline test {res.baseline()['test_acc']:.1f}%)",
    )


@runs(distributed=True)
def cmd_run(args: argparse.Namespace, run: Runner) -> None:
    import json

    from lrp2_interp.interventions.experiment import run_experiment

    out = run.folder_path
    langs = tuple(args.languages or ())
    facts = load_facts_for(args, [args.source, *langs] if langs else None)
    lm = load_model_for(args, facts, objects=True)
    facts, excluded = rankable_facts(lm, facts)
    if not langs:
        langs = tuple(lg for lg in facts.languages if lg != args.source)
    cfg = run.execution.configure(
        experiment_options().build(args, languages=langs, seed=args.seed, probe=probe_config(args))
    )
    vectors = None
    if vector_tokens(args) != "real":  # run_experiment's own vectors (dev prompts when held out) drop special tokens
        vectors = language_vectors(args, lm, facts, [args.source, *langs])
    run.clean()  # --overwrite; run_experiment checks the folder's manifest before it writes
    res = run_experiment(lm, facts, cfg, out, dist=run.dist, vectors=vectors)
    if res is None:  # ranks other than 0
        return
    if vectors is not None:  # written after run_experiment's check: never into another run's folder
        vectors.save(out / "vectors.safetensors")
    meta = json.loads((out / "run.json").read_text(encoding="utf-8"))
    info = run.info(languages=list(langs), n_excluded=write_excluded(out, excluded))
    run.finish({**meta, **info}, report=(out / "summary.md").read_text(encoding="utf-8"))


# ------------------------------------------------------------------ parser
def register(sub: Subparsers) -> None:
    """Add ``probe``, ``vectors``, ``sweep`` and ``run`` to the subparsers ``sub``."""
    p = sub.add_parser("probe", help="typed mLAMA probing (optionally with LRP2)")
    add_model_args(p)
    add_facts_args(p)
    add_probe_args(p)
    add_lrp2_arg(p, help="LRP2 layers per probed language (the old form 'M N', every language, is deprecated)")
    p.add_argument("--vectors", default=None, help="language vectors (.safetensors) for --lrp2")
    lrp2_options().add_to(p)
    add_out_args(p)
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("vectors", help="compute language vectors")
    add_model_args(p)
    add_facts_args(p)
    p.add_argument("--sentences", nargs="+", default=None, metavar="LANG=FILE", help="one sentence per line")
    p.add_argument("--limit", type=int, default=10000, help="max sentences per file (paper: ~10k)")
    p.add_argument("--corpus", default=None, help="parallel-corpus folder (OPUS-100 / FLORES / {lang}.txt layouts)")
    p.add_argument("--corpus-layout", default="auto", help="auto, flat, pair, opus100, flores or a {lang} pattern")
    p.add_argument("--corpus-split", default="train")
    add_preset_args(p)
    p.add_argument("--out", required=True, help="output path (.safetensors + .json, and .manifest.json: its settings)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace vectors made with other settings at --out (default: refused; the same settings recompute them)",
    )
    p.set_defaults(func=cmd_vectors)

    p = sub.add_parser("sweep", help="accuracy for every (m, n) pair of one language")
    add_model_args(p)
    add_facts_args(p, languages=False)
    add_probe_args(p)
    sweep_options().add_to(p)
    p.add_argument("--vectors", default=None, help="default: computed from the probe prompts")
    add_preset_args(p)
    add_out_args(p)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("run", help="the LRP2 experiment for several languages (held-out design by default)")
    add_model_args(p)
    add_facts_args(p)
    add_probe_args(p)
    experiment_options().add_to(p)
    add_preset_args(p)
    add_out_args(p)
    p.set_defaults(func=cmd_run)
