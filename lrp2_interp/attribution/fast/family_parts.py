"""Pieces every fast-path family shares: user hooks at two hook points, the clean-pass cache, weight helpers.

The fast knowledge-neuron path (:mod:`lrp2_interp.attribution.fast.ig`) has to run a model
*from the middle*: resume at the FFN output of layer ``l`` at one position and run only what
that position can still influence.  TransformerBridge cannot skip the earlier blocks, so each
family (:mod:`lrp2_interp.attribution.fast.families`) re-implements the forward pass on the
weights of ``lm.bridge.original_model`` or calls its HF layers one by one.

Hooks: only ``blocks.{l}.hook_resid_post`` and ``blocks.{l}.mlp.hook_post`` (or the bridge's
canonical names of the same hook points) are supported (:class:`Hooks`); where a block computes
one position, the hook sees the full ``[n, pos, k]`` tensor with the clean pre-hook values
elsewhere.  A hook function receives the bridge's own ``HookPoint`` as ``hook=``, exactly as on the
TransformerLens reference path (same ``.name``, working ``.layer()``).  The fast path assumes hooks
act position-wise (each position's output depends only on that position's input, as LRP2's shifts
and ablations do): it reuses clean values at positions the patch cannot reach.  A hook that mixes
positions needs ``path="reference"``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import torch
import torch.nn.functional as F

from lrp2_interp.errors import Unsupported
from lrp2_interp.models.hooks import bind_hook, full_lengths
from lrp2_interp.models.loading import FwdHooks, LanguageModel

__all__ = [
    "BoundHook",
    "CleanCache",
    "HookKind",
    "Hooks",
    "hf_weights",
    "layer_norm",
    "split_layers",
]


class HookKind(Enum):
    """The hook points at which the fast path runs user hooks."""

    MLP_POST = "mlp_post"  # blocks.{l}.mlp.hook_post: FFN post-activation [b, pos, d_mlp]
    RESID_POST = "resid_post"  # blocks.{l}.hook_resid_post: block output [b, pos, d_model]


@dataclass(frozen=True)
class BoundHook:
    """A user hook function and the hook point it is called with (``fn(x, hook=point)``)."""

    point: Any  # transformer_lens.hook_points.HookPoint: the bridge's own (``.name``, ``.layer()``)
    fn: Callable[..., torch.Tensor | None]  # called as TransformerLens calls it: fn(x, hook=point)


@dataclass(frozen=True)
class Hooks:
    """Extra forward hooks by kind and layer, called like TransformerLens calls them."""

    by_kind: Mapping[HookKind, Mapping[int, tuple[BoundHook, ...]]] = field(default_factory=dict)

    @classmethod
    def parse(cls, lm: LanguageModel, hooks: FwdHooks | None) -> Hooks:
        """Sort ``(name, fn)`` pairs by hook point; :class:`Unsupported` for a point the fast path lacks."""
        if not hooks:
            return cls()
        points = lm.bridge.hook_dict  # alias and canonical names -> HookPoint
        where: dict[Any, tuple[HookKind, int]] = {}  # HookPoint -> (kind, layer)
        for j in range(lm.n_layers):
            for kind, name in ((HookKind.MLP_POST, lm.mlp_post(j)), (HookKind.RESID_POST, lm.resid_post(j))):
                if name in points:
                    where[points[name]] = (kind, j)
        table: dict[HookKind, dict[int, list[BoundHook]]] = {kind: {} for kind in HookKind}
        for name, fn in hooks:
            point = points.get(name)
            if point is None or point not in where:
                raise Unsupported(f"hook point '{name}' (fast path supports resid_post / mlp.hook_post)")
            kind, j = where[point]
            table[kind].setdefault(j, []).append(BoundHook(point, fn))
        return cls({kind: {j: tuple(bound) for j, bound in by_layer.items()} for kind, by_layer in table.items()})

    def at(self, kind: HookKind, layer: int) -> tuple[BoundHook, ...]:
        """The hooks of ``kind`` at ``layer``, in the order given."""
        return tuple(self.by_kind.get(kind, {}).get(layer, ()))

    def apply(self, kind: HookKind, layer: int, x: torch.Tensor) -> torch.Tensor:  # x: [b, pos, k] -> same
        bound = self.at(kind, layer)
        if bound:
            x = x.clone()  # a hook may modify its input in place (and return None), as TransformerLens allows
        for b in bound:
            out = bind_hook(b.fn, full_lengths(x))(x, hook=b.point)  # x: one unpadded prompt
            x = x if out is None else out
        return x

    def apply_at(self, kind: HookKind, layer: int, row: torch.Tensor, p: int, clean: torch.Tensor) -> torch.Tensor:
        """Hook a single position: ``row`` ``[n, k]`` placed at ``p`` into ``clean`` ``[pos, k]`` -> ``[n, k]``."""
        if not self.at(kind, layer):
            return row
        full = clean.unsqueeze(0).expand(row.shape[0], -1, -1).clone()  # [n, pos, k]
        full[:, p] = row
        return self.apply(kind, layer, full)[:, p]


@dataclass
class CleanCache:
    """Per-layer tensors of the hooked clean pass on one prompt (batch dim dropped), filled layer by layer."""

    block_in: list[torch.Tensor]  # L x [pos, d]: input of block j (after resid_post hooks of j-1)
    mid: list[torch.Tensor]  # L x [pos, d]: what the FFN output is added to (BERT: attention LN output)
    act_pre: list[torch.Tensor]  # L x [pos, d_mlp]: FFN post-activation before mlp_post hooks
    act: list[torch.Tensor]  # L x [pos, d_mlp]: after the hooks (what the model uses)
    resid_pre: list[torch.Tensor]  # L x [pos, d]: block output before resid_post hooks
    qkv: list[tuple[torch.Tensor, ...]] = field(default_factory=list)  # BERT: L x (q, k, v) each [pos, d]
    keys: list[torch.Tensor] = field(default_factory=list)  # decoders: L x [kv_heads, pos, d_head]
    values: list[torch.Tensor] = field(default_factory=list)
    final: torch.Tensor | None = None  # [pos, d]: the last block's output (after hooks)
    layer_args: list[dict[str, Any]] = field(default_factory=list)  # generic decoder: each layer's call arguments


def hf_weights(lm: LanguageModel) -> dict[str, torch.Tensor]:
    """HF-named, detached weights of the wrapped model (bridge wrappers stripped)."""
    sd = lm.bridge.original_model.state_dict()
    return {k.replace("._original_component", ""): v.detach() for k, v in sd.items()}


def layer_norm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, eps: float) -> torch.Tensor:  # [.., d] -> same
    return F.layer_norm(x, (x.shape[-1],), w, b, eps)


def split_layers(w: dict[str, torch.Tensor], prefix: str, n: int) -> list[dict[str, torch.Tensor]]:
    """Per layer ``j``: the weights under ``{prefix}{j}.`` with that prefix removed."""
    return [{k[len(f"{prefix}{j}.") :]: v for k, v in w.items() if k.startswith(f"{prefix}{j}.")} for j in range(n)]
