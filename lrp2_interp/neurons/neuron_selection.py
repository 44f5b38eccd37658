"""Knowledge-neuron selection from per-prompt attribution scores.

Input: attribution scores ``[n_prompts, n_rows, d_mlp]`` of the FFN
post-activations (``blocks.{l}.mlp.hook_post``), row ``r`` being model layer
``layers[r]`` (all layers unless the attribution covered only some).  A plain
``[n_rows, d_mlp]`` tensor is one prompt; objects with a ``.scores`` tensor (and
optionally ``.layers``) -- the attribution results -- are accepted as well.

Two steps, each configurable in :class:`NeuronConfig`:

1. *coarse*, per prompt:

   * ``"threshold"`` (Dai et al. 2022): keep neurons with
     ``score >= threshold x max`` where the max runs over every attributed layer
     and neuron of that prompt (``threshold=0.2``).  A prompt whose max score is
     ``<= 0`` selects nothing (no neuron raises the gold probability).
   * ``"topk"`` (Xu et al. 2023's variant): the ``top_k`` highest-scoring neurons
     of every layer.

2. *refine*, over the prompts of one group (the prompts of a fact -- several
   templates or paraphrases -- or the facts of a relation, see ``level``):

   * ``"share"`` (Dai et al.): keep a neuron selected in at least ``share`` of the
     group's prompts (``ceil(share x n_prompts)``, at least one).  The default
     ``share=0.5`` (a majority of the prompts; also the default of the widely used
     knowledge-neurons package) keeps neurons that are robust to the wording
     without emptying the set when only two or three prompts exist.
   * ``"frequent"`` (Xu et al.'s variant): the ``top_frequent`` neurons selected
     most often in the group (ties broken by mean score, then position), counted
     over all layers together (``frequent_scope="all"``) or in every layer
     separately (``frequent_scope="layer"``: ``top_frequent`` per layer).
   * ``"none"``: the union of the per-prompt sets.

The default is Dai et al.'s rule (threshold 0.2 of the prompt's max, kept by a
majority of the group's prompts, per fact): it is what "knowledge neurons"
means in the literature the analysis is compared with, and it adapts the set size
to how concentrated the attribution is.  :meth:`NeuronConfig.paper` is Xu, Li,
Xiong (EMNLP 2023) exactly: the top-20 neurons of each layer per prompt, then the
20 most frequent of each layer per relation (``top_k=20``, ``top_frequent=20``,
``frequent_scope="layer"``, ``level="relation"``), i.e. 20 neurons in every
layer of every relation's set.  Results are :class:`~lrp2_interp.neurons.sets.NeuronSet` objects
(:mod:`lrp2_interp.neurons.sets`); the rule is a :class:`~lrp2_interp.neurons.neuron_config.NeuronConfig`.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import torch

from lrp2_interp.errors import InputError
from lrp2_interp.neurons.neuron_config import NeuronConfig
from lrp2_interp.neurons.sets import NeuronSet, group_key, unit_name


# ------------------------------------------------------------------ inputs
def score_tensor(scores: Any, layers: Sequence[int] | None = None) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Normalise attribution scores to ``([n_prompts, n_rows, d_mlp] float32, layers)``.

    Accepts a ``[n_rows, d_mlp]`` or ``[n_prompts, n_rows, d_mlp]`` tensor/array, a
    sequence of ``[n_rows, d_mlp]`` tensors, or (sequences of) objects with a
    ``.scores`` tensor and an optional ``.layers`` tuple.
    """
    found_layers = None
    if hasattr(scores, "scores"):
        found_layers = getattr(scores, "layers", None)
        scores = scores.scores
    if isinstance(scores, (list, tuple)):
        if not scores:
            raise InputError("no attribution scores given (empty list of prompts)", field="scores")
        if hasattr(scores[0], "scores"):
            found = {tuple(getattr(s, "layers", ()) or ()) for s in scores}
            if len(found) > 1:
                raise InputError("attribution results cover different layers; select them separately", field="layers")
            found_layers = getattr(scores[0], "layers", None)
            scores = [s.scores for s in scores]
        scores = torch.stack([torch.as_tensor(s) for s in scores])
    t = torch.as_tensor(scores).detach().float().cpu()
    if t.dim() == 2:
        t = t.unsqueeze(0)
    if t.dim() != 3:
        raise InputError(
            f"attribution scores must be [n_rows, d_mlp] or [n_prompts, n_rows, d_mlp], got shape {tuple(t.shape)}",
            field="scores",
        )
    rows = tuple(int(x) for x in (layers if layers is not None else found_layers or range(t.shape[1])))
    if len(rows) != t.shape[1]:
        raise InputError(f"{len(rows)} layers given for scores with {t.shape[1]} rows", field="layers")
    return t, rows


# ------------------------------------------------------------------ steps
def threshold_mask(scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """``[P, R, D]`` bool: ``score >= threshold x max`` (max over rows and neurons of each prompt)."""
    peak = scores.flatten(1).amax(1).view(-1, 1, 1)  # [P, 1, 1]
    return (scores >= threshold * peak) & (peak > 0)


def topk_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """``[P, R, D]`` bool: the ``k`` highest scores of every row (layer) of every prompt."""
    k = min(k, scores.shape[-1])
    idx = scores.topk(k, dim=-1).indices  # [P, R, k]
    return torch.zeros_like(scores, dtype=torch.bool).scatter_(-1, idx, True)


def coarse_mask(scores: torch.Tensor, config: NeuronConfig) -> torch.Tensor:
    """``[P, R, D]`` bool: the per-prompt coarse selection."""
    return threshold_mask(scores, config.threshold) if config.coarse == "threshold" else topk_mask(scores, config.top_k)


def refine_mask(mask: torch.Tensor, scores: torch.Tensor, config: NeuronConfig) -> torch.Tensor:
    """``[R, D]`` bool: refine the per-prompt masks ``[P, R, D]`` of one group of prompts."""
    count = mask.sum(0)  # [R, D]
    if config.refine == "none":
        return count > 0
    if config.refine == "share":
        need = max(1, math.ceil(config.share * mask.shape[0] - 1e-9))
        return count >= need
    mean = scores.mean(0)  # [R, D]
    if config.frequent_scope == "layer":
        return torch.stack([_most_frequent(count[r], mean[r], config.top_frequent) for r in range(len(count))])
    return _most_frequent(count.flatten(), mean.flatten(), config.top_frequent).view_as(count)


def _most_frequent(count: torch.Tensor, mean: torch.Tensor, k: int) -> torch.Tensor:
    """``[N]`` bool: the ``k`` entries of ``count`` ``[N]`` that are largest and > 0 (ties: higher
    ``mean`` score, then lower position)."""
    c, s = count.numpy(), mean.numpy()
    order = np.lexsort((np.arange(c.size), -s, -c))
    order = order[c[order] > 0][:k]
    out = torch.zeros(c.size, dtype=torch.bool)
    out[torch.from_numpy(order)] = True
    return out


# ------------------------------------------------------------------ API
def select_neurons(
    scores: Any, config: NeuronConfig | None = None, *, layers: Sequence[int] | None = None, label: str = ""
) -> NeuronSet:
    """Knowledge neurons of one group of prompts (all prompts in ``scores`` form the group; default rule: Dai et al.)."""
    config = config if config is not None else NeuronConfig()
    config.validate()
    t, rows = score_tensor(scores, layers)  # [P, R, D]
    mask = coarse_mask(t, config)
    keep = refine_mask(mask, t, config)  # [R, D]
    return NeuronSet.from_mask(
        keep,
        layers=rows,
        label=label,
        config=config,
        scores=t.mean(0),
        frequency=mask.float().mean(0),
        n_prompts=t.shape[0],
    )


def select_grouped(
    scores: Any,
    facts: Sequence[tuple[str, int]],
    config: NeuronConfig | None = None,
    *,
    layers: Sequence[int] | None = None,
    label: str = "",
) -> dict[Hashable, NeuronSet]:
    """Knowledge neurons per fact or per relation (``config.level``).

    ``facts[i] = (relation, lineid)`` of prompt ``i``; prompts of the same unit are
    refined together.  Returns ``{unit key: NeuronSet}`` in first-seen order; the
    set labels are ``"{label}{unit}"`` (e.g. ``"fr/P36:12"`` with ``label="fr/"``).
    """
    config = config if config is not None else NeuronConfig()
    config.validate()
    t, rows = score_tensor(scores, layers)  # [P, R, D]
    if len(facts) != t.shape[0]:
        raise InputError(f"{len(facts)} fact keys for {t.shape[0]} prompts", field="facts")
    groups: dict[Hashable, list[int]] = {}
    for i, (rel, lineid) in enumerate(facts):
        groups.setdefault(group_key(rel, lineid, config.level), []).append(i)
    mask = coarse_mask(t, config)  # [P, R, D]
    out = {}
    for key, idx in groups.items():
        sel = torch.tensor(idx)
        m, s = mask[sel], t[sel]
        keep = refine_mask(m, s, config)
        out[key] = NeuronSet.from_mask(
            keep,
            layers=rows,
            label=f"{label}{unit_name(key)}",
            config=config,
            scores=s.mean(0),
            frequency=m.float().mean(0),
            n_prompts=len(idx),
        )
    return out
