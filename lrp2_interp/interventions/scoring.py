"""Score named conditions (lists of fwd_hooks) on chosen facts: shift conditions share one cached engine.

A condition whose hooks are all :class:`~lrp2_interp.models.hooks.ShiftHook` at every position, on at
most two shift points, is a *shift condition* (LRP2, its controls, mean steering): all of them go
through :func:`lrp2_interp.lrp2.sweep_engine.condition_scores` together, which runs the clean pass
once per batch and shares LIRP trunks.  Any other condition is probed on its own
(:func:`lrp2_interp.probing.probe.probe_scores`).  Both rank the same candidate pools, drawn once per
language by the Scorer's :class:`~lrp2_interp.probing.query_set.QuerySet` (which several Scorers of
one run can share).

Rows already scored are remembered (``(language, condition, fact)``), so a condition asked for again
on more facts only scores the new ones; with a :class:`~lrp2_interp.store.ShardStore` every call is
a resumable unit, named after the Scorer's ``scope`` (the intervention, or the language pair's
intervention-free conditions), the fact set's languages, the language scored, the condition names and
the facts.  ``work`` counts fact-conditions actually scored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence

import pandas as pd
import torch

from lrp2_interp.errors import Unsupported
from lrp2_interp.facts import Fact, FactSet
from lrp2_interp.layers import EMBEDDINGS
from lrp2_interp.lrp2.sweep_engine import ShiftCondition, condition_scores
from lrp2_interp.models.hooks import FwdHooks, ShiftHook, shift_point_hook
from lrp2_interp.models.layer_runner import LayerRunner
from lrp2_interp.models.loading import LanguageModel
from lrp2_interp.probing.probe import probe_scores
from lrp2_interp.probing.query_set import QuerySet
from lrp2_interp.probing.types import TABLE_COLUMNS, FactKey, Pools, ProbeConfig, rank_rows
from lrp2_interp.store import UnitStore

ROW_COLUMNS = ["condition", "relation", "lineid", "correct", "rank", "n_candidates", "prediction"]
UNIT_FACTS = 32  # facts per engine call (and per resumable unit)
UNIT_CONDITIONS = 24  # conditions per engine call: a progress tick and a resume point every few minutes
#: which units a results folder holds, in its manifest: a folder of another version is refused (2: the
#: baselines are units of their own scope, shared by the interventions of a language pair)
UNITS_VERSION = 2


def shift_condition(lm: LanguageModel, hooks: FwdHooks) -> ShiftCondition | None:
    """``(m, n, {layer: shift})`` when ``hooks`` are shifts at all positions on <= 2 shift points, else None."""
    point = {shift_point_hook(layer): layer for layer in range(EMBEDDINGS, lm.n_layers)}
    shifts: dict[int, torch.Tensor] = {}
    for name, fn in hooks:
        if not (isinstance(fn, ShiftHook) and fn.positions == "all" and name in point):
            return None
        layer = point[name]
        shifts[layer] = shifts[layer] + fn.delta if layer in shifts else fn.delta
    if not shifts or len(shifts) > 2:
        return None
    return min(shifts), max(shifts), shifts


class Scorer:
    """Scores conditions on facts of one fact set, remembering every row it scored."""

    def __init__(
        self,
        lm: LanguageModel,
        facts: FactSet,
        config: ProbeConfig,
        *,
        queries: QuerySet | None = None,
        store: UnitStore | None = None,
        scope: str = "",
        tick: Callable[[int], None] | None = None,
    ) -> None:
        self.lm, self.facts, self.config, self.store = lm, facts, config, store
        self.queries = QuerySet.use(queries, facts, config)  # candidate pools, drawn once per language
        self.scope = scope  # names this scorer's units in ``store``: condition names mean one thing per scope
        self.tick = tick or (lambda n: None)
        self.rows: dict[tuple[str, str, FactKey], dict] = {}
        self.work = 0
        try:
            self.engine = LayerRunner(lm).tail is not None and config.path == "fast"
        except Unsupported:
            self.engine = False

    def score(self, language: str, conditions: Mapping[str, FwdHooks], keys: Sequence[FactKey]) -> pd.DataFrame:
        """Rows (``ROW_COLUMNS``) of every condition on every fact of ``keys`` (the baseline is ``[]`` hooks)."""
        todo = {c: [k for k in keys if (language, c, k) not in self.rows] for c in conditions}
        todo = {c: ks for c, ks in todo.items() if ks}
        needed = sorted({k for ks in todo.values() for k in ks}, key=list(keys).index)
        for s in range(0, len(needed), UNIT_FACTS):
            chunk = needed[s : s + UNIT_FACTS]
            names = [c for c, ks in todo.items() if set(ks) & set(chunk)]
            for g in range(0, len(names), UNIT_CONDITIONS):
                conds = {c: conditions[c] for c in names[g : g + UNIT_CONDITIONS]}
                table = self._unit(language, conds, chunk)
                for r in table.to_dict("records"):
                    self.rows[(language, r["condition"], (r["relation"], int(r["lineid"])))] = r
        out = [self.rows[(language, c, k)] for c in conditions for k in keys]
        return pd.DataFrame(out, columns=ROW_COLUMNS)

    def _unit(self, language: str, conds: Mapping[str, FwdHooks], chunk: Sequence[FactKey]) -> pd.DataFrame:
        def compute() -> pd.DataFrame:
            return self._compute(language, conds, chunk)

        n = len(conds) * len(chunk)
        if self.store is None:
            table = compute()
        else:
            # the fact set's languages too: a source language's candidate pools depend on its pair
            # (entity distractors are shared by the pair), so English rows of (en, fr) are not (en, ru)'s
            ident = (self.scope, sorted(self.facts.languages), sorted(conds), list(chunk))
            digest = hashlib.sha256(repr(ident).encode()).hexdigest()[:16]
            key = f"{language}-{digest}"
            self.store.run([(key, compute)])
            table = self.store.read(key)
        self.work += n
        self.tick(n)
        return table

    def _compute(self, language: str, conds: Mapping[str, FwdHooks], chunk: Sequence[FactKey]) -> pd.DataFrame:
        order, sub_pools = self.queries.subset(language, chunk)
        frames = []
        found = {c: shift_condition(self.lm, h) for c, h in conds.items() if h} if self.engine else {}
        shift = {c: sc for c, sc in found.items() if sc is not None}
        if shift or (self.engine and any(not h for h in conds.values())):
            try:
                out = condition_scores(self.lm, self.facts, language, order, sub_pools, self.config, shift)
            except Unsupported:
                out, shift = {}, {}
            for c, h in conds.items():
                if c in shift or (not h and None in out):
                    frames.append(self._frame(c, order, sub_pools, out[c if c in shift else None]))
        done = {f["condition"].iloc[0] for f in frames}
        rest = [c for c in conds if c not in done]
        if rest:
            sub = self.queries.restrict_keys(chunk)
            for c in rest:
                hooks = conds[c] or None
                _, scores = probe_scores(self.lm, sub.facts, language, self.config, hooks, exact=False, queries=sub)
                frames.append(self._frame(c, order, sub_pools, scores))
        return pd.concat(frames, ignore_index=True)

    @staticmethod
    def _frame(condition: str, order: Sequence[Fact], pools: Pools, scores) -> pd.DataFrame:
        t = pd.DataFrame(rank_rows(order, pools, scores), columns=TABLE_COLUMNS)
        t.insert(0, "condition", condition)
        return t[ROW_COLUMNS]
