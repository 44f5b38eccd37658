"""Typed mLAMA probing: rank every object of the relation for each fact.

* Masked LMs: the object slot gets one mask token per object token; a candidate's
  score is the mean log-probability of its tokens at their masks.  Candidates of
  the same token length share one forward pass.
* Causal LMs: each candidate is filled into the template and scored by the
  log-probability of the whole sentence (``decoder_score="sum"``, default) or its
  per-token mean (``"mean"``); a BOS token is prepended when the tokenizer has one.
  ``max_candidates`` caps the pool (gold + seeded random distractors), as in the
  paper's BLOOM setting.

Forward hooks (e.g. LRP2's) are passed through to every forward pass.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Literal, Sequence

import pandas as pd
import torch
from tqdm.auto import tqdm

from .errors import InputError
from .mlama import Fact, FactSet, render_filled, render_masked
from .models import Batch, FwdHooks, LanguageModel

TABLE_COLUMNS = ["language", "relation", "lineid", "gold", "prediction", "rank", "correct", "n_candidates"]


@dataclass(frozen=True)
class ProbeConfig:
    batch_size: int = 32
    max_candidates: int | None = None  # None: every object of the relation
    decoder_score: Literal["sum", "mean"] = "sum"
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.max_candidates is not None and (not isinstance(self.max_candidates, int) or self.max_candidates < 1):
            raise InputError(f"max_candidates must be a positive integer or None, got {self.max_candidates!r}",
                             field="max_candidates")
        if self.batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {self.batch_size!r}", field="batch_size")
        if self.decoder_score not in ("sum", "mean"):
            raise InputError(f"decoder_score must be 'sum' or 'mean', got {self.decoder_score!r}",
                             field="decoder_score")


@dataclass(frozen=True)
class ProbeResult:
    """One row per fact (see ``TABLE_COLUMNS``); ``rank`` is the 1-based rank of the gold object."""

    config: ProbeConfig
    model_name: str
    language: str
    table: pd.DataFrame

    @property
    def accuracy(self) -> float:
        """P@1 in percent over all facts."""
        return 100.0 * float(self.table["correct"].mean()) if len(self.table) else float("nan")

    def correct_ids(self) -> set[int]:
        return set(self.table.loc[self.table["correct"], "lineid"].astype(int))


def _candidate_pool(fact: Fact, candidates: Sequence[str], config: ProbeConfig) -> list[str]:
    if config.max_candidates is None or len(candidates) <= config.max_candidates:
        return list(candidates)
    others = sorted(c for c in candidates if c != fact.obj_label)  # sorted: independent of the input order
    rng = random.Random(f"{config.seed}-{fact.relation}-{fact.lineid}")
    return sorted([fact.obj_label] + rng.sample(others, config.max_candidates - 1))


def _rank_row(fact: Fact, pool: list[str], scores: list[float]) -> dict:
    # stable order: higher score first, ties broken by candidate label (order-invariant)
    order = sorted(range(len(pool)), key=lambda i: (-scores[i], pool[i]))
    ranked = [pool[i] for i in order]
    rank = next((r for r, c in enumerate(ranked, 1) if fact.is_correct(c)), len(ranked) + 1)
    return {
        "language": fact.language, "relation": fact.relation, "lineid": fact.lineid, "gold": fact.obj_label,
        "prediction": ranked[0], "rank": rank, "correct": fact.is_correct(ranked[0]), "n_candidates": len(pool),
    }


def _token_table(lm: LanguageModel, labels: set[str], facts: FactSet, language: str, relation: str) -> dict[str, list[int]]:
    out = {}
    for label in sorted(labels):
        ids = lm.token_ids(label)
        if not ids:
            raise InputError(
                f"object label {label!r} tokenizes to nothing with {lm.name}",
                file=facts.root / language / f"{relation}.jsonl", field="obj_label",
            )
        out[label] = ids
    return out


@torch.no_grad()
def _probe_masked(lm: LanguageModel, facts: FactSet, language: str, config: ProbeConfig,
                  fwd_hooks: FwdHooks | None) -> list[dict]:
    mask_token, mask_id = lm.mask_token, lm.mask_token_id
    queries: list[tuple[Fact, int, list[str]]] = []  # (fact, n_masks, pool)
    pools: dict[tuple[str, int], list[str]] = {}
    tokens: dict[str, list[int]] = {}
    for rel in facts.relations:
        rel_facts = facts.facts_of(language, rel)
        if not rel_facts:
            continue
        tokens.update(_token_table(lm, set(facts.candidates(language, rel)), facts, language, rel))
        for fact in rel_facts:
            pool = _candidate_pool(fact, facts.candidates(language, rel), config)
            pools[(rel, fact.lineid)] = pool
            for k in sorted({len(tokens[c]) for c in pool}):
                queries.append((fact, k, pool))
    scores: dict[tuple[str, int], dict[str, float]] = defaultdict(dict)
    bar = tqdm(total=len(queries), desc=f"probe {language}", disable=not config.progress, leave=False)
    for start in range(0, len(queries), config.batch_size):
        chunk = queries[start : start + config.batch_size]
        texts = [
            render_masked(facts.template(language, f.relation).template, f.sub_label, k, mask_token)
            for f, k, _ in chunk
        ]
        batch = lm.encode(texts)
        logprobs = torch.log_softmax(lm.logits(batch, fwd_hooks).float(), dim=-1)  # [b, pos, vocab]
        for row, (fact, k, pool) in enumerate(chunk):
            mask_pos = (batch.input_ids[row] == mask_id).nonzero().flatten()
            if len(mask_pos) != k:
                raise InputError(f"template renders {len(mask_pos)} masks instead of {k} for fact {fact.lineid}",
                                 file=facts.root / language / "templates.jsonl", field="template")
            cands = [c for c in pool if len(tokens[c]) == k]
            ids = torch.tensor([tokens[c] for c in cands], device=logprobs.device)  # [n_cands, k]
            lp = logprobs[row, mask_pos]  # [k, vocab]
            per_tok = lp.gather(1, ids.T)  # [k, n_cands]
            for c, s in zip(cands, per_tok.mean(0).tolist()):
                scores[(fact.relation, fact.lineid)][c] = s
        bar.update(len(chunk))
    bar.close()
    rows = []
    for rel in facts.relations:
        for fact in facts.facts_of(language, rel):
            pool = pools[(rel, fact.lineid)]
            rows.append(_rank_row(fact, pool, [scores[(rel, fact.lineid)][c] for c in pool]))
    return rows


def sentence_logprobs(lm: LanguageModel, rows: Sequence[Sequence[int]], fwd_hooks: FwdHooks | None,
                      mean: bool = False) -> torch.Tensor:
    """Log-probability ``[n]`` of each token row (first token conditioned on BOS if any)."""
    batch: Batch = lm.pad_ids(rows)
    logprobs = torch.log_softmax(lm.logits(batch, fwd_hooks).float(), dim=-1)  # [b, pos, vocab]
    target = batch.input_ids[:, 1:]
    tok_lp = logprobs[:, :-1].gather(2, target.unsqueeze(-1)).squeeze(-1)  # [b, pos-1]
    mask = batch.attention_mask[:, 1:].to(tok_lp.dtype)
    total = (tok_lp * mask).sum(1)
    return total / mask.sum(1).clamp(min=1) if mean else total


@torch.no_grad()
def _probe_causal(lm: LanguageModel, facts: FactSet, language: str, config: ProbeConfig,
                  fwd_hooks: FwdHooks | None) -> list[dict]:
    bos = lm.tokenizer.bos_token_id
    items: list[tuple[Fact, list[str], str, list[int]]] = []
    for rel in facts.relations:
        tpl = facts.template(language, rel).template if facts.facts_of(language, rel) else None
        for fact in facts.facts_of(language, rel):
            pool = _candidate_pool(fact, facts.candidates(language, rel), config)
            for cand in pool:
                ids = lm.token_ids(render_filled(tpl, fact.sub_label, cand))
                items.append((fact, pool, cand, ([bos] if bos is not None else []) + ids))
    order = sorted(range(len(items)), key=lambda i: len(items[i][3]))  # length-sorted batches pad less
    scores: dict[tuple[str, int], dict[str, float]] = defaultdict(dict)
    bar = tqdm(total=len(items), desc=f"probe {language}", disable=not config.progress, leave=False)
    for start in range(0, len(order), config.batch_size):
        idx = order[start : start + config.batch_size]
        lp = sentence_logprobs(lm, [items[i][3] for i in idx], fwd_hooks, mean=config.decoder_score == "mean")
        for i, s in zip(idx, lp.tolist()):
            fact, _, cand, _ = items[i]
            scores[(fact.relation, fact.lineid)][cand] = s
        bar.update(len(idx))
    bar.close()
    rows, seen = [], set()
    for fact, pool, _, _ in items:
        key = (fact.relation, fact.lineid)
        if key not in seen:
            seen.add(key)
            rows.append(_rank_row(fact, pool, [scores[key][c] for c in pool]))
    return rows


def probe(lm: LanguageModel, facts: FactSet, language: str, config: ProbeConfig = ProbeConfig(),
          fwd_hooks: FwdHooks | None = None) -> ProbeResult:
    """Typed probing of every fact of ``language`` in ``facts``."""
    if language not in facts.languages:
        raise InputError(f"language '{language}' is not in the fact set ({', '.join(facts.languages)})",
                         file=facts.root, field="language")
    if facts.n_facts(language) == 0:
        raise InputError(f"no facts for language '{language}' (empty fact set)", file=facts.root)
    run = _probe_masked if lm.kind == "masked" else _probe_causal
    rows = run(lm, facts, language, config, fwd_hooks)
    return ProbeResult(config, lm.name, language, pd.DataFrame(rows, columns=TABLE_COLUMNS))
