"""The fast exact path's model table and shared pieces, and the encoder engine (BERT) for integrated gradients.

Integrated gradients for layer ``l`` evaluates the model ``n_steps`` times with the
FFN activation of layer ``l`` at the target position ``p`` scaled by ``alpha``;
every other activation is computed normally.  Nothing before that activation can
change, so the function Captum differentiates starts from a cached clean pass
instead of re-running the model.  :func:`fast_model` picks the family
(:data:`~lrp2_interp.attribution.fast.families.Family`, told apart by its ``kind`` tag): every causal
decoder (BLOOM, GPT-2, Qwen2, Gemma-3, ...) is :class:`lrp2_interp.attribution.fast.generic.GenericDecoder`,
run by the decoder engine :class:`lrp2_interp.attribution.fast.decoder_engine.BatchedForward`; BERT is
hand-written (:mod:`lrp2_interp.attribution.fast.bert`) and run by :class:`StagedForward` here:

* block ``l``'s output is rebuilt from the cached attention output and the patched activation (``join``);
* blocks ``l+1 .. L-2`` run on all positions (bidirectional), the last block only for the query at ``p``;
* the vocabulary projection is applied at ``p`` only (:class:`GoldProb`, shared by both engines);
* the rows at alpha = 1 (the clean activation) of all layers share one single-row pass whose one
  backward gives every layer's gradient there (:class:`SharedClean`).

One call carries the rows of *all* attributed layers (Captum's
``additional_forward_args`` hands each row its layer).  Rows join the batch at
the block after their layer, so every block is one batched matmul over all rows
that pass through it.  The result is the same function of the patched
activation as the TransformerLens reference path (tests check it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from lrp2_interp.attribution.fast.bert import BertFamily
from lrp2_interp.attribution.fast.families import EncoderFamily, Family, FamilyKind
from lrp2_interp.attribution.fast.family_parts import CleanCache, Hooks
from lrp2_interp.attribution.fast.generic import GenericDecoder
from lrp2_interp.attribution.memory import ModelShape, fast_row_bytes
from lrp2_interp.errors import Unsupported
from lrp2_interp.models.loading import FwdHooks, LanguageModel

__all__ = ["FAMILIES", "FastModel", "GoldProb", "SharedClean", "StagedForward", "fast_model"]


@dataclass(frozen=True)
class FastModel:
    """A family implementation plus the sizes the memory estimate needs."""

    family: Family
    n_layers: int
    d_model: int
    d_mlp: int
    n_heads: int
    vocab: int
    itemsize: int

    @property
    def causal(self) -> bool:
        return self.family.kind is FamilyKind.CAUSAL

    def bytes_per_row(self, n_pos: int, layers: Sequence[int]) -> int:
        """Rough autograd memory of one row (one step of one layer), averaged over ``layers``."""
        shape = ModelShape(self.n_layers, self.d_model, self.d_mlp, self.n_heads, self.vocab, causal=self.causal)
        return fast_row_bytes(shape, n_pos, layers, self.itemsize)


# HF architecture -> hand-written functional implementation.  Only BERT has one (bidirectional: the generic
# decoder path does not apply); every causal decoder takes :class:`GenericDecoder`.  The hand-written
# BLOOM/GPT-2/Qwen2 forwards were removed: the generic path gives the same numbers (tests) within ~15 % of
# their CPU time (benchmarks/README.md, "generic decoder path").
FAMILIES: dict[str, Callable[[LanguageModel], Family]] = {"BertForMaskedLM": BertFamily}


def fast_model(lm: LanguageModel) -> FastModel:
    """Build the fast implementation of ``lm``: a hand-written family, else the generic decoder path for
    causal LMs (raises :class:`Unsupported` when neither applies)."""
    hf = lm.bridge.original_model
    arch = type(hf).__name__
    placed = {str(p.device) for p in hf.parameters()}
    if len(placed) > 1 or "meta" in placed:  # accelerate's device_map: weights offloaded or spread over devices
        raise Unsupported(
            f"the model is split by a device_map ({', '.join(sorted(placed))}): the fast attribution path reads "
            "weights directly, so the reference path runs"
        )
    if arch in FAMILIES:
        fam = FAMILIES[arch](lm)
    elif lm.kind == "causal":
        fam = GenericDecoder(lm)
    else:
        raise Unsupported(f"no fast path for {arch} (hand-written: {', '.join(FAMILIES)}; generic: causal LMs)")
    return FastModel(
        family=fam,
        n_layers=lm.n_layers,
        d_model=lm.d_model,
        d_mlp=lm.d_mlp,
        n_heads=fam.H,
        vocab=int(hf.get_output_embeddings().weight.shape[0]),
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
    def forward(
        ctx, t: torch.Tensor, W: torch.Tensor, b: torch.Tensor | None, gold: int | torch.Tensor, log_prob: bool
    ):  # gold: one token for every row, or one per row ([n] long)
        z = torch.mm(W, t.t()) if b is None else torch.addmm(b[:, None], W, t.t())  # [vocab, n]
        m = z.amax(0)
        if torch.is_tensor(gold):
            gold = gold.to(z.device)
            z_gold = z.gather(0, gold[None])[0]
        else:
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
        w_gold = W.index_select(0, ctx.gold) if torch.is_tensor(ctx.gold) else W[ctx.gold][None]  # [n | 1, d]
        return (w_gold - p.t() @ W) * coef[:, None], None, None, None, None


class SharedClean(torch.autograd.Function):
    """``f`` of the rows that carry their layer's clean activation (alpha = 1), from one shared pass.

    Every such row is the clean pass, and its gradient is ``d f / d act_l[p]`` there: one backward
    through :meth:`BertFamily.clean_row` (one row, all later layers, zero perturbations ``e[l]``)
    gives it for every layer at once, instead of one batch row per layer.  Forward: ``x`` [k, d_mlp]
    (the clean rows), ``lay`` [k] -> ``f`` [k] (all the clean ``f``); backward:
    ``grad[i] * d f / d e[lay[i]]`` (the graph is kept: Captum may differentiate twice).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, lay: list[int], graph: tuple):  # graph: (f [1], {layer: e [1, d_mlp]})
        ctx.f, ctx.e = graph
        ctx.lay = lay
        return ctx.f.detach().expand(len(lay)).clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        layers = list(ctx.e)
        g = dict(
            zip(
                layers,
                torch.autograd.grad(ctx.f, [ctx.e[l] for l in layers], torch.ones_like(ctx.f), retain_graph=True),
            )
        )
        return torch.cat([g[l] for l in ctx.lay]) * grad[:, None], None, None


class StagedForward:
    """Captum forward function of an encoder: ``f(x [N, d_mlp], layer_idx [N]) -> [N]``.

    Row ``i`` is the model output with layer ``layer_idx[i]``'s activation at
    position ``p`` replaced by ``x[i]``; ``f`` is the gold token's probability
    (or log-probability) at ``p``.  Rows equal to their layer's clean activation
    (alpha = 1, e.g. ``kn_linspace``'s last step) are all the clean pass: they share
    one pass (``clean_row``, :class:`SharedClean`) instead of one batch row per layer each.
    """

    def __init__(
        self,
        model: FastModel,
        ids: torch.Tensor,
        p: int,
        gold: int,
        *,
        log_prob: bool,
        hooks: FwdHooks | None,
        lm: LanguageModel,
    ):
        self.model = model
        fam = model.family
        if fam.kind is not FamilyKind.ENCODER:
            raise Unsupported("causal decoders run on fast.decoder_engine.BatchedForward, not StagedForward")
        self.fam: EncoderFamily = fam
        self.p = p
        self.gold = gold
        self.log_prob = log_prob
        self.hooks = Hooks.parse(lm, hooks)
        self.f_zero: dict[int, float] = {}  # layer -> f with that layer's activation at p zeroed
        self._f_clean: float | None = None  # f of the clean pass (lazy: an alpha = 1 row gives it for free)
        with torch.no_grad():
            self.cache: CleanCache = self.fam.clean(ids, self.hooks)
        self.act_p = torch.stack([a[p] for a in self.cache.act])  # [L, d_mlp]

    @property
    def f_clean(self) -> float:
        if self._f_clean is None:
            assert self.cache.final is not None
            with torch.no_grad():
                self._f_clean = float(self._f(self.cache.final[self.p][None])[0])
        return self._f_clean

    def activations(self, layers: Sequence[int]) -> torch.Tensor:
        """Clean (hooked) activations at ``p``: ``[len(layers), d_mlp]``."""
        return self.act_p[list(layers)]

    def _f(self, h: torch.Tensor) -> torch.Tensor:  # last hidden state at p [n, d] -> f [n]
        W, b = self.fam.unembed()
        return GoldProb.apply(self.fam.final(h), W, b, self.gold, self.log_prob)

    def __call__(self, x: torch.Tensor, layer_idx: torch.Tensor) -> torch.Tensor:
        lay = layer_idx.detach().to("cpu")
        clean = (x.detach() == self.act_p.to(x.device)[lay.to(x.device)]).all(1).cpu()  # rows at alpha = 1
        fam = self.fam
        if torch.is_grad_enabled() and x.requires_grad and int(clean.sum()) >= 2:
            i_c, i_s = clean.nonzero().flatten(), (~clean).nonzero().flatten()
            e = {
                l: torch.zeros(1, x.shape[1], dtype=x.dtype, device=x.device, requires_grad=True)
                for l in sorted(set(lay[i_c].tolist()))
            }
            f_s = self._f(fam.clean_row(e, self.p, self.cache, self.hooks))  # [1], a graph of its own
            f = SharedClean.apply(x[i_c.to(x.device)], lay[i_c].tolist(), (f_s, e))
            self._f_clean = float(f_s.detach()[0])
            if len(i_s):
                f = torch.cat([f, self._staged(x[i_s.to(x.device)], lay[i_s])])
                f = f[torch.argsort(torch.cat([i_c, i_s]).to(x.device))]
        else:
            f = self._staged(x, lay)
        # f at a zero row is f_baseline of that row's layer: keep it (saves a forward pass later)
        for i in (x.detach() == 0).all(1).nonzero().flatten().tolist():
            self.f_zero[int(lay[i])] = float(f[i].detach())
        return f

    def _staged(self, x: torch.Tensor, lay: torch.Tensor) -> torch.Tensor:
        """The batched staged pass of rows ``x`` [N, d_mlp] of layers ``lay`` [N] (CPU) -> f [N]."""
        fam, c, p, hooks = self.fam, self.cache, self.p, self.hooks
        L = self.model.n_layers
        present = set(lay.tolist())
        order: list[torch.Tensor] = []
        state: torch.Tensor | None = None  # [n, pos, d] until the last block, then [n, d]

        def join(l: int, full: bool) -> int:  # rows of layer l join at the end of the batch
            nonlocal state
            idx = (lay == l).nonzero().flatten().to(x.device)
            new = fam.join(l, x.index_select(0, idx), p, c, hooks, full)
            state = new if state is None else torch.cat([state, new])
            order.append(idx)
            return len(idx)

        for j in range(min(present) + 1, L):
            n_new = join(j - 1, full=True) if j - 1 in present else 0
            assert state is not None  # the rows of layer min(present) joined first
            if j == L - 1:
                state = fam.block_query(j, state, p, c, hooks)
            else:
                state = fam.block_full(j, state, p, c, hooks, n_new)
        if L - 1 in present:
            join(L - 1, full=False)
        assert state is not None
        return self._f(state)[torch.argsort(torch.cat(order))]  # [N]
