"""Causal check of knowledge neurons: suppress / enhance them and watch the gold probability.

A neuron set is scaled at the target positions through hooks on
``blocks.{l}.mlp.hook_post`` (:func:`lrp2_interp.neurons.scaling.scale_hooks`; the same operation
as an Intervention is :class:`lrp2_interp.neurons.scaling.NeuronScaling`) (``factor=0``: suppress, ``factor=2``: enhance,
``factor=1``: identity); the hooks compose with any other forward hooks, e.g.
LRP2's.  The *target positions* are where the gold object's tokens are predicted:

* masked LM: the prompt has one mask token per object token; every mask is a
  target and the gold token at mask ``j`` is the object's ``j``-th token;
* causal LM: the query prefix (BOS prepended, as in probing) is followed by the
  object tokens but the last (teacher forcing); the target positions are the
  last prefix token and the positions of the fed object tokens.

``target_token="first"`` (default, as :mod:`lrp2_interp.attribution.attribute`'s default)
keeps only the first object token and its position (a causal prompt is then the
bare prefix); ``"all"`` keeps every object token.  The gold probability of a fact
is the geometric mean of the kept tokens' probabilities at their targets (``exp``
of the mean log-probability; the first token's probability with ``"first"``).

:func:`causal_effect` runs the same facts in English and in language l (the
latter without and with LRP2), with the knowledge neurons of each fact and with
``n_random`` random sets of the same per-layer sizes (seeded), and returns a
:class:`CausalResult`: its config, language and LRP2 setting, and a table with one
row per (language, condition, fact, neuron set, intervention);
:meth:`CausalResult.summary` (:func:`summarize_causal`) averages it.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from lrp2_interp.errors import InputError
from lrp2_interp.facts import FactSet
from lrp2_interp.figures import draw_causal
from lrp2_interp.files import write_table
from lrp2_interp.lrp2.projection import LRP2Config, lrp2_hooks
from lrp2_interp.lrp2.vectors import LanguageVectors
from lrp2_interp.models.loading import FwdHooks, LanguageModel
from lrp2_interp.neurons.scaling import check_mask_shape, scale_hooks
from lrp2_interp.neurons.sets import NeuronSet, random_masks
from lrp2_interp.plots import save_result
from lrp2_interp.prompts import GoldQuery, gold_queries

COLUMNS = [
    "language",
    "condition",
    "relation",
    "lineid",
    "neurons",
    "draw",
    "intervention",
    "factor",
    "n_neurons",
    "p_before",
    "p_after",
    "change",
    "rel_change",
]


@dataclass(frozen=True)
class CausalConfig:
    interventions: tuple[tuple[str, float], ...] = (("suppress", 0.0), ("enhance", 2.0))
    n_random: int = 3  # random control sets (same per-layer sizes) per fact
    target_token: Literal["first", "all"] = "first"  # object tokens whose probability is measured
    source: str = "en"
    seed: int = 0
    batch_size: int = 16


@dataclass(frozen=True)
class CausalResult:
    """The causal check of one target language: settings and the per-fact table (columns ``COLUMNS``)."""

    config: CausalConfig
    language: str  # the target language (the table also holds ``config.source``'s rows)
    lrp2: LRP2Config | None  # the LRP2 setting of the ``lrp2`` condition; None: baseline only
    table: pd.DataFrame

    def summary(self) -> pd.DataFrame:
        """:func:`summarize_causal` of the table."""
        return summarize_causal(self.table)

    def to_csv(self, path: str | Path) -> Path:
        return write_table(path, self.table)

    def to_frame(self) -> pd.DataFrame:
        """The per-fact table (columns ``COLUMNS``)."""
        return self.table.copy()

    def plot(self, ax: Any = None) -> Any:
        """Mean relative change of the gold probability per intervention, knowledge vs random neurons."""
        return draw_causal(self.summary(), ax)

    def save(self, folder: str | Path) -> Path:
        """Write ``causal.csv`` (the table) and ``causal.png`` (:meth:`plot`) into ``folder``."""
        return save_result(folder, "causal", self.table, self.plot)


def scale_neurons_hooks(
    lm: LanguageModel, masks: torch.Tensor, factor: float, target: torch.Tensor | None = None
) -> FwdHooks:
    """:func:`~lrp2_interp.neurons.scaling.scale_hooks` for ``lm``, after checking the masks fit it.

    ``masks``: ``[n_layers, d_mlp]`` or per batch row ``[batch, n_layers, d_mlp]`` bool;
    ``target``: ``[batch, pos]`` bool or None (all positions).
    """
    check_mask_shape(masks, lm.n_layers, lm.d_mlp)
    return scale_hooks(masks, factor, target)


@torch.no_grad()
def gold_probability(
    lm: LanguageModel,
    queries: Sequence[GoldQuery],
    *,
    masks: torch.Tensor | None = None,
    factor: float = 1.0,
    fwd_hooks: FwdHooks | None = None,
    batch_size: int = 16,
) -> torch.Tensor:
    """``[n_queries]`` gold probability, optionally with neurons scaled by ``factor`` at the targets.

    ``masks``: ``[n_layers, d_mlp]`` (same set for all) or ``[n_queries, n_layers, d_mlp]`` bool.
    ``fwd_hooks`` (e.g. LRP2's) run before the neuron hooks.
    """
    out = []
    for start in range(0, len(queries), batch_size):
        chunk = queries[start : start + batch_size]
        batch = lm.pad_ids([q.input_ids for q in chunk])
        rows = torch.tensor([i for i, q in enumerate(chunk) for _ in q.targets])  # [n_targets]
        cols = torch.tensor([p for q in chunk for p in q.targets])
        gold = torch.tensor([g for q in chunk for g in q.gold])
        hooks = list(fwd_hooks or [])
        if masks is not None:
            m = masks if masks.dim() == 2 else masks[start : start + len(chunk)]
            target = torch.zeros(batch.input_ids.shape, dtype=torch.bool)
            target[rows, cols] = True
            hooks += scale_neurons_hooks(lm, m, factor, target)
        logprobs = torch.log_softmax(lm.logits(batch, hooks).float(), dim=-1)  # [b, pos, vocab]
        tok_lp = logprobs[rows.to(logprobs.device), cols.to(logprobs.device), gold.to(logprobs.device)].cpu()
        per_query = torch.zeros(len(chunk)).index_add_(0, rows, tok_lp)  # [b]
        n_tok = torch.zeros(len(chunk)).index_add_(0, rows, torch.ones(len(rows)))
        out.append((per_query / n_tok).exp())
    return torch.cat(out) if out else torch.empty(0)


def _lookup(neurons: NeuronSet | Mapping[Hashable, NeuronSet], key: tuple[str, int]) -> NeuronSet | None:
    if isinstance(neurons, NeuronSet):
        return neurons
    return neurons.get(key, neurons.get(key[0]))


def causal_effect(
    lm: LanguageModel,
    facts: FactSet,
    neurons: NeuronSet | Mapping[Hashable, NeuronSet],
    language: str,
    vectors: LanguageVectors | None = None,
    lrp2: LRP2Config | None = None,
    *,
    config: CausalConfig | None = None,
    progress: bool = False,
) -> CausalResult:
    """Gold-probability change when a neuron set is suppressed / enhanced, vs random sets of the same sizes.

    ``neurons``: one set for every fact, or sets keyed by fact ``(relation, lineid)``
    or relation (as from :func:`~lrp2_interp.neurons.neuron_selection.select_grouped`); facts
    without a set are skipped.  The facts present in both ``config.source`` and
    ``language`` are run in the source language (``baseline``) and in ``language``
    (``baseline`` and, when ``lrp2`` is given, ``lrp2``).  Random draw ``d`` of
    fact ``i`` uses seed ``(config.seed, i)``; the same random sets are used in
    every language and condition.  Table columns: ``COLUMNS``.  ``progress``: a bar with the ETA over
    the facts of every language and condition (stderr).
    """
    config = config if config is not None else CausalConfig()
    if lrp2 is not None and vectors is None:
        raise InputError("LRP2 needs language vectors (vectors=None)", field="vectors")
    facts.check_languages([config.source, language])
    common = {(f.relation, f.lineid) for f in facts.iter_facts(language)}
    keys = [(f.relation, f.lineid) for f in facts.iter_facts(config.source) if (f.relation, f.lineid) in common]
    found = [(k, _lookup(neurons, k)) for k in keys]
    pairs = [(k, ns) for k, ns in found if ns is not None]
    if not pairs:
        raise InputError("no parallel fact has a neuron set", field="neurons")
    keys = [k for k, _ in pairs]
    sets = [ns for _, ns in pairs]
    L, D = lm.n_layers, lm.d_mlp
    seeds = [int(np.random.SeedSequence([config.seed, i]).generate_state(1)[0]) for i in range(len(sets))]

    def masks_of(idx: range) -> list[tuple[str, int, torch.Tensor]]:
        """(neurons, draw, [len(idx), L, D] masks) for a chunk of facts: built per chunk to bound memory."""
        know = torch.stack([sets[i].as_mask(L, D) for i in idx])
        rand = [random_masks(sets[i].per_layer_counts(L), D, config.n_random, seed=seeds[i]) for i in idx]
        return [("knowledge", 0, know)] + [
            ("random", d, torch.stack([r[d] for r in rand])) for d in range(config.n_random)
        ]

    runs: list[tuple[str, str, FwdHooks | None]] = [(config.source, "baseline", None), (language, "baseline", None)]
    if lrp2 is not None and vectors is not None:
        runs.append((language, "lrp2", lrp2_hooks(lm, vectors, language, lrp2)))
    frames = []
    bar = tqdm(total=len(runs) * len(keys), desc=f"causal check {language}", unit="fact", disable=not progress)
    for run, (lang, cond, hooks) in enumerate(runs):
        queries = gold_queries(lm, facts, lang, keys, config.target_token)
        for start in range(0, len(keys), config.batch_size):
            idx = range(start, min(start + config.batch_size, len(keys)))
            chunk = queries[idx.start : idx.stop]
            before = gold_probability(lm, chunk, fwd_hooks=hooks, batch_size=config.batch_size)  # [chunk]
            variants = masks_of(idx)
            for order, (name, factor) in enumerate(config.interventions):
                for kind, draw, masks in variants:
                    after = gold_probability(
                        lm, chunk, masks=masks, factor=factor, fwd_hooks=hooks, batch_size=config.batch_size
                    )  # [chunk]
                    frames.append(
                        pd.DataFrame(
                            {
                                "language": lang,
                                "condition": cond,
                                "relation": [keys[i][0] for i in idx],
                                "lineid": [keys[i][1] for i in idx],
                                "neurons": kind,
                                "draw": draw,
                                "intervention": name,
                                "factor": factor,
                                "n_neurons": [len(sets[i]) for i in idx],
                                "p_before": before.numpy(),
                                "p_after": after.numpy(),
                                "_key": [(run, order, kind != "knowledge", draw, i) for i in idx],
                            }
                        )
                    )
            bar.update(len(idx))
    bar.close()
    out = pd.concat(frames, ignore_index=True)
    out = out.iloc[sorted(range(len(out)), key=out["_key"].__getitem__)].reset_index(drop=True)
    out["change"] = out["p_after"] - out["p_before"]
    out["rel_change"] = out["change"] / out["p_before"]
    return CausalResult(config, language, lrp2, out[COLUMNS])


def summarize_causal(table: pd.DataFrame) -> pd.DataFrame:
    """Mean (relative) change per (language, condition, intervention, neurons) and knowledge - random."""
    keys = ["language", "condition", "intervention", "neurons"]
    per_fact = table.groupby(keys + ["relation", "lineid"], sort=False)[["change", "rel_change"]].mean()
    out = (
        per_fact.groupby(keys, sort=False)
        .agg(
            n_facts=("change", "size"),
            mean_change=("change", "mean"),
            mean_rel_change=("rel_change", "mean"),
        )
        .reset_index()
    )
    wide = out.pivot_table(index=keys[:3], columns="neurons", values="mean_rel_change")
    if {"knowledge", "random"} <= set(wide.columns):
        diff = (wide["knowledge"] - wide["random"]).rename("rel_change_vs_random").reset_index()
        out = out.merge(diff, on=keys[:3], how="left")
    return out
