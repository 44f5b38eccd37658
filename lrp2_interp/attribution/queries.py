"""The queries of an attribution: for each gold token of a target, the token ids and the position predicting it.

Target position: the ``[MASK]`` of a masked LM, the last prompt token of a causal LM (BOS is
prepended when the tokenizer has one, as in :mod:`lrp2_interp.probing.probe`).

Multi-token objects (``AttributionConfig.target_token``):

* ``"first"`` (default): the first object token at its position (a masked-LM prompt may hold one
  mask or one mask per object token; the first is used);
* ``"sum"``: every object token at its own position -- mask ``t`` of a masked LM (one mask per token
  required); for a causal LM the prompt is extended with the gold tokens before ``t`` (teacher
  forcing) and ``t`` is predicted at the last position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from lrp2_interp.attribution.ig_config import AttributionConfig
from lrp2_interp.errors import InputError
from lrp2_interp.models.loading import LanguageModel
from lrp2_interp.prompts import causal_ids

__all__ = ["Query", "queries"]


@dataclass(frozen=True)
class Query:
    """One target of a prompt: token ids, the position predicting ``gold`` and ``gold`` itself."""

    ids: torch.Tensor  # [pos] long
    position: int
    gold: int


def queries(lm: LanguageModel, prompt: str, target: str | Sequence[int], config: AttributionConfig) -> list[Query]:
    """One :class:`Query` per attributed gold token of ``target`` (text or token ids)."""
    gold = lm.token_ids(target) if isinstance(target, str) else [int(t) for t in target]
    if not gold:
        raise InputError(f"target {target!r} tokenizes to nothing", field="target")
    if lm.kind == "masked":
        ids = torch.tensor(lm.tokenizer(prompt)["input_ids"], device=lm.device)
        masks = (ids == lm.mask_token_id).nonzero().flatten().tolist()
        if config.target_token == "first":
            if len(masks) not in (1, len(gold)):
                raise InputError(
                    f"prompt has {len(masks)} mask tokens; need 1 or one per target token ({len(gold)})", field="prompt"
                )
            return [Query(ids, masks[0], gold[0])]
        if len(masks) != len(gold):
            raise InputError(
                f"target_token='sum' needs one mask per target token: prompt has {len(masks)} masks, "
                f"target has {len(gold)} tokens",
                field="prompt",
            )
        return [Query(ids, m, g) for m, g in zip(masks, gold)]
    base = causal_ids(lm, prompt)
    if not base:
        raise InputError("empty prompt", field="prompt")
    n = 1 if config.target_token == "first" else len(gold)
    return [Query(torch.tensor(base + gold[:t], device=lm.device), len(base) + t - 1, gold[t]) for t in range(n)]
