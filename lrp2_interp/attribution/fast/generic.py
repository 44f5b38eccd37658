"""The causal-decoder family of the fast path: the HF model rebuilt on the same weights, and its recorded clean pass.

Any causal decoder that TransformerBridge wraps gets the fast knowledge-neuron
path without re-implementing its maths (Gemma-3 with GQA, q/k norms, pre- and
post-norms, scaled embeddings and local/global RoPE; tested on Gemma-3, BLOOM, GPT-2 and Qwen2):

* :func:`pristine_model` rebuilds the HF model class (``type(original_model)``)
  on the *same* weight tensors (no copy), without the bridge's wrappers;
* :meth:`GenericDecoder.clean` runs that model once on the prompt, recording what
  every decoder layer was called with (masks, RoPE tables, ALiBi, ...), the
  keys/values each attention module stored (via :class:`_RecordingCache`), the
  FFN activations and the block outputs, with the caller's hooks applied;
* :class:`lrp2_interp.attribution.fast.decoder_engine.BatchedForward` then calls decoder layer ``j``
  itself (``layers[j]``, with a hook on ``mlp_out[j]``) on the target position only, against those
  keys/values and the recorded call arguments cut to that position.

Which HF module is which comes from the bridge (``blocks.{j}`` -> the decoder
layer, ``blocks.{j}.mlp.out`` -> the FFN output projection whose *input* is
``mlp.hook_post``, ``ln_final``, ``unembed``), so nothing here names a family.
A call argument the engine does not know how to cut raises :class:`Unsupported` rather than guessing.
"""

from __future__ import annotations

import copy
import inspect
import weakref
from typing import Any, Literal

import torch
from transformers import DynamicCache

from lrp2_interp.attribution.fast.families import FamilyKind
from lrp2_interp.attribution.fast.family_parts import CleanCache, HookKind, Hooks
from lrp2_interp.errors import Unsupported
from lrp2_interp.models.loading import LanguageModel

__all__ = ["GenericDecoder", "pristine_model"]

_STRIP = "._original_component"


# hf model -> (its tensors' storage, the pristine copy): rebuilding costs more than a short prompt's attribution
_PRISTINE: weakref.WeakKeyDictionary[torch.nn.Module, tuple[tuple[int, ...], torch.nn.Module]] = (
    weakref.WeakKeyDictionary()
)


def _storage(hf: torch.nn.Module) -> tuple[int, ...]:
    return tuple(t.data_ptr() for t in (*hf.parameters(), *hf.buffers()))


def pristine_model(hf: torch.nn.Module) -> torch.nn.Module:
    """A fresh instance of ``type(hf)`` holding ``hf``'s parameters and buffers (shared storage, no grads).

    Built once per model and reused while ``hf`` holds the same tensors (a reassigned weight rebuilds it).
    """
    cached = _PRISTINE.get(hf)
    if cached is not None and cached[0] == _storage(hf):
        return cached[1]
    model = _rebuild(hf)
    _PRISTINE[hf] = (_storage(hf), model)
    return model


def _rebuild(hf: torch.nn.Module) -> torch.nn.Module:
    from transformers import PreTrainedModel
    from transformers.initialization import no_init_weights

    if not isinstance(hf, PreTrainedModel):
        raise Unsupported(f"{type(hf).__name__} is not a transformers PreTrainedModel")
    with torch.device("meta"), no_init_weights():  # every tensor is replaced below: initialising them is waste
        model = type(hf)(copy.deepcopy(hf.config))
    own = {k.replace(_STRIP, ""): v for k, v in hf.state_dict().items()}
    model.load_state_dict(own, strict=False, assign=True)
    buffers = {k.replace(_STRIP, ""): v for k, v in hf.named_buffers()}
    for name, buf in list(model.named_buffers()):
        if buf.is_meta:  # non-persistent buffers (RoPE tables, embedding scales) are not in the state dict
            if name not in buffers:
                raise Unsupported(f"cannot rebuild buffer {name!r} of {type(hf).__name__}")
            owner, _, leaf = name.rpartition(".")
            model.get_submodule(owner).register_buffer(leaf, buffers[name], persistent=False)
    meta = [n for n, t in list(model.named_parameters()) + list(model.named_buffers()) if t.is_meta]
    if meta:
        raise Unsupported(f"{type(hf).__name__}: tensors not found in the wrapped model: {meta[:3]}")
    return model.eval().requires_grad_(False)


class _RecordingCache(DynamicCache):
    """A DynamicCache that also keeps the exact key/value states each layer handed it (clean pass)."""

    def __init__(self, config: Any) -> None:  # config: the model's PretrainedConfig
        super().__init__(config=config)
        self.recorded: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def update(self, key_states, value_states, layer_idx, *args, **kwargs):
        self.recorded[layer_idx] = (key_states.detach(), value_states.detach())  # [1, kv_heads, pos, d_head]
        return super().update(key_states, value_states, layer_idx, *args, **kwargs)


class GenericDecoder:
    """Fast-path family for any causal HF decoder (see the module docstring)."""

    kind: Literal[FamilyKind.CAUSAL] = FamilyKind.CAUSAL

    def __init__(self, lm: LanguageModel):
        if lm.kind != "causal":
            raise Unsupported("the generic fast path is for causal decoders")
        hf = lm.bridge.original_model
        cfg = hf.config.get_text_config()
        if getattr(cfg, "final_logit_softcapping", None) or getattr(cfg, "use_bidirectional_attention", False):
            raise Unsupported("final logit soft-capping / bidirectional attention")
        names = {id(m): n.replace(_STRIP, "") for n, m in hf.named_modules()}

        def path(component) -> str:
            orig = getattr(component, "original_component", None)
            if id(orig) not in names:
                raise Unsupported(f"bridge component {type(component).__name__} has no HF module")
            return names[id(orig)]

        b = lm.bridge
        try:
            paths = (
                [path(blk) for blk in b.blocks],
                [path(blk.mlp.out) for blk in b.blocks],
                path(b.ln_final),
                path(b.unembed),
            )
        except AttributeError as err:
            raise Unsupported(f"bridge lacks a component the generic path needs: {err}") from None
        self.model = pristine_model(hf)
        self.layers = [self.model.get_submodule(q) for q in paths[0]]
        self.mlp_out = [self.model.get_submodule(q) for q in paths[1]]
        self.norm = self.model.get_submodule(paths[2])
        head = self.model.get_submodule(paths[3])
        if not isinstance(head, torch.nn.Linear):  # GoldProb needs W [vocab, d] and b
            raise Unsupported(f"unembedding {type(head).__name__} is not a Linear")
        self.lm_head: torch.nn.Linear = head
        self.L = len(self.layers)
        self.H = int(b.cfg.n_heads)
        self._signatures = [inspect.signature(layer.forward) for layer in self.layers]
        params = inspect.signature(self.model.forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"
        # the clean pass needs no logits: where the model can, it projects only the last position
        self._clean_kwargs = {"logits_to_keep": 1} if "logits_to_keep" in params else {}

    # ------------------------------------------------------------------ hooks on HF modules
    @staticmethod
    def _with(handles, fn):
        try:
            return fn()
        finally:
            for h in handles:
                h.remove()

    def clean(self, ids: torch.Tensor, hooks: Hooks) -> CleanCache:
        c = CleanCache([], [], [], [], [])
        calls: list[dict[str, Any]] = []
        handles = []

        def record_call(j):
            def pre(mod, args, kwargs):
                sig = self._signatures[j]
                bound = dict(sig.bind(*args, **kwargs).arguments)
                for name, param in sig.parameters.items():  # flatten **kwargs into named arguments
                    if param.kind is inspect.Parameter.VAR_KEYWORD:
                        bound.update(bound.pop(name, {}))
                c.block_in.append(bound.pop("hidden_states")[0].detach())
                calls.append(bound)

            return pre

        def mlp_post(j):
            def pre(mod, args):
                a_pre = args[0]
                a = hooks.apply(HookKind.MLP_POST, j, a_pre)
                c.act_pre.append(a_pre[0].detach())
                c.act.append(a[0].detach())
                return (a, *args[1:])

            return pre

        def resid_post(j):
            def post(mod, args, out):
                h = out[0] if isinstance(out, tuple) else out
                c.resid_pre.append(h[0].detach())
                h2 = hooks.apply(HookKind.RESID_POST, j, h)
                return (h2, *out[1:]) if isinstance(out, tuple) else h2

            return post

        for j, layer in enumerate(self.layers):
            handles.append(layer.register_forward_pre_hook(record_call(j), with_kwargs=True))
            handles.append(self.mlp_out[j].register_forward_pre_hook(mlp_post(j)))
            handles.append(layer.register_forward_hook(resid_post(j)))
        rec = _RecordingCache(self.model.config)
        final: list[torch.Tensor] = []
        handles.append(self.norm.register_forward_pre_hook(lambda mod, args: final.append(args[0][0].detach())))
        self._with(
            handles,
            lambda: self.model(input_ids=ids[None], use_cache=True, **{self._cache_arg: rec}, **self._clean_kwargs),
        )
        if len(rec.recorded) != self.L or len(calls) != self.L or len(c.act) != self.L:
            raise Unsupported("the decoder layers did not each store keys/values and run their FFN once")
        c.keys = [rec.recorded[j][0] for j in range(self.L)]  # [1, kv_heads, pos, d_head]
        c.values = [rec.recorded[j][1] for j in range(self.L)]
        c.mid = [torch.empty(0)] * self.L  # not needed: the layer itself recomputes its residual
        c.final = final[-1]
        c.layer_args = calls  # per layer: the clean call's arguments by name (hidden_states removed)
        return c

    # ------------------------------------------------------------------ family contract
    def final(self, h: torch.Tensor) -> torch.Tensor:  # [n, d] -> [n, d]
        return self.norm(h)

    def unembed(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.lm_head.weight, self.lm_head.bias

    def head(self, h: torch.Tensor) -> torch.Tensor:  # [n, d] -> [n, vocab]
        return self.lm_head(self.final(h))
