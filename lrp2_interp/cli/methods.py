"""CLI commands for the methods beyond LRP2: ``compare``, ``align``, ``lape``, ``lens``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from lrp2_interp.cli.inputs import (
    Subparsers,
    add_facts_args,
    add_lrp2_arg,
    add_model_args,
    add_out_args,
    add_probe_args,
    facts_folder,
    load_facts_for,
    load_model_for,
    lrp2_pairs,
    lrp2_record,
    probe_config,
    rankable_facts,
    write_excluded,
)
from lrp2_interp.cli.options import ConfigOptions, Option
from lrp2_interp.cli.runner import Runner, runs
from lrp2_interp.errors import InputError

if TYPE_CHECKING:
    from lrp2_interp.facts import FactSet
    from lrp2_interp.interventions.selection import SelectionConfig
    from lrp2_interp.methods.compare import CompareConfig
    from lrp2_interp.methods.lape import LapeConfig
    from lrp2_interp.methods.registry import MethodOptions
    from lrp2_interp.models.loading import FwdHooks, LanguageModel

LRP2_HELP = "LRP2 layers per target language (the old form 'M N', every language, is deprecated)"


def method_options(methods: bool) -> ConfigOptions[MethodOptions]:
    """What the methods of ``compare`` (``methods``: with ``--methods``) and ``align`` read."""
    from lrp2_interp.methods.registry import METHODS, MethodOptions

    return ConfigOptions(
        MethodOptions,
        (
            *((Option("methods", choices=METHODS),) if methods else ()),
            Option("source"),
            Option("lrp2_layers", flag="--layers", help="LRP2 candidate layers for m < n"),
            Option("sigmas"),
            Option("site", help="alignment site: FFN output (INCLINE) or residual stream"),
            Option("ridge"),
            Option("rule", help="add: a + sigma a W (INCLINE); interpolate: a + sigma (a W - a)"),
            Option("strengths", help="LAPE steering strengths"),
            Option("steer_layers", help="mean steering: layers searched"),
            Option("alphas", help="mean steering: multiples of the mean difference"),
        ),
    )


def selection_options() -> ConfigOptions[SelectionConfig]:
    """The held-out design of ``compare``/``align``: split, caps, search, control draws."""
    from lrp2_interp.interventions.selection import SelectionConfig

    return ConfigOptions(
        SelectionConfig,
        (
            Option("dev_fraction"),
            Option("max_dev", help="dev facts per language"),
            Option("max_test", help="test facts per language"),
            Option("search", help="halving: successive halving on dev; full: every setting on every dev fact"),
            Option("n_controls", help="matched-control draws"),
        ),
    )


def compare_options() -> ConfigOptions[CompareConfig]:
    from lrp2_interp.methods.compare import CompareConfig

    return ConfigOptions(CompareConfig, (Option("n_boot"),))


def lape_options(all_rates: bool) -> ConfigOptions[LapeConfig]:
    """LAPE's selection rates: ``--top-rate`` only (``compare``), or all three (``lape``)."""
    from lrp2_interp.methods.lape import LapeConfig

    top = Option("top_rate", help="LAPE: share of neurons kept")
    if not all_rates:
        return ConfigOptions(LapeConfig, (top,))
    return ConfigOptions(
        LapeConfig,
        (
            top,
            Option("filter_rate"),
            Option("activation_bar_ratio", flag="--bar-ratio", help="activation-bar quantile for language membership"),
        ),
    )


def _compare_configs(args: argparse.Namespace, methods: tuple[str, ...] | None) -> tuple[CompareConfig, MethodOptions]:
    from dataclasses import replace

    fixed: dict[str, Any] = {} if methods is None else {"methods": methods}
    options = method_options(methods is None).build(
        args,
        affine=args.affine if args.affine is not None else args.site == "resid",
        lape=lape_options(False).build(args),
        **fixed,
    )
    probe = replace(probe_config(args), distractors="entity")  # the source ranks the same entities
    selection = selection_options().build(args, seed=args.seed, probe=probe)
    return compare_options().build(args, selection=selection, seed=args.seed), options


def _run_compare(args: argparse.Namespace, run: Runner, methods: tuple[str, ...] | None) -> None:
    import pandas as pd

    from lrp2_interp.files import run_metadata, write_table, write_text
    from lrp2_interp.methods.compare import run_comparison, summary_markdown
    from lrp2_interp.methods.registry import build_interventions
    from lrp2_interp.metrics import estimate_columns

    config, options = run.execution.configure(_compare_configs(args, methods))  # bad options fail first
    facts = load_facts_for(args, [options.source, *args.languages])
    lm = load_model_for(args)
    facts, excluded = rankable_facts(lm, facts)
    interventions = {lang: build_interventions(lm, lang, options.methods, options) for lang in args.languages}
    out = run.folder({"compare": config, "methods": options}, facts=facts, lm=lm)
    summaries, texts = [], []
    for lang in args.languages:
        res = run_comparison(lm, facts, interventions[lang], config, progress=True)
        res.save(out / lang)
        summaries.append(estimate_columns(res.summary))  # X, X_low, X_high
        texts.append(summary_markdown(res))
    write_table(out / "summary.csv", pd.concat(summaries, ignore_index=True))
    write_text(out / "summary.md", "\n".join(texts))
    meta = run_metadata(
        {"compare": config, "methods": options},
        command="compare",
        model_name=lm.name,
        facts=facts_folder(args),
        languages=args.languages,
        seconds=run.seconds(),
        n_excluded=write_excluded(out, excluded),
    )
    run.finish(meta, report="\n".join(texts))


@runs()
def cmd_compare(args: argparse.Namespace, run: Runner) -> None:
    _run_compare(args, run, None)


@runs()
def cmd_align(args: argparse.Namespace, run: Runner) -> None:
    _run_compare(args, run, ("alignment",))


def _lrp2_hooks(
    args: argparse.Namespace, lm: LanguageModel, facts: FactSet, lang: str, mn: tuple[int, int]
) -> FwdHooks:
    """LRP2 at layers ``mn`` for ``lang``, with vectors from the probe prompts of the source and ``lang``."""
    from lrp2_interp.lrp2.projection import LRP2Config, lrp2_hooks
    from lrp2_interp.lrp2.vectors import compute_language_vectors
    from lrp2_interp.prompts import prompt_corpus

    vec = compute_language_vectors(lm, {g: prompt_corpus(facts, g, lm) for g in (args.source, lang)}, progress=False)
    return lrp2_hooks(lm, vec, lang, LRP2Config(mn[0], mn[1], source=args.source))


@runs()
def cmd_lape(args: argparse.Namespace, run: Runner) -> None:
    import pandas as pd

    from lrp2_interp.files import run_metadata, write_table
    from lrp2_interp.methods.lape import activation_stats, select_language_neurons
    from lrp2_interp.methods.lape_effects import (
        activation_shift,
        deactivation_table,
        fact_corpus,
        knowledge_neuron_masks,
        knowledge_overlap,
        own_language_margin,
        shift_summary,
    )
    from lrp2_interp.plots import heatmap

    cfg = run.execution.configure(lape_options(True).build(args))
    facts = load_facts_for(args).parallel()
    langs = list(facts.languages)
    pairs = lrp2_pairs(args, [g for g in langs if g != args.source])
    if pairs and args.source not in langs:  # LRP2's vectors come from the source's prompts: checked first
        raise InputError(
            f"--lrp2 projects onto --source '{args.source}', which is not among the languages loaded "
            f"({', '.join(langs)}): add it to --languages",
            field="--source",
        )
    lm = load_model_for(args)
    out = run.folder({"lape": cfg}, facts=facts, lm=lm)
    stats = activation_stats(lm, {g: fact_corpus(facts, g) for g in langs})
    neurons = select_language_neurons(stats, cfg)
    counts = neurons.counts()
    write_table(
        out / "neurons.csv",
        pd.DataFrame([{"language": g, "layer": i, "neuron": j} for g in langs for i, j in sorted(neurons.sites(g))]),
    )
    heatmap(
        counts.pivot(index="layer", columns="language", values="n_neurons"),
        out / "neurons_per_layer.png",
        title="LAPE language-specific neurons per layer",
        fmt=".0f",
    )
    table = deactivation_table(lm, facts, neurons, langs, seed=args.seed)
    write_table(out / "deactivation.csv", table)
    margin = pd.concat([own_language_margin(table, c) for c in ("lape", "random")], ignore_index=True)
    write_table(out / "deactivation_margin.csv", margin)
    pivot = table[table["control"] == "lape"].pivot(index="deactivated", columns="language", values="delta")
    heatmap(
        pivot,
        out / "deactivation.png",
        title="loss increase (nats/token): rows deactivated, cols evaluated",
        center=0.0,
    )
    extra = {}
    if args.kn_facts > 0:
        kn = knowledge_neuron_masks(lm, facts, langs, max_facts=args.kn_facts)
        ov = knowledge_overlap(neurons, {f"kn_{g}": m for g, m in kn.items()})
        write_table(out / "knowledge_overlap.csv", ov)
        extra["knowledge_overlap"] = "knowledge_overlap.csv"
    if pairs:
        from lrp2_interp.prompts import prompt_corpus

        shifts = []
        for lang in (g for g in langs if g in pairs):  # in the facts' order
            hooks = _lrp2_hooks(args, lm, facts, lang, pairs[lang])
            s = shift_summary(activation_shift(lm, neurons, prompt_corpus(facts, lang, lm), hooks))
            shifts.append(s.assign(prompts=lang))
        write_table(out / "lrp2_activation_shift.csv", pd.concat(shifts, ignore_index=True))
    run.finish(
        run_metadata(
            cfg, command="lape", model_name=lm.name, facts=facts_folder(args), lrp2=lrp2_record(pairs), **extra
        ),
        report=margin.to_string(index=False),
    )


@runs()
def cmd_lens(args: argparse.Namespace, run: Runner) -> None:
    import pandas as pd

    from lrp2_interp.files import run_metadata, write_table
    from lrp2_interp.methods.logit_lens import lens_curve, logit_lens, plot_lens

    facts = load_facts_for(args, [args.source, *args.languages]).parallel()
    pairs = lrp2_pairs(args, args.languages)
    lm = load_model_for(args)
    out = run.folder(facts=facts, lm=lm)
    for lang in args.languages:
        parts = [logit_lens(lm, facts, lang, source=args.source)]
        if lang in pairs:
            hooks = _lrp2_hooks(args, lm, facts, lang, pairs[lang])
            parts.append(logit_lens(lm, facts, lang, source=args.source, fwd_hooks=hooks, condition="lrp2"))
        table = pd.concat(parts, ignore_index=True)
        write_table(out / f"lens_{lang}_facts.csv", table)  # lens_{lang}.csv: the plotted curve
        plot_lens(table, out / f"lens_{lang}.png", include_same_token=args.include_same_token)
        print(
            lang,
            lens_curve(table, include_same_token=args.include_same_token)
            .pivot_table(index="layer", columns=["condition", "label"], values="probability")
            .round(4)
            .to_string(),
        )
    meta = run_metadata(
        None,
        command="lens",
        model_name=lm.name,
        facts=facts_folder(args),
        languages=args.languages,
        lrp2=lrp2_record(pairs),
    )
    run.finish(meta)


def register(sub: Subparsers) -> None:
    """Add ``compare``, ``align``, ``lape`` and ``lens`` to the subparsers ``sub``."""
    for name, func, methods, hlp in (
        ("compare", cmd_compare, True, "interventions (LRP2, alignment, LAPE, mean steering) on one held-out split"),
        ("align", cmd_align, False, "learned cross-lingual alignment (INCLINE): sigma chosen on dev, scored on test"),
    ):
        p = sub.add_parser(name, help=hlp)
        add_model_args(p)
        add_facts_args(p, languages=False)
        add_probe_args(p)
        p.add_argument("--languages", nargs="+", required=True, help="target languages")
        method_options(methods).add_to(p)
        selection_options().add_to(p)
        compare_options().add_to(p)
        p.add_argument("--affine", action="store_true", default=None, help="fit [W; b] (default with --site resid)")
        lape_options(False).add_to(p)
        add_out_args(p)
        p.set_defaults(func=func)

    p = sub.add_parser("lape", help="LAPE language-specific neurons: selection, deactivation losses, overlaps")
    add_model_args(p)
    add_facts_args(p)
    p.add_argument("--source", default="en", help="the language LRP2 projects onto")
    lape_options(True).add_to(p)
    p.add_argument("--kn-facts", type=int, default=0, help="facts per language for the knowledge-neuron overlap")
    add_lrp2_arg(p, help="also measure how LRP2 changes the language neurons' activation; " + LRP2_HELP)
    add_out_args(p)
    p.set_defaults(func=cmd_lape)

    p = sub.add_parser("lens", help="logit lens per layer: the --source vs the language-l label, with/without LRP2")
    add_model_args(p)
    add_facts_args(p, languages=False)
    p.add_argument("--languages", nargs="+", required=True)
    p.add_argument("--source", default="en")
    add_lrp2_arg(p, help=LRP2_HELP)
    p.add_argument("--include-same-token", action="store_true")
    add_out_args(p)
    p.set_defaults(func=cmd_lens)
