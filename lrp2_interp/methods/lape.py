"""Language-specific neurons (LAPE, Tang et al., ACL 2024): activation probability entropy per FFN neuron.

* Activation probability ``p[i, j, l]``: the share of real tokens of language l's
  corpus on which FFN neuron ``j`` of layer ``i`` is active, i.e. its activation is
  > 0.  For ReLU, GELU and SiLU (gated or not) that is the sign of the
  pre-activation ``blocks.{i}.mlp.hook_pre`` (the gate's, for gated FFNs).
* LAPE: normalise ``p`` over languages into a distribution and take its entropy;
  a neuron active in one language only has entropy 0.
* Selection (the paper's thresholds, all configurable): keep neurons whose highest
  probability is at least the ``filter_rate`` (95 %) quantile of all probabilities;
  of those, the ``top_rate`` (1 %) of all neurons with the lowest entropy; such a
  neuron belongs to language l when ``p[l]`` exceeds the ``activation_bar_ratio``
  (95 %) quantile (a neuron may belong to several languages).
* Intervention hooks on ``blocks.{i}.mlp.hook_post``: :func:`scale_hooks` multiplies a
  neuron mask by a factor (0 = deactivate) and :func:`steer_hooks` deactivates the
  language's neurons and moves the source language's ones towards their mean
  activation on the source corpus.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

import pandas as pd
import torch

from lrp2_interp.errors import InputError
from lrp2_interp.models.hooks import mlp_post_hook
from lrp2_interp.models.loading import FwdHooks, LanguageModel


@dataclass(frozen=True)
class LapeConfig:
    top_rate: float = 0.01  # share of all neurons kept as language-specific (lowest entropy)
    filter_rate: float = 0.95  # max_l p must reach this quantile of all probabilities
    activation_bar_ratio: float = 0.95  # p_l above this quantile makes the neuron l's
    batch_size: int = 32

    def __post_init__(self) -> None:
        for name in ("top_rate", "filter_rate", "activation_bar_ratio"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise InputError(f"{name} must be in [0, 1], got {v}", field=name)


@dataclass(frozen=True)
class ActivationStats:
    """Per-language statistics of every FFN neuron over a corpus."""

    languages: tuple[str, ...]
    probs: torch.Tensor = field(repr=False)  # [n_layers, d_mlp, n_lang]: P(activation > 0)
    means: torch.Tensor = field(repr=False)  # [n_layers, d_mlp, n_lang]: mean hook_post activation
    n_tokens: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class LanguageNeurons:
    """The language-specific neurons found by LAPE, with what they were found from."""

    config: LapeConfig
    stats: ActivationStats
    entropy: torch.Tensor = field(repr=False)  # [n_layers, d_mlp], inf where the neuron is never active
    selected: torch.Tensor = field(repr=False)  # [n_layers, d_mlp] bool: the top_rate lowest-entropy candidates
    masks: Mapping[str, torch.Tensor] = field(repr=False)  # lang -> [n_layers, d_mlp] bool

    @property
    def languages(self) -> tuple[str, ...]:
        return self.stats.languages

    def mask(self, language: str) -> torch.Tensor:
        if language not in self.masks:
            raise InputError(
                f"no language-specific neurons for '{language}' (have {', '.join(self.languages)})", field="language"
            )
        return self.masks[language]

    def sites(self, language: str) -> set[tuple[int, int]]:
        """``{(layer, neuron)}`` of ``language``'s neurons."""
        return {(int(i), int(j)) for i, j in self.mask(language).nonzero().tolist()}

    def counts(self) -> pd.DataFrame:
        """Long table: language, layer, n_neurons."""
        rows = [
            {"language": lang, "layer": layer, "n_neurons": int(m[layer].sum())}
            for lang, m in self.masks.items()
            for layer in range(m.shape[0])
        ]
        return pd.DataFrame(rows)


@torch.no_grad()
def activation_stats(
    lm: LanguageModel, corpora: Mapping[str, Sequence[str]], *, batch_size: int = 32, fwd_hooks: FwdHooks | None = None
) -> ActivationStats:
    """Activation probability and mean activation of every FFN neuron per language (real tokens only)."""
    langs = tuple(corpora)
    probs, means, counts = [], [], {}
    for lang in langs:
        sents = list(corpora[lang])
        if not sents:
            raise InputError(f"empty corpus for language '{lang}'", field="corpora")
        active = torch.zeros(lm.n_layers, lm.d_mlp, dtype=torch.float64)
        total = torch.zeros(lm.n_layers, lm.d_mlp, dtype=torch.float64)
        n_tok = 0
        for start in range(0, len(sents), batch_size):
            batch = lm.encode(sents[start : start + batch_size])
            keep = lm.real_token_mask(batch)  # [b, pos] bool

            def pre(x: torch.Tensor, hook=None, layer: int = 0, keep=keep, active=active) -> None:  # [b, pos, d_mlp]
                active[layer] += (x[keep] > 0).double().sum(0).cpu()

            def post(x: torch.Tensor, hook=None, layer: int = 0, keep=keep, total=total) -> None:
                total[layer] += x[keep].double().sum(0).cpu()

            hooks: FwdHooks = [(lm.mlp_pre(i), partial(pre, layer=i)) for i in range(lm.n_layers)]
            hooks += [(lm.mlp_post(i), partial(post, layer=i)) for i in range(lm.n_layers)]
            lm.logits(batch, list(fwd_hooks or []) + hooks)
            n_tok += int(keep.sum())
        if n_tok == 0:
            raise InputError(f"corpus of '{lang}' has no real token", field="corpora")
        probs.append((active / n_tok).float())
        means.append((total / n_tok).float())
        counts[lang] = n_tok
    return ActivationStats(langs, torch.stack(probs, -1), torch.stack(means, -1), counts)


def lape_entropy(probs: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) over the last axis of ``probs`` normalised to sum 1; ``inf`` where all are 0."""
    total = probs.sum(-1, keepdim=True)
    q = probs / total.clamp(min=1e-30)
    ent = -(q * torch.log(q.clamp(min=1e-30))).sum(-1)  # 0 log 0 = 0
    return torch.where(total.squeeze(-1) > 0, ent, torch.full_like(ent, float("inf")))


def _quantile(x: torch.Tensor, q: float) -> float:
    # torch.quantile refuses very large inputs; the k-th value is the same order statistic
    flat = x.flatten().double()
    k = min(len(flat), max(1, round(q * len(flat))))
    return float(flat.kthvalue(k).values)


def select_language_neurons(stats: ActivationStats, config: LapeConfig = LapeConfig()) -> LanguageNeurons:
    """LAPE selection with the paper's thresholds (see the module docstring)."""
    probs = stats.probs  # [L, D, n_lang]
    entropy = lape_entropy(probs)
    candidate_ent = entropy.clone()
    candidate_ent[probs.max(-1).values < _quantile(probs, config.filter_rate)] = float("inf")
    n_top = round(config.top_rate * entropy.numel())
    selected = torch.zeros_like(entropy, dtype=torch.bool)
    finite = torch.isfinite(candidate_ent)
    n_top = min(n_top, int(finite.sum()))
    if n_top > 0:
        idx = candidate_ent.flatten().topk(n_top, largest=False).indices
        selected.view(-1)[idx] = True
    bar = _quantile(probs, config.activation_bar_ratio)
    masks = {lang: selected & (probs[..., k] > bar) for k, lang in enumerate(stats.languages)}
    return LanguageNeurons(config, stats, entropy, selected, masks)


def _neuron_hook(scale: torch.Tensor, shift: torch.Tensor):
    def hook(x: torch.Tensor, hook=None) -> torch.Tensor:  # x: [batch, pos, d_mlp]
        return x * scale.to(x.device, x.dtype) + shift.to(x.device, x.dtype)

    return hook


def scale_hooks(lm: LanguageModel, mask: torch.Tensor, factor: float = 0.0) -> FwdHooks:
    """Multiply the activation of the masked neurons by ``factor`` (0: deactivate), every position."""
    if tuple(mask.shape) != (lm.n_layers, lm.d_mlp):
        raise InputError(
            f"neuron mask has shape {tuple(mask.shape)}, model needs ({lm.n_layers}, {lm.d_mlp})", field="mask"
        )
    hooks = []
    for layer in range(lm.n_layers):
        m = mask[layer].float()
        if m.any():
            hooks.append((lm.mlp_post(layer), _neuron_hook(1 - m * (1 - factor), torch.zeros_like(m))))
    return hooks


SteerMode = Literal["deactivate", "to_source"]


def steer_hooks(
    lm: LanguageModel,
    neurons: LanguageNeurons,
    language: str,
    *,
    source: str = "en",
    strength: float = 1.0,
    mode: SteerMode = "deactivate",
) -> FwdHooks:
    """Language-neuron steering: damp ``language``'s neurons by ``strength`` (1: off).

    ``mode="to_source"`` also moves the source language's own neurons towards their
    mean activation on the source corpus: ``a <- (1 - s) a + s mean_src``.
    """
    if tuple(neurons.mask(language).shape) != (lm.n_layers, lm.d_mlp):
        raise InputError(
            f"neuron masks have shape {tuple(neurons.mask(language).shape)}, model needs ({lm.n_layers}, {lm.d_mlp})",
            field="neurons",
        )
    return neuron_steer_hooks(neurons, language, source=source, strength=strength, mode=mode)


def neuron_steer_hooks(
    neurons: LanguageNeurons,
    language: str,
    *,
    source: str = "en",
    strength: float = 1.0,
    mode: SteerMode = "deactivate",
) -> FwdHooks:
    """The hooks of :func:`steer_hooks`, named from the masks' layers (no model needed)."""
    if mode not in ("deactivate", "to_source"):
        raise InputError(f"mode must be 'deactivate' or 'to_source', got {mode!r}", field="mode")
    own = neurons.mask(language).float()  # [L, D]
    scale, shift = 1 - strength * own, torch.zeros_like(own)
    if mode == "to_source":
        src = (neurons.mask(source) & ~neurons.mask(language)).float()
        mean_src = neurons.stats.means[..., neurons.languages.index(source)]  # [L, D]
        scale = scale * (1 - strength * src)
        shift = strength * src * mean_src
    return [
        (mlp_post_hook(layer), _neuron_hook(scale[layer], shift[layer]))
        for layer in range(own.shape[0])
        if (scale[layer] != 1).any() or (shift[layer] != 0).any()
    ]
