"""Reference typed probing: full logits at every position of every sentence (the slow, obvious way).

Kept as the ground truth the fast path (:mod:`lrp2_interp.probing.fast`) is tested
against, and used whenever the fast path cannot honour the caller's hooks exactly.

* Masked LMs: one query per (fact, object length) with one mask per object token;
  a candidate's score is the mean log-probability of its tokens at their masks.
* Causal LMs: each candidate filled into the template (the start token prepended:
  BOS, else EOS, :func:`lrp2_interp.prompts.start_ids`), scored by the log-probability of the whole sentence
  (``sum``) or its per-token mean (``mean``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from lrp2_interp.errors import InputError
from lrp2_interp.facts import Fact, FactSet
from lrp2_interp.models.loading import Batch, FwdHooks, LanguageModel
from lrp2_interp.probing.query_set import QuerySet
from lrp2_interp.probing.types import Pools, ProbeConfig, Scores, token_table
from lrp2_interp.prompts import candidate_rows, render_masked


@torch.no_grad()
def masked_scores(
    lm: LanguageModel,
    facts: FactSet,
    language: str,
    config: ProbeConfig,
    fwd_hooks: FwdHooks | None,
    progress: bool = False,
    subset: tuple[Sequence[Fact], Pools] | None = None,
    queries: QuerySet | None = None,
) -> tuple[Pools, Scores]:
    mask_token, mask_id = lm.mask_token, lm.mask_token_id
    order, pools = subset or QuerySet.use(queries, facts, config).of(language)
    tokens: dict[str, list[int]] = {}
    for rel in facts.relations:
        if facts.facts_of(language, rel):
            tokens.update(token_table(lm, set(facts.candidates(language, rel)), facts, language, rel))
    masked: list[tuple[Fact, int, list[str]]] = []  # (fact, n_masks, pool)
    for fact in order:
        pool = pools[(fact.relation, fact.lineid)]
        for k in sorted({len(tokens[c]) for c in pool}):
            masked.append((fact, k, pool))
    scores: Scores = defaultdict(dict)
    bar = tqdm(total=len(masked), desc=f"probe {language}", disable=not progress, leave=False)
    for start in range(0, len(masked), config.batch_size):
        chunk = masked[start : start + config.batch_size]
        texts = [
            render_masked(facts.template(language, f.relation).template, f.sub_label, k, mask_token)
            for f, k, _ in chunk
        ]
        batch = lm.encode(texts)
        logprobs = torch.log_softmax(lm.logits(batch, fwd_hooks).float(), dim=-1)  # [b, pos, vocab]
        for row, (fact, k, pool) in enumerate(chunk):
            mask_pos = (batch.input_ids[row] == mask_id).nonzero().flatten()
            if len(mask_pos) != k:
                raise InputError(
                    f"template renders {len(mask_pos)} masks instead of {k} for fact {fact.lineid}",
                    file=facts.root / language / "templates.jsonl",
                    field="template",
                )
            cands = [c for c in pool if len(tokens[c]) == k]
            ids = torch.tensor([tokens[c] for c in cands], device=logprobs.device)  # [n_cands, k]
            lp = logprobs[row, mask_pos]  # [k, vocab]
            per_tok = lp.gather(1, ids.T)  # [k, n_cands]
            for c, s in zip(cands, per_tok.mean(0).tolist()):
                scores[(fact.relation, fact.lineid)][c] = s
        bar.update(len(chunk))
    bar.close()
    return pools, scores


def sentence_logprobs(
    lm: LanguageModel, rows: Sequence[Sequence[int]], fwd_hooks: FwdHooks | None, mean: bool = False
) -> torch.Tensor:
    """Log-probability ``[n]`` of each token row: every token but the first (the start token) is scored."""
    batch: Batch = lm.pad_ids(rows)
    logprobs = torch.log_softmax(lm.logits(batch, fwd_hooks).float(), dim=-1)  # [b, pos, vocab]
    target = batch.input_ids[:, 1:]
    tok_lp = logprobs[:, :-1].gather(2, target.unsqueeze(-1)).squeeze(-1)  # [b, pos-1]
    mask = batch.attention_mask[:, 1:].to(tok_lp.dtype)
    total = (tok_lp * mask).sum(1)
    return total / mask.sum(1).clamp(min=1) if mean else total


def causal_rows(lm: LanguageModel, facts: FactSet, language: str, fact: Fact, pool: Sequence[str]) -> list[list[int]]:
    """Token rows of ``fact``'s sentences, one per candidate of ``pool`` (the start token first)."""
    return candidate_rows(lm, facts.template(language, fact.relation).template, fact.sub_label, pool)


@torch.no_grad()
def causal_scores(
    lm: LanguageModel,
    facts: FactSet,
    language: str,
    config: ProbeConfig,
    fwd_hooks: FwdHooks | None,
    progress: bool = False,
    subset: tuple[Sequence[Fact], Pools] | None = None,
    queries: QuerySet | None = None,
) -> tuple[Pools, Scores]:
    order, pools = subset or QuerySet.use(queries, facts, config).of(language)
    items: list[tuple[Fact, str, list[int]]] = []
    for fact in order:
        pool = pools[(fact.relation, fact.lineid)]
        items += [(fact, c, row) for c, row in zip(pool, causal_rows(lm, facts, language, fact, pool))]
    idx_order = sorted(range(len(items)), key=lambda i: len(items[i][2]))  # length-sorted batches pad less
    scores: Scores = defaultdict(dict)
    bar = tqdm(total=len(items), desc=f"probe {language}", disable=not progress, leave=False)
    for start in range(0, len(idx_order), config.batch_size):
        idx = idx_order[start : start + config.batch_size]
        lp = sentence_logprobs(lm, [items[i][2] for i in idx], fwd_hooks, mean=config.decoder_score == "mean")
        for i, s in zip(idx, lp.tolist()):
            fact, cand, _ = items[i]
            scores[(fact.relation, fact.lineid)][cand] = s
        bar.update(len(idx))
    bar.close()
    return pools, scores


def reference_scores(
    lm: LanguageModel,
    facts: FactSet,
    language: str,
    config: ProbeConfig,
    fwd_hooks: FwdHooks | None = None,
    *,
    progress: bool = False,
    subset: tuple[Sequence[Fact], Pools] | None = None,
    queries: QuerySet | None = None,
) -> tuple[Pools, Scores]:
    """Pools and scores of every fact of ``language`` (or of ``subset``: facts, pools) the reference way.

    ``progress``: a progress bar; ``queries``: the run's query set (pools drawn once), else one is built.
    """
    run = masked_scores if lm.kind == "masked" else causal_scores
    return run(lm, facts, language, config, fwd_hooks, progress, subset, queries)
