"""Score every (m, n) LRP2 pair of a sweep on one group of facts, reusing cached states across pairs.

Per batch of queries (masked) or of prefixes + continuations (causal):

1. one clean pass through the bridge records every block's output and call
   arguments (:class:`~lrp2_interp.models.layer_runner.LayerRunner`): the baseline's scores,
   and the states below ``m`` that every pair with LIRP at ``m`` starts from;
2. for each ``m``, the LIRP-shifted state is run up the blocks once; at each ``n``
   (ascending) the trunk state there is shared by every ``n' >= n``; a branch adds
   the LSRP shift at ``n`` and runs the remaining blocks and the unembedding at the
   scored positions only.

The shifts are exactly those of :func:`lrp2_interp.lrp2.projection.shifts` (at all
positions, as the sweep's :class:`~lrp2_interp.lrp2.projection.LRP2Config` applies them),
so each pair's scores equal probing that pair separately, up to float rounding.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, TypeVar

import torch

from lrp2_interp.facts import Fact, FactSet
from lrp2_interp.models.layer_runner import LayerRunner
from lrp2_interp.models.loading import LanguageModel
from lrp2_interp.probing.batching import batches, forward, rows_per_pass
from lrp2_interp.probing.fast_causal import capture_causal, causal_facts, causal_groups, score_causal, step_causal
from lrp2_interp.probing.fast_masked import masked_batch, masked_queries, score_masked
from lrp2_interp.probing.types import Pools, ProbeConfig, Scores

Pair = tuple[int, int]
K = TypeVar("K", bound=Hashable)
ShiftsOf = Callable[[int, int], dict[int, torch.Tensor]]  # (m, n) -> layer -> [d_model] shift
#: one shift condition: (m, n, layer -> [d_model] shift); at most the two layers m <= n carry a shift
ShiftCondition = tuple[int, int, dict[int, torch.Tensor]]


def _plan(conditions: Mapping[Any, ShiftCondition]):
    """m -> [(n, shifts, key), ...]: conditions with the same shift at m are consecutive, ascending in n.

    Consecutive branches with one LIRP share the trunk (run up once, branched at each n).
    """
    by_m: dict[int, list[list[tuple[int, dict[int, torch.Tensor], Hashable]]]] = defaultdict(list)
    for key, (m, n, sh) in conditions.items():
        groups = by_m[m]
        group = next((g for g in groups if m != n and g[0][0] != m and torch.equal(g[0][1][m], sh[m])), None)
        if group is None or m == n:
            groups.append(group := [])
        group.append((n, sh, key))
    return {m: [b for g in groups for b in sorted(g, key=lambda b: b[0])] for m, groups in sorted(by_m.items())}


class _Masked:
    def __init__(self, lm, runner, config, qs, batch):
        self.lm, self.runner, self.config, self.qs, self.batch = lm, runner, config, qs, batch
        self.cap = runner.capture(lambda: forward(lm, batch.input_ids, batch.attention_mask, None))

    def state(self, j):
        return self.cap.state(j)

    def add(self, h, d):
        return h + d.to(device=h.device, dtype=h.dtype)

    def step(self, j, h):
        return self.runner.run_block(j, self.cap.calls[j], h)

    def score(self, last, scores, clean=False):
        u = self.cap.head_in if clean else self.runner.head_in(last)
        score_masked(self.lm, self.runner, self.config, self.qs, self.batch, u, scores)


class _Causal:
    def __init__(self, lm, runner, config, b, exact):
        self.lm, self.runner, self.config, self.b, self.exact = lm, runner, config, b, exact
        self.pre, self.cont = capture_causal(lm, runner, b, None, states=True)

    def state(self, j):
        return self.pre.state(j), (self.cont.state(j) if self.cont else None)

    def add(self, h, d):
        hp, hc = h
        d = d.to(device=hp.device, dtype=hp.dtype)
        return hp + d, (hc + d if hc is not None else None)

    def step(self, j, h):
        return step_causal(self.runner, j, self.pre, self.cont, self.b, *h)

    def score(self, last, scores, clean=False):
        if clean:
            up, uc = self.pre.head_in, (self.cont.head_in if self.cont else None)
        else:
            hp, hc = last
            up, uc = self.runner.head_in(hp), (self.runner.head_in(hc) if hc is not None else None)
        score_causal(self.lm, self.runner, self.config, self.b, up, uc, scores, self.exact)


def _run_pairs(stream, n_layers: int, plan, out: dict) -> None:
    stream.score(None, out[None], clean=True)
    for m, branches in plan.items():
        trunk, at = None, m  # trunk: LIRP-shifted state after block ``at``
        lirp: torch.Tensor | None = None  # the LIRP shift ``trunk`` carries
        for n, sh, key in branches:
            if m == n:
                h, start = stream.add(stream.state(m), sh[m]), m
            else:
                if trunk is None or lirp is None or not torch.equal(lirp, sh[m]):
                    lirp = sh[m]
                    trunk, at = stream.add(stream.state(m), lirp), m
                if at > n:  # an earlier branch of this trunk went further up: restart from m
                    trunk, at = stream.add(stream.state(m), lirp), m
                while at < n:
                    at += 1
                    trunk = stream.step(at, trunk)
                h, start = (stream.add(trunk, sh[n]), n) if n in sh else (trunk, n)
            for j in range(start + 1, n_layers):
                h = stream.step(j, h)
            stream.score(h, out[key])


def sweep_scores(
    lm: LanguageModel,
    facts: FactSet,
    language: str,
    order: Sequence[Fact],
    pools: Pools,
    config: ProbeConfig,
    pairs: Sequence[Pair],
    shifts_of: ShiftsOf,
    exact: bool = False,
) -> dict[Pair | None, Scores]:
    """Scores of ``order``'s facts for the baseline (key ``None``) and every LRP2 pair (``shifts_of(m, n)``)."""
    conditions = {(m, n): (m, n, shifts_of(m, n)) for m, n in pairs}
    return condition_scores(lm, facts, language, order, pools, config, conditions, exact=exact)


@torch.no_grad()
def condition_scores(
    lm: LanguageModel,
    facts: FactSet,
    language: str,
    order: Sequence[Fact],
    pools: Pools,
    config: ProbeConfig,
    conditions: Mapping[K, ShiftCondition],
    exact: bool = False,
) -> dict[K | None, Scores]:
    """Scores of ``order``'s facts for the baseline (key ``None``) and every keyed shift condition.

    Conditions with the same ``m`` and the same shift at ``m`` share the LIRP trunk, whatever else
    differs (an LRP2 pair, its matched controls and its wrong-language control each have their own).
    """
    for key, (m, n, sh) in conditions.items():
        if m > n or not set(sh) <= {m, n} or m not in sh:
            raise ValueError(f"condition {key!r}: shifts at {sorted(sh)} do not fit m={m} <= n={n}")
    plan = _plan(conditions)
    out: dict[K | None, Scores] = {None: defaultdict(dict), **{k: defaultdict(dict) for k in conditions}}
    extra = 2 * lm.n_layers + 4  # cached clean states of every layer, trunk and branch
    with LayerRunner(lm) as runner:
        if lm.kind == "masked":
            qs = masked_queries(lm, facts, language, order, pools)
            for idx in batches([len(q.ids) for q in qs], lambda w: rows_per_pass(lm, config, w, extra)):
                chunk = [qs[i] for i in idx]
                _run_pairs(_Masked(lm, runner, config, chunk, masked_batch(lm, chunk)), lm.n_layers, plan, out)
        else:
            for b in causal_groups(lm, config, causal_facts(lm, facts, language, order, pools), extra):
                _run_pairs(_Causal(lm, runner, config, b, exact), lm.n_layers, plan, out)
    return out
