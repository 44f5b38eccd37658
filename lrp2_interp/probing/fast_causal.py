"""Fast typed probing of causal LMs: a fact's shared prefix runs once, each candidate's continuation against it.

A fact's candidate sentences share a token prefix (template and subject up to the
object).  The prefix runs once (left-padded, keys/values recorded); each candidate's
continuation (its tokens after the prefix, minus the last token, whose prediction is
never scored) runs against it.  The unembedding is applied at the prefix's last
position (it predicts every candidate's first token), at the continuation positions,
and -- for ``mean`` or ``exact`` scores -- at the prefix positions once per fact (the
constant every candidate shares).  Only LRP2 shifts at all positions are honoured
(:func:`lrp2_interp.probing.fast.supports`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch

from lrp2_interp.facts import Fact, FactSet
from lrp2_interp.models.layer_runner import (
    Capture,
    KVRecorder,
    LayerRunner,
    Unsupported,
    cache_from_recorded,
)
from lrp2_interp.models.loading import Batch, FwdHooks, LanguageModel
from lrp2_interp.probing.batching import forward, logit_rows, rows_per_pass
from lrp2_interp.probing.head import head_log_probs, head_logits
from lrp2_interp.probing.query_set import QuerySet
from lrp2_interp.probing.reference_probe import causal_rows
from lrp2_interp.probing.types import FactKey, Pools, ProbeConfig, Scores


@dataclass(frozen=True)
class CausalFact:
    key: FactKey
    pool: list[str]
    rows: list[list[int]]  # full token row per candidate (as the reference scores it)
    prefix: int  # P: tokens shared by every row (each row has at least one token after it)

    @property
    def prefix_ids(self) -> list[int]:
        return self.rows[0][: self.prefix]

    def cont(self, i: int) -> list[int]:
        """Continuation input of candidate ``i``: its tokens after the prefix, without the last."""
        return self.rows[i][self.prefix : -1]


def causal_facts(
    lm: LanguageModel, facts: FactSet, language: str, order: Sequence[Fact], pools: Pools
) -> list[CausalFact]:
    out = []
    for fact in order:
        key = (fact.relation, fact.lineid)
        rows = causal_rows(lm, facts, language, fact, pools[key])
        p = min(len(r) for r in rows) - 1
        for r in rows[1:]:
            p = min(p, next((i for i, (a, b) in enumerate(zip(rows[0], r)) if a != b), p))
        if p < 1:
            raise Unsupported(f"fact {key}: candidate sentences share no prefix token")
        out.append(CausalFact(key, pools[key], rows, p))
    return out


@dataclass
class CausalBatch:
    """Tensors of one prefix batch and the continuation rows against it."""

    facts: list[CausalFact]
    prefix: Batch  # [F, Pmax] left-padded
    conts: list[tuple[int, int]]  # (fact index in batch, candidate index) of every row with a continuation
    cont: Batch | None  # [C, Smax] right-padded continuation inputs
    index: torch.Tensor | None  # [C] prefix row of each continuation row
    full_mask: torch.Tensor | None  # [C, Pmax + Smax] attention mask over prefix and continuation


def causal_batch(lm: LanguageModel, cfs: Sequence[CausalFact]) -> CausalBatch:
    width = max(cf.prefix for cf in cfs)
    pad = lm.tokenizer.pad_token_id
    ids = torch.full((len(cfs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(cfs), width), dtype=torch.long)
    for i, cf in enumerate(cfs):
        ids[i, width - cf.prefix :] = torch.tensor(cf.prefix_ids)
        mask[i, width - cf.prefix :] = 1
    prefix = Batch(ids.to(lm.device), mask.to(lm.device))
    conts = [(f, c) for f, cf in enumerate(cfs) for c in range(len(cf.rows)) if cf.cont(c)]
    if not conts:
        return CausalBatch(list(cfs), prefix, [], None, None, None)
    cont = lm.pad_ids([cfs[f].cont(c) for f, c in conts])
    index = torch.tensor([f for f, _ in conts], device=lm.device)
    full = torch.cat([prefix.attention_mask.index_select(0, index), cont.attention_mask], dim=1)
    return CausalBatch(list(cfs), prefix, conts, cont, index, full)


def capture_causal(
    lm: LanguageModel, runner: LayerRunner, b: CausalBatch, hooks: FwdHooks | None, states: bool
) -> tuple[Capture, Capture | None]:
    """Clean (or hooked) prefix pass and continuation pass through the bridge, stopped at the unembedding."""
    from transformers.cache_utils import DynamicCache

    cache = DynamicCache()
    run_prefix = partial(
        forward, lm, b.prefix.input_ids, b.prefix.attention_mask, hooks, past_key_values=cache, use_cache=True
    )
    pre = runner.capture(run_prefix, states=states)
    pre.kv = recorded_kv(cache)
    if b.cont is None or b.index is None or b.full_mask is None:
        return pre, None
    past = cache_from_recorded(pre.kv, b.index)
    run_cont = partial(forward, lm, b.cont.input_ids, b.full_mask, hooks, past_key_values=past, use_cache=True)
    return pre, runner.capture(run_cont, states=states)


def recorded_kv(cache: Any) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """Layer -> ``(keys, values)`` ``[rows, heads, pos, d_head]`` an HF ``DynamicCache`` recorded in a pass."""
    out = {}
    for j, layer in enumerate(cache.layers):
        keys, values = getattr(layer, "keys", None), getattr(layer, "values", None)
        if keys is None or values is None:
            raise Unsupported(f"cache layer {j} recorded no keys/values")
        out[j] = (keys, values)
    return out


def step_causal(
    runner: LayerRunner,
    j: int,
    pre: Capture,
    cont: Capture | None,
    b: CausalBatch,
    hp: torch.Tensor,
    hc: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Block ``j`` on prefix states ``hp`` ``[F, Pmax, d]`` and continuation states ``hc`` ``[C, Smax, d]``."""
    rec = KVRecorder()
    hp = runner.run_block(j, pre.calls[j], hp, rec)
    if cont is None or hc is None:
        return hp, None
    hc = runner.run_block(j, cont.calls[j], hc, KVRecorder(rec.kv, b.index))
    return hp, hc


def score_causal(
    lm: LanguageModel,
    runner: LayerRunner,
    config: ProbeConfig,
    b: CausalBatch,
    u_pre: torch.Tensor,
    u_cont: torch.Tensor | None,
    scores: Scores,
    exact: bool,
) -> None:
    """Scores from the unembedding inputs of the prefix ``[F, Pmax, d]`` and continuations ``[C, Smax, d]``.

    ``exact``: include the prefix's own log-probability (the same for every candidate of a fact), so
    ``sum`` scores equal the reference's; ``mean`` always includes it.
    """
    mean, dtype = config.decoder_score == "mean", config.head_dtype
    with_const = exact or mean
    chunk = logit_rows(lm, config)
    width = u_pre.shape[1]
    dev = u_pre.device
    # the prefix's last position predicts every candidate's first token after the prefix
    firsts = [torch.tensor([r[cf.prefix] for r in cf.rows], device=dev) for cf in b.facts]
    first_lp = []
    for s in range(0, len(b.facts), chunk):
        lp = torch.log_softmax(head_logits(runner, u_pre[s : s + chunk, -1], dtype), dim=-1)  # [f, vocab]
        first_lp += [lp[i].index_select(0, firsts[s + i]) for i in range(lp.shape[0])]
    const = [0.0] * len(b.facts)
    if with_const:
        rows, pos, tgt, owner = [], [], [], []
        for f, cf in enumerate(b.facts):
            for q in range(cf.prefix - 1):  # prefix token q + 1 predicted at (left-padded) slot of token q
                rows.append(f)
                pos.append(width - cf.prefix + q)
                tgt.append(cf.rows[0][q + 1])
                owner.append(f)
        if rows:
            u = u_pre[torch.tensor(rows, device=dev), torch.tensor(pos, device=dev)]
            lp = head_log_probs(runner, u, torch.tensor(tgt, device=dev)[:, None], chunk, dtype)[:, 0].double()
            acc = torch.zeros(len(b.facts), dtype=torch.float64).index_add_(0, torch.tensor(owner), lp.cpu())
            const = acc.tolist()
    cont_lp: dict[tuple[int, int], torch.Tensor] = {}
    if u_cont is not None and b.cont is not None:
        m = b.cont.attention_mask.bool()
        r_idx, p_idx = m.nonzero(as_tuple=True)
        cont_tgt = torch.tensor(
            [
                b.facts[b.conts[r][0]].rows[b.conts[r][1]][b.facts[b.conts[r][0]].prefix + 1 + p]
                for r, p in zip(r_idx.tolist(), p_idx.tolist())
            ],
            device=dev,
        )  # [n continuation tokens]
        lp = head_log_probs(runner, u_cont[r_idx, p_idx], cont_tgt[:, None], chunk, dtype)[:, 0]
        off = 0
        for r, n in enumerate(m.sum(1).tolist()):
            cont_lp[b.conts[r]] = lp[off : off + n]
            off += n
    for f, cf in enumerate(b.facts):
        for c, cand in enumerate(cf.pool):
            parts = [first_lp[f][c : c + 1]]
            if (f, c) in cont_lp:
                parts.append(cont_lp[(f, c)])
            total = float(torch.cat(parts).sum()) + const[f]
            scores[cf.key][cand] = total / (len(cf.rows[c]) - 1) if mean else total


@torch.no_grad()
def causal_scores(
    lm: LanguageModel,
    facts: FactSet,
    language: str,
    config: ProbeConfig,
    fwd_hooks: FwdHooks | None,
    exact: bool = False,
    subset: tuple[Sequence[Fact], Pools] | None = None,
    queries: QuerySet | None = None,
) -> tuple[Pools, Scores]:
    """Pools and scores of every fact of ``language`` (pools from ``queries``, else drawn), or of ``subset``
    (facts in order, their pools) only."""
    order, pools = subset or QuerySet.use(queries, facts, config).of(language)
    cfs = causal_facts(lm, facts, language, order, pools)
    scores: Scores = defaultdict(dict)
    with LayerRunner(lm) as runner:
        for b in causal_groups(lm, config, cfs):
            pre, cont = capture_causal(lm, runner, b, fwd_hooks, states=False)
            score_causal(lm, runner, config, b, pre.head_in, cont.head_in if cont else None, scores, exact)
    return pools, scores


def causal_groups(
    lm: LanguageModel, config: ProbeConfig, cfs: Sequence[CausalFact], extra_states: int = 0
) -> list[CausalBatch]:
    """Prefix-length-sorted groups whose continuation rows fit the budget.

    A fact with more candidates than fit is split into slices (each reruns the short prefix), so
    memory is bounded by the budget, not by the number of candidates.
    """
    pieces: list[CausalFact] = []
    for cf in sorted(cfs, key=lambda cf: (cf.prefix, max(len(r) for r in cf.rows))):
        cap = rows_per_pass(lm, config, max(len(r) for r in cf.rows), extra_states)
        for s in range(0, len(cf.rows), cap):
            pieces.append(CausalFact(cf.key, cf.pool[s : s + cap], cf.rows[s : s + cap], cf.prefix))
    out: list[CausalBatch] = []
    group: list[CausalFact] = []
    rows = 0
    for cf in pieces:
        w = max(len(r) for g in group + [cf] for r in g.rows)
        cap = rows_per_pass(lm, config, w, extra_states)
        if group and (rows + len(cf.rows) > cap or len(group) >= config.batch_size):
            out.append(causal_batch(lm, group))
            group, rows = [], 0
        group.append(cf)
        rows += len(cf.rows)
    if group:
        out.append(causal_batch(lm, group))
    return out
