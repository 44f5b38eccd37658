"""CLI commands for the methods beyond LRP2: ``compare``, ``align``, ``lape``, ``lens``."""

from __future__ import annotations

import time
from pathlib import Path


def _compare_config(args, language: str, methods: tuple[str, ...]):
    from lrp2_interp.cli.main import _probe_config
    from lrp2_interp.methods.compare import CompareConfig
    from lrp2_interp.methods.lape import LapeConfig

    cfg = CompareConfig(
        language=language,
        source=args.source,
        methods=methods,
        lrp2_layers=tuple(args.layers) if args.layers else None,
        sigmas=tuple(args.sigmas),
        site=args.site,
        affine=args.affine if args.affine is not None else args.site == "resid",
        ridge=args.ridge,
        rule=args.rule,
        fit_on=args.fit_on,
        strengths=tuple(args.strengths),
        lape=LapeConfig(top_rate=args.top_rate),
        dev_fraction=args.dev_fraction,
        seed=args.seed,
        n_boot=args.n_boot,
        probe=_probe_config(args),
    )
    cfg.validate()
    return cfg


def _run_compare(args, methods: tuple[str, ...] | None) -> None:
    import pandas as pd

    from lrp2_interp.cli.main import _done, _facts, _load
    from lrp2_interp.files import run_metadata, write_json, write_table, write_text
    from lrp2_interp.methods.compare import plot_grids, run_comparison, summary_markdown

    t0, out = time.time(), Path(args.out)
    methods = methods or tuple(args.methods)
    configs = {lang: _compare_config(args, lang, methods) for lang in args.languages}  # bad options fail first
    facts = _facts(args, [args.source, *args.languages])
    lm = _load(args)
    summaries, texts = [], []
    for lang, cfg in configs.items():
        res = run_comparison(lm, facts, cfg, out / lang)
        write_table(out / lang / "conditions.csv", res.facts_table)
        plot_grids(res, out / lang)
        summaries.append(res.summary.assign(language=lang).astype(str))
        texts.append(summary_markdown(res))
    write_table(out / "summary.csv", pd.concat(summaries, ignore_index=True))
    write_text(out / "summary.md", "\n".join(texts))
    write_json(
        out / "run.json",
        run_metadata(
            configs, command="compare", model_name=lm.name, facts=args.facts, seconds=round(time.time() - t0, 1)
        ),
    )
    print("\n".join(texts))
    _done(out, t0)


def cmd_compare(args) -> None:
    _run_compare(args, None)


def cmd_align(args) -> None:
    _run_compare(args, ("alignment",))


def _lrp2_hooks(args, lm, facts, lang):
    from lrp2_interp.lrp2.projection import LRP2Config, lrp2_hooks
    from lrp2_interp.lrp2.vectors import compute_language_vectors
    from lrp2_interp.prompts import prompt_corpus

    if not args.lrp2:
        return None
    vec = compute_language_vectors(lm, {g: prompt_corpus(facts, g, lm) for g in (args.source, lang)}, progress=False)
    return lrp2_hooks(lm, vec, lang, LRP2Config(args.lrp2[0], args.lrp2[1], source=args.source))


def cmd_lape(args) -> None:
    import pandas as pd

    from lrp2_interp.cli.main import _done, _facts, _load
    from lrp2_interp.files import run_metadata, write_json, write_table
    from lrp2_interp.methods.lape import LapeConfig, activation_stats, select_language_neurons
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

    t0, out = time.time(), Path(args.out)
    cfg = LapeConfig(top_rate=args.top_rate, filter_rate=args.filter_rate, activation_bar_ratio=args.bar_ratio)
    facts = _facts(args).parallel()
    lm = _load(args)
    langs = list(facts.languages)
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
    if args.lrp2:
        shifts = []
        for lang in (g for g in langs if g != args.source):
            hooks = _lrp2_hooks(args, lm, facts, lang)
            from lrp2_interp.prompts import prompt_corpus

            s = shift_summary(activation_shift(lm, neurons, prompt_corpus(facts, lang, lm), hooks))
            shifts.append(s.assign(prompts=lang))
        write_table(out / "lrp2_activation_shift.csv", pd.concat(shifts, ignore_index=True))
    write_json(
        out / "run.json",
        run_metadata(cfg, command="lape", model_name=lm.name, facts=args.facts, lrp2=args.lrp2, **extra),
    )
    print(margin.to_string(index=False))
    _done(out, t0)


def cmd_lens(args) -> None:
    import pandas as pd

    from lrp2_interp.cli.main import _done, _facts, _load
    from lrp2_interp.files import run_metadata, write_json, write_table
    from lrp2_interp.methods.logit_lens import lens_curve, logit_lens, plot_lens

    t0, out = time.time(), Path(args.out)
    facts = _facts(args, [args.source, *args.languages]).parallel()
    lm = _load(args)
    for lang in args.languages:
        parts = [logit_lens(lm, facts, lang, source=args.source)]
        hooks = _lrp2_hooks(args, lm, facts, lang)
        if hooks is not None:
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
    write_json(
        out / "run.json",
        run_metadata(
            None, command="lens", model_name=lm.name, facts=args.facts, languages=args.languages, lrp2=args.lrp2
        ),
    )
    _done(out, t0)


def register(sub) -> None:
    from lrp2_interp.cli.main import _facts_args, _model_args, _probe_args

    def compare_args(p, methods: bool):
        _model_args(p)
        _facts_args(p, languages=False)
        _probe_args(p)
        p.add_argument("--languages", nargs="+", required=True, help="target languages")
        p.add_argument("--source", default="en")
        if methods:
            p.add_argument(
                "--methods", nargs="+", default=["lrp2", "alignment", "lape"], choices=["lrp2", "alignment", "lape"]
            )
        p.add_argument("--layers", nargs="+", type=int, default=None, help="LRP2 candidate layers for m < n")
        p.add_argument("--sigmas", nargs="+", type=float, default=[-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0])
        p.add_argument(
            "--site",
            choices=("mlp_out", "resid"),
            default="mlp_out",
            help="alignment site: FFN output (INCLINE) or residual stream",
        )
        p.add_argument("--affine", action="store_true", default=None, help="fit [W; b] (default with --site resid)")
        p.add_argument("--ridge", type=float, default=0.0)
        p.add_argument(
            "--rule",
            choices=("add", "interpolate"),
            default="add",
            help="add: a + sigma a W (INCLINE); interpolate: a + sigma (a W - a)",
        )
        p.add_argument("--fit-on", choices=("dev", "all"), default="dev")
        p.add_argument("--strengths", nargs="+", type=float, default=[0.5, 1.0], help="LAPE steering strengths")
        p.add_argument("--top-rate", type=float, default=0.01, help="LAPE: share of neurons kept")
        p.add_argument("--dev-fraction", type=float, default=0.5)
        p.add_argument("--n-boot", type=int, default=1000)
        p.add_argument("--out", required=True)

    p = sub.add_parser("compare", help="LRP2 vs learned alignment vs language-neuron steering on the same facts")
    compare_args(p, methods=True)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("align", help="learned cross-lingual alignment (INCLINE): sigma chosen on dev, scored on test")
    compare_args(p, methods=False)
    p.set_defaults(func=cmd_align)

    p = sub.add_parser("lape", help="LAPE language-specific neurons: selection, deactivation losses, overlaps")
    _model_args(p)
    _facts_args(p)
    p.add_argument("--source", default="en")
    p.add_argument("--top-rate", type=float, default=0.01)
    p.add_argument("--filter-rate", type=float, default=0.95)
    p.add_argument("--bar-ratio", type=float, default=0.95, help="activation-bar quantile for language membership")
    p.add_argument("--kn-facts", type=int, default=0, help="facts per language for the knowledge-neuron overlap")
    p.add_argument(
        "--lrp2",
        nargs=2,
        type=int,
        metavar=("M", "N"),
        default=None,
        help="also measure how LRP2 changes the language neurons' activation",
    )
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_lape)

    p = sub.add_parser("lens", help="logit lens per layer: English vs language-l label, with/without LRP2")
    _model_args(p)
    _facts_args(p, languages=False)
    p.add_argument("--languages", nargs="+", required=True)
    p.add_argument("--source", default="en")
    p.add_argument("--lrp2", nargs=2, type=int, metavar=("M", "N"), default=None)
    p.add_argument("--include-same-token", action="store_true")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_lens)
