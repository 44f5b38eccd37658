"""LRP2: language representation projection as TransformerLens hooks.

* LIRP at layer ``m``: ``h <- h - v_l^m + v_en^m`` (language l -> English-like);
* LSRP at layer ``n``: ``h <- h - v_en^n + v_l^n`` (back to language l), ``n > m``.

Both act on ``blocks.{i}.hook_resid_post``, with ``i`` a block index (the paper's
layer ``i + 1``, see :mod:`lrp2_interp.layers`); ``m = layers.EMBEDDINGS`` (-1)
shifts the embedding output (``blocks.0.hook_resid_pre``) instead, a shift point
some re-implementations use (the paper does not).  ``m == n`` is allowed and applies the
two shifts as one combined shift at that layer (which is the identity: LSRP
undoes LIRP).  ``positions="all"`` (the paper) shifts every position; a tuple of
ints (negative = from each row's last real token) shifts only those.

Use :func:`lrp2_hooks` for a ``fwd_hooks`` list that composes with other hooks
(``LanguageModel.logits`` binds them to each batch's row lengths), or :func:`lrp2`
as a context manager (every position, or positions counted from the start: it
cannot see where a padded row ends).  ``control="random"`` replaces each shift
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
from lrp2_interp.models.hooks import FwdHooks, Positions, ShiftHook, check_positions
from lrp2_interp.models.loading import LanguageModel


@dataclass(frozen=True)
class LRP2Config:
    m: int
    n: int
    source: str = "en"  # the pivot language the knowledge is transferred from
    positions: Positions = "all"
    control: Literal["none", "random"] = "none"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.control not in ("none", "random"):  # "Random" must not silently mean no control
            raise InputError(f"control must be 'none' or 'random', got {self.control!r}", field="control")

    def validate(self, n_layers: int) -> None:
        check_shift_point(self.m, n_layers, field="m")
        check_shift_point(self.n, n_layers, field="n")
        if self.m > self.n:
            raise InputError(
                f"LIRP layer m={self.m} must not come after LSRP layer n={self.n} (need m <= n)", field="m"
            )
        check_positions(self.positions)


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


def lrp2_hooks(lm: LanguageModel, vectors: LanguageVectors, language: str, config: LRP2Config) -> FwdHooks:
    """Forward hooks implementing LRP2 for queries in ``language``.

    For the pivot language itself the shifts are zero (English is unchanged).
    """
    config.validate(lm.n_layers)
    vectors.check_model(lm)
    return [
        (lm.shift_point(layer), ShiftHook(delta, config.positions))
        for layer, delta in shifts(vectors, language, config).items()
    ]


@contextmanager
def lrp2(lm: LanguageModel, vectors: LanguageVectors, language: str, config: LRP2Config) -> Iterator[LanguageModel]:
    """Context manager: every forward pass of ``lm.bridge`` inside runs with LRP2.

    Positions counted from the end are refused here: a hook registered on the bridge
    cannot learn each padded row's length (use :func:`lrp2_hooks` with ``lm.logits``).
    """
    positions = check_positions(config.positions)
    if positions != "all" and any(p < 0 for p in positions):
        raise InputError(
            f"lrp2() cannot shift positions {config.positions} counted from each row's end (it cannot see "
            "where padded rows end); pass lrp2_hooks(...) to lm.logits instead",
            field="positions",
        )
    hooks = lrp2_hooks(lm, vectors, language, config)
    with lm.bridge.hooks(fwd_hooks=hooks):
        yield lm
