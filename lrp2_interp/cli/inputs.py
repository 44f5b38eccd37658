"""What the command modules share: argument groups, and the facts, model and vectors they load (with input checks).

Every function here takes the parsed arguments of one command; none keeps state.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lrp2_interp.cli.checks import LEGACY_LRP2, parse_lrp2
from lrp2_interp.cli.options import ConfigOptions, Option
from lrp2_interp.errors import InputError

if TYPE_CHECKING:
    from lrp2_interp.facts import FactSet
    from lrp2_interp.lrp2.vectors import LanguageVectors, TokenChoice
    from lrp2_interp.models.loading import LanguageModel
    from lrp2_interp.probing.types import ProbeConfig

DTYPES = ("float32", "float64", "bfloat16", "float16")


class Subparsers(Protocol):
    """What a command module's ``register`` needs of ``ArgumentParser.add_subparsers()``."""

    def add_parser(self, name: str, *, help: str | None = ...) -> argparse.ArgumentParser: ...


def default_facts() -> str:
    """The shipped facts (package data or the checkout's data/facts)."""
    from lrp2_interp.facts import shipped_facts_root

    return str(shipped_facts_root())


def facts_folder(args: argparse.Namespace) -> str:
    """``--facts``, else the shipped facts."""
    given: str | None = getattr(args, "facts", None)
    return given if given is not None else default_facts()


# ------------------------------------------------------------------ argument groups
def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="HF hub name (needs internet) or local save_pretrained directory")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=DTYPES)
    p.add_argument(
        "--device-map",
        default=None,
        help="'auto' (or 'balanced', 'sequential'): split the model over the GPUs, CPU and disk with accelerate "
        "(--device is then ignored)",
    )
    p.add_argument(
        "--max-memory",
        nargs="+",
        default=None,
        metavar="DEVICE=SIZE",
        help="with --device-map: memory per device, e.g. 0=70GiB 1=70GiB cpu=200GiB",
    )
    p.add_argument("--offload-folder", default=None, help="with --device-map: folder for weights offloaded to disk")
    p.add_argument("--seed", type=int, default=0, help="torch seed, fact sampling and the configs' seed")


def add_facts_args(p: argparse.ArgumentParser, languages: bool = True) -> None:
    p.add_argument("--facts", default=None, help="mLAMA-layout folder (default: the shipped data/facts)")
    if languages:
        p.add_argument("--languages", nargs="+", default=None, help="default: every language present")
    p.add_argument("--relations", nargs="+", default=None)
    p.add_argument("--max-facts", type=int, default=None, help="max facts per relation (same ids in every language)")


def probe_options() -> ConfigOptions[ProbeConfig]:
    from lrp2_interp.probing.types import ProbeConfig

    return ConfigOptions(
        ProbeConfig,
        (
            Option("max_candidates", help="cap the candidate pool (gold + random)"),
            Option("decoder_score"),
        ),
    )


def add_probe_args(p: argparse.ArgumentParser) -> None:
    """The probing options, and ``--batch-size`` (an execution setting: fed by ``run.execution.configure``)."""
    from lrp2_interp.cli.options import field_default
    from lrp2_interp.probing.types import ProbeConfig

    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="sequences per forward pass (speed only; default: each analysis's own, "
        f"ProbeConfig's {field_default(ProbeConfig, 'batch_size')})",
    )
    probe_options().add_to(p)


def probe_config(args: argparse.Namespace) -> ProbeConfig:
    """The probing config of the options that change numbers; the speed-only fields are the defaults until
    ``run.execution.configure`` sets them."""
    return probe_options().build(args, seed=args.seed)


def add_preset_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--paper", action="store_true", help="the paper's choices (lrp2_interp.presets): all-token vectors")
    p.add_argument(
        "--tokens",
        choices=("real", "all"),
        default=None,
        help="tokens averaged into language vectors (default: real, i.e. special tokens dropped)",
    )


def add_out_args(p: argparse.ArgumentParser, *, required: bool = True, default: str | None = None) -> None:
    """``--out`` (a results folder) and ``--overwrite``."""
    p.add_argument("--out", required=required, default=default, help="results folder")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="start --out clean: remove the results of an earlier run in it (default: a folder holding another "
        "run's results is refused, the same run's is resumed)",
    )


def add_lrp2_arg(p: argparse.ArgumentParser, *, required: bool = False, nargs: str = "+", help: str = "") -> None:
    """``--lrp2 LANG=M,N ...``: the LRP2 layers (m, n) of each language."""
    p.add_argument("--lrp2", nargs=nargs, required=required, default=None, metavar="LANG=M,N", help=help or None)


# ------------------------------------------------------------------ parsed values
def vector_tokens(args: argparse.Namespace) -> TokenChoice:
    """Tokens averaged into language vectors: ``--tokens``, else the preset's (``--paper``: all tokens)."""
    from lrp2_interp.presets import get_preset

    given: TokenChoice | None = getattr(args, "tokens", None)
    return given or get_preset("paper" if getattr(args, "paper", False) else "default").tokens


def lrp2_pairs(args: argparse.Namespace, languages: Sequence[str]) -> dict[str, tuple[int, int]]:
    """(m, n) per language of ``--lrp2`` for the run's ``languages`` (empty without ``--lrp2``)."""
    return parse_lrp2(args.lrp2, legacy=args.command in LEGACY_LRP2).for_languages(languages)


def lrp2_record(pairs: Mapping[str, tuple[int, int]]) -> dict[str, list[int]] | None:
    """``--lrp2`` as ``run.json`` records it: {lang: [m, n]}, None when no language has a pair."""
    return {lang: list(mn) for lang, mn in pairs.items()} or None


# ------------------------------------------------------------------ loading, with input checks
def load_facts_for(args: argparse.Namespace, languages: Sequence[str] | None = None) -> FactSet:
    """The facts of ``--facts``/``--relations``/``--max-facts`` in ``languages`` (default ``--languages``)."""
    from lrp2_interp.facts import load_facts

    return load_facts(
        facts_folder(args),
        languages or getattr(args, "languages", None),
        args.relations,
        max_facts_per_relation=args.max_facts,
        seed=args.seed,
    )


def load_model_for(args: argparse.Namespace, facts: FactSet | None = None, *, objects: bool = False) -> LanguageModel:
    """The model of ``--model``; with ``facts``, also refuse facts whose prompts exceed its positions
    and, with ``objects`` (commands that rank objects), objects its tokenizer does not cover."""
    import torch

    from lrp2_interp.models.loading import load_model

    torch.manual_seed(args.seed)
    lm = load_model(
        args.model,
        device=args.device,
        dtype=getattr(torch, args.dtype),
        device_map=getattr(args, "device_map", None),
        max_memory=max_memory(getattr(args, "max_memory", None)),
        offload_folder=getattr(args, "offload_folder", None),
    )
    if facts is not None:
        check_fact_lengths(lm, facts)
        if objects:
            check_object_coverage(lm, facts)
    return lm


def rankable_facts(lm: LanguageModel, facts: FactSet) -> tuple[FactSet, Any]:
    """``facts`` less those whose gold the model cannot tell from a wrong candidate (in any language:
    :func:`lrp2_interp.probing.types.rankable`), and those facts; one note line on stderr when there are any."""
    import sys

    from lrp2_interp.probing.types import rankable

    kept, excluded = rankable(lm, facts)
    if len(excluded):
        first = excluded.iloc[0]
        n = len(set(zip(excluded["relation"], excluded["lineid"])))
        print(
            f"lrp2-interp: note: {n} fact(s) left out of ranking in every language, their gold cannot be told "
            f"from a wrong candidate (e.g. {first['language']}/{first['relation']}.jsonl lineid {first['lineid']}: "
            f"{first['reason']}); listed in excluded.csv",
            file=sys.stderr,
        )
    return kept, excluded


def write_excluded(out: Path, excluded: Any) -> int:
    """``excluded.csv`` when facts were left out of ranking; returns how many facts (for ``run.json``)."""
    from lrp2_interp.files import write_table

    if len(excluded):
        write_table(out / "excluded.csv", excluded)
    return len(set(zip(excluded["relation"], excluded["lineid"])))


def max_memory(items: Sequence[str] | None) -> dict[str | int, str | int] | None:
    """``--max-memory 0=70GiB cpu=200GiB`` as accelerate's dict (GPU indices as ints), None when not given."""
    if not items:
        return None
    out: dict[str | int, str | int] = {}
    for item in items:
        dev, sep, size = item.partition("=")
        if not sep or not dev or not size:
            raise InputError(
                f"--max-memory takes DEVICE=SIZE (e.g. 0=70GiB cpu=200GiB), got {item!r}", field="max_memory"
            )
        out[int(dev) if dev.isdigit() else dev] = size
    return out


def check_object_coverage(lm: LanguageModel, facts: FactSet) -> None:
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


def check_fact_lengths(lm: LanguageModel, facts: FactSet, per_relation: int = 3) -> None:
    """Refuse a fact whose filled sentence is longer than the model's positions, naming its file, lineid and
    the label to blame (the one with more tokens).

    Every label is tokenized once (a short label may be many tokens, e.g. in a script the
    tokenizer splits into bytes); the ``per_relation`` facts with the most label tokens of
    each file are then checked exactly.  The batch encoder's own length check stays the backstop.
    """
    from lrp2_interp.prompts import render_filled

    limit = lm.max_positions
    if limit is None:
        return
    for (lang, rel), rows in facts.facts.items():
        if lang not in facts.languages or rel not in facts.relations or not rows:
            continue
        tpl = facts.template(lang, rel).template
        labels = sorted({f.sub_label for f in rows} | {f.obj_label for f in rows})
        size = dict(zip(labels, (len(ids) for ids in lm.tokenizer(labels, add_special_tokens=False)["input_ids"])))
        for fact in sorted(rows, key=lambda f: -(size[f.sub_label] + size[f.obj_label]))[:per_relation]:
            n = len(lm.tokenizer(render_filled(tpl, fact.sub_label, fact.obj_label))["input_ids"]) + 1
            if n > limit:
                blame = "obj_label" if size[fact.obj_label] > size[fact.sub_label] else "sub_label"
                raise InputError(
                    f"lineid {fact.lineid}: its prompt has {n} tokens, more than the {limit} positions "
                    f"of model '{lm.name}' ({blame} is {size[getattr(fact, blame)]} tokens)",
                    file=facts.root / lang / f"{rel}.jsonl",
                    field=blame,
                )


def language_vectors(
    args: argparse.Namespace, lm: LanguageModel, facts: FactSet, languages: Sequence[str] | None = None
) -> LanguageVectors:
    """``--vectors`` when given, else vectors computed from the probe prompts of ``languages`` (default: all)."""
    from lrp2_interp.lrp2.vectors import LanguageVectors, compute_language_vectors

    if getattr(args, "vectors", None):
        return LanguageVectors.load(args.vectors)
    sentences, corpus = vector_sentences(lm, facts, languages)
    return compute_language_vectors(lm, sentences, corpus=corpus, tokens=vector_tokens(args))


def vector_sentences(
    lm: LanguageModel, facts: FactSet, languages: Sequence[str] | None = None
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """The sentences (probe prompts) and corpus names :func:`language_vectors` computes vectors from; the facts'
    content is in the sentences, so no folder name enters the vectors' record."""
    from lrp2_interp.prompts import prompt_corpus

    langs = list(languages or facts.languages)
    return {lg: prompt_corpus(facts, lg, lm) for lg in langs}, dict.fromkeys(langs, "probe prompts")


# ------------------------------------------------------------------ run records
def finish_run(out: Path, meta: Mapping[str, Any]) -> Path:
    """Write ``figures.md`` (the gallery of the run's figures, :func:`lrp2_interp.gallery.write_gallery`), then
    ``run.json`` last, with ``"complete": true`` as its last field: only a finished run has it."""
    from lrp2_interp.gallery import write_gallery
    from lrp2_interp.manifest import finish_record

    write_gallery(out)
    return finish_record(out, meta)
