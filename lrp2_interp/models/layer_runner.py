"""Run a model's own blocks on given residual states, replaying the masks and positions of a clean run.

TransformerBridge always runs the whole model and the full unembedding.  To do
only the necessary work, :class:`LayerRunner`

* runs a forward pass through the bridge (so every user hook fires exactly as
  usual) and *captures*, for every block, the arguments it was called with (the
  attention mask, position embeddings, ALiBi, cache position, ... exactly as the HF
  model built them) and its output (``blocks.{l}.hook_resid_post`` after hooks);
  the pass stops at the input of the unembedding, which is returned instead of
  the logits;
* *replays* block ``l`` on new residual states with those same arguments, through
  the same bridge modules (so hooks inside the block fire too);
* applies the model's final norm (or BERT's MLM transform) and unembedding to
  chosen rows only (:meth:`head_in`, :meth:`logits`), with Gemma's final soft-capping.

Causal prefixes: a prefix pass records each block's keys/values in a
:class:`KVRecorder`; a continuation pass gets a recorder that prepends them
(expanded to one prefix per continuation row), standing in for the HF cache.

Use the runner as a context manager (``with LayerRunner(lm) as runner:``): while
active it passes the HF cache to each attention bridge under the name the bridge
reads (``past_key_values``); transformers 5 layers pass it as ``cache``, which the
bridge's attention ignores, so without this a cached pass silently drops its prefix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from lrp2_interp.errors import Unsupported
from lrp2_interp.layers import EMBEDDINGS
from lrp2_interp.models.loading import LanguageModel


class _Stop(Exception):
    def __init__(self, tensor: torch.Tensor) -> None:
        super().__init__("stopped at the unembedding")
        self.tensor = tensor


class KVRecorder:
    """Stands in for the HF cache in block calls: records each call's keys/values, prepends a prefix's.

    ``prefix`` maps a layer index to that layer's ``(keys, values)`` ``[n_prefix, heads, pos, d_head]``;
    ``index`` ``[rows]`` says which prefix row each row of the call continues.
    """

    def __init__(
        self, prefix: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = None, index: torch.Tensor | None = None
    ) -> None:
        if (prefix is None) != (index is None):
            raise ValueError("KVRecorder takes a prefix together with its row index, or neither")
        self.prefix, self.index = prefix, index
        self.kv: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def update(self, k: torch.Tensor, v: torch.Tensor, layer_idx: int, *args, **kwargs):
        self.kv[layer_idx] = (k, v)
        if self.prefix is not None and self.index is not None:  # set together (see __init__)
            pk, pv = self.prefix[layer_idx]
            index = self.index.to(pk.device)  # a device_map may put this layer on another device
            k = torch.cat([pk.index_select(0, index).to(k.device), k], dim=-2)
            v = torch.cat([pv.index_select(0, index).to(v.device), v], dim=-2)
        return k, v


def _is_cache(x: Any) -> bool:
    from transformers.cache_utils import Cache

    return isinstance(x, (Cache, KVRecorder))


def cache_from_recorded(kv: dict[int, tuple[torch.Tensor, torch.Tensor]], index: torch.Tensor):
    """A fresh HF ``DynamicCache`` (every layer full, no sliding truncation) holding ``kv`` rows ``index``."""
    from transformers.cache_utils import DynamicCache

    return DynamicCache(
        ddp_cache_data=[
            (kv[j][0].index_select(0, index.to(kv[j][0].device)), kv[j][1].index_select(0, index.to(kv[j][1].device)))
            for j in sorted(kv)
        ]
    )


@dataclass
class BlockCall:
    """The arguments one block received in a captured run; ``args[0]`` / ``hidden_states`` is replaced on replay."""

    args: tuple
    kwargs: dict


@dataclass
class Capture:
    calls: list[BlockCall]  # one per layer
    states: list[torch.Tensor]  # [b, pos, d] output of each block (after its hooks)
    head_in: torch.Tensor  # [b, pos, d] input of the unembedding
    kv: dict[int, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)  # recorded keys/values

    def state(self, j: int) -> torch.Tensor:
        """``[b, pos, d]`` residual state after block ``j``; ``j == EMBEDDINGS`` (-1): block 0's input.

        A plain ``states[-1]`` would be the *last* block's output, not the embedding output.
        """
        if j == EMBEDDINGS:
            call = self.calls[0]
            return call.args[0] if call.args else call.kwargs["hidden_states"]
        return self.states[j]


class LayerRunner:
    """Capture, replay and head of one model (see the module docstring)."""

    def __init__(self, lm: LanguageModel) -> None:
        bridge = lm.bridge
        if not hasattr(bridge, "blocks") or not hasattr(bridge, "unembed"):
            raise Unsupported(f"{lm.name}: no blocks/unembed components")
        self.lm = lm
        self.blocks = list(bridge.blocks)
        self._alias: list = []
        self.unembed = bridge.unembed
        hf = bridge.original_model
        if lm.kind == "masked":
            cls = getattr(hf, "cls", None)
            self.tail = getattr(getattr(cls, "predictions", None), "transform", None)
        else:
            self.tail = getattr(bridge, "ln_final", None)
        cfg = hf.config
        self.softcap = getattr(getattr(cfg, "text_config", cfg), "final_logit_softcapping", None)

    def __enter__(self) -> LayerRunner:
        def alias(mod, args, kwargs):
            if kwargs.get("cache") is not None and kwargs.get("past_key_values") is None:
                kwargs = {**kwargs, "past_key_values": kwargs["cache"]}
            return args, kwargs

        self._alias = [
            blk.attn.register_forward_pre_hook(alias, with_kwargs=True) for blk in self.blocks if hasattr(blk, "attn")
        ]
        return self

    def __exit__(self, *exc) -> None:
        for h in self._alias:
            h.remove()
        self._alias = []

    # ---- capture ----
    def capture(self, run: Callable[[], Any], *, states: bool = True) -> Capture:
        """Call ``run`` (a bridge forward), recording block calls/outputs; stop at the unembedding."""
        n = len(self.blocks)
        calls: list[BlockCall | None] = [None] * n
        outs: list[torch.Tensor | None] = [None] * n
        handles = []
        for j, blk in enumerate(self.blocks):

            def pre(mod, args, kwargs, j=j):
                calls[j] = BlockCall(tuple(args), dict(kwargs))

            def post(mod, args, kwargs, out, j=j):
                outs[j] = out[0] if isinstance(out, tuple) else out

            handles.append(blk.register_forward_pre_hook(pre, with_kwargs=True))
            if states:
                handles.append(blk.register_forward_hook(post, with_kwargs=True))

        def stop(mod, args):
            raise _Stop(args[0])

        handles.append(self.unembed.register_forward_pre_hook(stop))
        try:
            run()
        except _Stop as s:
            head_in = s.tensor
        else:
            raise Unsupported("the forward pass never reached the unembedding")
        finally:
            for h in handles:
                h.remove()
        if any(c is None for c in calls):
            raise Unsupported("some block was not called in the captured pass")
        return Capture(calls, outs if states else [], head_in)  # type: ignore[arg-type]

    # ---- replay ----
    def run_block(self, j: int, call: BlockCall, hidden: torch.Tensor, cache: KVRecorder | None = None) -> torch.Tensor:
        """Output ``[b, pos, d]`` of block ``j`` on ``hidden`` with the captured masks/positions."""
        kwargs = {k: (cache if _is_cache(v) else v) for k, v in call.kwargs.items()}
        if call.args:
            args = (hidden,) + tuple(cache if _is_cache(a) else a for a in call.args[1:])
        else:
            args, kwargs["hidden_states"] = (), hidden
        out = self.blocks[j](*args, **kwargs)
        return out[0] if isinstance(out, tuple) else out

    # ---- head ----
    def head_in(self, last_state: torch.Tensor) -> torch.Tensor:
        """Unembedding input from the last block's output ``[b, pos, d]`` (final norm / MLM transform)."""
        if self.tail is None:
            raise Unsupported(f"{self.lm.name}: unknown final norm / MLM transform")
        return self.tail(last_state)

    def logits(self, u: torch.Tensor) -> torch.Tensor:
        """Float logits ``[n, vocab]`` of unembedding inputs ``u`` ``[n, d]``."""
        z = self.unembed(u[None])[0]
        if self.softcap:
            z = torch.tanh(z / self.softcap) * self.softcap
        return z.float()

    def log_probs(self, u: torch.Tensor, targets: torch.Tensor, chunk: int) -> torch.Tensor:
        """``[n, k]`` log-probabilities of ``targets`` ``[n, k]`` under rows ``u`` ``[n, d]``, ``chunk`` rows at a time."""
        out = []
        for s in range(0, u.shape[0], chunk):
            lp = torch.log_softmax(self.logits(u[s : s + chunk]), dim=-1)
            out.append(lp.gather(1, targets[s : s + chunk]))
        return torch.cat(out) if out else torch.zeros(targets.shape, dtype=torch.float32, device=u.device)
