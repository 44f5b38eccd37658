"""Knowledge-neuron scaling as an Intervention: multiply a neuron set by a factor; control: random sets, same sizes.

The knowledge-neuron causal check (Dai et al. 2022) scales FFN neurons at
``blocks.{l}.mlp.hook_post`` (``factor=0``: suppress, ``2``: enhance, ``1``: identity).
:func:`scale_hooks` builds those hooks, for one set or one set per batch row, at every position
or only at given target positions; :mod:`lrp2_interp.neurons.causal` uses it per fact.

:class:`NeuronScaling` is the same operation in the
:class:`~lrp2_interp.interventions.protocol.Intervention` shape, so the selection routine and the
comparison run it like any other method:

* ``fit(lm, dev facts)``: when no neurons are given, attribute ``source``'s dev facts
  (:func:`~lrp2_interp.attribution.attribute.attribute_many`) and select the neurons shared by the
  dev facts' prompts (:func:`~lrp2_interp.neurons.neuron_selection.select_neurons`, one group; the
  rule of ``neuron_config``): the source language's knowledge neurons common to the facts;
* settings: the ``factors``; ``hooks(factor)``: the set scaled at every position;
* ``control(factor, seed)``: a random set with the same number of neurons in every layer,
  scaled by the same factor (everything kept but which neurons).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from lrp2_interp.attribution.attribute import AttributionConfig, attribute_many
from lrp2_interp.errors import InputError
from lrp2_interp.facts import FactSet
from lrp2_interp.models.hooks import FwdHooks, mlp_post_hook
from lrp2_interp.models.loading import LanguageModel
from lrp2_interp.neurons.neuron_config import NeuronConfig
from lrp2_interp.neurons.neuron_selection import select_neurons
from lrp2_interp.neurons.sets import NeuronSet, random_masks
from lrp2_interp.prompts import attribution_queries


def scale_hooks(masks: torch.Tensor, factor: float, target: torch.Tensor | None = None) -> FwdHooks:
    """Hooks multiplying the selected neurons by ``factor`` (at ``target`` positions, or everywhere).

    Args:
        masks: ``[n_layers, d_mlp]`` bool (one set), or ``[batch, n_layers, d_mlp]`` (one set per row).
        factor: the multiplier (0 suppresses, 2 enhances).
        target: ``[batch, pos]`` bool, or None for every position.

    >>> hooks = scale_hooks(torch.tensor([[False, True], [False, False]]), 0.0)
    >>> [name for name, _ in hooks]
    ['blocks.0.mlp.hook_post']
    >>> hooks[0][1](torch.ones(1, 3, 2)).tolist()[0][0]
    [1.0, 0.0]
    """
    if masks.dim() == 2:
        masks = masks.unsqueeze(0)  # [1 or b, L, D]
    if masks.dim() != 3:
        raise InputError(f"neuron mask of shape {tuple(masks.shape)}: need [layers, neurons]", field="masks")
    hooks: FwdHooks = []
    for layer in torch.nonzero(masks.any(dim=(0, 2))).flatten().tolist():

        def hook(x: torch.Tensor, hook=None, layer: int = layer) -> torch.Tensor:  # x: [b, pos, d_mlp]
            sel = masks[:, layer].to(x.device)[:, None, :]  # [1 or b, 1, D]
            if target is not None:
                sel = sel & target.to(x.device)[:, :, None]  # [b, pos, D]
            return torch.where(sel, x * factor, x)

        hooks.append((mlp_post_hook(layer), hook))
    return hooks


def check_mask_shape(masks: torch.Tensor, n_layers: int, d_mlp: int) -> None:
    """One line naming the shapes when a neuron mask does not fit a model of ``n_layers`` x ``d_mlp``."""
    if masks.dim() not in (2, 3) or tuple(masks.shape[-2:]) != (n_layers, d_mlp):
        raise InputError(
            f"neuron mask of shape {tuple(masks.shape)} does not fit the model ({n_layers} layers x {d_mlp} neurons)",
            field="masks",
        )


@dataclass(frozen=True, eq=False)
class NeuronScaling:
    """Scale ``neurons`` by each of ``factors`` in queries of ``language``; control: random same-size sets."""

    language: str
    source: str = "en"
    factors: tuple[float, ...] = (0.0, 2.0)
    neurons: NeuronSet | None = field(default=None, repr=False)  # None until fit() (or given)
    shape: tuple[int, int] | None = None  # (n_layers, d_mlp) of the model; set by fit()
    attribution: AttributionConfig = field(default_factory=AttributionConfig)
    neuron_config: NeuronConfig = field(default_factory=lambda: NeuronConfig(share=0.3))
    name: str = "kn_scaling"
    title: str = "knowledge-neuron scaling (Dai et al. 2022)"

    def __post_init__(self) -> None:
        if not self.factors:
            raise InputError("neuron scaling needs at least one factor", field="factors")

    def settings(self) -> list[float]:
        return [float(f) for f in self.factors]

    def fit(self, lm: LanguageModel, facts: FactSet) -> NeuronScaling:
        """The model's shape; and, if no neurons were given, ``source``'s knowledge neurons common to ``facts``."""
        fitted = replace(self, shape=(lm.n_layers, lm.d_mlp))
        if self.neurons is not None:
            self.neurons.as_mask(lm.n_layers, lm.d_mlp)  # refuses sites outside the model, in one line
            return fitted
        facts.check_languages([self.source, self.language])
        queries = attribution_queries(lm, facts, self.source)
        if not queries:
            raise InputError(f"no {self.source} dev facts to find knowledge neurons in", field="facts")
        results = attribute_many(lm, [p for p, _ in queries], [g for _, g in queries], self.attribution, progress=False)
        label = f"{self.source} dev facts"
        return replace(fitted, neurons=select_neurons(results, self.neuron_config, label=label))

    def _mask(self) -> torch.Tensor:
        if self.neurons is None or self.shape is None:
            raise InputError("neuron scaling needs neurons and the model: call fit() first", field="neurons")
        return self.neurons.as_mask(*self.shape)

    def hooks(self, setting: float) -> FwdHooks:
        return scale_hooks(self._mask(), float(setting))

    def control(self, setting: float, seed: int) -> FwdHooks:
        mask = self._mask()
        counts = mask.sum(dim=1).numpy()
        return scale_hooks(random_masks(counts, mask.shape[1], 1, seed=seed)[0], float(setting))

    def extra_controls(self, setting: float) -> dict[str, FwdHooks]:
        return {}

    def label(self, setting: float) -> str:
        return f"x{float(setting):g}"
