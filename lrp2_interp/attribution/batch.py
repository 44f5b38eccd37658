"""Many facts per pass: knowledge-neuron IG of several prompts and hook conditions in one staged forward.

:func:`attribute_batch` takes items ``(prompt, target, hooks)`` -- e.g. every fact of a relation, each
once with no hooks (baseline) and once with LRP2's -- and attributes ``facts_per_pass`` queries at a
time: their (query, layer) rows go through the same Captum call and the same decoder-layer calls
(:class:`lrp2_interp.attribution.fast.staged.BatchedForward`, prompts of different lengths padded and masked).
Scores equal :func:`lrp2_interp.attribution.api.attribute_neurons` of each item on its own (tests), and
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

from lrp2_interp.attribution.api import (
    AttributionConfig,
    AttributionResult,
    attribute_neurons,
    integrated_gradients,
    queries,
)
from lrp2_interp.attribution.fast.bert import Hooks, Unsupported
from lrp2_interp.attribution.fast.ig import FastModel, fast_model
from lrp2_interp.attribution.fast.staged import BatchedForward, Unit
from lrp2_interp.errors import InputError
from lrp2_interp.models.loading import FwdHooks, LanguageModel

__all__ = ["attribute_batch"]

Item = tuple[str, "str | Sequence[int]", "FwdHooks | None"]


def _rows(fm: FastModel, n_pos: int, layers: Sequence[int], budget_mb: float) -> int:
    return max(1, int(budget_mb * 2**20 // fm.bytes_per_row(n_pos, layers)))


def _run(
    bf: BatchedForward, fm: FastModel, keys: torch.Tensor, config: AttributionConfig, layers: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """IG of the rows ``keys`` [N]: (scores [N, d_mlp], deltas [N], f_baseline [N]) in float64 where scalar."""
    x = bf.activations(keys)
    attr, _ = integrated_gradients(bf, x, config, _rows(fm, bf.W, layers, config.memory_budget_mb), keys, delta=False)
    with torch.no_grad():
        f_base = bf(torch.zeros_like(x), keys).double().cpu()
    f_in = bf.f_clean[keys // bf.L]
    return attr.detach(), attr.detach().sum(1).double().cpu() - (f_in - f_base), f_base


def _pass(lm: LanguageModel, fm: FastModel, units: list[Unit], layers: tuple[int, ...], config: AttributionConfig):
    """All (unit, layer) rows of ``units``: per unit (scores [n_layers, d], acts, deltas, f_in, f_base, steps)."""
    bf = BatchedForward(fm.family, units, log_prob=config.log_prob)  # type: ignore[arg-type]
    L, U, nl = bf.L, len(units), len(layers)
    keys = torch.tensor([u * L + l for u in range(U) for l in layers])
    scores, deltas, f_base = _run(bf, fm, keys, config, layers)
    steps = torch.full((U * nl,), config.n_steps)
    n = config.n_steps
    while config.target_delta is not None and n < config.max_steps:
        bad = (deltas.abs() > config.target_delta).nonzero().flatten()
        if not len(bad):
            break
        n = min(2 * n, config.max_steps)
        s, d, fb = _run(bf, fm, keys[bad], AttributionConfig(**{**config.__dict__, "n_steps": n}), layers)
        scores[bad], deltas[bad], f_base[bad], steps[bad] = s, d, fb, n
    out = []
    for u in range(U):
        sl = slice(u * nl, (u + 1) * nl)
        out.append(
            (
                scores[sl],
                bf.act[u, list(layers)],
                deltas[sl],
                bf.f_clean[u].expand(nl).clone(),
                f_base[sl],
                steps[sl].tolist(),
            )
        )
    return out


def attribute_batch(
    lm: LanguageModel, items: Sequence[Item], config: AttributionConfig = AttributionConfig(), facts_per_pass: int = 8
) -> list[AttributionResult]:
    """Knowledge-neuron attribution of every ``(prompt, target, extra_hooks)`` item, ``facts_per_pass``
    queries per staged forward; one :class:`AttributionResult` per item, in order."""
    if not isinstance(facts_per_pass, int) or facts_per_pass < 1:
        raise InputError(f"facts_per_pass must be a positive int, got {facts_per_pass!r}", field="facts_per_pass")
    layers = config.validate(lm.n_layers)
    quiet = AttributionConfig(**{**config.__dict__, "progress": False})
    fm = None
    if lm.kind == "causal" and config.path != "reference":
        try:
            for _, _, hooks in items:
                Hooks.parse(lm, hooks)
            fm = fast_model(lm, generic=True)
        except Unsupported as err:
            if config.path == "fast":
                raise InputError(f"the fast attribution path cannot run here: {err}", field="path") from None
    if fm is None:
        return [
            AttributionResult(**{**attribute_neurons(lm, p, t, quiet, h).__dict__, "config": config})
            for p, t, h in tqdm(items, desc="knowledge-neuron IG", disable=not config.progress)
        ]
    units: list[tuple[int, Unit, int]] = []  # (item, unit, position)
    for i, (prompt, target, hooks) in enumerate(items):
        for q in queries(lm, prompt, target, config):
            units.append((i, Unit(q.ids, q.gold, Hooks.parse(lm, hooks)), q.position))
    parts: list[tuple] = []
    for s in tqdm(
        range(0, len(units), facts_per_pass), desc="knowledge-neuron IG (batched)", disable=not config.progress
    ):
        parts += _pass(lm, fm, [u for _, u, _ in units[s : s + facts_per_pass]], layers, config)
    out = []
    for i, (prompt, _, _) in enumerate(items):
        mine = [k for k, (item, _, _) in enumerate(units) if item == i]
        total = [torch.stack([parts[k][t] for k in mine]).sum(0) for t in (0, 2, 3, 4)]
        out.append(
            AttributionResult(
                config=config,
                model_name=lm.name,
                prompt=prompt,
                target_ids=tuple(units[k][1].gold for k in mine),
                target_positions=tuple(units[k][2] for k in mine),
                layers=layers,
                path="fast",
                scores=total[0].cpu(),
                activations=torch.stack([parts[k][1] for k in mine]).cpu(),
                deltas=total[1],
                f_input=total[2],
                f_baseline=total[3],
                steps=tuple(max(parts[k][5][j] for k in mine) for j in range(len(layers))),
            )
        )
    return out
