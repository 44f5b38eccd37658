"""Functional forward passes of the causal decoders (BLOOM, GPT-2, Qwen2) for the fast path.

See :mod:`lrp2_interp.attribution.fast.protocol` for the contract (:class:`~lrp2_interp.attribution.fast.protocol.CausalFamily`).  :class:`_Decoder` holds
the pre-norm block shared by the three families (full clean pass with the
caller's hooks; single-position step against cached keys/values); subclasses
supply norms, projections, positional scheme and MLP.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from lrp2_interp.attribution.fast.common import (
    CleanCache,
    HookKind,
    Hooks,
    Unsupported,
    hf_weights,
    layer_norm,
    split_layers,
)
from lrp2_interp.attribution.fast.protocol import FamilyKind
from lrp2_interp.models.loading import LanguageModel


def _causal_mask(n: int, device) -> torch.Tensor:  # [n, n] bool, True = masked (a later key)
    return torch.ones(n, n, dtype=torch.bool, device=device).triu(1)


class _Decoder:
    """Pre-norm causal decoder: shared clean pass and single-position step."""

    kind: Literal[FamilyKind.CAUSAL] = FamilyKind.CAUSAL
    float32_softmax = True
    L: int
    H: int
    KVH: int

    # family specifics ---------------------------------------------------
    def norm1(self, j: int, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def norm2(self, j: int, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def qkv(self, j: int, x: torch.Tensor, pos: torch.Tensor):
        raise NotImplementedError  # -> q [.., q, H, dh], k, v [.., q, KVH, dh]

    def bias(self, n_keys: int) -> torch.Tensor | None:
        return None  # [H, keys] additive score bias

    def scale(self, j: int, dh: int) -> float:
        return dh**-0.5

    def o_proj(self, j: int, ctx: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def act(self, j: int, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def mlp_out(self, j: int, a: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def final(self, h: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError  # final norm: [n, d] -> [n, d]

    def unembed(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError

    def head(self, h: torch.Tensor) -> torch.Tensor:  # [n, d] -> [n, vocab]
        return F.linear(self.final(h), *self.unembed())

    def _softmax(self, s: torch.Tensor) -> torch.Tensor:
        if self.float32_softmax:
            return torch.softmax(s, dim=-1, dtype=torch.float32).to(s.dtype)
        return torch.softmax(s, dim=-1)

    # shared ---------------------------------------------------------------
    def clean(self, ids: torch.Tensor, hooks: Hooks) -> CleanCache:
        x = self.embed(ids)  # [1, pos, d]
        n = ids.shape[0]
        pos = torch.arange(n, device=ids.device)
        mask = _causal_mask(n, ids.device)
        bias = self.bias(n)
        c = CleanCache([], [], [], [], [])
        for j in range(self.L):
            c.block_in.append(x[0])
            q, k, v = self.qkv(j, self.norm1(j, x), pos)  # [1, pos, H|KVH, dh]
            c.keys.append(k[0].transpose(0, 1))
            c.values.append(v[0].transpose(0, 1))
            rep = self.H // self.KVH
            qh = q.transpose(1, 2)  # [1, H, pos, dh]
            kh = k.transpose(1, 2).repeat_interleave(rep, dim=1)
            vh = v.transpose(1, 2).repeat_interleave(rep, dim=1)
            s = torch.matmul(qh, kh.transpose(2, 3)) * self.scale(j, q.shape[-1])
            if bias is not None:
                s = s + bias[:, None, :]
            s = s.masked_fill(mask, torch.finfo(s.dtype).min)
            ctx = torch.matmul(self._softmax(s), vh).transpose(1, 2).reshape(1, n, -1)
            mid = x + self.o_proj(j, ctx)
            a_pre = self.act(j, self.norm2(j, mid))
            a = hooks.apply(HookKind.MLP_POST, j, a_pre)
            out = mid + self.mlp_out(j, a)
            c.mid.append(mid[0])
            c.act_pre.append(a_pre[0])
            c.act.append(a[0])
            c.resid_pre.append(out[0])
            x = hooks.apply(HookKind.RESID_POST, j, out)
        c.final = x[0]
        return c

    def join(self, l: int, x: torch.Tensor, p: int, c: CleanCache, hooks: Hooks, full: bool = False) -> torch.Tensor:
        row = c.mid[l][p] + self.mlp_out(l, x)  # [n, d]
        return hooks.apply_at(HookKind.RESID_POST, l, row, p, c.resid_pre[l])

    def block_step(self, j: int, x: torch.Tensor, p: int, c: CleanCache, hooks: Hooks) -> torch.Tensor:
        """Block ``j`` at position ``p`` only, against the clean keys/values of positions < p: [n, d] -> [n, d]."""
        nrow = x.shape[0]
        q, k, v = self.qkv(j, self.norm1(j, x)[:, None], torch.tensor([p], device=x.device))
        q, k, v = q[:, 0], k[:, 0], v[:, 0]  # q [n, H, dh]; k, v [n, KVH, dh]
        rep, dh = self.H // self.KVH, q.shape[-1]
        qg = q.view(nrow, self.KVH, rep, dh)
        kc, vc = c.keys[j][:, :p], c.values[j][:, :p]  # [KVH, p, dh]
        s_c = torch.einsum("ngrd,gtd->ngrt", qg, kc)  # [n, KVH, rep, p]
        s_s = (qg * k[:, :, None]).sum(-1, keepdim=True)  # [n, KVH, rep, 1]
        s = torch.cat([s_c, s_s], dim=-1).reshape(nrow, self.H, p + 1) * self.scale(j, dh)
        bias = self.bias(p + 1)
        if bias is not None:
            s = s + bias
        probs = self._softmax(s).view(nrow, self.KVH, rep, p + 1)
        ctx = torch.einsum("ngrt,gtd->ngrd", probs[..., :p], vc) + probs[..., p:] * v[:, :, None]
        mid = x + self.o_proj(j, ctx.reshape(nrow, -1))
        a = hooks.apply_at(HookKind.MLP_POST, j, self.act(j, self.norm2(j, mid)), p, c.act_pre[j])
        return hooks.apply_at(HookKind.RESID_POST, j, mid + self.mlp_out(j, a), p, c.resid_pre[j])


class BloomFamily(_Decoder):
    def __init__(self, lm: LanguageModel):
        from transformers.models.bloom.modeling_bloom import _get_alibi_slopes, bloom_gelu_forward

        cfg = lm.bridge.original_model.config
        if cfg.apply_residual_connection_post_layernorm or (cfg.pretraining_tp > 1 and cfg.slow_but_exact):
            raise Unsupported("BLOOM with post-LN residuals or slow_but_exact tensor parallelism")
        self.w = w = hf_weights(lm)
        self.L = self.n_layers = cfg.n_layer
        self.H = self.KVH = cfg.n_head
        self.eps = cfg.layer_norm_epsilon
        self.gelu = bloom_gelu_forward
        self.p = split_layers(w, "transformer.h.", self.L)
        self.slopes = _get_alibi_slopes(self.H, torch.device("cpu")).to(w["lm_head.weight"].device)  # [H] float32
        self.dtype = w["lm_head.weight"].dtype

    def embed(self, ids):
        w = self.w
        x = w["transformer.word_embeddings.weight"][ids][None]
        return layer_norm(
            x,
            w["transformer.word_embeddings_layernorm.weight"],
            w["transformer.word_embeddings_layernorm.bias"],
            self.eps,
        )

    def norm1(self, j, x):
        return layer_norm(x, self.p[j]["input_layernorm.weight"], self.p[j]["input_layernorm.bias"], self.eps)

    def norm2(self, j, x):
        return layer_norm(
            x, self.p[j]["post_attention_layernorm.weight"], self.p[j]["post_attention_layernorm.bias"], self.eps
        )

    def qkv(self, j, x, pos):
        p = self.p[j]
        fused = F.linear(x, p["self_attention.query_key_value.weight"], p["self_attention.query_key_value.bias"])
        fused = fused.view(*x.shape[:-1], self.H, 3, -1)
        return fused[..., 0, :], fused[..., 1, :], fused[..., 2, :]

    def bias(self, n_keys):  # ALiBi: slope_h * key position (softmax is shift-invariant per query)
        ar = torch.arange(n_keys, device=self.slopes.device)
        return (self.slopes[:, None] * ar).to(self.dtype)

    def o_proj(self, j, ctx):
        return F.linear(ctx, self.p[j]["self_attention.dense.weight"], self.p[j]["self_attention.dense.bias"])

    def act(self, j, x):
        return self.gelu(F.linear(x, self.p[j]["mlp.dense_h_to_4h.weight"], self.p[j]["mlp.dense_h_to_4h.bias"]))

    def mlp_out(self, j, a):
        return F.linear(a, self.p[j]["mlp.dense_4h_to_h.weight"], self.p[j]["mlp.dense_4h_to_h.bias"])

    def final(self, h):
        return layer_norm(h, self.w["transformer.ln_f.weight"], self.w["transformer.ln_f.bias"], self.eps)

    def unembed(self):
        return self.w["lm_head.weight"], self.w.get("lm_head.bias")


class GPT2Family(_Decoder):
    float32_softmax = False

    def __init__(self, lm: LanguageModel):
        from transformers.activations import ACT2FN

        cfg = lm.bridge.original_model.config
        if cfg.reorder_and_upcast_attn or getattr(cfg, "add_cross_attention", False):
            raise Unsupported("GPT-2 with reorder_and_upcast_attn or cross-attention")
        self.cfg = cfg
        self.w = w = hf_weights(lm)
        self.L = self.n_layers = cfg.n_layer
        self.H = self.KVH = cfg.n_head
        self.eps = cfg.layer_norm_epsilon
        self.act_fn = ACT2FN[cfg.activation_function]
        self.p = split_layers(w, "transformer.h.", self.L)

    def scale(self, j, dh):
        s = dh**-0.5 if self.cfg.scale_attn_weights else 1.0
        return s / float(j + 1) if self.cfg.scale_attn_by_inverse_layer_idx else s

    @staticmethod
    def _conv(x, w, b):  # HF Conv1D: x @ W + b, W [in, out]
        return torch.addmm(b, x.reshape(-1, x.shape[-1]), w).view(*x.shape[:-1], w.shape[1])

    def embed(self, ids):
        w = self.w
        return (w["transformer.wte.weight"][ids] + w["transformer.wpe.weight"][: ids.shape[0]])[None]

    def norm1(self, j, x):
        return layer_norm(x, self.p[j]["ln_1.weight"], self.p[j]["ln_1.bias"], self.eps)

    def norm2(self, j, x):
        return layer_norm(x, self.p[j]["ln_2.weight"], self.p[j]["ln_2.bias"], self.eps)

    def qkv(self, j, x, pos):
        p = self.p[j]
        q, k, v = self._conv(x, p["attn.c_attn.weight"], p["attn.c_attn.bias"]).split(x.shape[-1], dim=-1)
        shape = (*x.shape[:-1], self.H, -1)
        return q.reshape(shape), k.reshape(shape), v.reshape(shape)

    def o_proj(self, j, ctx):
        return self._conv(ctx, self.p[j]["attn.c_proj.weight"], self.p[j]["attn.c_proj.bias"])

    def act(self, j, x):
        return self.act_fn(self._conv(x, self.p[j]["mlp.c_fc.weight"], self.p[j]["mlp.c_fc.bias"]))

    def mlp_out(self, j, a):
        return self._conv(a, self.p[j]["mlp.c_proj.weight"], self.p[j]["mlp.c_proj.bias"])

    def final(self, h):
        return layer_norm(h, self.w["transformer.ln_f.weight"], self.w["transformer.ln_f.bias"], self.eps)

    def unembed(self):
        return self.w["lm_head.weight"], self.w.get("lm_head.bias")


class Qwen2Family(_Decoder):
    def __init__(self, lm: LanguageModel):
        from transformers.activations import ACT2FN

        cfg = lm.bridge.original_model.config
        rope = getattr(cfg, "rope_parameters", None) or {}
        if rope.get("rope_type", "default") != "default" or getattr(cfg, "use_sliding_window", False):
            raise Unsupported("Qwen2 with scaled RoPE or sliding-window attention")
        self.w = w = hf_weights(lm)
        self.L = self.n_layers = cfg.num_hidden_layers
        self.H, self.KVH = cfg.num_attention_heads, cfg.num_key_value_heads
        self.dh = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.H
        self.eps = cfg.rms_norm_eps
        self.theta = rope.get("rope_theta", getattr(cfg, "rope_theta", 10000.0))
        self.act_fn = ACT2FN[cfg.hidden_act]
        self.p = split_layers(w, "model.layers.", self.L)

    def _rms(self, x, weight):
        dt = x.dtype
        x32 = x.to(torch.float32)
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return weight * x32.to(dt)

    def _rope(self, x, pos):  # x [.., q, heads, dh], pos [q]
        inv = 1.0 / (self.theta ** (torch.arange(0, self.dh, 2, dtype=torch.int64, device=x.device).float() / self.dh))
        freqs = pos[:, None].float() * inv  # [q, dh/2] float32 like HF
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos().to(x.dtype)[:, None], emb.sin().to(x.dtype)[:, None]  # [q, 1, dh]
        half = x.shape[-1] // 2
        rot = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
        return x * cos + rot * sin

    def embed(self, ids):
        return self.w["model.embed_tokens.weight"][ids][None]

    def norm1(self, j, x):
        return self._rms(x, self.p[j]["input_layernorm.weight"])

    def norm2(self, j, x):
        return self._rms(x, self.p[j]["post_attention_layernorm.weight"])

    def qkv(self, j, x, pos):
        p = self.p[j]
        q = F.linear(x, p["self_attn.q_proj.weight"], p.get("self_attn.q_proj.bias"))
        k = F.linear(x, p["self_attn.k_proj.weight"], p.get("self_attn.k_proj.bias"))
        v = F.linear(x, p["self_attn.v_proj.weight"], p.get("self_attn.v_proj.bias"))
        q = q.view(*x.shape[:-1], self.H, self.dh)
        k = k.view(*x.shape[:-1], self.KVH, self.dh)
        return self._rope(q, pos), self._rope(k, pos), v.view(*x.shape[:-1], self.KVH, self.dh)

    def o_proj(self, j, ctx):
        return F.linear(ctx, self.p[j]["self_attn.o_proj.weight"], self.p[j].get("self_attn.o_proj.bias"))

    def act(self, j, x):
        p = self.p[j]
        return self.act_fn(F.linear(x, p["mlp.gate_proj.weight"])) * F.linear(x, p["mlp.up_proj.weight"])

    def mlp_out(self, j, a):
        return F.linear(a, self.p[j]["mlp.down_proj.weight"], self.p[j].get("mlp.down_proj.bias"))

    def final(self, h):
        return self._rms(h, self.w["model.norm.weight"])

    def unembed(self):
        return self.w["lm_head.weight"], self.w.get("lm_head.bias")
