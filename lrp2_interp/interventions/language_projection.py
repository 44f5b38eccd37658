"""LRP2 as an Intervention: the (m, n) grid, language vectors fitted on dev prompts, and its matched controls.

* ``hooks((m, n))``: LIRP at m and LSRP at n (:func:`lrp2_interp.lrp2.projection.shifts`).
* ``control((m, n), seed)``: the **matched random control**.  LIRP ``a`` and LSRP ``b`` span a
  plane; one random rotation ``Q`` (Haar, seeded) is applied to *both*: ``Q a`` and ``Q b``.
  It keeps both norms and the angle between them -- so where LSRP largely undoes LIRP (nearby
  layers, cosine near -1) the control cancels just as much -- and it is the identity at
  ``m == n`` (``Q (a + b) = Q 0 = 0``).  Only the directions relative to the model change:
  the property under test.  ``Q`` restricted to the plane is drawn exactly: the images of the
  plane's orthonormal basis are a uniformly random orthonormal pair (Gram-Schmidt of two
  Gaussian vectors).
* ``extra_controls``: the **wrong-language control**: the same pair with another language's
  vectors in place of l's (``wrong_language``), which asks whether the language identity
  matters, not only the geometry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import torch

from lrp2_interp.errors import InputError
from lrp2_interp.facts import FactSet
from lrp2_interp.layers import EMBEDDINGS
from lrp2_interp.lrp2.projection import LRP2Config, shifts
from lrp2_interp.lrp2.vectors import LanguageVectors, compute_language_vectors
from lrp2_interp.models.hooks import FwdHooks, ShiftHook, shift_point_hook
from lrp2_interp.models.loading import LanguageModel
from lrp2_interp.prompts import prompt_corpus

Pair = tuple[int, int]


def draw_seed(*parts: object) -> int:
    """A 63-bit seed from any parts (a control draw differs across seeds, pairs and languages)."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "big") >> 1


def plane_rotation(vectors: Sequence[torch.Tensor], seed: int) -> list[torch.Tensor]:
    """``vectors`` (in one plane) rotated by one Haar-random rotation: norms and angles kept exactly.

    The rotation is drawn on the plane the vectors span: its orthonormal basis ``e`` goes to a
    random orthonormal pair ``f``; each vector ``x = sum_i c_i e_i`` becomes ``sum_i c_i f_i``.
    """
    x = torch.stack([v.double() for v in vectors])  # [k, d]
    d = x.shape[1]
    basis: list[torch.Tensor] = []
    for v in x:  # Gram-Schmidt basis of the span
        r = v - sum(((v @ e) * e for e in basis), torch.zeros(d, dtype=torch.float64))
        if r.norm() > 1e-12 * max(1.0, float(v.norm())):
            basis.append(r / r.norm())
    gen = torch.Generator().manual_seed(seed)
    frame: list[torch.Tensor] = []
    for _ in basis:
        g = torch.randn(d, generator=gen, dtype=torch.float64)
        g = g - sum(((g @ f) * f for f in frame), torch.zeros(d, dtype=torch.float64))
        frame.append(g / g.norm())
    out = []
    for v, orig in zip(x, vectors):
        y = sum(((v @ e) * f for e, f in zip(basis, frame)), torch.zeros(d, dtype=torch.float64))
        out.append(y.to(orig.dtype))
    return out


def dev_vectors(lm: LanguageModel, facts: FactSet, languages: Sequence[str]) -> LanguageVectors:
    """Language vectors from the probe prompts of ``facts`` (an intervention's dev facts), one per language."""
    facts.check_languages(languages)
    return compute_language_vectors(
        lm,
        {g: prompt_corpus(facts, g, lm) for g in languages},
        corpus={g: f"probe prompts of {facts.n_facts(g)} dev facts" for g in languages},
        progress=False,
    )


@dataclass(frozen=True, eq=False)
class LRP2Intervention:
    """LRP2 for queries in ``language`` (see the module docstring); settings are ``(m, n)`` pairs, m < n."""

    language: str
    source: str = "en"
    n_layers: int = 0  # the model's block count (set by :meth:`for_model`)
    layers: tuple[int, ...] | None = None  # shift points searched; None: the embeddings and every block
    vectors: LanguageVectors | None = field(default=None, repr=False)  # None: fitted on dev prompts
    wrong_language: str | None = None  # the wrong-language control's language (None: no such control)
    name: str = "lrp2"
    title: str = "LRP2 (Xu et al. 2023)"

    @classmethod
    def for_model(cls, lm: LanguageModel, language: str, **kw) -> LRP2Intervention:
        return cls(language, n_layers=lm.n_layers, **kw)

    def settings(self) -> list[Pair]:
        layers = sorted(self.layers) if self.layers is not None else list(range(EMBEDDINGS, self.n_layers))
        for layer in layers:
            if not EMBEDDINGS <= int(layer) < self.n_layers:
                raise InputError(f"layer {layer} out of range (model has {self.n_layers} blocks)", field="layers")
        pairs = [(int(m), int(n)) for m in layers for n in layers if m < n]
        if not pairs:
            raise InputError("LRP2 needs at least two candidate layers", field="layers")
        return pairs

    def languages(self) -> list[str]:
        return [g for g in (self.source, self.language, self.wrong_language) if g is not None]

    def fit(self, lm: LanguageModel, facts: FactSet) -> LRP2Intervention:
        """Language vectors from the probe prompts of ``facts`` (the dev facts), unless given."""
        if self.vectors is not None:
            self.vectors.check_model(lm)
            for g in self.languages():
                self.vectors[g]  # a clear error if one is missing
            return replace(self, n_layers=lm.n_layers)
        return replace(self, vectors=dev_vectors(lm, facts, self.languages()), n_layers=lm.n_layers)

    def _vectors(self) -> LanguageVectors:
        if self.vectors is None:
            raise InputError("LRP2 needs language vectors: call fit() first or pass vectors=", field="vectors")
        return self.vectors

    def shifts(self, setting: Pair, language: str | None = None) -> dict[int, torch.Tensor]:
        m, n = setting
        config = LRP2Config(m, n, source=self.source)
        config.validate(self.n_layers)
        return shifts(self._vectors(), language or self.language, config)

    def control_shifts(self, setting: Pair, seed: int) -> dict[int, torch.Tensor]:
        """The matched random control's shifts (rotation of the LIRP/LSRP plane, identity at m == n)."""
        m, n = setting
        v = self._vectors()
        lirp = v.at(self.source, m) - v.at(self.language, m)
        lsrp = v.at(self.language, n) - v.at(self.source, n)
        rot_lirp, rot_lsrp, rot_sum = plane_rotation(
            [lirp, lsrp, lirp + lsrp], draw_seed(seed, self.language, self.source, m, n)
        )
        return {m: rot_sum} if m == n else {m: rot_lirp, n: rot_lsrp}

    def _hooks(self, lm_shifts: Mapping[int, torch.Tensor]) -> FwdHooks:
        return [(shift_point_hook(layer), ShiftHook(delta)) for layer, delta in lm_shifts.items()]

    def hooks(self, setting: Pair) -> FwdHooks:
        return self._hooks(self.shifts(setting))

    def control(self, setting: Pair, seed: int) -> FwdHooks:
        return self._hooks(self.control_shifts(setting, seed))

    def extra_controls(self, setting: Pair) -> dict[str, FwdHooks]:
        if self.wrong_language is None:
            return {}
        return {f"wrong language ({self.wrong_language})": self._hooks(self.shifts(setting, self.wrong_language))}

    def label(self, setting: Pair) -> str:
        m, n = setting
        return f"({m}, {n})"
