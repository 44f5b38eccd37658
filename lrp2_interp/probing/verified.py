"""bfloat16 scores with verified rankings: facts whose top-1 margin is within a bound are re-scored in float32.

With ``ProbeConfig(head_dtype="bfloat16")`` the fast paths' unembedding runs in bfloat16
(:mod:`lrp2_interp.probing.head`), which moves every candidate's score by a small error.  If every
error is at most ``e``, a fact whose bfloat16 top-1 margin (best score minus second best) exceeds
``2 e`` has the same top-1 candidate in float32.  :func:`close_calls` lists the facts whose margin
is ``<= margin``; :func:`rescore` scores exactly those facts again with a float32 head and
:func:`merge` puts their scores in place, so the prediction (P@1) of every fact equals the float32
result as long as ``margin >= 2 e``.  Only the top-1 is verified: ranks below it (P@k, MRR) of
facts that were not re-scored carry the bfloat16 error.

The bound, measured (``ProbeConfig.verify_margin``, default :data:`BF16_MARGIN`): on
Gemma-3-270m, real French and English mLAMA facts (``/work/shared/data/facts``), 10 candidates
per fact (``max_candidates=10``), ``decoder_score="sum"``, the largest
``|score_bf16 - score_fp32|`` per candidate was 0.298 nats and the largest error of a top-1 margin
0.575 nats (French, 100 facts, 991 candidates; English: 0.277 and 0.149 on 100 facts;
``benchmarks/bf16_scoring.py``, 1 thread; with a margin of 1.0, 53 of the 200 facts were
re-scored, raw bfloat16 flipped 3 top-1s, the verified result 0).  The default :data:`BF16_MARGIN` = 1.5 nats is 5x the largest per-candidate error and
2.6x the largest margin error seen (the guarantee needs ``margin >= 2 e``).  A model with larger
logits or longer objects can have larger errors: measure with the benchmark before lowering it.  ``mean`` and masked-LM scores are means of
per-token log-probabilities, whose errors are no larger, so the same bound holds for them.

The sweep engine verifies its own conditions: for each condition's bfloat16 scores,
``keys = close_calls(order, pools, scores, config.verify_margin)``, then it re-scores
``[f for f in order if (f.relation, f.lineid) in keys]`` with ``float32_config(config)`` (its own
cached sweep for LRP2 pairs, or :func:`rescore` with that condition's hooks) and calls
:func:`merge`.  :func:`verified_scores` does all of it for one condition.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from lrp2_interp.errors import Unsupported
from lrp2_interp.facts import Fact, FactSet
from lrp2_interp.models.loading import FwdHooks, LanguageModel
from lrp2_interp.probing.fast import fast_scores
from lrp2_interp.probing.reference_probe import reference_scores
from lrp2_interp.probing.types import BF16_MARGIN, FactKey, Pools, ProbeConfig, Scores

__all__ = ["BF16_MARGIN", "close_calls", "float32_config", "merge", "rescore", "verified_scores"]


def _key(item: Fact | FactKey) -> FactKey:
    return (item.relation, item.lineid) if isinstance(item, Fact) else (item[0], item[1])


def close_calls(
    order_or_keys: Iterable[Fact | FactKey], pools: Pools, scores: Scores, margin: float = BF16_MARGIN
) -> set[FactKey]:
    """Keys of the facts whose top-1 margin (best minus second-best score over the pool) is ``<= margin``.

    Facts with a single candidate have no runner-up and are never close.
    """
    out = set()
    for item in order_or_keys:
        key = _key(item)
        pool = pools[key]
        if len(pool) < 2:
            continue
        best, second = sorted((scores[key][c] for c in pool), reverse=True)[:2]
        if best - second <= margin:
            out.add(key)
    return out


def float32_config(config: ProbeConfig) -> ProbeConfig:
    """``config`` with a float32 head: what close calls are re-scored with."""
    return dataclasses.replace(config, head_dtype="float32")


def rescore(
    lm: LanguageModel,
    facts: FactSet,
    language: str,
    order: Sequence[Fact],
    pools: Pools,
    config: ProbeConfig,
    fwd_hooks: FwdHooks | None = None,
    *,
    exact: bool = False,
) -> Scores:
    """Float32 scores of ``order``'s facts with their ``pools`` (fast path, or the reference where it must)."""
    config = float32_config(config)
    subset = (list(order), {_key(f): pools[_key(f)] for f in order})
    if not subset[0]:
        return {}
    if config.path == "fast":
        try:
            return fast_scores(lm, facts, language, config, fwd_hooks, exact=exact, subset=subset)[1]
        except Unsupported:
            pass
    return reference_scores(lm, facts, language, config, fwd_hooks, subset=subset)[1]


def merge(scores: Scores, exact_scores: Scores) -> Scores:
    """``scores`` with every fact of ``exact_scores`` replaced by its (float32) scores; a new dict."""
    out = {k: dict(v) for k, v in scores.items()}
    for key, row in exact_scores.items():
        out[key] = dict(row)
    return out


def verified_scores(
    lm: LanguageModel,
    facts: FactSet,
    language: str,
    order: Sequence[Fact],
    pools: Pools,
    scores: Scores,
    config: ProbeConfig,
    fwd_hooks: FwdHooks | None = None,
    *,
    exact: bool = False,
) -> tuple[Scores, set[FactKey]]:
    """``scores`` (bfloat16) with its close calls re-scored in float32, and the keys re-scored."""
    keys = close_calls(order, pools, scores, config.verify_margin)
    close = [f for f in order if _key(f) in keys]
    return merge(scores, rescore(lm, facts, language, close, pools, config, fwd_hooks, exact=exact)), keys
