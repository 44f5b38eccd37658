"""Typed mLAMA probing: rank every object of the relation for each fact.

* Masked LMs: the object slot gets one mask token per object token; a candidate's
  score is the mean log-probability of its tokens at their masks.  Candidates of
  the same token length share one forward pass.
* Causal LMs: each candidate is filled into the template and scored by the
  log-probability of the whole sentence (``decoder_score="sum"``, default) or its
  per-token mean (``"mean"``); a start token is prepended (BOS, else EOS; a tokenizer
  with neither is refused), so the first object token of an object-first template is scored.
  ``max_candidates`` caps the pool (gold + seeded random distractors), as in the
  paper's BLOOM setting.

Forward hooks (e.g. LRP2's) are applied to every forward pass.  By default the
fast path (:mod:`lrp2_interp.probing.fast`: unembedding only where scored, shared
causal prefixes computed once) runs; ``ProbeConfig(path="reference")`` runs the
straightforward implementation (:mod:`lrp2_interp.probing.reference_probe`), which is
also used whenever the fast path cannot honour the given hooks exactly.
"""

from __future__ import annotations

import pandas as pd

from lrp2_interp.errors import InputError, Unsupported
from lrp2_interp.facts import FactSet
from lrp2_interp.models.loading import FwdHooks, LanguageModel
from lrp2_interp.probing.fast import fast_scores
from lrp2_interp.probing.query_set import QuerySet
from lrp2_interp.probing.reference_probe import reference_scores, sentence_logprobs
from lrp2_interp.probing.types import (
    TABLE_COLUMNS,
    Pools,
    ProbeConfig,
    ProbeResult,
    Scores,
    candidate_pool,
    rank_row,
    rank_rows,
    rankable,
)
from lrp2_interp.probing.verified import verified_scores

__all__ = [
    "TABLE_COLUMNS",
    "ProbeConfig",
    "ProbeResult",
    "candidate_pool",
    "probe",
    "probe_scores",
    "rank_row",
    "sentence_logprobs",
]


def _check(facts: FactSet, language: str) -> None:
    facts.check_languages([language])
    if facts.n_facts(language) == 0:
        raise InputError(f"no facts for language '{language}' (empty fact set)", file=facts.root)


def probe_scores(
    lm: LanguageModel,
    facts: FactSet,
    language: str,
    config: ProbeConfig | None = None,
    fwd_hooks: FwdHooks | None = None,
    *,
    exact: bool = True,
    progress: bool = False,
    queries: QuerySet | None = None,
) -> tuple[Pools, Scores]:
    """Candidate pools and scores of every fact (``exact``: causal ``sum`` scores include the shared prefix).

    ``config.head_dtype="bfloat16"``: the fast path's unembedding in bfloat16, then every fact whose
    top-1 margin is ``<= config.verify_margin`` re-scored in float32
    (:mod:`lrp2_interp.probing.verified`), so every fact's top-1 equals float32's.  The reference path
    is float32 throughout.  ``progress``: a progress bar (the reference path's).  ``queries``: the run's
    :class:`~lrp2_interp.probing.query_set.QuerySet` of ``facts`` (pools drawn once per run), else one is built.
    """
    _check(facts, language)
    config = config or ProbeConfig()
    order, pools = QuerySet.use(queries, facts, config).of(language)
    if config.path == "fast":
        try:
            _, scores = fast_scores(lm, facts, language, config, fwd_hooks, exact=exact, subset=(order, pools))
        except Unsupported:
            pass
        else:
            if config.head_dtype == "float32":
                return pools, scores
            return pools, verified_scores(lm, facts, language, order, pools, scores, config, fwd_hooks, exact=exact)[0]
    return reference_scores(lm, facts, language, config, fwd_hooks, progress=progress, subset=(order, pools))


def probe(
    lm: LanguageModel,
    facts: FactSet,
    language: str,
    config: ProbeConfig | None = None,
    fwd_hooks: FwdHooks | None = None,
    *,
    progress: bool = False,
    queries: QuerySet | None = None,
) -> ProbeResult:
    """Typed probing of every fact of ``language`` in ``facts``: rank every candidate object, score P@1, P@k, MRR.

    Args:
        lm: the model (:func:`lrp2_interp.load_model`).
        facts: the fact set (:func:`lrp2_interp.load_facts`).
        language: the language of the queries.
        config: candidates, batch size, scoring (``None``: ``ProbeConfig()``).
        fwd_hooks: TransformerLens ``(hook_name, fn)`` hooks run in every forward pass, e.g.
            ``lrp2_hooks(lm, vectors, language, LRP2Config(m, n))``.
        progress: a progress bar.
        queries: the :class:`~lrp2_interp.probing.query_set.QuerySet` of ``facts`` when one run probes the
            same facts several times (candidate pools drawn once); ``None``: one is built.

    Returns:
        :class:`~lrp2_interp.probing.types.ProbeResult`: ``.accuracy`` (P@1, %) and the per-fact ``.table``.

    (``lm``, ``facts`` and ``vec`` as in :mod:`lrp2_interp.lrp2.front`.)

    >>> base = lx.probe(lm, facts, "fr")
    >>> after = lx.probe(lm, facts, "fr", fwd_hooks=lx.lrp2_hooks(lm, vec, "fr", lx.LRP2Config(m=0, n=1)))
    >>> len(base.table) == len(after.table) == facts.n_facts("fr"), 0 <= after.accuracy <= 100
    (True, True)
    """
    config = config or ProbeConfig()
    _check(facts, language)
    facts, excluded = rankable(lm, facts)  # golds the model cannot tell from a wrong candidate: not ranked
    if facts.n_facts(language) == 0:
        first = excluded.iloc[0]
        raise InputError(
            f"none of the {len(excluded)} fact(s) can be ranked: e.g. lineid {first['lineid']}: {first['reason']}",
            file=facts.root / first["language"] / f"{first['relation']}.jsonl",
            field="obj_label",
        )
    queries = QuerySet.use(queries, facts, config)  # serves the rankable facts, a key restriction
    pools, scores = probe_scores(
        lm, facts, language, config, fwd_hooks, exact=False, progress=progress, queries=queries
    )
    rows = rank_rows(queries.of(language)[0], pools, scores)
    return ProbeResult(config, lm.name, language, pd.DataFrame(rows, columns=TABLE_COLUMNS), excluded)
