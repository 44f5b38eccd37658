"""CLI commands for knowledge neurons: ``attribute``, ``neurons``, ``similarity``."""

from __future__ import annotations

import time
from pathlib import Path

from lrp2_interp.errors import InputError


def _pairs(items: list[str] | None) -> dict[str, tuple[int, int]]:
    """Parse ``fr=2,4 zh=1,3`` into {lang: (m, n)}."""
    from lrp2_interp.cli.checks import parse_pairs

    return parse_pairs(items)


def _attribution_config(args):
    from lrp2_interp.attribution.api import AttributionConfig

    return AttributionConfig(
        n_steps=args.steps,
        method=args.method,
        log_prob=args.log_prob,
        target_token=args.target_token,
        target_delta=args.target_delta,
        max_steps=args.max_steps,
        progress=True,
    )


def _vectors(args, lm, facts):
    from lrp2_interp.cli.main import _tokens
    from lrp2_interp.lrp2.vectors import LanguageVectors, compute_language_vectors, prompt_corpus

    if args.vectors:
        return LanguageVectors.load(args.vectors)
    return compute_language_vectors(
        lm,
        {lg: prompt_corpus(facts, lg, lm) for lg in facts.languages},
        corpus=dict.fromkeys(facts.languages, f"probe prompts of {args.facts}"),
        tokens=_tokens(args),
    )


def cmd_attribute(args) -> None:
    from lrp2_interp.attribution.api import attribute_neurons
    from lrp2_interp.cli.main import _done, _load
    from lrp2_interp.files import run_metadata, write_json, write_table
    from lrp2_interp.plots import attribution_heatmap

    t0, out = time.time(), Path(args.out)
    lm = _load(args)
    cfg = _attribution_config(args)
    check_attribute_input(lm, args.prompt, args.target)
    res = attribute_neurons(lm, args.prompt, args.target, cfg)
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
    attribution_heatmap(res, out / "attribution.png", title=f"{args.prompt} -> {args.target}")
    write_json(
        out / "run.json",
        run_metadata(
            cfg,
            command="attribute",
            model_name=lm.name,
            prompt=args.prompt,
            target=args.target,
            path=res.path,
            top=args.top,
            seconds=round(time.time() - t0, 1),
        ),
    )
    print(pd.DataFrame(rows).head(10).to_string(index=False))
    print(f"max |completeness delta| = {res.deltas.abs().max():.2e} ({res.path} path)")
    _done(out, t0)


def check_attribute_input(lm, prompt: str, target: str) -> None:
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


def cmd_neurons(args) -> None:
    from lrp2_interp.cli.main import _done, _facts, _load, run_info
    from lrp2_interp.distributed import init_distributed
    from lrp2_interp.files import run_metadata, write_json
    from lrp2_interp.neurons.pipeline import KnowledgeConfig, prepare_facts, run_knowledge_analysis
    from lrp2_interp.neurons.selection import NeuronConfig

    t0, out = time.time(), Path(args.out)
    dist = init_distributed(args.device)
    lrp = _pairs(args.lrp2)
    langs = tuple(args.languages)
    missing = [lg for lg in langs if lg not in lrp]
    if missing:
        raise InputError(
            f"give --lrp2 LANG=M,N for {', '.join(missing)} (e.g. the held-out pair of a sweep)", field="--lrp2"
        )
    facts = _facts(args, [args.source, *langs]).parallel()
    lm = _load(args, facts)
    neurons = NeuronConfig.paper(top_k=args.top_k or 20) if args.paper else NeuronConfig(threshold=args.threshold)
    cfg = KnowledgeConfig(
        languages=langs,
        lrp2=lrp,
        source=args.source,
        attribution=_attribution_config(args),
        neurons=neurons,
        n_perm=args.n_perm,
        seed=args.seed,
        causal=None if args.no_causal else KnowledgeConfig.__dataclass_fields__["causal"].default_factory(),
    )
    prepare_facts(lm, facts, cfg)  # every fact checked before the vectors are computed
    vectors = _vectors(args, lm, facts)
    res = run_knowledge_analysis(lm, facts, vectors, cfg, out, dist=dist)
    if res is not None:
        write_json(out / "run.json", run_metadata(cfg, model_name=lm.name, **run_info(args, t0)))
        print(res.overlap_summary.table.to_string(index=False))
        _done(out, t0)
    dist.close()


def cmd_similarity(args) -> None:
    from lrp2_interp.cli.main import _done, _facts, _load, run_info
    from lrp2_interp.files import run_metadata, write_json, write_table
    from lrp2_interp.lrp2.projection import LRP2Config
    from lrp2_interp.lrp2.similarity import similarity_table
    from lrp2_interp.plots import similarity_plot

    t0, out = time.time(), Path(args.out)
    lrp = _pairs(args.lrp2)
    facts = _facts(args, [args.source, *args.languages]).parallel()
    lm = _load(args, facts)
    vectors = _vectors(args, lm, facts)
    table = similarity_table(
        lm,
        facts,
        list(args.languages),
        vectors,
        {lg: LRP2Config(m, n, source=args.source) for lg, (m, n) in lrp.items()} or None,
    ).table
    write_table(out / "similarity.csv", table)
    similarity_plot(table, out / "similarity.png")
    write_json(
        out / "run.json",
        run_metadata(
            None,
            model_name=lm.name,
            **run_info(args, t0, lrp2={lg: list(mn) for lg, mn in lrp.items()}, vectors=args.vectors),
        ),
    )
    _done(out, t0)


def register(sub) -> None:
    from lrp2_interp.attribution.api import METHODS, AttributionConfig
    from lrp2_interp.cli.main import _facts_args, _model_args

    ig_default = AttributionConfig()  # the CLI's defaults are the config's, never repeated by hand

    def ig_args(p):
        p.add_argument("--steps", type=int, default=ig_default.n_steps, help="quadrature steps per layer")
        p.add_argument("--method", default=ig_default.method, choices=METHODS, help="quadrature rule")
        p.add_argument(
            "--target-delta",
            type=float,
            default=ig_default.target_delta,
            help="adaptive steps: double a layer's steps until |completeness delta| < this",
        )
        p.add_argument("--max-steps", type=int, default=ig_default.max_steps, help="cap for --target-delta")
        p.add_argument("--log-prob", action="store_true", help="attribute log p(gold) instead of p(gold)")
        p.add_argument("--target-token", choices=("first", "sum"), default="first")

    p = sub.add_parser("attribute", help="knowledge-neuron integrated gradients for one prompt")
    _model_args(p), ig_args(p)
    p.add_argument("--prompt", required=True, help="masked-LM prompt with [MASK] or a causal-LM prefix")
    p.add_argument("--target", required=True, help="gold object text")
    p.add_argument("--top", type=int, default=20)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_attribute)

    p = sub.add_parser("neurons", help="knowledge neurons: EN-vs-l overlap with/without LRP2, control, causal")
    _model_args(p), _facts_args(p, languages=False), ig_args(p)
    p.add_argument("--languages", nargs="+", required=True, help="target languages")
    p.add_argument("--lrp2", nargs="+", required=True, metavar="LANG=M,N")
    p.add_argument("--source", default="en")
    p.add_argument("--vectors", default=None)
    p.add_argument("--threshold", type=float, default=0.2, help="coarse selection: score >= t x max")
    p.add_argument(
        "--paper",
        action="store_true",
        help="the paper's choices (lrp2_interp.presets): top-20 per "
        "layer per prompt, then the 20 most frequent of each layer per relation; all-token vectors",
    )
    p.add_argument("--top-k", type=int, default=None, help="--paper: neurons per layer per prompt (default 20)")
    p.add_argument("--tokens", choices=("real", "all"), default=None, help="tokens averaged into language vectors")
    p.add_argument("--n-perm", type=int, default=1000)
    p.add_argument("--no-causal", action="store_true")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_neurons)

    p = sub.add_parser("similarity", help="cosine similarity to English per layer, with/without LRP2")
    _model_args(p), _facts_args(p, languages=False)
    p.add_argument("--languages", nargs="+", required=True)
    p.add_argument("--lrp2", nargs="*", default=None, metavar="LANG=M,N")
    p.add_argument("--source", default="en")
    p.add_argument("--vectors", default=None)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_similarity)
