"""The fast exact forward function for knowledge-neuron integrated gradients.

Integrated gradients for layer ``l`` evaluates the model ``n_steps`` times with the
FFN activation of layer ``l`` at the target position ``p`` scaled by ``alpha``;
every other activation is computed normally.  Nothing before that activation can
change, so :class:`StagedForward` (the function Captum differentiates) starts
from a cached clean pass instead of re-running the model:

* block ``l``'s output changes only at ``p``: it is rebuilt from the cached
  attention output and the patched activation (:meth:`join`);
* BERT (bidirectional): blocks ``l+1 .. L-2`` run on all positions, the last block
  only for the query at ``p``; decoders (causal): every later block runs for the
  single position ``p`` against the clean keys/values of positions ``< p``;
* the vocabulary projection is applied at ``p`` only.

One call carries the rows of *all* attributed layers (Captum's
``additional_forward_args`` hands each row its layer).  Rows join the batch at
the block after their layer, so every block is one batched matmul over all rows
that pass through it.  The result is the same function of the patched
activation as the TransformerLens reference path (tests check it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from .fast_decoders import BloomFamily, GPT2Family, Qwen2Family
from .fast_families import BertFamily, CleanCache, Hooks, Unsupported
from .models import FwdHooks, LanguageModel

__all__ = ["FastModel", "GoldProb", "StagedForward", "Unsupported", "fast_model"]


@dataclass
class FastModel:
    """A family implementation plus the sizes the memory estimate needs."""

    family: Any  # BertFamily | BloomFamily | GPT2Family | Qwen2Family
    n_layers: int
    d_model: int
    d_mlp: int
    n_heads: int
    vocab: int
    itemsize: int

    @property
    def causal(self) -> bool:
        return self.family.causal

    def bytes_per_row(self, n_pos: int, layers: Sequence[int]) -> int:
        """Rough autograd memory of one row (one step of one layer), averaged over ``layers``."""
        d, m, h, L = self.d_model, self.d_mlp, self.n_heads, self.n_layers
        head = 3 * self.vocab + 8 * d
        if self.causal:
            per_block = 14 * d + 3 * m + 3 * h * n_pos
            blocks = sum(L - 1 - l for l in layers) / len(layers)
            return int((blocks * per_block + head) * self.itemsize) + 1
        full = n_pos * (14 * d + 3 * m + 3 * h * n_pos)
        query = n_pos * 3 * d + 14 * d + 3 * m
        blocks = sum(max(0, L - 2 - l) for l in layers) / len(layers)
        return int((blocks * full + query + head) * self.itemsize) + 1


# HF architecture -> functional implementation
FAMILIES: dict[str, Any] = {
    "BertForMaskedLM": BertFamily,
    "BloomForCausalLM": BloomFamily,
    "GPT2LMHeadModel": GPT2Family,
    "Qwen2ForCausalLM": Qwen2Family,
}


def fast_model(lm: LanguageModel) -> FastModel:
    """Build the fast implementation of ``lm`` (raises :class:`Unsupported` for other families)."""
    hf = lm.bridge.original_model
    arch = type(hf).__name__
    if arch not in FAMILIES:
        raise Unsupported(f"no fast path for {arch} (supported: {', '.join(FAMILIES)})")
    fam = FAMILIES[arch](lm)
    return FastModel(
        family=fam, n_layers=lm.n_layers, d_model=lm.d_model, d_mlp=lm.d_mlp,
        n_heads=fam.H, vocab=int(hf.get_output_embeddings().weight.shape[0]),
        itemsize=torch.empty((), dtype=lm.dtype).element_size(),
    )


class GoldProb(torch.autograd.Function):
    """``f`` = p(gold) or log p(gold) from final hidden states ``t`` [n, d] and the unembedding ``W`` [vocab, d].

    Same value and gradient as ``softmax(t @ W.T + b)[:, gold]`` (or its log), computed
    as ``W @ t.T`` ([vocab, n]; the faster GEMM layout for a wide vocabulary) with
    one softmax pass; backward: ``df/dt = c * (W[gold] - p @ W)`` with ``c = p_gold``
    (probability) or ``1`` (log-probability).
    """

    @staticmethod
    def forward(ctx, t: torch.Tensor, W: torch.Tensor, b: torch.Tensor | None, gold: int, log_prob: bool):
        z = torch.mm(W, t.t()) if b is None else torch.addmm(b[:, None], W, t.t())  # [vocab, n]
        m = z.amax(0)
        z_gold = z[gold].clone()
        e = z.sub_(m).exp_()  # in place: a fresh [vocab, n] buffer costs more than the arithmetic
        s = e.sum(0)
        lp = z_gold - (m + s.log())  # [n]
        ctx.save_for_backward(e.div_(s), W, lp)  # softmax [vocab, n]
        ctx.gold, ctx.log_prob = gold, log_prob
        return lp if log_prob else lp.exp()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        p, W, lp = ctx.saved_tensors
        coef = grad if ctx.log_prob else grad * lp.exp()  # [n]
        return (W[ctx.gold][None] - p.t() @ W) * coef[:, None], None, None, None, None


class StagedForward:
    """Captum forward function: ``f(x [N, d_mlp], layer_idx [N]) -> [N]``.

    Row ``i`` is the model output with layer ``layer_idx[i]``'s activation at
    position ``p`` replaced by ``x[i]``; ``f`` is the gold token's probability
    (or log-probability) at ``p``.
    """

    def __init__(self, model: FastModel, ids: torch.Tensor, p: int, gold: int, *,
                 log_prob: bool, hooks: FwdHooks | None, lm: LanguageModel):
        self.model = model
        self.fam = model.family
        self.p = p
        self.gold = gold
        self.log_prob = log_prob
        self.hooks = Hooks.parse(lm, hooks)
        self.f_zero: dict[int, float] = {}  # layer -> f with that layer's activation at p zeroed
        with torch.no_grad():
            self.cache: CleanCache = self.fam.clean(ids, self.hooks)
            self.f_clean = float(self._f(self.cache.final[p][None])[0])

    def activations(self, layers: Sequence[int]) -> torch.Tensor:
        """Clean (hooked) activations at ``p``: ``[len(layers), d_mlp]``."""
        return torch.stack([self.cache.act[l][self.p] for l in layers])

    def _f(self, h: torch.Tensor) -> torch.Tensor:  # last hidden state at p [n, d] -> f [n]
        W, b = self.fam.unembed()
        return GoldProb.apply(self.fam.final(h), W, b, self.gold, self.log_prob)

    def __call__(self, x: torch.Tensor, layer_idx: torch.Tensor) -> torch.Tensor:
        fam, c, p, hooks = self.fam, self.cache, self.p, self.hooks
        L = self.model.n_layers
        lay = layer_idx.detach().to("cpu")
        present = set(lay.tolist())
        order: list[torch.Tensor] = []
        state: torch.Tensor | None = None  # BERT: [n, pos, d] until the last block, then [n, d]

        def join(l: int, full: bool) -> int:  # rows of layer l join at the end of the batch
            nonlocal state
            idx = (lay == l).nonzero().flatten().to(x.device)
            new = fam.join(l, x.index_select(0, idx), p, c, hooks, full)
            state = new if state is None else torch.cat([state, new])
            order.append(idx)
            return len(idx)

        for j in range(min(present) + 1, L):
            n_new = join(j - 1, full=not fam.causal) if j - 1 in present else 0
            if fam.causal:
                state = fam.block_step(j, state, p, c, hooks)
            elif j == L - 1:
                state = fam.block_query(j, state, p, c, hooks)
            else:
                state = fam.block_full(j, state, p, c, hooks, n_new)
        if L - 1 in present:
            join(L - 1, full=False)
        f = self._f(state)[torch.argsort(torch.cat(order))]  # [N]
        # f at a zero row is f_baseline of that row's layer: keep it (saves a forward pass later)
        for i in (x.detach() == 0).all(1).nonzero().flatten().tolist():
            self.f_zero[int(lay[i])] = float(f[i].detach())
        return f
