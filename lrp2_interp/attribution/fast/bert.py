"""BERT (``BertForMaskedLM``) for the fast attribution path: a functional post-LN bidirectional encoder.

The maths mirrors ``transformers`` (eager attention) on the weights of ``lm.bridge.original_model``
(read through ``state_dict()``, i.e. the same tensors, detached: no parameter gradients are ever
computed); the tests compare the logits with the HF model and the scores with the TransformerLens
reference path.  :class:`BertFamily` is an
:class:`~lrp2_interp.attribution.fast.families.EncoderFamily`: ``block_full`` / ``block_query``
(bidirectional: later blocks see all positions) and ``clean_row`` (the rows at alpha = 1 of all
layers share one single-row pass).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from lrp2_interp.attribution.fast.families import FamilyKind
from lrp2_interp.attribution.fast.family_parts import (
    CleanCache,
    HookKind,
    Hooks,
    Unsupported,
    hf_weights,
    layer_norm,
    split_layers,
)
from lrp2_interp.models.loading import LanguageModel

__all__ = ["BertFamily"]


class BertFamily:
    """Post-LN bidirectional encoder with the MLM head (``BertForMaskedLM``)."""

    kind: Literal[FamilyKind.ENCODER] = FamilyKind.ENCODER

    def __init__(self, lm: LanguageModel):
        from transformers.activations import ACT2FN

        cfg = lm.bridge.original_model.config
        if getattr(cfg, "position_embedding_type", "absolute") != "absolute" or cfg.is_decoder:
            raise Unsupported("BERT variant with non-absolute positions or decoder attention")
        w = hf_weights(lm)
        self.L, self.H = cfg.num_hidden_layers, cfg.num_attention_heads
        self.eps = cfg.layer_norm_eps
        self.act_fn = ACT2FN[cfg.hidden_act]
        self.w = w
        self.layers = split_layers(w, "bert.encoder.layer.", self.L)

    def _proj(self, j: int, x: torch.Tensor, which: str) -> torch.Tensor:  # [.., d] -> [.., d]
        p = self.layers[j]
        return F.linear(x, p[f"attention.self.{which}.weight"], p[f"attention.self.{which}.bias"])

    def _heads(self, x: torch.Tensor) -> torch.Tensor:  # [b, n, d] -> [b, H, n, dh]
        return x.view(x.shape[0], x.shape[1], self.H, -1).transpose(1, 2)

    def _qkv(self, j: int, h: torch.Tensor, p: int, c: CleanCache, n_new: int) -> tuple[torch.Tensor, ...]:
        """Q, K, V ``[b, H, pos, dh]`` of ``h`` [b, pos, d].

        The last ``n_new`` rows differ from the clean block input only at position ``p``
        (they joined right before this block): only that position is projected, the
        rest is spliced in from the clean pass.
        """
        old, new = h[: h.shape[0] - n_new], h[h.shape[0] - n_new :]
        q, k, v = (self._proj(j, old, name) for name in ("query", "key", "value"))
        if n_new:
            row = new[:, p]  # [n_new, d]
            parts = []
            for name, clean in zip(("query", "key", "value"), c.qkv[j]):  # clean [pos, d]
                spliced = clean.unsqueeze(0).expand(n_new, -1, -1).clone()
                spliced[:, p] = self._proj(j, row, name)
                parts.append(spliced)
            q, k, v = (torch.cat([a, b]) for a, b in zip((q, k, v), parts))
        return self._heads(q), self._heads(k), self._heads(v)

    def _ctx(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:  # -> [b, n_q, d]
        probs = torch.softmax(torch.matmul(q, k.transpose(2, 3)) * q.shape[-1] ** -0.5, dim=-1)
        out = torch.matmul(probs, v).transpose(1, 2)
        return out.reshape(out.shape[0], out.shape[1], -1)

    def _after_attn(self, j: int, ctx: torch.Tensor, resid: torch.Tensor) -> torch.Tensor:
        p = self.layers[j]
        o = F.linear(ctx, p["attention.output.dense.weight"], p["attention.output.dense.bias"])
        return layer_norm(
            o + resid, p["attention.output.LayerNorm.weight"], p["attention.output.LayerNorm.bias"], self.eps
        )

    def _act(self, j: int, mid: torch.Tensor) -> torch.Tensor:
        p = self.layers[j]
        return self.act_fn(F.linear(mid, p["intermediate.dense.weight"], p["intermediate.dense.bias"]))

    def _out(self, j: int, act: torch.Tensor, mid: torch.Tensor) -> torch.Tensor:
        p = self.layers[j]
        o = F.linear(act, p["output.dense.weight"], p["output.dense.bias"])
        return layer_norm(o + mid, p["output.LayerNorm.weight"], p["output.LayerNorm.bias"], self.eps)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:  # ids [pos] -> [1, pos, d]
        w, n = self.w, ids.shape[0]
        x = (
            w["bert.embeddings.word_embeddings.weight"][ids]
            + w["bert.embeddings.position_embeddings.weight"][:n]
            + w["bert.embeddings.token_type_embeddings.weight"][0]
        )
        return layer_norm(x, w["bert.embeddings.LayerNorm.weight"], w["bert.embeddings.LayerNorm.bias"], self.eps)[None]

    def clean(self, ids: torch.Tensor, hooks: Hooks) -> CleanCache:
        x = self.embed(ids)
        c = CleanCache([], [], [], [], [])
        for j in range(self.L):
            c.block_in.append(x[0])
            q, k, v = (self._proj(j, x[0], name) for name in ("query", "key", "value"))
            c.qkv.append((q, k, v))
            mid = self._after_attn(j, self._ctx(*(self._heads(t[None]) for t in (q, k, v))), x)
            a_pre = self._act(j, mid)
            a = hooks.apply(HookKind.MLP_POST, j, a_pre)
            out = self._out(j, a, mid)
            c.mid.append(mid[0])
            c.act_pre.append(a_pre[0])
            c.act.append(a[0])
            c.resid_pre.append(out[0])
            x = hooks.apply(HookKind.RESID_POST, j, out)
        c.final = x[0]
        return c

    def join(self, l: int, x: torch.Tensor, p: int, c: CleanCache, hooks: Hooks, full: bool) -> torch.Tensor:
        """Block ``l``'s output with the activation at ``p`` set to ``x`` [n, d_mlp]: [n, pos, d] or [n, d]."""
        row = self._out(l, x, c.mid[l][p])  # [n, d]
        if not full:
            return hooks.apply_at(HookKind.RESID_POST, l, row, p, c.resid_pre[l])
        has_hook = bool(hooks.at(HookKind.RESID_POST, l))
        base = c.resid_pre[l] if has_hook else c.block_in[l + 1]
        h = base.unsqueeze(0).expand(x.shape[0], -1, -1).clone()  # [n, pos, d]
        h[:, p] = row
        return hooks.apply(HookKind.RESID_POST, l, h) if has_hook else h

    def block_full(
        self,
        j: int,
        h: torch.Tensor,
        p: int,
        c: CleanCache,
        hooks: Hooks,
        n_new: int = 0,
        delta: torch.Tensor | None = None,
    ) -> torch.Tensor:  # [n, pos, d] -> same
        """``delta`` [n, d_mlp]: added to the (hooked) activation at ``p`` (see :meth:`clean_row`)."""
        mid = self._after_attn(j, self._ctx(*self._qkv(j, h, p, c, n_new)), h)
        a = hooks.apply(HookKind.MLP_POST, j, self._act(j, mid))
        if delta is not None:
            a = torch.cat([a[:, :p], (a[:, p] + delta)[:, None], a[:, p + 1 :]], 1)
        return hooks.apply(HookKind.RESID_POST, j, self._out(j, a, mid))

    def block_query(
        self, j: int, h: torch.Tensor, p: int, c: CleanCache, hooks: Hooks, delta: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Block ``j`` computed for position ``p`` only: [n, pos, d] -> [n, d].

        With one query the key/value projections of every position are avoided by
        re-association: ``q . (W_k h_t + b_k) = (W_k^T q) . h_t + q . b_k`` and
        ``sum_t pi_t (W_v h_t + b_v) = W_v (sum_t pi_t h_t) + b_v`` (per head).
        """
        w = self.layers[j]
        n, _, d = h.shape
        hp = h[:, p]  # [n, d]
        q = self._proj(j, hp, "query").view(n, self.H, -1)  # [n, H, dh]
        wk = w["attention.self.key.weight"].view(self.H, -1, d)  # [H, dh, d]
        wv = w["attention.self.value.weight"].view(self.H, -1, d)
        q_in = torch.einsum("nhe,hed->nhd", q, wk)  # [n, H, d]
        s = torch.bmm(q_in, h.transpose(1, 2)) + (q * w["attention.self.key.bias"].view(self.H, -1)).sum(
            -1, keepdim=True
        )
        probs = torch.softmax(s * q.shape[-1] ** -0.5, dim=-1)  # [n, H, pos]
        ctx = torch.einsum("nhd,hed->nhe", torch.bmm(probs, h), wv) + w["attention.self.value.bias"].view(self.H, -1)
        mid = self._after_attn(j, ctx.reshape(n, d), hp)  # [n, d]
        a = hooks.apply_at(HookKind.MLP_POST, j, self._act(j, mid), p, c.act_pre[j])
        a = a if delta is None else a + delta
        return hooks.apply_at(HookKind.RESID_POST, j, self._out(j, a, mid), p, c.resid_pre[j])

    def clean_row(self, e: dict[int, torch.Tensor], p: int, c: CleanCache, hooks: Hooks) -> torch.Tensor:
        """Last hidden state at ``p`` [1, d] of the clean pass with ``e[l]`` [1, d_mlp] added to layer ``l``'s
        (hooked) activation at ``p``, every later activation computed normally.

        At ``e = 0`` this is the clean pass, and one backward from it gives ``d f / d act_l[p]`` of every
        layer in ``e`` at once: the gradient of each layer's row at alpha = 1 (see :class:`StagedForward`).
        """
        l0 = min(e)
        h = self.join(l0, c.act[l0][p][None] + e[l0], p, c, hooks, full=l0 < self.L - 1)
        for j in range(l0 + 1, self.L - 1):
            h = self.block_full(j, h, p, c, hooks, n_new=int(j == l0 + 1), delta=e.get(j))
        return h if l0 == self.L - 1 else self.block_query(self.L - 1, h, p, c, hooks, delta=e.get(self.L - 1))

    def final(self, h: torch.Tensor) -> torch.Tensor:  # [n, d] -> [n, d]: what the unembedding is applied to
        w = self.w
        t = self.act_fn(
            F.linear(h, w["cls.predictions.transform.dense.weight"], w["cls.predictions.transform.dense.bias"])
        )
        return layer_norm(
            t, w["cls.predictions.transform.LayerNorm.weight"], w["cls.predictions.transform.LayerNorm.bias"], self.eps
        )

    def unembed(self) -> tuple[torch.Tensor, torch.Tensor | None]:  # W [vocab, d], b [vocab]
        return self.w["cls.predictions.decoder.weight"], self.w["cls.predictions.decoder.bias"]

    def head(self, h: torch.Tensor) -> torch.Tensor:  # [n, d] -> [n, vocab]
        return F.linear(self.final(h), *self.unembed())
