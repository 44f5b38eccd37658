"""Fast typed probing of masked LMs: the usual forward pass per (fact, object length), unembedding only at the masks.

Every hook fires exactly as in the reference (:mod:`lrp2_interp.probing.reference_probe`); the
pass is stopped at the unembedding, which is then applied only at the mask positions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import torch

from lrp2_interp.errors import InputError
from lrp2_interp.facts import Fact, FactSet
from lrp2_interp.models.layer_runner import LayerRunner
from lrp2_interp.models.loading import Batch, FwdHooks, LanguageModel
from lrp2_interp.probing.batching import batches, forward, logit_rows, rows_per_pass
from lrp2_interp.probing.head import head_logits
from lrp2_interp.probing.query_set import QuerySet
from lrp2_interp.probing.types import FactKey, Pools, ProbeConfig, Scores, token_table
from lrp2_interp.prompts import masked_ids, render_masked


@dataclass(frozen=True)
class MaskedQuery:
    key: FactKey
    ids: list[int]  # encoded query (one mask per object token)
    cands: list[str]  # the pool's candidates with this many tokens
    targets: torch.Tensor  # [k, n_cands] their token ids


def masked_queries(
    lm: LanguageModel, facts: FactSet, language: str, order: Sequence[Fact], pools: Pools
) -> list[MaskedQuery]:
    mask_token, mask_id = lm.mask_token, lm.mask_token_id
    tokens: dict[str, list[int]] = {}
    for rel in sorted({f.relation for f in order}):
        tokens.update(token_table(lm, set(facts.candidates(language, rel)), facts, language, rel))
    out = []
    for fact in order:
        key = (fact.relation, fact.lineid)
        pool = pools[key]
        for k in sorted({len(tokens[c]) for c in pool}):
            text = render_masked(facts.template(language, fact.relation).template, fact.sub_label, k, mask_token)
            ids = masked_ids(lm, text)
            lm.check_positions(len(ids))
            if sum(t == mask_id for t in ids) != k:
                raise InputError(
                    f"template renders {sum(t == mask_id for t in ids)} masks instead of {k} for fact {fact.lineid}",
                    file=facts.root / language / "templates.jsonl",
                    field="template",
                )
            cands = [c for c in pool if len(tokens[c]) == k]
            out.append(MaskedQuery(key, ids, cands, torch.tensor([tokens[c] for c in cands]).T))
    return out


def masked_batch(lm: LanguageModel, qs: Sequence[MaskedQuery]) -> Batch:
    return lm.pad_ids([q.ids for q in qs])


def score_masked(
    lm: LanguageModel,
    runner: LayerRunner,
    config: ProbeConfig,
    qs: Sequence[MaskedQuery],
    batch: Batch,
    head_in: torch.Tensor,
    scores: Scores,
) -> None:
    """Scores of ``qs`` from the unembedding input ``head_in`` ``[b, pos, d]`` at their masks."""
    mask_id = lm.mask_token_id
    chunk, start = logit_rows(lm, config), 0
    while start < len(qs):
        stop, n = start, 0
        while stop < len(qs) and (stop == start or n + q_k(qs[stop]) <= chunk):
            n += q_k(qs[stop])
            stop += 1
        rows, pos = [], []
        for r in range(start, stop):
            p = (batch.input_ids[r] == mask_id).nonzero().flatten()
            rows.append(torch.full_like(p, r))
            pos.append(p)
        u = head_in[torch.cat(rows), torch.cat(pos)]  # [n masks, d]
        lp = torch.log_softmax(head_logits(runner, u, config.head_dtype), dim=-1)  # [n masks, vocab]
        off = 0
        for q in qs[start:stop]:
            k = q_k(q)
            per_tok = lp[off : off + k].gather(1, q.targets.to(lp.device))  # [k, n_cands]
            for c, s in zip(q.cands, per_tok.mean(0).tolist()):
                scores[q.key][c] = s
            off += k
        start = stop


def q_k(q: MaskedQuery) -> int:
    return int(q.targets.shape[0])


@torch.no_grad()
def masked_scores(
    lm: LanguageModel,
    facts: FactSet,
    language: str,
    config: ProbeConfig,
    fwd_hooks: FwdHooks | None,
    subset: tuple[Sequence[Fact], Pools] | None = None,
    queries: QuerySet | None = None,
) -> tuple[Pools, Scores]:
    """Pools and scores of every fact of ``language`` (pools from ``queries``, else drawn), or of ``subset``
    (facts in order, their pools) only."""
    order, pools = subset or QuerySet.use(queries, facts, config).of(language)
    qs = masked_queries(lm, facts, language, order, pools)
    scores: Scores = defaultdict(dict)
    with LayerRunner(lm) as runner:
        for idx in batches([len(q.ids) for q in qs], lambda w: rows_per_pass(lm, config, w)):
            chunk = [qs[i] for i in idx]
            batch = masked_batch(lm, chunk)
            cap = runner.capture(partial(forward, lm, batch.input_ids, batch.attention_mask, fwd_hooks), states=False)
            score_masked(lm, runner, config, chunk, batch, cap.head_in, scores)
    return pools, scores
