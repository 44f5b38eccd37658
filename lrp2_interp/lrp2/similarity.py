"""Cosine similarity of parallel queries (English vs language l) per layer, with and without LRP2.

For every fact present in both languages (same ``(relation, lineid)``) the probe
prompt is rendered in each language exactly as :func:`~lrp2_interp.prompts.prompt_corpus`
does (one mask token for masked LMs, the query prefix for causal LMs).  The
representation of a prompt at layer ``i`` is read at ``blocks.{i}.hook_resid_post``:

* ``position="mean"``: the mean over real tokens (:func:`~lrp2_interp.lrp2.vectors.mean_states`,
  padding and special tokens excluded);
* ``position="target"``: the state at the target position (the mask token of a
  masked LM, the last token of a causal LM's prefix);
* ``position="both"``: both, in the ``position`` column.

The cosine of each parallel pair is averaged over facts.  English is run without
hooks; language l without (``baseline``) and with LRP2 (``lrp2``), so a rising
cosine after layer ``m`` shows LRP2 moving l's representations towards English.
:func:`similarity_by_layer` / :func:`similarity_table` return a
:class:`SimilarityResult`: the config, the languages and their LRP2 settings, and
the ``table`` (columns ``COLUMNS``); its figure is :func:`lrp2_interp.plots.similarity_plot`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Literal

import pandas as pd
import torch
import torch.nn.functional as F

from lrp2_interp.errors import InputError
from lrp2_interp.facts import FactSet
from lrp2_interp.files import write_table
from lrp2_interp.lrp2.projection import LRP2Config, lrp2_hooks
from lrp2_interp.lrp2.vectors import LanguageVectors, mean_states
from lrp2_interp.models.loading import FwdHooks, LanguageModel
from lrp2_interp.prompts import parallel_prompts, target_positions

Position = Literal["mean", "target", "both"]
COLUMNS = ["language", "layer", "condition", "position", "m", "n", "cosine", "cosine_sd", "n_facts"]


@dataclass(frozen=True)
class SimilarityConfig:
    source: str = "en"
    position: Position = "mean"
    batch_size: int = 32


@dataclass(frozen=True)
class SimilarityResult:
    """Mean cosine to the source language per layer, for some target languages, without and with LRP2."""

    config: SimilarityConfig
    languages: tuple[str, ...]  # target languages, in table order
    lrp2: Mapping[str, LRP2Config | None] = field(default_factory=dict)  # the ``lrp2`` condition's setting
    table: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=COLUMNS))

    def to_csv(self, path: str | Path) -> Path:
        return write_table(path, self.table)


def _grab(
    x: torch.Tensor, hook: object, *, store: dict[int, torch.Tensor], layer: int, rows: torch.Tensor, pos: torch.Tensor
) -> None:
    """Hook: keep ``x[rows, pos]`` (``x: [b, pos, d_model]`` -> ``[b, d_model]``) as ``store[layer]``."""
    store[layer] = x[rows, pos]


@torch.no_grad()
def target_states(
    lm: LanguageModel, sentences: Sequence[str], *, fwd_hooks: FwdHooks | None = None, batch_size: int = 32
) -> torch.Tensor:
    """``[n_sentences, n_layers, d_model]``: each sentence's residual state at its target position."""
    out = []
    for start in range(0, len(sentences), batch_size):
        batch = lm.encode(sentences[start : start + batch_size])
        pos = target_positions(lm, batch)  # [b]
        rows = torch.arange(len(pos), device=pos.device)
        grabbed: dict[int, torch.Tensor] = {}
        hooks: FwdHooks = [
            (lm.resid_post(i), partial(_grab, store=grabbed, layer=i, rows=rows, pos=pos)) for i in range(lm.n_layers)
        ]
        lm.logits(batch, list(fwd_hooks or []) + hooks)
        out.append(torch.stack([grabbed[i] for i in range(lm.n_layers)], 1).float().cpu())
    return torch.cat(out) if out else torch.empty(0, lm.n_layers, lm.d_model)


def layer_cosines(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[n, n_layers]`` cosine of aligned states ``a, b: [n, n_layers, d_model]``."""
    if a.shape != b.shape:
        raise InputError(f"parallel states differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}", field="states")
    return F.cosine_similarity(a.double(), b.double(), dim=-1).float()


def _states(
    lm: LanguageModel, prompts: list[str], position: str, hooks: FwdHooks | None, batch_size: int
) -> torch.Tensor:
    if position == "mean":
        states = mean_states(lm, prompts, batch_size=batch_size, fwd_hooks=hooks)
        if len(states) != len(prompts):
            raise InputError("a prompt has no real token left after removing special tokens", field="prompts")
        return states
    return target_states(lm, prompts, fwd_hooks=hooks, batch_size=batch_size)


def similarity_by_layer(
    lm: LanguageModel,
    facts: FactSet,
    language: str,
    vectors: LanguageVectors | None = None,
    lrp2: LRP2Config | None = None,
    *,
    config: SimilarityConfig | None = None,
) -> SimilarityResult:
    """Mean cosine per layer between ``language`` and ``config.source`` on parallel prompts.

    Table rows (see ``COLUMNS``): ``condition="baseline"`` and, when ``lrp2`` is given
    (it needs ``vectors``), ``condition="lrp2"`` with its ``m`` and ``n``.
    """
    config = config if config is not None else SimilarityConfig()
    if lrp2 is not None and vectors is None:
        raise InputError("LRP2 needs language vectors (vectors=None)", field="vectors")
    positions = ("mean", "target") if config.position == "both" else (config.position,)
    if any(p not in ("mean", "target") for p in positions):
        raise InputError(f"position must be 'mean', 'target' or 'both', got {config.position!r}", field="position")
    prompts = parallel_prompts(lm, facts, [config.source, language])
    conditions: list[tuple[str, FwdHooks | None, LRP2Config | None]] = [("baseline", None, None)]
    if lrp2 is not None and vectors is not None:
        conditions.append(("lrp2", lrp2_hooks(lm, vectors, language, lrp2), lrp2))
    rows = []
    for position in positions:
        ref = _states(lm, prompts[config.source], position, None, config.batch_size)  # [n, L, d]
        for name, hooks, lrp in conditions:
            cos = layer_cosines(_states(lm, prompts[language], position, hooks, config.batch_size), ref)  # [n, L]
            sd = cos.std(0) if len(cos) > 1 else torch.zeros(cos.shape[1])
            for layer, (mu, s) in enumerate(zip(cos.mean(0).tolist(), sd.tolist())):
                rows.append(
                    {
                        "language": language,
                        "layer": layer,
                        "condition": name,
                        "position": position,
                        "m": lrp.m if lrp else pd.NA,
                        "n": lrp.n if lrp else pd.NA,
                        "cosine": mu,
                        "cosine_sd": s,
                        "n_facts": len(cos),
                    }
                )
    df = pd.DataFrame(rows, columns=COLUMNS).astype({"m": "Int64", "n": "Int64"})
    return SimilarityResult(config, (language,), {language: lrp2}, df)


def similarity_table(
    lm: LanguageModel,
    facts: FactSet,
    languages: Sequence[str],
    vectors: LanguageVectors | None = None,
    lrp2: LRP2Config | Mapping[str, LRP2Config] | None = None,
    *,
    config: SimilarityConfig | None = None,
) -> SimilarityResult:
    """:func:`similarity_by_layer` for several languages; ``lrp2`` may be one config or one per language."""
    config = config if config is not None else SimilarityConfig()
    parts = []
    for lang in languages:
        cfg = lrp2.get(lang) if isinstance(lrp2, Mapping) else lrp2
        parts.append(similarity_by_layer(lm, facts, lang, vectors, cfg, config=config))
    table = pd.concat([p.table for p in parts], ignore_index=True)
    return SimilarityResult(config, tuple(languages), {lang: p.lrp2[lang] for lang, p in zip(languages, parts)}, table)
