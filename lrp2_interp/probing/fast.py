"""Fast typed probing: only the work the ranking needs, same scores as the reference (within float rounding).

* Masked LMs: the usual forward pass per (fact, object length) -- so every hook
  fires exactly as in the reference -- stopped at the unembedding, which is then
  applied only at the mask positions.
* Causal LMs: a fact's candidate sentences share a token prefix (template and
  subject up to the object).  The prefix runs once (left-padded, keys/values
  recorded); each candidate's continuation (its tokens after the prefix, minus the
  last token, whose prediction is never scored) runs against it.  The unembedding
  is applied at the prefix's last position (it predicts every candidate's first
  token), at the continuation positions, and -- for ``mean`` or ``exact`` scores --
  at the prefix positions once per fact (the constant every candidate shares).

Hooks: masked LMs honour any hook except on the unembedding; causal LMs honour
LRP2 shifts applied at all positions (``models.hooks.ShiftHook``).  For anything
else :func:`supports` is False and :mod:`lrp2_interp.probing.probe` uses the reference.
Batches are length-sorted and sized from ``ProbeConfig.memory_mb`` (:mod:`lrp2_interp.probing.batching`);
the two kinds live in :mod:`lrp2_interp.probing.fast_masked` and :mod:`lrp2_interp.probing.fast_causal`.
"""

from __future__ import annotations

from collections.abc import Sequence

from lrp2_interp.errors import Unsupported
from lrp2_interp.facts import Fact, FactSet
from lrp2_interp.models.hooks import ShiftHook, is_unembed_hook
from lrp2_interp.models.loading import FwdHooks, LanguageModel
from lrp2_interp.probing.fast_causal import causal_scores
from lrp2_interp.probing.fast_masked import masked_scores
from lrp2_interp.probing.query_set import QuerySet
from lrp2_interp.probing.types import Pools, ProbeConfig, Scores


def supports(lm: LanguageModel, fwd_hooks: FwdHooks | None) -> bool:
    """Whether the fast path reproduces the reference exactly with these hooks."""
    for name, fn in fwd_hooks or ():
        if is_unembed_hook(name):
            return False
        if lm.kind == "causal":
            resid = {lm.resid_post(j) for j in range(lm.n_layers)}
            if not (isinstance(fn, ShiftHook) and fn.positions == "all" and name in resid):
                return False
    return True


def fast_scores(
    lm: LanguageModel,
    facts: FactSet,
    language: str,
    config: ProbeConfig,
    fwd_hooks: FwdHooks | None = None,
    exact: bool = False,
    subset: tuple[Sequence[Fact], Pools] | None = None,
    queries: QuerySet | None = None,
) -> tuple[Pools, Scores]:
    """Pools and scores the fast way (raises :class:`Unsupported` where it cannot be exact).

    ``subset``: (facts in order, their pools) to score instead of every fact of ``language``;
    ``queries``: the run's query set (pools drawn once), else one is built.
    """
    if not supports(lm, fwd_hooks):
        raise Unsupported("hooks the fast path cannot honour exactly")
    if lm.kind == "masked":
        return masked_scores(lm, facts, language, config, fwd_hooks, subset, queries)
    return causal_scores(lm, facts, language, config, fwd_hooks, exact=exact, subset=subset, queries=queries)
