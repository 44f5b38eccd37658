"""What typed probing is configured by and returns: config, result table, candidate pools, ranking.

Shared by the reference implementation (:mod:`lrp2_interp.probing.reference_probe`) and
the fast one (:mod:`lrp2_interp.probing.fast`); both produce ``Scores`` -- one score
per (fact, candidate) -- that :func:`rank_rows` turns into the result table.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from lrp2_interp.errors import InputError
from lrp2_interp.facts import Fact, FactSet
from lrp2_interp.models.loading import LanguageModel

TABLE_COLUMNS = ["language", "relation", "lineid", "gold", "prediction", "rank", "correct", "n_candidates"]
#: columns of the facts left out of ranking (:func:`unrankable_facts`)
EXCLUDED_COLUMNS = ["language", "relation", "lineid", "gold", "reason"]

FactKey = tuple[str, int]  # (relation, lineid)
Scores = dict[FactKey, dict[str, float]]  # fact -> candidate label -> score (higher is better)
Pools = dict[FactKey, list[str]]  # fact -> its candidate pool (sorted labels)
#: default ``ProbeConfig.verify_margin`` (nats): >= 5x the largest bfloat16 score error measured
#: on Gemma-3-270m (numbers: :mod:`lrp2_interp.probing.verified`)
BF16_MARGIN = 1.5


@dataclass(frozen=True)
class ProbeConfig:
    batch_size: int = 32  # most sequences in one forward pass
    max_candidates: int | None = None  # None: every object of the relation
    decoder_score: Literal["sum", "mean"] = "sum"
    seed: int = 0
    path: Literal["fast", "reference"] = "fast"  # "reference": the straightforward full-logits implementation
    memory_mb: int = 1024  # budget for one pass's activations and logits; batch sizes are chosen from it
    #: how ``max_candidates`` distractors are drawn: "label" (from this language's sorted labels) or
    #: "entity" (the same object entities in every language of the fact set; see :func:`entity_pools`)
    distractors: Literal["label", "entity"] = "label"
    # the fast paths' unembedding product (probing/head.py); "bfloat16" re-scores close calls in float32
    head_dtype: Literal["float32", "bfloat16"] = "float32"
    verify_margin: float = BF16_MARGIN  # top-1 margins <= this are re-scored in float32 (probing/verified.py)

    def __post_init__(self) -> None:
        if self.max_candidates is not None and (not isinstance(self.max_candidates, int) or self.max_candidates < 1):
            raise InputError(
                f"max_candidates must be a positive integer or None, got {self.max_candidates!r}",
                field="max_candidates",
            )
        if self.batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {self.batch_size!r}", field="batch_size")
        if self.decoder_score not in ("sum", "mean"):
            raise InputError(
                f"decoder_score must be 'sum' or 'mean', got {self.decoder_score!r}", field="decoder_score"
            )
        if self.path not in ("fast", "reference"):
            raise InputError(f"path must be 'fast' or 'reference', got {self.path!r}", field="path")
        if self.distractors not in ("label", "entity"):
            raise InputError(f"distractors must be 'label' or 'entity', got {self.distractors!r}", field="distractors")
        if self.memory_mb < 1:
            raise InputError(f"memory_mb must be >= 1, got {self.memory_mb!r}", field="memory_mb")
        if self.head_dtype not in ("float32", "bfloat16"):
            raise InputError(f"head_dtype must be 'float32' or 'bfloat16', got {self.head_dtype!r}", field="head_dtype")
        if not isinstance(self.verify_margin, (int, float)) or not 0 <= self.verify_margin < float("inf"):
            raise InputError(
                f"verify_margin must be a finite number >= 0, got {self.verify_margin!r}", field="verify_margin"
            )


@dataclass(frozen=True)
class ProbeResult:
    """One row per fact (see ``TABLE_COLUMNS``); ``rank`` is the 1-based rank of the gold object.

    ``excluded``: the facts left out of ranking (:func:`unrankable_facts`, columns ``EXCLUDED_COLUMNS``).
    """

    config: ProbeConfig
    model_name: str
    language: str
    table: pd.DataFrame
    excluded: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=EXCLUDED_COLUMNS))

    @property
    def n_excluded(self) -> int:
        """How many facts were left out of ranking (their gold cannot be told from a wrong candidate)."""
        return len(self.excluded)

    @property
    def accuracy(self) -> float:
        """P@1 in percent over all facts."""
        return 100.0 * float(self.table["correct"].mean()) if len(self.table) else float("nan")

    def correct_ids(self) -> set[int]:
        return set(self.table.loc[self.table["correct"], "lineid"].astype(int))


def candidate_pool(fact: Fact, candidates: Sequence[str], config: ProbeConfig) -> list[str]:
    """The candidates ranked for ``fact``: all of them, or gold + seeded random distractors (sorted)."""
    if config.max_candidates is None or len(candidates) <= config.max_candidates:
        return list(candidates)
    others = sorted(c for c in candidates if c != fact.obj_label)  # sorted: independent of the input order
    rng = random.Random(f"{config.seed}-{fact.relation}-{fact.lineid}")
    return sorted([fact.obj_label] + rng.sample(others, config.max_candidates - 1))


def entity_pools(facts: FactSet, language: str, relation: str, config: ProbeConfig) -> dict[int, list[str]]:
    """Lineid -> candidate pool of each fact of ``relation``: the same object *entities* in every language.

    Distractors are drawn by entity (``obj_uri``) from the relation's entities that are usable in every
    language of ``facts`` (so probing ``en`` and ``l`` on ``facts.select_languages(["en", l])`` ranks the
    same entities, and Trans compares like with like), then written in ``language``'s labels.  An entity
    is usable when, in every one of those languages, it has a label, that label is no other entity's
    label there, and it is not the gold's label or one of its aliases (it would count as correct).
    Sampling is seeded by ``(seed, relation, lineid)`` only, so it does not depend on the language.  A
    fact with fewer usable entities than ``max_candidates - 1`` keeps all of them (its ``n_candidates``
    says so); ``max_candidates=None`` keeps all.
    """
    langs = facts.languages
    ents = {lang: facts.entities(lang, relation) for lang in langs}
    unique = {}
    for lang in langs:
        count: dict[str, int] = {}
        for label in ents[lang].values():
            count[label] = count.get(label, 0) + 1
        unique[lang] = {u for u, label in ents[lang].items() if count[label] == 1}
    common = sorted(set.intersection(*unique.values()))
    gold_of = {f.lineid: f for f in facts.facts_of(language, relation)}
    twins = {lang: {f.lineid: f for f in facts.facts_of(lang, relation)} for lang in langs}
    out = {}
    for lineid, fact in gold_of.items():
        correct = [{t.obj_label, *t.obj_aliases} for t in (twins[lang].get(lineid) for lang in langs) if t is not None]
        others = [
            u for u in common if u != fact.obj_uri and not any(ents[lang][u] in c for lang, c in zip(langs, correct))
        ]
        k = len(others) if config.max_candidates is None else min(len(others), config.max_candidates - 1)
        picked = random.Random(f"{config.seed}-{relation}-{lineid}").sample(others, k)
        out[lineid] = sorted([fact.obj_label] + [ents[language][u] for u in picked])
    return out


def fact_pools(facts: FactSet, language: str, config: ProbeConfig) -> tuple[list[Fact], Pools]:
    """Every fact of ``language`` (relation order, then file order) and its candidate pool."""
    order, pools = [], {}
    for rel in facts.relations:
        by_entity = entity_pools(facts, language, rel, config) if config.distractors == "entity" else {}
        for fact in facts.facts_of(language, rel):
            order.append(fact)
            pools[(rel, fact.lineid)] = (
                by_entity[fact.lineid]
                if config.distractors == "entity"
                else candidate_pool(fact, facts.candidates(language, rel), config)
            )
    return order, pools


def rank_row(fact: Fact, pool: list[str], scores: list[float]) -> dict:
    """One result row; a NaN (or +inf) score is refused before ranking, naming the fact and the candidate."""
    bad = [i for i, x in enumerate(scores) if x != x or x == float("inf")]
    if bad:
        raise InputError(
            f"lineid {fact.lineid}: the score of candidate {pool[bad[0]]!r} is {scores[bad[0]]} ({len(bad)} of "
            f"{len(pool)} candidates non-finite): the model's output is not finite (weights, language vectors, "
            "hooks or --dtype overflow); it would be ranked by label order",
            file=f"{fact.language}/{fact.relation}.jsonl",
            field="score",
        )
    # stable order: higher score first, ties broken by candidate label (order-invariant)
    order = sorted(range(len(pool)), key=lambda i: (-scores[i], pool[i]))
    ranked = [pool[i] for i in order]
    rank = next((r for r, c in enumerate(ranked, 1) if fact.is_correct(c)), len(ranked) + 1)
    return {
        "language": fact.language,
        "relation": fact.relation,
        "lineid": fact.lineid,
        "gold": fact.obj_label,
        "prediction": ranked[0],
        "rank": rank,
        "correct": fact.is_correct(ranked[0]),
        "n_candidates": len(pool),
    }


def rank_rows(order: Sequence[Fact], pools: Pools, scores: Scores) -> list[dict]:
    """The result rows of ``order``'s facts from their scores."""
    rows = []
    for fact in order:
        key = (fact.relation, fact.lineid)
        rows.append(rank_row(fact, pools[key], [scores[key][c] for c in pools[key]]))
    return rows


def unrankable_facts(lm: LanguageModel, facts: FactSet) -> pd.DataFrame:
    """The facts whose gold the model cannot tell from a wrong candidate, in any language of ``facts``.

    A gold that tokenizes to the unknown token only, or to the same token ids as another object label
    of its relation that is not correct for the fact (not the gold, not an alias), gets the score of
    that candidate: every such tie would be broken by label order, not by the model.  One row per
    (language, fact), columns ``EXCLUDED_COLUMNS``.
    """
    from lrp2_interp.models.loading import unknown_only

    rows = []
    for (lang, rel), rel_facts in sorted(facts.facts.items()):
        if lang not in facts.languages or rel not in facts.relations or not rel_facts:
            continue
        labels = sorted(set(facts.candidates(lang, rel)) | {f.obj_label for f in rel_facts})
        ids = dict(zip(labels, (tuple(t) for t in lm.tokenizer(labels, add_special_tokens=False)["input_ids"])))
        same: dict[tuple[int, ...], list[str]] = {}
        for label, t in ids.items():
            same.setdefault(t, []).append(label)
        for fact in rel_facts:
            gold = ids[fact.obj_label]
            if unknown_only(lm, list(gold)):
                reason = "the gold tokenizes to the unknown token only"
            else:
                twins = [c for c in same[gold] if not fact.is_correct(c)]
                if not twins:
                    continue
                reason = f"the gold tokenizes like the candidate {twins[0]!r}"
            rows.append(
                {"language": lang, "relation": rel, "lineid": fact.lineid, "gold": fact.obj_label, "reason": reason}
            )
    return pd.DataFrame(rows, columns=EXCLUDED_COLUMNS)


def rankable(lm: LanguageModel, facts: FactSet) -> tuple[FactSet, pd.DataFrame]:
    """``facts`` without the facts of :func:`unrankable_facts` -- left out in every language, so the
    languages stay parallel -- and those facts; candidate pools are unchanged."""
    excluded = unrankable_facts(lm, facts)
    if not len(excluded):
        return facts, excluded
    drop = set(zip(excluded["relation"], excluded["lineid"]))
    keep = {(f.relation, f.lineid) for lang in facts.languages for f in facts.iter_facts(lang)} - drop
    return facts.restrict_keys(keep), excluded


def token_table(
    lm: LanguageModel, labels: set[str], facts: FactSet, language: str, relation: str
) -> dict[str, list[int]]:
    """Label -> token ids (no special tokens); a label that tokenizes to nothing is an input error."""
    out = {}
    for label in sorted(labels):
        ids = lm.token_ids(label)
        if not ids:
            raise InputError(
                f"object label {label!r} tokenizes to nothing with {lm.name}",
                file=facts.root / language / f"{relation}.jsonl",
                field="obj_label",
            )
        out[label] = ids
    return out
