"""The causal-decoder engine: resume the model's own decoder layers at layer ``l`` for one or many queries.

:class:`BatchedForward` is the Captum forward function of every causal decoder on the fast attribution path
(:class:`lrp2_interp.attribution.fast.generic.GenericDecoder` gives its clean pass and layers): one query
(:func:`lrp2_interp.attribution.attribute.attribute_neurons`) or many facts and hook conditions per pass
(:func:`lrp2_interp.attribution.batch.attribute_batch`).  Each *unit* is one query (token ids, target at the
last position ``p``, gold token, its own hooks and clean pass); a row of the Captum batch is
``(unit, layer)``, encoded as ``key = unit * L + layer``: its activation at ``p`` in layer ``l`` is set to the
row, and only position ``p`` changes from there on, so every later decoder layer runs once per call at ``p``
for the rows of all units that pass through it, each row attending to its own unit's clean keys/values.
Rows of one unit joining at layer ``l`` share that layer's input: its attention runs on one row and the rows
part at the patched activation.  :func:`ig_rows` is the integrated-gradient call over such rows.

Padding: prompts differ in length, so each row's keys are *left*-padded to the longest prompt
``W`` (the query sits at the last slot for every row) and the padded slots are masked with the
dtype's minimum in the additive attention mask (ALiBi is left-padded with zeros: softmax is
shift-invariant and those keys are masked).  Masked keys get probability exactly 0, so scores equal
those of one prompt at a time up to float summation order (tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import torch
import torch.nn.functional as F
from transformers import DynamicCache

from lrp2_interp.attribution.captum_ig import integrated_gradients
from lrp2_interp.attribution.fast.family_parts import CleanCache, HookKind, Hooks
from lrp2_interp.attribution.fast.generic import GenericDecoder
from lrp2_interp.attribution.fast.ig import FastModel, GoldProb
from lrp2_interp.attribution.ig_config import AttributionConfig, QueryScores
from lrp2_interp.attribution.memory import rows_in_budget
from lrp2_interp.errors import Unsupported

__all__ = ["BatchedForward", "Unit", "ig_rows"]


@dataclass
class Unit:
    """One query of the batch: ids [pos] with the target at the last position, the gold token, its hooks."""

    ids: torch.Tensor
    gold: int
    hooks: Hooks

    @property
    def p(self) -> int:
        return int(self.ids.shape[0]) - 1


class ArgForm(Enum):
    """How a clean call argument of a decoder layer is tabled per unit and cut to a batch of rows."""

    CACHE = "cache"  # (keys, values) [U, kv_heads, W - 1, d_head]: a _RowPrefixCache of the rows' units
    SAME = "same"  # one plain value shared by every unit
    ROWS = "rows"  # a tensor [U, ...]: the rows' units
    TUPLE = "tuple"  # a tuple of [U, ...] tensors (RoPE cos, sin)
    ALIBI = "alibi"  # [U, heads, W]: the rows' units, batch folded into heads as BLOOM expects


def _left_pad(t: torch.Tensor, width: int, value: float) -> torch.Tensor:  # pad the last-but-one-free dim 0
    return F.pad(t, (0, 0) * (t.dim() - 1) + (width - t.shape[0], 0), value=value)


class _RowPrefixCache(DynamicCache):
    """Per-row clean keys/values ``[n, kv_heads, W - 1, d_head]`` followed by the rows' own (stores nothing)."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor):
        super().__init__()
        self.k, self.v = keys, values

    def update(self, key_states, value_states, layer_idx, *args, **kwargs):
        return torch.cat([self.k, key_states], -2), torch.cat([self.v, value_states], -2)


class BatchedForward:
    """Captum forward ``f(x [N, d_mlp], key [N]) -> [N]`` over the rows of many units (see the module doc)."""

    def __init__(self, fam: GenericDecoder, units: list[Unit], *, log_prob: bool):
        self.fam, self.units, self.log_prob = fam, units, log_prob
        self.L = fam.L
        with torch.no_grad():
            self.caches: list[CleanCache] = [fam.clean(u.ids, u.hooks) for u in units]
        self.W = max(u.p for u in units) + 1
        self.act = torch.stack([torch.stack([a[u.p] for a in c.act]) for u, c in zip(units, self.caches)])  # [U, L, m]
        self.block_in = torch.stack([torch.stack([b[u.p] for b in c.block_in]) for u, c in zip(units, self.caches)])
        self.gold = torch.tensor([u.gold for u in units])
        self._args = [self._layer_tables(j) for j in range(self.L)]
        with torch.no_grad():
            finals = [c.final for c in self.caches]
            if any(f is None for f in finals):
                raise Unsupported("a clean pass recorded no final hidden state")
            final = torch.stack([f[u.p] for u, f in zip(units, finals) if f is not None])  # [U, d]
            self.f_clean = self._f(final, self.gold).double()  # [U]

    # ------------------------------------------------------------------ per-layer argument tables
    def _layer_tables(self, j: int) -> dict[str, Any]:
        """Each clean call argument of layer ``j`` as a per-unit table (row ``u``: unit ``u``'s query row)."""
        from transformers import Cache

        W, out = self.W, {}  # type: tuple[int, dict[str, tuple[ArgForm, Any]]]
        first = self.caches[0].layer_args[j]
        for name, v0 in first.items():
            vals: list[Any] = [c.layer_args[j].get(name) for c in self.caches]
            if isinstance(v0, Cache):
                k = torch.stack(
                    [
                        _left_pad(c.keys[j][0, :, : u.p].transpose(0, 1), W - 1, 0.0).transpose(0, 1)
                        for u, c in zip(self.units, self.caches)
                    ]
                )  # [U, kv_heads, W - 1, d_head]
                v = torch.stack(
                    [
                        _left_pad(c.values[j][0, :, : u.p].transpose(0, 1), W - 1, 0.0).transpose(0, 1)
                        for u, c in zip(self.units, self.caches)
                    ]
                )
                out[name] = (ArgForm.CACHE, (k, v))
            elif v0 is None or isinstance(v0, (bool, int, float, str)):
                if any(v != v0 for v in vals):
                    raise Unsupported(f"layer argument {name!r} differs between prompts")
                out[name] = (ArgForm.SAME, v0)
            elif name == "attention_mask" and torch.is_tensor(v0) and v0.dim() == 4:
                low = torch.finfo(v0.dtype).min if v0.is_floating_point() else None
                if low is None:
                    raise Unsupported("boolean attention masks are not batched")
                out[name] = (
                    ArgForm.ROWS,
                    torch.stack([_left_pad(m[0, 0, u.p, : u.p + 1], W, low) for u, m in zip(self.units, vals)])[
                        :, None, None
                    ],
                )  # [U,1,1,W]
            elif name == "position_embeddings" and isinstance(v0, tuple):
                out[name] = (
                    ArgForm.TUPLE,
                    tuple(
                        torch.stack([t[i][0, u.p] for u, t in zip(self.units, vals)])[:, None] for i in range(len(v0))
                    ),
                )  # each [U, 1, d_head]
            elif name == "position_ids" and torch.is_tensor(v0):
                out[name] = (
                    ArgForm.ROWS,
                    torch.stack([t[0, u.p : u.p + 1] for u, t in zip(self.units, vals)]),
                )  # [U, 1]
            elif name == "alibi" and torch.is_tensor(v0):  # [heads, 1, keys] per unit
                out[name] = (
                    ArgForm.ALIBI,
                    torch.stack([_left_pad(t[:, 0, : u.p + 1].t(), W, 0.0).t() for u, t in zip(self.units, vals)]),
                )  # [U, heads, W]
            else:
                raise Unsupported(f"decoder layer argument {name!r} cannot be batched over prompts")
        return out

    def _kwargs(self, j: int, ru: torch.Tensor) -> dict[str, Any]:
        kw: dict[str, Any] = {}
        for name, (form, v) in self._args[j].items():
            if form is ArgForm.CACHE:
                kw[name] = _RowPrefixCache(v[0].index_select(0, ru), v[1].index_select(0, ru))
            elif form is ArgForm.SAME:
                kw[name] = v
            elif form is ArgForm.ROWS:
                kw[name] = v.index_select(0, ru)
            elif form is ArgForm.TUPLE:
                kw[name] = tuple(t.index_select(0, ru) for t in v)
            else:  # ArgForm.ALIBI: [n * heads, 1, W], row-major like BLOOM's fused batch * heads
                a = v.index_select(0, ru)
                kw[name] = a.reshape(-1, 1, a.shape[-1])
        return kw

    # ------------------------------------------------------------------ the staged pass
    def _hooked(self, kind: HookKind, j: int, rows: torch.Tensor, ru: torch.Tensor, clean_of) -> torch.Tensor:
        """Each unit's hooks of ``kind`` at layer ``j`` on its own rows ``rows`` [n, k] (clean values elsewhere)."""
        us = [u for u in ru.unique().tolist() if self.units[u].hooks.at(kind, j)]
        if not us:
            return rows
        parts = rows.clone()
        for u in us:
            idx = (ru == u).nonzero().flatten()
            parts = parts.index_copy(
                0, idx, self.units[u].hooks.apply_at(kind, j, rows.index_select(0, idx), self.units[u].p, clean_of(u))
            )
        return parts

    def _layer(
        self, j: int, h: torch.Tensor, ru: torch.Tensor, patch: torch.Tensor | None, ru_in: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Layer ``j`` at each row's target for rows ``h`` [n, d] of units ``ru`` [n] -> [n, d].

        ``ru_in``: the units of ``h``'s rows where they differ from ``ru`` (one row whose ``patch`` [n, d_mlp]
        broadcasts over the n rows of its unit: ``[n, 1, d_mlp]`` against the ``[1, 1, d]`` residual).
        """
        fam = self.fam

        def mlp_post(mod, args):  # args[0]: [n, 1, d_mlp]
            if patch is not None:
                return (patch.to(args[0].dtype)[:, None], *args[1:])
            a = self._hooked(HookKind.MLP_POST, j, args[0][:, 0], ru, lambda u: self.caches[u].act_pre[j])
            return (a[:, None], *args[1:])

        def resid_post(mod, args, out):
            row = (out[0] if isinstance(out, tuple) else out)[:, 0]
            row = self._hooked(HookKind.RESID_POST, j, row, ru, lambda u: self.caches[u].resid_pre[j])[:, None]
            return (row, *out[1:]) if isinstance(out, tuple) else row

        handles = [fam.mlp_out[j].register_forward_pre_hook(mlp_post), fam.layers[j].register_forward_hook(resid_post)]
        try:
            out = fam.layers[j](h[:, None], **self._kwargs(j, ru if ru_in is None else ru_in))
        finally:
            for hd in handles:
                hd.remove()
        return (out[0] if isinstance(out, tuple) else out)[:, 0]

    def _f(self, h: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:  # [n, d], [n] -> [n]
        W, b = self.fam.unembed()
        return GoldProb.apply(self.fam.final(h), W, b, gold, self.log_prob)

    def activations(self, key: torch.Tensor) -> torch.Tensor:  # key [N] -> [N, d_mlp]
        return self.act[key // self.L, key % self.L]

    def __call__(self, x: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        key = key.detach().to("cpu")
        unit, lay = key // self.L, key % self.L
        present = set(lay.tolist())
        order: list[torch.Tensor] = []
        state: torch.Tensor | None = None
        ru_state = torch.empty(0, dtype=torch.long)

        def join(l: int) -> None:
            nonlocal state, ru_state
            idx = (lay == l).nonzero().flatten()
            ru = unit.index_select(0, idx)
            one = ru[:1] if bool((ru == ru[0]).all()) else None  # one unit: its rows share block l's input
            h = self.block_in[ru if one is None else one, l]
            new = self._layer(l, h, ru, x.index_select(0, idx.to(x.device)), ru_in=one)
            if new.shape[0] != len(idx):
                raise Unsupported("the decoder layer does not broadcast a patched FFN activation over its rows")
            state = new if state is None else torch.cat([state, new])
            ru_state = torch.cat([ru_state, ru])
            order.append(idx)

        for j in range(min(present) + 1, self.L):
            if j - 1 in present:
                join(j - 1)
            assert state is not None  # rows of layer min(present) joined first
            state = self._layer(j, state, ru_state, None)
        if self.L - 1 in present:
            join(self.L - 1)
        assert state is not None
        f = self._f(state, self.gold.index_select(0, ru_state))
        return f[torch.argsort(torch.cat(order)).to(f.device)]


def ig_rows(
    bf: BatchedForward, fm: FastModel, keys: torch.Tensor, config: AttributionConfig, layers: Sequence[int]
) -> QueryScores:
    """IG of the rows ``keys`` [N] (one Captum call; the memory estimate over ``layers``): scores ``[N, d_mlp]``.

    ``deltas``: Captum's completeness error ``sum(attr) - (f(input) - f(baseline))`` with ``f(input)`` the
    clean ``f`` (the patch at alpha = 1 changes nothing) and one forward pass for the baselines.
    """
    x = bf.activations(keys)
    rows = rows_in_budget(config.memory_budget_mb, fm.bytes_per_row(bf.W, layers))
    attr, _ = integrated_gradients(bf, x, config, rows, keys, delta=False)
    with torch.no_grad():
        f_base = bf(torch.zeros_like(x), keys).double().cpu()
    f_in = bf.f_clean.cpu()[keys // bf.L]
    delta = attr.detach().sum(1).double().cpu() - (f_in - f_base)
    return QueryScores(attr.detach(), x, delta, f_in, f_base, (config.n_steps,) * len(keys))
