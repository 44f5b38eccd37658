"""Every query a model reads: text, BOS, target positions, gold ids.

The one place a fact becomes what a model is run on:

* text: :func:`render_masked` (one mask token per object token), :func:`render_filled`
  (subject and object filled in), :func:`render_prefix` (the text before the object slot)
  and :func:`render_query` (the probe prompt of a fact: a one-mask query for masked LMs,
  the prefix for causal LMs -- or, for a template that starts with the object, the
  template without it); :func:`prompt_corpus`, :func:`parallel_prompts` and
  :func:`translation_prompts` render whole fact sets;
* token ids: :func:`with_bos` / :func:`causal_ids` (a causal LM's rows start with a start
  token, :func:`start_ids`: the tokenizer's BOS, else its EOS -- the GPT-2 convention, and
  what Qwen2/2.5, whose ``bos_token`` is None, use as document separator -- else an
  :class:`InputError`; so every real token of a row is predicted, none is left unscored),
  :func:`masked_ids` (a masked LM's query with its special tokens);
* target positions: :func:`target_positions` (first mask token / last real token of a
  padded batch);
* gold ids: :class:`GoldQuery` (ids, the positions where the object's tokens are
  predicted and the gold token at each), :func:`gold_query(s) <gold_queries>` and
  :func:`attribution_queries` (prompt and gold ids for integrated gradients).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from lrp2_interp.errors import InputError
from lrp2_interp.fact_files import OBJECT, SUBJECT, Fact
from lrp2_interp.facts import FactSet
from lrp2_interp.models.loading import Batch, LanguageModel, unknown_only

FactKey = tuple[str, int]  # (relation, lineid)
TargetToken = Literal["first", "all"]


# ---------------------------------------------------------------- text
def render_masked(template: str, subject: str, n_masks: int, mask_token: str) -> str:
    """Masked-LM query: subject filled in, one mask token per object token."""
    if n_masks < 1:
        raise InputError("object tokenizes to nothing (0 mask tokens)", field="obj_label")
    return template.replace(SUBJECT, subject).replace(OBJECT, " ".join([mask_token] * n_masks))


def render_filled(template: str, subject: str, obj: str) -> str:
    """A full sentence with subject and object filled in (causal-LM candidate)."""
    return template.replace(SUBJECT, subject).replace(OBJECT, obj)


def render_head(template: str, subject: str) -> str:
    """The text before the object slot, subject filled in, trailing space kept."""
    return template.replace(SUBJECT, subject).split(OBJECT)[0]


def render_prefix(template: str, subject: str) -> str:
    """The text before the object slot (causal-LM query prompt), stripped of trailing space."""
    return render_head(template, subject).rstrip()


def render_query(template: str, subject: str, kind: str, mask_token: str | None = None) -> str:
    """The query text a model reads for a fact (language vectors, similarity).

    Masked LMs: the template with one mask in the object slot.  Causal LMs: the
    text before the object slot; when the template starts with the object (e.g.
    French ``[Y] est la capitale de [X] .``) that prefix is empty, and the whole
    template without the object is used instead.
    """
    if kind == "masked":
        return render_masked(template, subject, 1, mask_token or "[MASK]")
    prefix = render_prefix(template, subject)
    return prefix if prefix else " ".join(template.replace(SUBJECT, subject).replace(OBJECT, " ").split())


def starts_with_object(template: str) -> bool:
    """Whether the template's object slot comes first (a causal LM then has no query prefix)."""
    return template.strip().startswith(OBJECT)


def fact_sentence(facts: FactSet, language: str, fact: Fact) -> str:
    """``fact`` as its filled sentence in ``language`` (subject and gold object)."""
    return render_filled(facts.template(language, fact.relation).template, fact.sub_label, fact.obj_label)


def fact_sentences(facts: FactSet, languages: Sequence[str] | None = None) -> list[str]:
    """Every fact of ``languages`` (default: all of the set's) as its filled sentence, language by language."""
    langs = facts.languages if languages is None else languages
    return [fact_sentence(facts, lang, f) for lang in langs for f in facts.iter_facts(lang)]


def query_text(lm: LanguageModel, template: str, subject: str) -> str:
    """:func:`render_query` for ``lm`` (its kind and mask token)."""
    return render_query(template, subject, lm.kind, lm.mask_token if lm.kind == "masked" else None)


def prompt_corpus(facts: FactSet, language: str, lm: LanguageModel) -> list[str]:
    """The probe prompts of ``language`` (:func:`render_query`): masked queries or prefixes."""
    return [
        query_text(lm, facts.template(language, f.relation).template, f.sub_label) for f in facts.iter_facts(language)
    ]


def parallel_keys(
    facts: FactSet, languages: Sequence[str], *, order: Literal["sorted", "file"] = "sorted"
) -> list[FactKey]:
    """``(relation, lineid)`` of the facts present in every one of ``languages``.

    ``order="sorted"``: sorted keys; ``"file"``: the relation order of the set, then the
    file order of ``languages[0]``.
    """
    present = [{(f.relation, f.lineid) for f in facts.iter_facts(lang)} for lang in languages]
    common = set.intersection(*present) if present else set()
    if order == "sorted":
        return sorted(common)
    return [(f.relation, f.lineid) for f in facts.iter_facts(languages[0]) if (f.relation, f.lineid) in common]


def _prompts_of(lm: LanguageModel, facts: FactSet, language: str, keys: Sequence[FactKey]) -> list[str]:
    by_key = {(f.relation, f.lineid): f for f in facts.iter_facts(language)}
    return [query_text(lm, facts.template(language, rel).template, by_key[(rel, i)].sub_label) for rel, i in keys]


def parallel_prompts(lm: LanguageModel, facts: FactSet, languages: Sequence[str]) -> dict[str, list[str]]:
    """Probe prompts of the facts shared by all ``languages``, aligned by sorted ``(relation, lineid)``."""
    facts.check_languages(languages)
    keys = parallel_keys(facts, languages)
    if not keys:
        raise InputError(
            f"no parallel facts (same relation and lineid) in {', '.join(languages)}", file=facts.root, field="lineid"
        )
    return {lang: _prompts_of(lm, facts, lang, keys) for lang in languages}


def translation_prompts(lm: LanguageModel, facts: FactSet, language: str, source: str) -> tuple[list[str], list[str]]:
    """(``language``'s prompts, ``source``'s prompts) of the facts present in both, in ``language``'s file order."""
    keys = parallel_keys(facts, [language, source], order="file")
    return _prompts_of(lm, facts, language, keys), _prompts_of(lm, facts, source, keys)


# ---------------------------------------------------------------- token ids and positions
def start_ids(lm: LanguageModel) -> list[int]:
    """The start token of a causal LM's row: ``[bos]``, else ``[eos]`` (GPT-2 style), else an InputError.

    Causal scoring predicts token ``i`` from the tokens before it, so the first real token
    of a row needs a token in front of it; without one it would silently go unscored (the
    first object token of an object-first template such as ``[Y] est la capitale de [X] .``).
    Tokenizers without a BOS token (Qwen2/2.5, GPT-2 style) separate documents with their
    EOS token, which is therefore the start token the model was trained to condition on.
    """
    tok = lm.tokenizer
    for tid in (tok.bos_token_id, tok.eos_token_id):
        if tid is not None:
            return [int(tid)]
    raise InputError(
        f"the tokenizer of '{lm.name}' has neither a BOS nor an EOS token, so a causal LM's first token cannot be "
        f"scored; set tokenizer.bos_token",
        field="bos_token",
    )


def with_bos(lm: LanguageModel, ids: Sequence[int]) -> list[int]:
    """``ids`` with the model's start token (:func:`start_ids`: BOS, else EOS) in front: a causal LM's row."""
    return start_ids(lm) + list(ids)


def causal_ids(lm: LanguageModel, text: str) -> list[int]:
    """Token ids of ``text`` (no special tokens) with the start token in front: what causal probing reads."""
    return with_bos(lm, lm.token_ids(text))


def masked_ids(lm: LanguageModel, text: str) -> list[int]:
    """Token ids of a masked LM's query, with the tokenizer's special tokens (``[CLS] ... [SEP]``)."""
    return list(lm.tokenizer(text)["input_ids"])


def candidate_rows(lm: LanguageModel, template: str, subject: str, candidates: Sequence[str]) -> list[list[int]]:
    """Causal probing: one token row per candidate object filled into ``template`` (start token first)."""
    return [causal_ids(lm, render_filled(template, subject, c)) for c in candidates]


def target_positions(lm: LanguageModel, batch: Batch) -> torch.Tensor:
    """``[batch]`` the target position: first mask token (masked LM) or last real token (causal LM)."""
    if lm.kind == "masked":
        is_mask = batch.input_ids == lm.mask_token_id  # [b, pos]
        if not is_mask.any(1).all():
            raise InputError("a masked-LM prompt has no mask token", field="template")
        return is_mask.int().argmax(1)
    return batch.attention_mask.sum(1) - 1


# ---------------------------------------------------------------- gold ids
@dataclass(frozen=True)
class GoldQuery:
    """One fact as token ids with the positions where its object tokens are predicted.

    Masked LM: the prompt has one mask token per object token; every mask is a target and
    the gold token at mask ``j`` is the object's ``j``-th token.  Causal LM: the query prefix
    (start token prepended, as in probing) is followed by the object tokens but the last (teacher
    forcing); the targets are the last prefix token and the positions of the fed object
    tokens.  ``target_token="first"`` keeps only the first object token and its position.
    """

    relation: str
    lineid: int
    language: str
    input_ids: tuple[int, ...]
    targets: tuple[int, ...]  # positions in input_ids
    gold: tuple[int, ...]  # gold token id at each target


def gold_query(lm: LanguageModel, template: str, fact: Fact, target_token: TargetToken = "first") -> GoldQuery:
    """The :class:`GoldQuery` of ``fact`` rendered with ``template``."""
    if target_token not in ("first", "all"):
        raise InputError(f"target_token must be 'first' or 'all', got {target_token!r}", field="target_token")
    keep = 1 if target_token == "first" else None
    obj_ids = lm.token_ids(fact.obj_label)
    if lm.kind == "masked":
        ids = masked_ids(lm, render_masked(template, fact.sub_label, len(obj_ids), lm.mask_token))
        targets = [i for i, t in enumerate(ids) if t == lm.mask_token_id]
        if len(targets) != len(obj_ids):
            raise InputError(
                f"template renders {len(targets)} masks instead of {len(obj_ids)} for fact {fact.lineid}",
                field="template",
            )
        return GoldQuery(
            fact.relation, fact.lineid, fact.language, tuple(ids), tuple(targets[:keep]), tuple(obj_ids[:keep])
        )
    prefix = render_prefix(template, fact.sub_label)
    upto = render_head(template, fact.sub_label) + fact.obj_label
    p_ids, full = lm.token_ids(prefix), lm.token_ids(upto)
    gold = (
        full[len(p_ids) :]
        if full[: len(p_ids)] == p_ids and len(full) > len(p_ids)
        else lm.token_ids(upto[len(prefix) :])
    )
    if not gold:
        raise InputError(f"object {fact.obj_label!r} tokenizes to nothing", field="obj_label")
    gold = gold[:keep]
    ids = with_bos(lm, p_ids + gold[:-1])
    start = len(ids) - len(gold)  # the last prefix token (the start token when the prefix is empty)
    return GoldQuery(
        fact.relation, fact.lineid, fact.language, tuple(ids), tuple(range(start, start + len(gold))), tuple(gold)
    )


def gold_queries(
    lm: LanguageModel,
    facts: FactSet,
    language: str,
    keys: Sequence[FactKey] | None = None,
    target_token: TargetToken = "first",
) -> list[GoldQuery]:
    """Queries of ``language``'s facts, in ``keys`` order (``(relation, lineid)``) when given."""
    by_key = {(f.relation, f.lineid): f for f in facts.iter_facts(language)}
    keys = list(by_key) if keys is None else list(keys)
    missing = [k for k in keys if k not in by_key]
    if missing:
        raise InputError(f"facts {missing[:5]} are missing in language '{language}'", field="lineid")
    return [gold_query(lm, facts.template(language, k[0]).template, by_key[k], target_token) for k in keys]


def attribution_queries(
    lm: LanguageModel, facts: FactSet, language: str, keys: Sequence[FactKey] | None = None
) -> list[tuple[str, list[int]]]:
    """(prompt, gold token ids) for each fact of ``language`` (masked query / causal prefix).

    ``keys`` ((relation, lineid) pairs) fixes the order, so that row ``i`` of every
    language is the same fact whatever the order of each language's files;
    default: the language's own file order.  A gold object that tokenizes to
    nothing but the unknown token is refused (its attribution would be meaningless).
    """
    by_key = {(f.relation, f.lineid): f for f in facts.iter_facts(language)}
    if keys is None:
        keys = list(by_key)
    missing = [k for k in keys if k not in by_key]
    if missing:
        raise InputError(
            f"{len(missing)} fact(s) have no '{language}' version, e.g. relation {missing[0][0]} lineid "
            f"{missing[0][1]}",
            file=facts.root,
            field="lineid",
        )
    out, unknown = [], []
    for key in keys:
        fact = by_key[key]
        tpl = facts.template(language, fact.relation).template
        query = gold_query(lm, tpl, fact, "all")
        lm.check_positions(len(query.input_ids), field=f"{language}/{fact.relation}.jsonl lineid {fact.lineid}")
        gold = list(query.gold)
        if unknown_only(lm, gold):
            unknown.append(fact)
        prompt = (
            render_masked(tpl, fact.sub_label, len(gold), lm.mask_token)
            if lm.kind == "masked"
            else render_prefix(tpl, fact.sub_label)
        )
        out.append((prompt, gold))
    if unknown:
        f = unknown[0]
        raise InputError(
            f"{len(unknown)} object(s) tokenize to the unknown token only, e.g. {f.obj_label!r} "
            f"(relation {f.relation}, lineid {f.lineid}): the tokenizer of '{lm.name}' does not cover "
            f"them",
            file=facts.root / language / f"{f.relation}.jsonl",
            field="obj_label",
        )
    return out
