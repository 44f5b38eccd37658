"""What the fast engines need of a model family: the causal-decoder and the encoder contracts.

Both kinds give ``clean(ids, hooks)`` -- the full forward pass on one prompt with the caller's hooks,
returning a :class:`~lrp2_interp.attribution.fast.family_parts.CleanCache` of per-layer tensors -- and
``final(h)`` (final norm / MLM transform) and ``unembed()`` (``W [vocab, d]``, ``b``), applied at the
target position only; ``head(h)`` = logits ``[n, vocab]``.

* causal decoders (:class:`CausalFamily`: :class:`~lrp2_interp.attribution.fast.generic.GenericDecoder`,
  every causal LM): the decoder engine :class:`~lrp2_interp.attribution.fast.decoder_engine.BatchedForward`
  calls the model's own decoder layers at the target position against the cached keys/values;
* encoders (:class:`EncoderFamily`, bidirectional: later blocks see all positions), run by
  :class:`lrp2_interp.attribution.fast.ig.StagedForward`: ``join(l, x, p, cache, hooks, full)`` -- the
  output of block ``l`` when the FFN activation at ``p`` is replaced by ``x`` ``[n, d_mlp]`` --,
  ``block_full`` / ``block_query`` and ``clean_row`` (the rows at alpha = 1 share one pass).

The engine dispatches on the explicit ``kind`` tag (:class:`FamilyKind`), never on which methods
an object happens to have; :data:`Family` is the tagged union of the two contracts.
"""

from __future__ import annotations

from enum import Enum
from typing import Literal, Protocol

import torch

from lrp2_interp.attribution.fast.family_parts import CleanCache, Hooks

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

    def final(self, h: torch.Tensor) -> torch.Tensor: ...  # [n, d] -> [n, d]

    def unembed(self) -> tuple[torch.Tensor, torch.Tensor | None]: ...  # W [vocab, d], b [vocab] | None

    def head(self, h: torch.Tensor) -> torch.Tensor: ...  # [n, d] -> [n, vocab]


class CausalFamily(FamilyCore, Protocol):
    """Causal decoder: the decoder engine (``fast.decoder_engine.BatchedForward``) calls its HF layers itself."""

    @property
    def kind(self) -> Literal[FamilyKind.CAUSAL]: ...


class EncoderFamily(FamilyCore, Protocol):
    """Bidirectional encoder: later blocks see every position; the rows at alpha = 1 can share one pass."""

    @property
    def kind(self) -> Literal[FamilyKind.ENCODER]: ...

    def join(
        self, l: int, x: torch.Tensor, p: int, c: CleanCache, hooks: Hooks, full: bool
    ) -> torch.Tensor: ...  # x [n, d_mlp] -> [n, pos, d] (full) or [n, d]

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
