"""Many facts per pass: knowledge-neuron IG of several prompts and hook conditions through the decoder engine.

:func:`attribute_batch` takes items ``(prompt, target, hooks)`` -- e.g. every fact of a relation, each
once with no hooks (baseline) and once with LRP2's -- and attributes ``facts_per_pass`` queries at a
time: their (query, layer) rows go through the same Captum call and the same decoder-layer calls
(:class:`lrp2_interp.attribution.fast.decoder_engine.BatchedForward`, prompts of different lengths padded and masked).
Scores equal :func:`lrp2_interp.attribution.attribute.attribute_neurons` of each item on its own (tests), and
so do ``deltas``, ``f_input``, ``f_baseline`` and adaptive ``steps`` (``target_delta`` raises the
steps of the (query, layer) rows that miss it, in one batch per round).

Batching needs a causal LM, the fast path and hooks the fast path supports; otherwise (masked LMs,
``path="reference"``, other hook points) every item runs on its own through ``attribute_neurons``.
The Captum batch size still follows ``memory_budget_mb`` (rows of the longest prompt).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from lrp2_interp.attribution.attribute import attribute_neurons, choose_path
from lrp2_interp.attribution.fast.decoder_engine import BatchedForward, Unit, ig_rows
from lrp2_interp.attribution.fast.family_parts import Hooks
from lrp2_interp.attribution.fast.generic import GenericDecoder
from lrp2_interp.attribution.fast.ig import FastModel
from lrp2_interp.attribution.ig_config import AttributionConfig, AttributionResult, QueryScores, adaptive_steps
from lrp2_interp.attribution.queries import queries
from lrp2_interp.errors import InputError, Unsupported
from lrp2_interp.models.loading import FwdHooks, LanguageModel

__all__ = ["Item", "attribute_batch"]

Item = tuple[str, "str | Sequence[int]", "FwdHooks | None"]


def _pass(fm: FastModel, units: list[Unit], layers: tuple[int, ...], config: AttributionConfig) -> list[QueryScores]:
    """All (unit, layer) rows of ``units`` through shared staged passes: one :class:`QueryScores` per unit."""
    fam = fm.family
    if not isinstance(fam, GenericDecoder):
        raise Unsupported(f"batched facts need the generic decoder path, not {type(fam).__name__}")
    bf = BatchedForward(fam, units, log_prob=config.log_prob)
    L, U, nl = bf.L, len(units), len(layers)
    keys = torch.tensor([u * L + l for u in range(U) for l in layers])

    def run(rows: list[int], cfg: AttributionConfig) -> QueryScores:  # rows: indices into keys
        return ig_rows(bf, fm, keys[rows], cfg, layers)

    every = adaptive_steps(config, run(list(range(U * nl)), config), run)
    out = []
    for u in range(U):
        sl = slice(u * nl, (u + 1) * nl)
        out.append(
            QueryScores(
                scores=every.scores[sl],
                activations=bf.act[u, list(layers)],
                deltas=every.deltas[sl],
                f_input=bf.f_clean[u].expand(nl).clone(),
                f_baseline=every.f_baseline[sl],
                steps=every.steps[sl],
            )
        )
    return out


def _batched_model(lm: LanguageModel, items: Sequence[Item], config: AttributionConfig) -> FastModel | None:
    """The generic fast model when every item can be batched, else None (``path="fast"``: an InputError)."""
    if lm.kind != "causal":
        return None
    return choose_path(lm, config, *(hooks for _, _, hooks in items))


def attribute_batch(
    lm: LanguageModel,
    items: Sequence[Item],
    config: AttributionConfig | None = None,
    facts_per_pass: int = 8,
    *,
    progress: bool = True,
) -> list[AttributionResult]:
    """Knowledge-neuron attribution of every ``(prompt, target, fwd_hooks)`` item, ``facts_per_pass``
    queries per staged forward; one :class:`AttributionResult` per item, in order (``config=None``:
    ``AttributionConfig()``)."""
    config = AttributionConfig() if config is None else config
    if not isinstance(facts_per_pass, int) or facts_per_pass < 1:
        raise InputError(f"facts_per_pass must be a positive int, got {facts_per_pass!r}", field="facts_per_pass")
    layers = config.validate(lm.n_layers)
    fm = _batched_model(lm, items, config)
    if fm is None:
        return [
            attribute_neurons(lm, p, t, config, h, progress=False)
            for p, t, h in tqdm(items, desc="knowledge-neuron IG", disable=not progress)
        ]
    units: list[tuple[int, Unit, int]] = []  # (item, unit, position)
    for i, (prompt, target, hooks) in enumerate(items):
        for q in queries(lm, prompt, target, config):
            units.append((i, Unit(q.ids, q.gold, Hooks.parse(lm, hooks)), q.position))
    parts: list[QueryScores] = []
    for s in tqdm(range(0, len(units), facts_per_pass), desc="knowledge-neuron IG (batched)", disable=not progress):
        parts += _pass(fm, [u for _, u, _ in units[s : s + facts_per_pass]], layers, config)
    out = []
    for i, (prompt, _, _) in enumerate(items):
        mine = [k for k, (item, _, _) in enumerate(units) if item == i]
        targets = [(units[k][1].gold, units[k][2]) for k in mine]
        out.append(
            AttributionResult.of_targets(config, lm.name, prompt, targets, layers, "fast", [parts[k] for k in mine])
        )
    return out
