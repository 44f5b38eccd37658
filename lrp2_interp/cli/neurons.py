"""CLI commands for knowledge neurons: ``attribute``, ``neurons``, ``similarity``."""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import TYPE_CHECKING

from lrp2_interp.cli.checks import check_vectors
from lrp2_interp.cli.inputs import (
    Subparsers,
    add_facts_args,
    add_lrp2_arg,
    add_model_args,
    add_out_args,
    language_vectors,
    load_facts_for,
    load_model_for,
    lrp2_pairs,
    lrp2_record,
    vector_sentences,
    vector_tokens,
)
from lrp2_interp.cli.options import ConfigOptions, Option
from lrp2_interp.cli.runner import Runner, runs
from lrp2_interp.errors import InputError

if TYPE_CHECKING:
    from lrp2_interp.attribution.attribute import AttributionConfig
    from lrp2_interp.facts import FactSet
    from lrp2_interp.lrp2.projection import LRP2Config
    from lrp2_interp.models.loading import LanguageModel
    from lrp2_interp.neurons.neuron_config import NeuronConfig
    from lrp2_interp.neurons.pipeline import KnowledgeConfig


def attribution_options() -> ConfigOptions[AttributionConfig]:
    from lrp2_interp.attribution.attribute import METHODS, AttributionConfig

    return ConfigOptions(
        AttributionConfig,
        (
            Option("n_steps", flag="--steps", help="quadrature steps per layer"),
            Option("method", choices=METHODS, help="quadrature rule"),
            Option("target_delta", help="adaptive steps: double a layer's steps until |completeness delta| < this"),
            Option("max_steps", help="cap for --target-delta"),
            Option("log_prob", help="attribute log p(gold) instead of p(gold)"),
            Option("target_token"),
        ),
    )


def knowledge_options() -> ConfigOptions[KnowledgeConfig]:
    from lrp2_interp.neurons.pipeline import KnowledgeConfig

    return ConfigOptions(KnowledgeConfig, (Option("source"), Option("n_perm")))


def neuron_options() -> ConfigOptions[NeuronConfig]:
    from lrp2_interp.neurons.neuron_config import NeuronConfig

    return ConfigOptions(NeuronConfig, (Option("threshold", help="coarse selection: score >= t x max"),))


def similarity_options() -> ConfigOptions[LRP2Config]:
    from lrp2_interp.lrp2.projection import LRP2Config

    return ConfigOptions(LRP2Config, (Option("source"),))


def attribution_config(args: argparse.Namespace) -> AttributionConfig:
    return attribution_options().build(args)


@runs()
def cmd_attribute(args: argparse.Namespace, run: Runner) -> None:
    from lrp2_interp.attribution.attribute import attribute_neurons
    from lrp2_interp.files import run_metadata, write_table
    from lrp2_interp.plots import attribution_heatmap

    lm = load_model_for(args)
    cfg = run.execution.configure(attribution_config(args))
    cfg.validate(lm.n_layers)
    check_attribute_input(lm, args.prompt, args.target)
    out = run.folder({"attribution": cfg}, lm=lm)
    res = attribute_neurons(lm, args.prompt, args.target, cfg, progress=True)
    import pandas as pd

    rows = [{"layer": layer, "neuron": i, "score": s} for layer, i, s in res.top(args.top)]
    write_table(out / "top_neurons.csv", pd.DataFrame(rows))
    write_table(
        out / "deltas.csv",
        pd.DataFrame(
            {
                "layer": res.layers,
                "delta": res.deltas.tolist(),
                "f_input": res.f_input.tolist(),
                "f_baseline": res.f_baseline.tolist(),
            }
        ),
    )
    attribution_heatmap(res.scores, out / "attribution.png", layers=res.layers, title=f"{args.prompt} -> {args.target}")
    meta = run_metadata(
        cfg,
        command="attribute",
        model_name=lm.name,
        prompt=args.prompt,
        target=args.target,
        path=res.path,
        top=args.top,
        seconds=run.seconds(),
    )
    run.finish(
        meta,
        report=pd.DataFrame(rows).head(10).to_string(index=False)
        + f"\nmax |completeness delta| = {res.deltas.abs().max():.2e} ({res.path} path)",
    )


def check_attribute_input(lm: LanguageModel, prompt: str, target: str) -> None:
    """The target must be covered by the tokenizer and the prompt must fit the model's positions."""
    from lrp2_interp.models.loading import unknown_only

    ids = lm.token_ids(target)
    if unknown_only(lm, ids):
        raise InputError(
            f"{target!r} tokenizes to the unknown token only: the tokenizer of '{lm.name}' does not "
            "cover it, so its attribution would be meaningless",
            field="--target",
        )
    n = len(lm.tokenizer(prompt)["input_ids"]) + (len(ids) if lm.kind == "causal" else 0)
    lm.check_positions(n, field="--prompt")


@runs(distributed=True)
def cmd_neurons(args: argparse.Namespace, run: Runner) -> None:
    from lrp2_interp.files import run_metadata
    from lrp2_interp.lrp2.vectors import LanguageVectors
    from lrp2_interp.manifest import check_manifest
    from lrp2_interp.neurons.neuron_config import NeuronConfig
    from lrp2_interp.neurons.pipeline import prepare_facts, run_knowledge_analysis

    langs = tuple(args.languages)
    lrp = lrp2_pairs(args, langs)
    missing = [lg for lg in langs if lg not in lrp]
    if missing:
        raise InputError(
            f"give --lrp2 LANG=M,N for {', '.join(missing)} (e.g. the held-out pair of a sweep)", field="--lrp2"
        )
    facts = load_facts_for(args, [args.source, *langs]).parallel()
    lm = load_model_for(args, facts)
    neurons = NeuronConfig.paper(top_k=args.top_k or 20) if args.paper else neuron_options().build(args)
    cfg = knowledge_options().build(
        args, languages=langs, lrp2=lrp, attribution=attribution_config(args), neurons=neurons, seed=args.seed
    )
    if args.no_causal:
        cfg = replace(cfg, causal=None)
    cfg = run.execution.configure(cfg)
    prepared = prepare_facts(lm, facts, cfg)  # every fact checked before the vectors are computed
    given = LanguageVectors.load(args.vectors) if args.vectors else None
    if given is not None:
        check_vectors(given, lm, [cfg.source, *langs])
    # the manifest run_knowledge_analysis writes, checked in full before any compute (computed vectors: their
    # provenance, known from the prompts they will be computed from)
    manifest = run.manifest(cfg, facts=prepared, lm=lm, vectors=given, options=False)
    if given is None:
        manifest["vectors_digest"] = computed_vectors_digest(args, lm, facts)
    run.clean()  # --overwrite, after every input check
    out = run.folder_path
    check_manifest(out, manifest, write=False)
    vectors = given if given is not None else language_vectors(args, lm, facts)
    check_vectors(vectors, lm, [cfg.source, *langs])
    res = run_knowledge_analysis(lm, facts, vectors, cfg, out, dist=run.dist)
    if res is None:  # ranks other than 0
        return
    run.finish(
        run_metadata(cfg, model_name=lm.name, **run.info()),
        report=res.overlap_summary.table.to_string(index=False),
    )


def computed_vectors_digest(args: argparse.Namespace, lm: LanguageModel, facts: FactSet) -> str:
    """The manifest's ``vectors_digest`` of the vectors ``language_vectors`` would compute, before computing them."""
    from lrp2_interp.lrp2.vectors import planned_provenance
    from lrp2_interp.manifest import provenance_digest

    sentences, corpus = vector_sentences(lm, facts)
    return provenance_digest(planned_provenance(lm, sentences, corpus=corpus, tokens=vector_tokens(args)))


@runs()
def cmd_similarity(args: argparse.Namespace, run: Runner) -> None:
    from lrp2_interp.files import run_metadata, write_table
    from lrp2_interp.lrp2.similarity import SimilarityConfig, similarity_table
    from lrp2_interp.lrp2.vectors import LanguageVectors
    from lrp2_interp.plots import similarity_plot

    lrp = lrp2_pairs(args, args.languages)
    facts = load_facts_for(args, [args.source, *args.languages]).parallel()
    lm = load_model_for(args, facts)
    # every language is compared to --source, with or without LRP2
    sim = run.execution.configure(SimilarityConfig(source=args.source))
    configs = {lg: similarity_options().build(args, m=m, n=n) for lg, (m, n) in lrp.items()}
    for c in configs.values():
        c.validate(lm.n_layers)
    given = LanguageVectors.load(args.vectors) if args.vectors else None
    if given is not None:
        check_vectors(given, lm, [args.source, *lrp])
    out = run.folder({"similarity": sim, "lrp2": configs}, facts=facts, lm=lm, vectors=given)
    vectors = given if given is not None else language_vectors(args, lm, facts)
    table = similarity_table(lm, facts, list(args.languages), vectors, configs or None, config=sim).table
    write_table(out / "similarity.csv", table)
    similarity_plot(table, out / "similarity.png", source=args.source)
    info = run.info(lrp2=lrp2_record(lrp) or {}, vectors=args.vectors, source=args.source)
    run.finish(run_metadata(sim, model_name=lm.name, **info))


def register(sub: Subparsers) -> None:
    """Add ``attribute``, ``neurons`` and ``similarity`` to the subparsers ``sub``."""
    p = sub.add_parser("attribute", help="knowledge-neuron integrated gradients for one prompt")
    add_model_args(p)
    attribution_options().add_to(p)
    p.add_argument("--prompt", required=True, help="masked-LM prompt with [MASK] or a causal-LM prefix")
    p.add_argument("--target", required=True, help="gold object text")
    p.add_argument("--top", type=int, default=20)
    add_out_args(p)
    p.set_defaults(func=cmd_attribute)

    p = sub.add_parser("neurons", help="knowledge neurons: --source vs l overlap with/without LRP2, control, causal")
    add_model_args(p)
    add_facts_args(p, languages=False)
    attribution_options().add_to(p)
    p.add_argument("--languages", nargs="+", required=True, help="target languages")
    add_lrp2_arg(p, required=True, help="LRP2 layers of every target language")
    knowledge_options().add_to(p)
    p.add_argument("--vectors", default=None)
    neuron_options().add_to(p)
    p.add_argument(
        "--paper",
        action="store_true",
        help="the paper's choices (lrp2_interp.presets): top-20 per "
        "layer per prompt, then the 20 most frequent of each layer per relation; all-token vectors",
    )
    p.add_argument("--top-k", type=int, default=None, help="--paper: neurons per layer per prompt (default 20)")
    p.add_argument("--tokens", choices=("real", "all"), default=None, help="tokens averaged into language vectors")
    p.add_argument("--no-causal", action="store_true")
    add_out_args(p)
    p.set_defaults(func=cmd_neurons)

    p = sub.add_parser(
        "similarity", help="similarity to --source per layer (cosine, centred cosine, linear CKA), with/without LRP2"
    )
    add_model_args(p)
    add_facts_args(p, languages=False)
    p.add_argument("--languages", nargs="+", required=True)
    add_lrp2_arg(p, nargs="*", help="LRP2 layers of some target languages (the others: without LRP2 only)")
    similarity_options().add_to(p)
    p.add_argument("--vectors", default=None)
    add_out_args(p)
    p.set_defaults(func=cmd_similarity)
