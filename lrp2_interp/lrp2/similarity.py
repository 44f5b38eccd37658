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

English is run without hooks; language l without (``baseline``) and with LRP2
(``lrp2``).  Three measures per layer, averaged over facts where they are per fact:

* ``cosine``: the raw cosine of each parallel pair.  In most models every state
  shares one large direction, so raw cosines sit near 1 for every language and layer;
* ``centred_cosine``: the cosine after removing the mean over languages (the mean of
  English's and language l's baseline mean states at that layer, the same centre for
  both conditions), so what the languages share no longer dominates: it is negative
  where the language offset dominates and rises when LRP2 moves l towards English;
* ``cka``: linear CKA (Kornblith et al. 2019) of the two ``[n_facts, d_model]`` state
  matrices: 1 when l arranges the facts as English does (up to rotation and scale),
  blind to a shift common to all facts.

:func:`similarity_by_layer` / :func:`similarity_table` return a :class:`SimilarityResult`:
the config, the languages and their LRP2 settings, and the ``table`` (columns ``COLUMNS``);
``.plot(ax)`` draws one measure, ``.save(folder)`` writes ``similarity.csv`` and
``similarity.png`` (:func:`lrp2_interp.plots.similarity_plot`, one panel per measure).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import torch
import torch.nn.functional as F

from lrp2_interp.errors import InputError
from lrp2_interp.facts import FactSet
from lrp2_interp.figures import draw_similarity
from lrp2_interp.files import write_table
from lrp2_interp.lrp2.projection import LRP2Config, lrp2_hooks
from lrp2_interp.lrp2.vectors import LanguageVectors, mean_states
from lrp2_interp.models.loading import FwdHooks, LanguageModel
from lrp2_interp.plots import similarity_plot
from lrp2_interp.prompts import parallel_prompts, target_positions

Position = Literal["mean", "target", "both"]
COLUMNS = [
    "language",
    "layer",
    "condition",
    "position",
    "m",
    "n",
    "cosine",
    "cosine_sd",
    "centred_cosine",
    "centred_cosine_sd",
    "cka",
    "n_facts",
]
#: a centred state (set) shorter than this fraction of the uncentred one is float noise: no direction, NaN
REL_EPS = 1e-6


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

    def to_frame(self) -> pd.DataFrame:
        """The table (columns ``COLUMNS``), one row per language, layer, condition and position."""
        return self.table.copy()

    def plot(self, ax: Any = None, *, measure: str = "centred_cosine") -> Any:
        """``measure`` (``"cosine"``, ``"centred_cosine"`` or ``"cka"``) vs layer on ``ax``; returns the Axes."""
        return draw_similarity(self.table, ax, measure=measure, source=self.config.source)

    def save(self, folder: str | Path) -> Path:
        """Write ``similarity.csv`` and ``similarity.png`` (every measure) into ``folder``; returns the PNG."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        return similarity_plot(self.table, folder / "similarity.png", source=self.config.source)


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


def centred_cosines(a: torch.Tensor, b: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    """``[n, n_layers]`` cosine of ``a - centre`` and ``b - centre`` (``centre: [n_layers, d_model]``).

    A pair with a centred state of (near) zero length has no direction: NaN, not 0.
    """
    if a.shape != b.shape:
        raise InputError(f"parallel states differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}", field="states")
    x, y = a.double() - centre.double(), b.double() - centre.double()
    nx, ny = x.norm(dim=-1), y.norm(dim=-1)
    flat = (nx <= REL_EPS * a.double().norm(dim=-1)) | (ny <= REL_EPS * b.double().norm(dim=-1))
    cos = (x * y).sum(-1) / (nx * ny).clamp_min(torch.finfo(torch.float64).tiny)
    return cos.masked_fill(flat, float("nan")).float()


def linear_cka(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[n_layers]`` linear CKA of ``a, b: [n, n_layers, d_model]`` over the ``n`` rows.

    ``CKA = ||B'^T A'||_F^2 / (||A'^T A'||_F ||B'^T B'||_F)`` with ``A'``, ``B'`` centred over
    rows; 1 for ``a == b``; NaN with fewer than 2 rows or when a set does not vary.
    """
    if a.shape != b.shape:
        raise InputError(f"parallel states differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}", field="states")
    a, b = a.double().transpose(0, 1), b.double().transpose(0, 1)  # [L, n, d]
    x, y = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    flat = (x.norm(dim=(1, 2)) <= REL_EPS * a.norm(dim=(1, 2))) | (y.norm(dim=(1, 2)) <= REL_EPS * b.norm(dim=(1, 2)))
    kx, ky = x @ x.transpose(1, 2), y @ y.transpose(1, 2)  # [L, n, n] Gram matrices
    hsic = (kx * ky).sum((1, 2))
    norm = (kx * kx).sum((1, 2)).sqrt() * (ky * ky).sum((1, 2)).sqrt()
    cka = hsic / norm.clamp_min(torch.finfo(torch.float64).tiny)
    return cka.masked_fill(flat, float("nan")).float()


def _mean_sd(values: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-layer mean and sd over facts of ``values: [n, L]``, NaN entries skipped (sd 0 for one fact)."""
    v = values.double()
    ok = ~v.isnan()
    count = ok.sum(0)
    mean = torch.where(ok, v, 0.0).sum(0) / count.clamp_min(1)
    var = torch.where(ok, (v - mean) ** 2, 0.0).sum(0) / (count - 1).clamp_min(1)
    mean = mean.masked_fill(count == 0, float("nan"))
    return mean.tolist(), var.sqrt().masked_fill(count == 0, float("nan")).tolist()


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
        base = _states(lm, prompts[language], position, None, config.batch_size)
        centre = (ref.mean(0) + base.mean(0)) / 2  # [L, d] the mean over the two languages
        for name, hooks, lrp in conditions:
            states = base if hooks is None else _states(lm, prompts[language], position, hooks, config.batch_size)
            cos, cos_sd = _mean_sd(layer_cosines(states, ref))
            cen, cen_sd = _mean_sd(centred_cosines(states, ref, centre))
            cka = linear_cka(states, ref).tolist()
            for layer in range(len(cos)):
                rows.append(
                    {
                        "language": language,
                        "layer": layer,
                        "condition": name,
                        "position": position,
                        "m": lrp.m if lrp else pd.NA,
                        "n": lrp.n if lrp else pd.NA,
                        "cosine": cos[layer],
                        "cosine_sd": cos_sd[layer],
                        "centred_cosine": cen[layer],
                        "centred_cosine_sd": cen_sd[layer],
                        "cka": cka[layer],
                        "n_facts": len(states),
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
    """Similarity to English per layer of several languages' queries, without and with LRP2.

    Args:
        lm: the model.
        facts: the fact set; only facts present in English and the language are compared.
        languages: the target languages.
        vectors: language vectors (needed for LRP2).
        lrp2: one ``LRP2Config`` for every language, or one per language (a language without one
            gets the baseline only).
        config: source language, position (``"mean"``, ``"target"``, ``"both"``), batch size.

    Returns:
        :class:`SimilarityResult`: ``.table`` with ``cosine``, ``centred_cosine`` and ``cka`` per layer;
        ``.plot(ax, measure=...)`` draws one measure.

    (``lm``, ``facts`` and ``vec`` as in :mod:`lrp2_interp.lrp2.front`.)

    >>> sim = lx.similarity_table(lm, facts, ["fr"], vec, lx.LRP2Config(m=0, n=1))
    >>> sorted(set(sim.table["condition"])), {"cosine", "centred_cosine", "cka"} <= set(sim.table.columns)
    (['baseline', 'lrp2'], True)
    >>> ax = sim.plot(measure="centred_cosine")  # a matplotlib Axes, nothing written
    >>> [t.get_text() for t in ax.get_xticklabels()]
    ['0 (L1)', '1 (L2)']
    """
    config = config if config is not None else SimilarityConfig()
    parts = []
    for lang in languages:
        cfg = lrp2.get(lang) if isinstance(lrp2, Mapping) else lrp2
        parts.append(similarity_by_layer(lm, facts, lang, vectors, cfg, config=config))
    table = pd.concat([p.table for p in parts], ignore_index=True)
    return SimilarityResult(config, tuple(languages), {lang: p.lrp2[lang] for lang, p in zip(languages, parts)}, table)
