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
layer of every relation's set.  Results are :class:`NeuronSet` objects: frozen sets of
``(layer, neuron)`` sites with their mean score and selection frequency.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from lrp2_interp.errors import InputError

Site = tuple[int, int]  # (model layer, neuron index)
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


@dataclass(frozen=True)
class NeuronSet:
    """A set of ``(layer, neuron)`` sites, e.g. the knowledge neurons of one fact in one language."""

    sites: frozenset[Site]
    label: str = ""
    config: NeuronConfig = field(default_factory=NeuronConfig)
    scores: Mapping[Site, float] = field(default_factory=dict, compare=False, repr=False)  # mean score
    frequency: Mapping[Site, float] = field(default_factory=dict, compare=False, repr=False)  # share of prompts
    n_prompts: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "sites", frozenset((int(l), int(i)) for l, i in self.sites))

    def __len__(self) -> int:
        return len(self.sites)

    def __contains__(self, site: object) -> bool:
        return site in self.sites

    def array(self) -> np.ndarray:
        """``[n_sites, 2]`` int64 (layer, neuron), sorted."""
        return np.array(sorted(self.sites), dtype=np.int64).reshape(-1, 2)

    @property
    def layers(self) -> tuple[int, ...]:
        """Layers holding at least one site."""
        return tuple(int(x) for x in np.unique(self.array()[:, 0]))

    def per_layer_counts(self, n_layers: int) -> np.ndarray:
        """``[n_layers]`` number of sites in every layer."""
        arr = self.array()
        if len(arr) and arr[:, 0].max() >= n_layers:
            raise InputError(
                f"neuron set '{self.label}' has a site in layer {arr[:, 0].max()}, but the model has {n_layers} layers",
                field="n_layers",
            )
        return np.bincount(arr[:, 0], minlength=n_layers).astype(np.int64)

    def as_mask(self, n_layers: int, d_mlp: int) -> torch.Tensor:
        """``[n_layers, d_mlp]`` bool mask of the sites."""
        arr = self.array()
        if len(arr) and (arr[:, 0].max() >= n_layers or arr[:, 1].max() >= d_mlp):
            raise InputError(
                f"neuron set '{self.label}' does not fit a model of {n_layers} layers x {d_mlp} neurons", field="d_mlp"
            )
        mask = torch.zeros(n_layers, d_mlp, dtype=torch.bool)
        mask[torch.from_numpy(arr[:, 0]), torch.from_numpy(arr[:, 1])] = True
        return mask

    def to_frame(self) -> pd.DataFrame:
        """One row per site: label, layer, neuron, score, frequency."""
        arr = self.array()
        keys = [tuple(s) for s in arr.tolist()]
        return pd.DataFrame(
            {
                "label": self.label,
                "layer": arr[:, 0],
                "neuron": arr[:, 1],
                "score": [self.scores.get(k, float("nan")) for k in keys],
                "frequency": [self.frequency.get(k, float("nan")) for k in keys],
            }
        )

    @classmethod
    def from_mask(
        cls,
        mask: torch.Tensor,
        *,
        layers: Sequence[int] | None = None,
        label: str = "",
        config: NeuronConfig | None = None,
        scores: torch.Tensor | None = None,
        frequency: torch.Tensor | None = None,
        n_prompts: int = 0,
    ) -> NeuronSet:
        """Sites of a ``[n_rows, d_mlp]`` bool mask; row ``r`` is model layer ``layers[r]``."""
        rows, cols = torch.nonzero(mask, as_tuple=True)
        layer_of = torch.as_tensor(list(layers) if layers is not None else range(mask.shape[0]), dtype=torch.long)
        keys = list(zip(layer_of[rows.cpu()].tolist(), cols.tolist()))
        score_map = dict(zip(keys, scores[rows, cols].float().tolist())) if scores is not None else {}
        freq_map = dict(zip(keys, frequency[rows, cols].float().tolist())) if frequency is not None else {}
        return cls(frozenset(keys), label, config or NeuronConfig(), score_map, freq_map, n_prompts)


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
    scores: Any, config: NeuronConfig = NeuronConfig(), *, layers: Sequence[int] | None = None, label: str = ""
) -> NeuronSet:
    """Knowledge neurons of one group of prompts (all prompts in ``scores`` form the group)."""
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


def group_key(relation: str, lineid: int, level: Level) -> Hashable:
    """The unit a prompt belongs to: ``(relation, lineid)`` per fact, ``relation`` per relation."""
    return (relation, int(lineid)) if level == "fact" else relation


def unit_name(key: Hashable) -> str:
    """Printable unit: ``"P36"`` or ``"P36:12"``."""
    return ":".join(str(k) for k in key) if isinstance(key, tuple) else str(key)


def parse_unit(name: str) -> Hashable:
    """Inverse of :func:`unit_name`: ``"P36:12"`` -> ``("P36", 12)``, ``"P36"`` -> ``"P36"``."""
    rel, sep, lineid = str(name).rpartition(":")
    return (rel, int(lineid)) if sep and lineid.lstrip("-").isdigit() else str(name)


def sets_to_frame(
    sets: Mapping[tuple, NeuronSet], names: Sequence[str] = ("language", "condition", "unit")
) -> pd.DataFrame:
    """Long table of many sets: key columns ``names`` + layer, neuron, score, frequency, n_prompts.

    An empty set keeps one row with missing layer/neuron so it survives a CSV round trip.
    """
    frames = []
    for key, ns in sets.items():
        key = key if isinstance(key, tuple) and len(key) == len(names) else (key,)
        if len(key) != len(names):
            raise InputError(f"set key {key!r} does not match the columns {list(names)}", field="names")
        df = ns.to_frame().drop(columns="label")
        if df.empty:
            df = pd.DataFrame(
                {"layer": [pd.NA], "neuron": [pd.NA], "score": [float("nan")], "frequency": [float("nan")]}
            )
        for i, (name, value) in enumerate(zip(names, key)):
            df.insert(i, name, unit_name(value) if name == "unit" else value)
        df["n_prompts"] = ns.n_prompts
        frames.append(df)
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*names, "layer", "neuron"])
    return out.astype({"layer": "Int64", "neuron": "Int64"})


def sets_from_frame(
    df: pd.DataFrame, names: Sequence[str] = ("language", "condition", "unit"), config: NeuronConfig | None = None
) -> dict[tuple, NeuronSet]:
    """Inverse of :func:`sets_to_frame` (units parsed back with :func:`parse_unit`)."""
    missing = [c for c in (*names, "layer", "neuron") if c not in df.columns]
    if missing:
        raise InputError(f"neuron table lacks columns {missing}", field="columns")
    out = {}
    for key, g in df.groupby(list(names), sort=False):
        key = tuple(parse_unit(v) if n == "unit" else v for n, v in zip(names, key))
        g = g.dropna(subset=["layer", "neuron"])
        sites = list(zip(g["layer"].astype(int), g["neuron"].astype(int)))
        col = lambda c: dict(zip(sites, g[c].astype(float))) if c in g else {}  # noqa: E731
        n_prompts = int(g["n_prompts"].iloc[0]) if "n_prompts" in g and len(g) else 0
        out[key] = NeuronSet(
            frozenset(sites),
            "/".join(unit_name(k) for k in key),
            config or NeuronConfig(),
            col("score"),
            col("frequency"),
            n_prompts,
        )
    return out


def select_grouped(
    scores: Any,
    facts: Sequence[tuple[str, int]],
    config: NeuronConfig = NeuronConfig(),
    *,
    layers: Sequence[int] | None = None,
    label: str = "",
) -> dict[Hashable, NeuronSet]:
    """Knowledge neurons per fact or per relation (``config.level``).

    ``facts[i] = (relation, lineid)`` of prompt ``i``; prompts of the same unit are
    refined together.  Returns ``{unit key: NeuronSet}`` in first-seen order; the
    set labels are ``"{label}{unit}"`` (e.g. ``"fr/P36:12"`` with ``label="fr/"``).
    """
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


# ------------------------------------------------------------------ random controls
def random_masks(
    sizes: Sequence[int] | np.ndarray, d_mlp: int, n: int, *, generator: torch.Generator | None = None, seed: int = 0
) -> torch.Tensor:
    """``[n, n_layers, d_mlp]`` bool: ``n`` random neuron sets with ``sizes[l]`` neurons in layer ``l``.

    Each layer's set is a uniformly random subset (the first ``sizes[l]`` of a
    random permutation), drawn with ``generator`` or a fresh one seeded by ``seed``.
    """
    k = torch.as_tensor(np.asarray(sizes), dtype=torch.long)  # [L]
    if (k < 0).any() or (k > d_mlp).any():
        raise InputError(f"per-layer sizes must be in [0, {d_mlp}], got {k.tolist()}", field="sizes")
    gen = generator if generator is not None else torch.Generator().manual_seed(seed)
    keys = torch.rand(n, len(k), d_mlp, generator=gen)  # [n, L, D]
    ranks = keys.argsort(-1).argsort(-1)  # [n, L, D] rank of each neuron in its layer's permutation
    return ranks < k.view(1, -1, 1)


def random_like(neurons: NeuronSet, n_layers: int, d_mlp: int, *, seed: int = 0) -> NeuronSet:
    """A random neuron set with the same number of neurons per layer as ``neurons`` (seeded)."""
    mask = random_masks(neurons.per_layer_counts(n_layers), d_mlp, 1, seed=seed)[0]  # [L, D]
    return NeuronSet.from_mask(mask, label=f"random({neurons.label})", config=neurons.config)
