"""Neuron sets: frozen sets of ``(layer, neuron)`` sites, their unit names, long tables and random controls.

A :class:`NeuronSet` is what the selection returns (with each site's mean score
and selection frequency).  Many sets keyed by ``(language, condition, unit)``
travel as one long table (:func:`sets_to_frame` / :func:`sets_from_frame`), the
unit being a fact ``("P36", 12)`` (printed ``"P36:12"``) or a relation ``"P36"``.
:func:`random_masks` draws random sets with given per-layer sizes (the controls
of the overlap and causal analyses).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from lrp2_interp.errors import InputError
from lrp2_interp.neurons.neuron_config import Level, NeuronConfig

Site = tuple[int, int]  # (model layer, neuron index)


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

        def col(c: str, g: pd.DataFrame = g, sites: list = sites) -> dict:
            return dict(zip(sites, g[c].astype(float))) if c in g else {}

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
