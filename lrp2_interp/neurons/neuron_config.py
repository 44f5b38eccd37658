"""The knowledge-neuron selection rule: :class:`NeuronConfig` (coarse step, refine step, grouping level).

See :mod:`lrp2_interp.neurons.neuron_selection` for what each setting does; the default
is Dai et al.'s rule, :meth:`NeuronConfig.paper` Xu, Li, Xiong (2023) exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lrp2_interp.errors import InputError

Level = Literal["fact", "relation"]


@dataclass(frozen=True)
class NeuronConfig:
    coarse: Literal["threshold", "topk"] = "threshold"
    threshold: float = 0.2  # coarse="threshold": fraction of the prompt's max score
    top_k: int = 5  # coarse="topk": neurons per layer per prompt
    refine: Literal["share", "frequent", "none"] = "share"
    share: float = 0.5  # refine="share": minimal fraction of the group's prompts
    top_frequent: int = 20  # refine="frequent": neurons kept per group (per layer with frequent_scope="layer")
    level: Level = "fact"  # group prompts by fact (templates/paraphrases) or by relation (its facts)
    frequent_scope: Literal["all", "layer"] = "all"  # refine="frequent": rank over all layers or in each layer

    @classmethod
    def paper(cls, top_k: int = 20, top_frequent: int = 20) -> NeuronConfig:
        """Xu, Li, Xiong (2023) exactly: per prompt the top-20 neurons of each layer, then per relation
        the 20 most frequent neurons of each layer (``frequent_scope="layer"``)."""
        return cls(
            coarse="topk",
            top_k=top_k,
            refine="frequent",
            top_frequent=top_frequent,
            level="relation",
            frequent_scope="layer",
        )

    def validate(self) -> None:
        if self.coarse not in ("threshold", "topk"):
            raise InputError(f"coarse must be 'threshold' or 'topk', got {self.coarse!r}", field="coarse")
        if self.refine not in ("share", "frequent", "none"):
            raise InputError(f"refine must be 'share', 'frequent' or 'none', got {self.refine!r}", field="refine")
        if self.frequent_scope not in ("all", "layer"):
            raise InputError(
                f"frequent_scope must be 'all' or 'layer', got {self.frequent_scope!r}", field="frequent_scope"
            )
        if self.level not in ("fact", "relation"):
            raise InputError(f"level must be 'fact' or 'relation', got {self.level!r}", field="level")
        if not 0.0 <= self.threshold <= 1.0:
            raise InputError(f"threshold must be in [0, 1], got {self.threshold}", field="threshold")
        if not 0.0 <= self.share <= 1.0:
            raise InputError(f"share must be in [0, 1], got {self.share}", field="share")
        for name in ("top_k", "top_frequent"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}", field=name)
