"""Difference-in-means steering: add ``alpha * (mean_source - mean_language)`` to the residual stream at one layer.

The mean-difference steering vector, the baseline recent steering benchmarks rank first:

* ``fit``: the per-layer mean token states of the dev facts' probe prompts in ``source``
  and in ``language`` (:func:`~lrp2_interp.lrp2.vectors.compute_language_vectors` of
  :func:`~lrp2_interp.prompts.prompt_corpus`: LRP2's language vectors);
* settings ``(layer, alpha)``: every shift point of ``layers`` (default: the embedding
  output and every block) times every ``alpha``;
* ``hooks((layer, alpha))``: one :class:`~lrp2_interp.models.hooks.ShiftHook` adding
  ``alpha * (mean_source - mean_language)`` at ``shift_point_hook(layer)`` at every
  position, so the shared shift engine of :mod:`lrp2_interp.interventions.scoring` runs it;
* ``control((layer, alpha), seed)``: a random direction of the same norm at the same layer.

Unlike LRP2 nothing projects back: the shift stays in the residual stream to the output.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from lrp2_interp.errors import InputError
from lrp2_interp.facts import FactSet
from lrp2_interp.interventions.language_projection import dev_vectors, draw_seed
from lrp2_interp.layers import EMBEDDINGS
from lrp2_interp.lrp2.vectors import LanguageVectors
from lrp2_interp.methods.controls import same_norm_random
from lrp2_interp.models.hooks import FwdHooks, ShiftHook, shift_point_hook
from lrp2_interp.models.loading import LanguageModel

Steer = tuple[int, float]


@dataclass(frozen=True, eq=False)
class MeanSteering:
    """Mean-difference steering of ``language`` towards ``source``; settings are ``(layer, alpha)``."""

    language: str
    source: str = "en"
    layers: tuple[int, ...] | None = None  # shift points searched; None: the embeddings and every block
    alphas: tuple[float, ...] = (0.5, 1.0, 2.0)
    vectors: LanguageVectors | None = field(default=None, repr=False)  # None until fit()
    name: str = "mean_steering"
    title: str = "difference-in-means steering"

    def __post_init__(self) -> None:
        if not self.alphas:
            raise InputError("mean steering needs at least one alpha", field="alphas")

    def _vectors(self) -> LanguageVectors:
        if self.vectors is None:
            raise InputError("mean steering needs mean states: call fit() first or pass vectors=", field="vectors")
        return self.vectors

    def settings(self) -> list[Steer]:
        n_layers = self._vectors().n_layers
        layers = sorted(self.layers) if self.layers is not None else list(range(EMBEDDINGS, n_layers))
        for layer in layers:
            if not EMBEDDINGS <= int(layer) < n_layers:
                raise InputError(f"layer {layer} out of range (model has {n_layers} blocks)", field="layers")
        return [(int(layer), float(a)) for layer in layers for a in self.alphas]

    def fit(self, lm: LanguageModel, facts: FactSet) -> MeanSteering:
        """Mean token states of the probe prompts of ``facts`` (the dev facts) in both languages."""
        return replace(self, vectors=dev_vectors(lm, facts, [self.source, self.language]))

    def direction(self, layer: int) -> torch.Tensor:
        """``mean_source - mean_language`` at shift point ``layer`` (``[d_model]``)."""
        v = self._vectors()
        return v.at(self.source, layer) - v.at(self.language, layer)

    def hooks(self, setting: Steer) -> FwdHooks:
        layer, alpha = setting
        return [(shift_point_hook(layer), ShiftHook(alpha * self.direction(layer)))]

    def control(self, setting: Steer, seed: int) -> FwdHooks:
        layer, alpha = setting
        gen = torch.Generator().manual_seed(draw_seed(seed, self.language, self.source, layer))
        delta = alpha * self.direction(layer)
        return [(shift_point_hook(layer), ShiftHook(same_norm_random(delta[None], gen)[0].to(delta.dtype)))]

    def extra_controls(self, setting: Steer) -> dict[str, FwdHooks]:
        return {}

    def label(self, setting: Steer) -> str:
        layer, alpha = setting
        return f"L{layer} a={alpha:+}"  # exact: 0.25 and 0.2 never share a label
