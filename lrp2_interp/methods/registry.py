"""The interventions ``compare`` can run, by name: one constructor per method, and the options they read.

``REGISTRY`` maps a method name (``lrp2-interp compare --methods NAME ...``) to a function
``(lm, language, options) -> Intervention``.  A new method is one class (the
:class:`~lrp2_interp.interventions.protocol.Intervention` protocol) in its own file, one entry
here (and its options as fields of :class:`MethodOptions`, if it has any), and a test;
:func:`lrp2_interp.methods.compare.run_comparison` takes the objects and needs no edit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from lrp2_interp.errors import InputError
from lrp2_interp.interventions.language_projection import LRP2Intervention
from lrp2_interp.interventions.protocol import Intervention
from lrp2_interp.methods.alignment import AlignmentIntervention, Rule, Site
from lrp2_interp.methods.lape import LapeConfig, SteerMode
from lrp2_interp.methods.lape_steering import LapeIntervention
from lrp2_interp.methods.mean_steering import MeanSteering
from lrp2_interp.models.loading import LanguageModel
from lrp2_interp.neurons.scaling import NeuronScaling


@dataclass(frozen=True)
class MethodOptions:
    """What the registered methods read (each field names its method)."""

    methods: tuple[str, ...] = ("lrp2", "alignment", "lape", "mean_steering")  # names in REGISTRY
    source: str = "en"
    lrp2_layers: tuple[int, ...] | None = None  # LRP2: candidate layers for m < n; None = all shift points
    sigmas: tuple[float, ...] = (-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0)  # alignment; 0 (= baseline) can be chosen
    site: Site = "mlp_out"  # alignment site: "mlp_out" (INCLINE) or "resid"
    affine: bool = False
    ridge: float = 0.0
    rule: Rule = "add"  # alignment: "add": x + sigma x W (the paper); "interpolate": x + sigma (x W - x)
    lape: LapeConfig = field(default_factory=LapeConfig)
    strengths: tuple[float, ...] = (0.5, 1.0)  # LAPE steering strengths
    steer_modes: tuple[SteerMode, ...] = ("deactivate", "to_source")
    steer_layers: tuple[int, ...] | None = None  # mean steering: layers searched; None = all shift points
    alphas: tuple[float, ...] = (0.5, 1.0, 2.0)  # mean steering: multiples of the mean difference
    scale_factors: tuple[float, ...] = (0.0, 2.0)  # knowledge-neuron scaling: 0 suppresses, 2 enhances


#: a constructor returns an object of the Intervention protocol (checked by build_interventions: the
#: protocol's plain attributes and ``Hashable`` settings are wider than frozen dataclasses with typed settings)
Builder = Callable[[LanguageModel, str, MethodOptions], object]

REGISTRY: dict[str, Builder] = {
    "lrp2": lambda lm, lang, o: LRP2Intervention.for_model(lm, lang, source=o.source, layers=o.lrp2_layers),
    "alignment": lambda lm, lang, o: AlignmentIntervention(
        lang, source=o.source, sigmas=o.sigmas, site=o.site, affine=o.affine, ridge=o.ridge, rule=o.rule
    ),
    "lape": lambda lm, lang, o: LapeIntervention(
        lang, source=o.source, strengths=o.strengths, modes=o.steer_modes, lape=o.lape
    ),
    "mean_steering": lambda lm, lang, o: MeanSteering(lang, source=o.source, layers=o.steer_layers, alphas=o.alphas),
    "kn_scaling": lambda lm, lang, o: NeuronScaling(lang, source=o.source, factors=o.scale_factors),
}
METHODS = tuple(REGISTRY)


def build_interventions(
    lm: LanguageModel, language: str, names: Sequence[str], options: MethodOptions = MethodOptions()
) -> list[Intervention]:
    """The interventions ``names`` for queries in ``language`` (unknown names refused in one line)."""
    bad = [n for n in names if n not in REGISTRY]
    if bad:
        raise InputError(f"unknown method(s) {bad} (choose from {', '.join(METHODS)})", field="methods")
    out = []
    for n in names:
        made = REGISTRY[n](lm, language, options)
        if not isinstance(made, Intervention):
            raise TypeError(f"REGISTRY['{n}'] made {type(made).__name__}, which lacks Intervention members")
        out.append(made)
    return out
