"""LRP2: language representation projection as TransformerLens hooks.

* LIRP at layer ``m``: ``h <- h - v_l^m + v_en^m`` (language l -> English-like);
* LSRP at layer ``n``: ``h <- h - v_en^n + v_l^n`` (back to language l), ``n > m``.

Both act on ``blocks.{i}.hook_resid_post``, with ``i`` a block index (the paper's
layer ``i + 1``, see :mod:`lrp2_interp.layers`); ``m = layers.EMBEDDINGS`` (-1)
shifts the embedding output (``blocks.0.hook_resid_pre``) instead, a shift point
some re-implementations use (the paper does not).  ``m == n`` is allowed and applies the
two shifts as one combined shift at that layer (which is the identity: LSRP
undoes LIRP).  ``positions="all"`` (the paper) shifts every position; a tuple of
ints (negative = from the end) shifts only those.

Use :func:`lrp2_hooks` for a ``fwd_hooks`` list that composes with other hooks,
or :func:`lrp2` as a context manager.  ``control="random"`` replaces each shift
by a random direction of the same norm (seeded): the random-direction control.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import torch

from lrp2_interp.errors import InputError
from lrp2_interp.layers import check_shift_point
from lrp2_interp.lrp2.vectors import LanguageVectors
from lrp2_interp.models.loading import FwdHooks, LanguageModel


@dataclass(frozen=True)
class LRP2Config:
    m: int
    n: int
    source: str = "en"  # the pivot language the knowledge is transferred from
    positions: Literal["all"] | tuple[int, ...] = "all"
    control: Literal["none", "random"] = "none"
    seed: int = 0

    def validate(self, n_layers: int) -> None:
        check_shift_point(self.m, n_layers, field="m")
        check_shift_point(self.n, n_layers, field="n")
        if self.m > self.n:
            raise InputError(
                f"LIRP layer m={self.m} must not come after LSRP layer n={self.n} (need m <= n)", field="m"
            )
        if self.positions != "all" and not (
            isinstance(self.positions, tuple) and all(isinstance(p, int) for p in self.positions)
        ):
            raise InputError(f"positions must be 'all' or a tuple of ints, got {self.positions!r}", field="positions")


def shifts(vectors: LanguageVectors, language: str, config: LRP2Config) -> dict[int, torch.Tensor]:
    """Layer -> ``[d_model]`` vector added to the residual stream at that layer."""
    at = vectors.at
    lirp = at(config.source, config.m) - at(language, config.m)  # to English-like
    lsrp = at(language, config.n) - at(config.source, config.n)  # back to language l
    if config.control == "random":
        gen = torch.Generator().manual_seed(config.seed)
        d = lirp.shape[-1]
        r1, r2 = torch.randn(d, generator=gen), torch.randn(d, generator=gen)
        lirp = r1 / r1.norm() * lirp.norm()
        lsrp = r2 / r2.norm() * lsrp.norm()
    if config.m == config.n:
        return {config.m: lirp + lsrp}
    return {config.m: lirp, config.n: lsrp}


@dataclass(frozen=True, eq=False)
class ShiftHook:
    """Add ``delta`` at every position, or at ``positions`` (negative = from each row's last real token).

    In a right-padded batch run through :meth:`LanguageModel.logits`, negative positions
    count from the end of each row's real tokens (read from ``lm.active_mask``); without a
    mask they count from the padded width.  A named class (not a closure) so the fast
    probing path can recognise LRP2's shifts and apply them itself.
    """

    delta: torch.Tensor  # [d_model]
    positions: Literal["all"] | tuple[int, ...] = "all"
    lm: LanguageModel | None = None

    def __call__(self, resid: torch.Tensor, hook=None) -> torch.Tensor:  # resid: [batch, pos, d_model]
        d = self.delta.to(device=resid.device, dtype=resid.dtype)
        if self.positions == "all":
            return resid + d
        b, width = resid.shape[:2]
        mask = self.lm.active_mask if self.lm is not None else None
        lengths = (
            mask.sum(1)
            if mask is not None and mask.shape == (b, width)
            else torch.full((b,), width, device=resid.device)
        ).to(resid.device)  # [batch]
        pos = torch.tensor(self.positions, device=resid.device)  # [k]
        idx = torch.where(pos < 0, lengths[:, None] + pos[None, :], pos[None, :].expand(b, -1))  # [batch, k]
        valid = (idx >= 0) & (idx < width)
        rows = torch.arange(b, device=resid.device)[:, None].expand_as(idx)
        add = torch.zeros_like(resid)
        add[rows[valid], idx[valid]] = d
        return resid + add


def _shift_hook(delta: torch.Tensor, positions: Literal["all"] | tuple[int, ...], lm: LanguageModel | None = None):
    return ShiftHook(delta, positions, lm)


def lrp2_hooks(lm: LanguageModel, vectors: LanguageVectors, language: str, config: LRP2Config) -> FwdHooks:
    """Forward hooks implementing LRP2 for queries in ``language``.

    For the pivot language itself the shifts are zero (English is unchanged).
    """
    config.validate(lm.n_layers)
    vectors.check_model(lm)
    return [
        (lm.shift_point(layer), _shift_hook(delta, config.positions, lm))
        for layer, delta in shifts(vectors, language, config).items()
    ]


@contextmanager
def lrp2(lm: LanguageModel, vectors: LanguageVectors, language: str, config: LRP2Config) -> Iterator[LanguageModel]:
    """Context manager: every forward pass of ``lm.bridge`` inside runs with LRP2."""
    hooks = lrp2_hooks(lm, vectors, language, config)
    with lm.bridge.hooks(fwd_hooks=hooks):
        yield lm
