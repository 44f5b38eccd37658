"""The reference attribution path: the whole model through TransformerLens, one Captum IG call per layer.

For each attributed layer ``l``, the forward function Captum differentiates runs ``lm.bridge``
with a hook on ``blocks.{l}.mlp.hook_post`` that replaces the target position's activation by the
integration point (any family, any extra hooks: they run in every forward pass, before the
patching hook on the same hook point).  Slow but general; the fast path
(:mod:`lrp2_interp.attribution.fast.ig`) is tested against it.
"""

from __future__ import annotations

from functools import partial

import torch
from tqdm.auto import tqdm

from lrp2_interp.attribution.captum_ig import integrated_gradients
from lrp2_interp.attribution.ig_config import AttributionConfig, QueryScores
from lrp2_interp.attribution.memory import ModelShape, reference_row_bytes, rows_in_budget
from lrp2_interp.attribution.queries import Query
from lrp2_interp.models.loading import Batch, FwdHooks, LanguageModel

__all__ = ["PatchedForward", "gold_f", "reference_query", "reference_rows"]


def gold_f(logits: torch.Tensor, gold: int, log_prob: bool) -> torch.Tensor:  # [n, vocab] -> [n]
    """p(gold) (or its log) from logits at the target position."""
    lp = torch.log_softmax(logits, dim=-1)[:, gold]
    return lp if log_prob else lp.exp()


def _patch(x: torch.Tensor, p: int, act: torch.Tensor, hook: object = None) -> torch.Tensor:
    """``act`` [N, pos, d_mlp] with position ``p`` replaced by ``x`` [N, d_mlp]."""
    return torch.cat([act[:, :p], x[:, None].to(act.dtype), act[:, p + 1 :]], dim=1)


class PatchedForward:
    """Reference forward: the whole model via ``lm.bridge`` with layer ``l``'s activation at ``p`` set to x."""

    def __init__(self, lm: LanguageModel, q: Query, layer: int, hooks: FwdHooks, log_prob: bool):
        self.lm, self.q, self.layer, self.hooks, self.log_prob = lm, q, layer, list(hooks), log_prob

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # x [N, d_mlp] -> f [N]
        n, p = x.shape[0], self.q.position
        ids = self.q.ids[None].repeat(n, 1)
        patch = partial(_patch, x, p)
        logits = self.lm.logits(Batch(ids, torch.ones_like(ids)), self.hooks + [(self.lm.mlp_post(self.layer), patch)])
        # + 0 * x keeps x in the graph when a hook cuts the layer off (Captum's autograd.grad needs a path)
        return gold_f(logits[:, p], self.q.gold, self.log_prob) + 0.0 * x.sum(1).to(logits.dtype)


def reference_rows(lm: LanguageModel, n_pos: int, budget_mb: float) -> int:
    """Captum batch rows of the reference path that fit ``budget_mb`` of autograd memory (rough estimate)."""
    itemsize = torch.empty((), dtype=lm.dtype).element_size()
    vocab = int(lm.bridge.original_model.get_output_embeddings().weight.shape[0])
    shape = ModelShape(lm.n_layers, lm.d_model, lm.d_mlp, int(lm.bridge.cfg.n_heads), vocab)
    per = reference_row_bytes(shape, n_pos, itemsize)
    return rows_in_budget(budget_mb, per)


def _grab(store: dict[int, torch.Tensor], layer: int, p: int, act: torch.Tensor, hook: object = None) -> None:
    store[layer] = act[0, p].detach().clone()  # act [1, pos, d_mlp]


def reference_query(
    lm: LanguageModel,
    q: Query,
    layers: tuple[int, ...],
    config: AttributionConfig,
    hooks: FwdHooks,
    *,
    progress: bool = False,
) -> QueryScores:
    """Attribution of ``layers`` for one query: one clean pass, then one Captum IG call per layer."""
    store: dict[int, torch.Tensor] = {}  # layer -> clean activation at the target [d_mlp]
    ids = q.ids[None]
    grabs: FwdHooks = [(lm.mlp_post(l), partial(_grab, store, l, q.position)) for l in layers]
    with torch.no_grad():
        logits = lm.logits(Batch(ids, torch.ones_like(ids)), list(hooks) + grabs)
        f_clean = float(gold_f(logits[:, q.position], q.gold, config.log_prob)[0])
    rows = reference_rows(lm, ids.shape[1], config.memory_budget_mb)
    scores, deltas, f_base = [], [], []
    for layer in tqdm(layers, desc="IG layers (reference)", disable=not progress, leave=False):
        fwd = PatchedForward(lm, q, layer, hooks, config.log_prob)
        attr, delta = integrated_gradients(fwd, store[layer][None], config, rows)
        with torch.no_grad():
            f_base.append(float(fwd(torch.zeros_like(store[layer][None]))[0]))
        scores.append(attr[0].detach())
        deltas.append(float(delta[0]))
    return QueryScores(
        scores=torch.stack(scores),
        activations=torch.stack([store[l] for l in layers]),
        deltas=torch.tensor(deltas, dtype=torch.float64),
        f_input=torch.full((len(layers),), f_clean, dtype=torch.float64),
        f_baseline=torch.tensor(f_base, dtype=torch.float64),
        steps=(config.n_steps,) * len(layers),
    )
