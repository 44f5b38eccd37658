"""Named bundles of analysis choices: ``"default"`` (this package's) and ``"paper"`` (Xu, Li, Xiong 2023).

The paper (EMNLP 2023, no official code) makes four choices where the package
has its own default; ``preset="paper"`` (API) / ``--paper`` (CLI) reproduces all
of them in one go:

1. knowledge neurons: :meth:`NeuronConfig.paper <lrp2_interp.neurons.neuron_selection.NeuronConfig.paper>`
   (top-20 per layer per prompt, then the 20 most frequent of each layer per
   relation) instead of Dai et al.'s threshold rule;
2. Table 2's baseline: the overlap with English's *different* relations next to
   the same relation's (:func:`~lrp2_interp.neurons.overlap.different_unit_overlap`);
3. layer numbering from 1 (:mod:`lrp2_interp.layers`): ``paper_m`` / ``paper_n``
   / ``paper_layer`` columns and both numberings on heatmap axes;
4. language vectors from all tokens (``tokens="all"``) instead of dropping
   special tokens (``"real"``).

Choices 2 and 3 are additions, so every run produces them under either preset
(the block-index columns stay, the paper's numbers are added next to them, and
the Table 2 baseline is written next to the permutation control); the preset
switches choices 1 and 4.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from lrp2_interp.errors import InputError
from lrp2_interp.lrp2.vectors import TokenChoice
from lrp2_interp.neurons.neuron_config import NeuronConfig

PRESET_NAMES = ("default", "paper")


@dataclass(frozen=True)
class Preset:
    name: str
    tokens: TokenChoice = "real"  # tokens averaged into language vectors
    neurons: NeuronConfig = field(default_factory=NeuronConfig)  # knowledge-neuron selection

    def describe(self) -> dict:
        return {"preset": self.name, "tokens": self.tokens, "neurons": asdict(self.neurons)}


def get_preset(name: str) -> Preset:
    """The preset called ``name`` (``"default"`` or ``"paper"``)."""
    if name == "default":
        return Preset("default")
    if name == "paper":
        return Preset("paper", tokens="all", neurons=NeuronConfig.paper())
    raise InputError(f"unknown preset {name!r}; choose one of {', '.join(PRESET_NAMES)}", field="preset")
