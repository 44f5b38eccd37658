"""Language-neuron steering (LAPE, Tang et al. 2024) as an Intervention: (mode, strength) settings, random-neuron control.

* ``fit``: the LAPE neurons of every language of the dev facts, found on their filled
  fact sentences (:func:`~lrp2_interp.methods.lape.activation_stats`,
  :func:`~lrp2_interp.methods.lape.select_language_neurons`);
* ``hooks((mode, strength))``: damp ``language``'s neurons by ``strength``; ``"to_source"``
  also moves the source's neurons towards their source mean
  (:func:`~lrp2_interp.methods.lape.neuron_steer_hooks`);
* ``control((mode, strength), seed)``: the same steering with every language's neurons
  replaced by random neurons with the same per-layer counts (seeded per language).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from lrp2_interp.errors import InputError
from lrp2_interp.facts import FactSet
from lrp2_interp.interventions.language_projection import draw_seed
from lrp2_interp.methods.controls import random_mask_like
from lrp2_interp.methods.lape import (
    LanguageNeurons,
    LapeConfig,
    SteerMode,
    activation_stats,
    neuron_steer_hooks,
    select_language_neurons,
)
from lrp2_interp.methods.lape_effects import fact_corpus
from lrp2_interp.models.loading import FwdHooks, LanguageModel

Steer = tuple[SteerMode, float]


@dataclass(frozen=True, eq=False)
class LapeIntervention:
    """LAPE steering for queries in ``language``; settings are ``(mode, strength)`` pairs."""

    language: str
    source: str = "en"
    strengths: tuple[float, ...] = (0.5, 1.0)
    modes: tuple[SteerMode, ...] = ("deactivate", "to_source")
    lape: LapeConfig = field(default_factory=LapeConfig)
    neurons: LanguageNeurons | None = field(default=None, repr=False)  # None until fit()
    name: str = "lape"
    title: str = "language-neuron steering (LAPE, Tang et al. 2024)"

    def __post_init__(self) -> None:
        bad = [m for m in self.modes if m not in ("deactivate", "to_source")]
        if bad or not self.modes or not self.strengths:
            raise InputError(f"need strengths and modes from deactivate, to_source; got {self.modes}", field="modes")

    def settings(self) -> list[Steer]:
        return [(mode, float(s)) for mode in self.modes for s in self.strengths]

    def fit(self, lm: LanguageModel, facts: FactSet) -> LapeIntervention:
        """LAPE neurons of every language of ``facts`` (the dev facts), from their fact sentences."""
        corpora = {g: fact_corpus(facts, g) for g in facts.languages if facts.n_facts(g)}
        facts.check_languages([self.source, self.language])
        stats = activation_stats(lm, corpora, batch_size=self.lape.batch_size)
        return replace(self, neurons=select_language_neurons(stats, self.lape))

    def _neurons(self) -> LanguageNeurons:
        if self.neurons is None:
            raise InputError("LAPE steering needs neurons: call fit() first or pass neurons=", field="neurons")
        return self.neurons

    def _hooks(self, neurons: LanguageNeurons, setting: Steer) -> FwdHooks:
        mode, strength = setting
        return neuron_steer_hooks(neurons, self.language, source=self.source, strength=strength, mode=mode)

    def hooks(self, setting: Steer) -> FwdHooks:
        return self._hooks(self._neurons(), setting)

    def control_neurons(self, seed: int) -> LanguageNeurons:
        """Every language's neurons replaced by random ones with the same per-layer counts."""
        n = self._neurons()
        masks = {g: random_mask_like(m, draw_seed(seed, g, "lape")) for g, m in n.masks.items()}
        return replace(n, masks=masks)

    def control(self, setting: Steer, seed: int) -> FwdHooks:
        return self._hooks(self.control_neurons(seed), setting)

    def extra_controls(self, setting: Steer) -> dict[str, FwdHooks]:
        return {}

    def label(self, setting: Steer) -> str:
        mode, strength = setting
        return f"{mode}@{strength:.2f}"
