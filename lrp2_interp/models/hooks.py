"""TransformerLens hook points: every hook name the package uses, and hooks bound to a batch's row lengths.

Hook names (built only here; :class:`~lrp2_interp.models.loading.LanguageModel` adds range checks):

* ``blocks.{l}.hook_resid_post`` -- the residual stream after block ``l``
  (BERT: after the block's output LayerNorm; pre-norm decoders: the raw residual);
* ``blocks.{l}.mlp.hook_post`` -- the FFN post-activation ("neurons") of block ``l``;
* ``blocks.0.hook_resid_pre`` -- the embedding output (HF ``hidden_states[0]``), the
  extra LRP2 shift point ``layers.EMBEDDINGS`` (see :mod:`lrp2_interp.layers` for the
  numbering of every hook point in the paper's terms);
* ``blocks.{l}.mlp.hook_pre`` -- the FFN pre-activation (gated FFNs: the gate's), whose sign is the
  sign of the activation for ReLU/GELU/SiLU (language-specific neurons);
* ``blocks.{l}.hook_mlp_out`` -- the FFN output added to the residual stream (Gemma: after its
  post-FFN norm; BLOOM: without the residual its HF MLP adds) -- the learned alignment's site;
* ``unembed.hook_in`` -- the input of the unembedding.

Positional hooks (:class:`ShiftHook`, the residual shift LRP2 and the random control are made of):
a hook that changes chosen positions counts negative positions from
each row's last real token, so it needs the row lengths of the batch it runs on.  Such a
hook is a :class:`RowLengthHook`: :func:`bind_hooks` (called by ``LanguageModel.logits``
and the fast probing path) binds it to the batch; an unbound one refuses negative positions.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol, runtime_checkable

import torch

from lrp2_interp.errors import InputError
from lrp2_interp.layers import EMBEDDINGS

HookFn = Callable[..., torch.Tensor | None]  # fn(activation, hook=HookPoint): TransformerLens passes hook by name
FwdHooks = list[tuple[str, HookFn]]
Positions = Literal["all"] | tuple[int, ...]

UNEMBED_PREFIX = "unembed"


def resid_post_hook(layer: int) -> str:
    """Name of the residual-stream hook after block ``layer``."""
    return f"blocks.{layer}.hook_resid_post"


def embed_hook() -> str:
    """Name of the embedding-output hook: the input of block 0 (HF ``hidden_states[0]``)."""
    return "blocks.0.hook_resid_pre"


def shift_point_hook(layer: int) -> str:
    """Hook of an LRP2 shift point: the embedding output for ``layers.EMBEDDINGS``, else block ``layer``'s resid_post."""
    return embed_hook() if layer == EMBEDDINGS else resid_post_hook(layer)


def mlp_post_hook(layer: int) -> str:
    """Name of the FFN post-activation hook of block ``layer`` (the knowledge neurons)."""
    return f"blocks.{layer}.mlp.hook_post"


def mlp_pre_hook(layer: int) -> str:
    """Name of the FFN pre-activation hook of block ``layer`` (gated FFNs: the gate's pre-activation)."""
    return f"blocks.{layer}.mlp.hook_pre"


def mlp_out_hook(layer: int) -> str:
    """Name of the hook on the FFN output of block ``layer`` (what the FFN adds to the residual stream)."""
    return f"blocks.{layer}.hook_mlp_out"


def unembed_hook() -> str:
    """Name of the hook on the unembedding's input."""
    return f"{UNEMBED_PREFIX}.hook_in"


def is_unembed_hook(name: str) -> bool:
    """Whether ``name`` is a hook point of the unembedding."""
    return name.startswith(UNEMBED_PREFIX)


# ---------------------------------------------------------------- hooks bound to row lengths
@runtime_checkable
class RowLengthHook(Protocol):
    """A hook whose effect depends on where each row's real tokens end."""

    def bind(self, lengths: torch.Tensor) -> HookFn:
        """The same hook for a batch whose rows have ``lengths`` ``[batch]`` real tokens."""
        ...


def row_lengths(attention_mask: torch.Tensor) -> torch.Tensor:
    """``[batch]`` real tokens per row of a right-padded ``attention_mask`` ``[batch, pos]``."""
    return attention_mask.sum(1)


def full_lengths(x: torch.Tensor) -> torch.Tensor:
    """``[batch]`` lengths of an unpadded activation ``x`` ``[batch, pos, ...]`` (every row fills the width)."""
    return torch.full((x.shape[0],), x.shape[1], dtype=torch.long, device=x.device)


def bind_hook(fn: HookFn, lengths: torch.Tensor) -> HookFn:
    """``fn`` bound to ``lengths`` ``[batch]`` when it needs them, else ``fn`` itself."""
    return fn.bind(lengths) if isinstance(fn, RowLengthHook) else fn


def bind_hooks(hooks: Sequence[tuple[str, HookFn]], attention_mask: torch.Tensor) -> FwdHooks:
    """``hooks`` with every :class:`RowLengthHook` bound to the rows of ``attention_mask`` ``[batch, pos]``."""
    lengths = row_lengths(attention_mask)
    return [(name, bind_hook(fn, lengths)) for name, fn in hooks]


def check_positions(positions: Positions) -> Positions:
    """Refuse positions that are neither ``"all"`` nor a tuple of ints (bools refused, numpy ints accepted)."""
    if positions != "all" and not (
        isinstance(positions, tuple)
        and all(isinstance(p, numbers.Integral) and not isinstance(p, bool) for p in positions)
    ):
        raise InputError(f"positions must be 'all' or a tuple of ints, got {positions!r}", field="positions")
    return positions


def position_mask(
    positions: tuple[int, ...], lengths: torch.Tensor | None, batch: int, width: int, device: torch.device
) -> torch.Tensor:
    """``[batch, width]`` bool: the chosen positions of each row (negative: from the row's last real token).

    ``lengths`` ``[batch]`` is needed when a position is negative: without it the hook
    cannot tell padding from tokens, and counting from the padded width would silently
    change a padding slot instead of the last token, so it is refused.  A position past
    a row's real tokens (or before its start) is refused too: it would shift nothing.
    """
    pos = torch.tensor(positions, dtype=torch.long, device=device)  # [k]
    if lengths is None:
        if bool((pos < 0).any()):
            raise InputError(
                f"positions {positions} count from each row's end, but this hook was not bound to the batch's "
                "row lengths: run it through LanguageModel.logits (which binds it), or call .bind(lengths)",
                field="positions",
            )
        lengths = torch.full((batch,), width, dtype=torch.long, device=device)
    if lengths.shape != (batch,):
        raise InputError(
            f"hook bound to {lengths.numel()} row lengths runs on a batch of {batch} rows",
            field="positions",
        )
    lengths = lengths.to(device)
    idx = torch.where(pos < 0, lengths[:, None] + pos[None, :], pos[None, :].expand(batch, -1))  # [batch, k]
    valid = (idx >= 0) & (idx < torch.clamp(lengths[:, None], max=width))
    if not bool(valid.all()):  # a position past a row's end would silently shift nothing (or a padding slot)
        row, k = (int(v) for v in (~valid).nonzero()[0])
        raise InputError(
            f"position {positions[k]} is past the end of row {row}, which has {int(lengths[row])} token(s)",
            field="positions",
        )
    rows = torch.arange(batch, device=device)[:, None].expand_as(idx)
    out = torch.zeros(batch, width, dtype=torch.bool, device=device)
    out[rows[valid], idx[valid]] = True
    return out


@dataclass(frozen=True, eq=False)
class ShiftHook:
    """Add ``delta`` at every position, or at ``positions`` (negative = from each row's last real token).

    Negative positions need each row's length: :meth:`bind` (called by
    :meth:`LanguageModel.logits` and the fast probing path for every batch) returns the hook
    bound to them; an unbound hook refuses negative positions instead of counting from the
    padded width.  A named class (not a closure) so the fast probing path can recognise
    LRP2's shifts and apply them itself.
    """

    delta: torch.Tensor  # [d_model]
    positions: Positions = "all"
    lengths: torch.Tensor | None = None  # [batch] real tokens per row of the batch it is bound to

    def bind(self, lengths: torch.Tensor) -> ShiftHook:
        """This hook for a batch whose rows have ``lengths`` ``[batch]`` real tokens."""
        return self if self.positions == "all" else replace(self, lengths=lengths)

    def __call__(self, resid: torch.Tensor, hook: Any = None) -> torch.Tensor:  # resid: [batch, pos, d_model]
        d = self.delta.to(device=resid.device, dtype=resid.dtype)
        if self.positions == "all":
            return resid + d
        b, width = resid.shape[:2]
        sel = position_mask(self.positions, self.lengths, b, width, resid.device)  # [batch, pos]
        add = torch.zeros_like(resid)
        add[sel] = d
        return resid + add


_WARNED: set[str] = set()  # callers already told about a deprecated keyword (one warning per process)


def renamed_hooks(fwd_hooks: FwdHooks | None, extra_hooks: FwdHooks | None, where: str) -> FwdHooks:
    """``fwd_hooks``, or the deprecated ``extra_hooks=`` of ``where`` (warns once; giving both is an error)."""
    if extra_hooks is None:
        return list(fwd_hooks or [])
    if fwd_hooks is not None:
        raise InputError(f"{where}: give fwd_hooks= only (extra_hooks= is its deprecated name)", field="extra_hooks")
    if where not in _WARNED:
        _WARNED.add(where)
        warnings.warn(
            f"{where}(extra_hooks=...) is deprecated and will be removed in the next release; use fwd_hooks=",
            DeprecationWarning,
            stacklevel=3,
        )
    return list(extra_hooks)
