"""What the fast engine needs of a model family: the causal-decoder and the encoder contracts.

:class:`lrp2_interp.attribution.fast.ig.StagedForward` resumes a model at layer ``l``'s FFN
activation at the target position ``p`` and calls, on the family it was given:

* ``clean(ids, hooks)`` -- the full forward pass on one prompt with the caller's hooks, returning
  a :class:`~lrp2_interp.attribution.fast.common.CleanCache` of per-layer tensors;
* ``join(l, x, p, cache, hooks, full)`` -- the output of block ``l`` when the FFN activation at
  ``p`` is replaced by ``x`` ``[n, d_mlp]``;
* causal decoders (:class:`CausalFamily`): ``block_step`` -- only position ``p`` changes, so later
  blocks run on that one position against the cached clean keys/values;
* encoders (:class:`EncoderFamily`, bidirectional: later blocks see all positions):
  ``block_full`` / ``block_query`` and ``clean_row`` (the rows at alpha = 1 share one pass);
* ``final(h)`` (final norm / MLM transform) and ``unembed()`` (``W [vocab, d]``, ``b``), applied
  at the target position only; ``head(h)`` = logits ``[n, vocab]``.

The engine dispatches on the explicit ``kind`` tag (:class:`FamilyKind`), never on which methods
an object happens to have; :data:`Family` is the tagged union of the two contracts.
"""

from __future__ import annotations

from enum import Enum
from typing import Literal, Protocol

import torch

from lrp2_interp.attribution.fast.common import CleanCache, Hooks

__all__ = ["CausalFamily", "EncoderFamily", "Family", "FamilyCore", "FamilyKind"]


class FamilyKind(Enum):
    """How later blocks see the patched position: causal (one position) or bidirectional (all)."""

    CAUSAL = "causal"
    ENCODER = "encoder"


class FamilyCore(Protocol):
    """The methods both kinds of family offer."""

    @property
    def H(self) -> int: ...  # attention heads (memory estimate)

    def clean(self, ids: torch.Tensor, hooks: Hooks) -> CleanCache: ...  # ids [pos]

    def join(
        self, l: int, x: torch.Tensor, p: int, c: CleanCache, hooks: Hooks, full: bool
    ) -> torch.Tensor: ...  # x [n, d_mlp] -> [n, pos, d] (encoder, full) or [n, d]

    def final(self, h: torch.Tensor) -> torch.Tensor: ...  # [n, d] -> [n, d]

    def unembed(self) -> tuple[torch.Tensor, torch.Tensor | None]: ...  # W [vocab, d], b [vocab] | None

    def head(self, h: torch.Tensor) -> torch.Tensor: ...  # [n, d] -> [n, vocab]


class CausalFamily(FamilyCore, Protocol):
    """Causal decoder: later blocks run for the target position only (``join`` returns ``[n, d]``)."""

    @property
    def kind(self) -> Literal[FamilyKind.CAUSAL]: ...

    def block_step(
        self, j: int, x: torch.Tensor, p: int, c: CleanCache, hooks: Hooks
    ) -> torch.Tensor: ...  # [n, d] -> [n, d]


class EncoderFamily(FamilyCore, Protocol):
    """Bidirectional encoder: later blocks see every position; the rows at alpha = 1 can share one pass."""

    @property
    def kind(self) -> Literal[FamilyKind.ENCODER]: ...

    def block_full(
        self,
        j: int,
        h: torch.Tensor,
        p: int,
        c: CleanCache,
        hooks: Hooks,
        n_new: int = 0,
        delta: torch.Tensor | None = None,
    ) -> torch.Tensor: ...  # [n, pos, d] -> [n, pos, d]

    def block_query(
        self, j: int, h: torch.Tensor, p: int, c: CleanCache, hooks: Hooks, delta: torch.Tensor | None = None
    ) -> torch.Tensor: ...  # [n, pos, d] -> [n, d]

    def clean_row(
        self, e: dict[int, torch.Tensor], p: int, c: CleanCache, hooks: Hooks
    ) -> torch.Tensor: ...  # e: layer -> [1, d_mlp]; -> [1, d]


Family = CausalFamily | EncoderFamily
