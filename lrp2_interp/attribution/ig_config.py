"""Knowledge-neuron attribution settings and typed results: the rule names, AttributionConfig, AttributionResult.

Quadrature (``method``): ``"gausslegendre_graded"`` (default, 8 steps: Gauss-Legendre in ``t``
with ``alpha = t**3``, nodes crowded towards alpha = 0 where trained pre-norm models put most of the
integral -- see :func:`lrp2_interp.attribution.captum_ig.quadrature` and the accuracy table in
``benchmarks/README.md``); Captum's ``"riemann_left"`` (alphas ``0, 1/n, .., (n-1)/n``, weights
``1/n``), ``"riemann_right"`` (the paper's formula, alphas ``1/n .. 1``), ``"riemann_middle"``,
``"riemann_trapezoid"`` (Captum's: alphas ``linspace(0, 1, n)`` but weights ``1/n``, so its weights
sum to ``(n-1)/n``), ``"gausslegendre"``; and ``"kn_linspace"``, the rule of EleutherAI's
knowledge-neurons 0.0.2 (alphas ``linspace(0, 1, n)`` -- both ends -- each weighted ``1/n``; note
that this is *not* riemann_left).

Adaptive steps (``target_delta``): every layer whose completeness error ``|delta|`` exceeds it is
recomputed at twice the steps until it is met or ``max_steps`` is reached; ``AttributionResult.steps``
records the steps each layer used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import torch

from lrp2_interp.errors import InputError, check_layer
from lrp2_interp.figures import draw_attribution
from lrp2_interp.plots import save_result

__all__ = [
    "CAPTUM_METHODS",
    "CUSTOM_METHODS",
    "METHODS",
    "AttributionConfig",
    "AttributionResult",
    "Method",
    "QueryScores",
]

Method = Literal[
    "riemann_left",
    "riemann_right",
    "riemann_middle",
    "riemann_trapezoid",
    "gausslegendre",
    "kn_linspace",
    "gausslegendre_graded",
]
CAPTUM_METHODS = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre")
CUSTOM_METHODS = ("kn_linspace", "gausslegendre_graded")  # explicit weights and alphas (captum_ig.quadrature)
METHODS = CAPTUM_METHODS + CUSTOM_METHODS


@dataclass(frozen=True)
class AttributionConfig:
    # default: 8 points of Gauss-Legendre graded towards alpha = 0, the cheapest rule that beats the
    # knowledge-neurons library's 20-step rule on every model measured (benchmarks/README.md)
    n_steps: int = 8
    method: Method = "gausslegendre_graded"
    log_prob: bool = False  # f = log p(gold) instead of p(gold)
    target_token: Literal["first", "sum"] = "first"
    layers: tuple[int, ...] | None = None  # None: every layer
    path: Literal["auto", "fast", "reference"] = "auto"
    memory_budget_mb: float = (
        2048.0  # autograd memory per Captum batch (chooses the batch size; estimate is conservative)
    )
    # adaptive steps: a layer whose |completeness delta| exceeds target_delta is recomputed with twice the
    # steps, until it is met or max_steps is reached (the steps used are in AttributionResult.steps)
    target_delta: float | None = None
    max_steps: int = 512

    def validate(self, n_layers: int) -> tuple[int, ...]:
        """Check every setting; return the attributed layers, sorted and de-duplicated."""
        if self.method not in METHODS:
            raise InputError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}", field="method")
        if not isinstance(self.n_steps, int) or self.n_steps < (2 if self.method == "kn_linspace" else 1):
            raise InputError(
                f"n_steps must be a positive int (>= 2 for kn_linspace), got {self.n_steps!r}", field="n_steps"
            )
        if self.target_token not in ("first", "sum"):
            raise InputError(f"target_token must be 'first' or 'sum', got {self.target_token!r}", field="target_token")
        if self.path not in ("auto", "fast", "reference"):
            raise InputError(f"path must be 'auto', 'fast' or 'reference', got {self.path!r}", field="path")
        if self.target_delta is not None and not self.target_delta > 0:
            raise InputError(f"target_delta must be > 0 or None, got {self.target_delta!r}", field="target_delta")
        if not isinstance(self.max_steps, int) or self.max_steps < self.n_steps:
            raise InputError(
                f"max_steps must be an int >= n_steps ({self.n_steps}), got {self.max_steps!r}", field="max_steps"
            )
        if not self.memory_budget_mb > 0:
            raise InputError(f"memory_budget_mb must be > 0, got {self.memory_budget_mb!r}", field="memory_budget_mb")
        layers = tuple(range(n_layers)) if self.layers is None else tuple(self.layers)
        if not layers:
            raise InputError("layers must not be empty", field="layers")
        return tuple(sorted({check_layer(l, n_layers, field="layers") for l in layers}))


@dataclass(frozen=True)
class QueryScores:
    """Attribution of some layers for one target (one query) of a prompt."""

    scores: torch.Tensor  # [n_layers, d_mlp]
    activations: torch.Tensor  # [n_layers, d_mlp] clean activations at the target
    deltas: torch.Tensor  # [n_layers] float64 completeness error sum(attr) - (f_input - f_baseline)
    f_input: torch.Tensor  # [n_layers] float64
    f_baseline: torch.Tensor  # [n_layers] float64
    steps: tuple[int, ...]  # quadrature steps each layer used

    def with_rows(self, rows: Sequence[int], new: QueryScores) -> QueryScores:
        """These scores with layer rows ``rows`` replaced by ``new``'s rows (in order); activations kept."""

        def put(old: torch.Tensor, part: torch.Tensor) -> torch.Tensor:
            out = old.clone()
            for k, i in enumerate(rows):
                out[i] = part[k]
            return out

        steps = list(self.steps)
        for k, i in enumerate(rows):
            steps[i] = new.steps[k]
        return QueryScores(
            put(self.scores, new.scores),
            self.activations,
            put(self.deltas, new.deltas),
            put(self.f_input, new.f_input),
            put(self.f_baseline, new.f_baseline),
            tuple(steps),
        )


def adaptive_steps(
    config: AttributionConfig, first: QueryScores, rerun: Callable[[list[int], AttributionConfig], QueryScores]
) -> QueryScores:
    """``first`` (rows at ``config.n_steps``) with adaptive steps: while some rows' ``|delta|`` exceed
    ``config.target_delta``, ``rerun(rows, config)`` recomputes them at twice the steps, up to ``max_steps``."""
    out, n = first, config.n_steps
    while config.target_delta is not None and n < config.max_steps:
        bad = (out.deltas.abs() > config.target_delta).nonzero().flatten().tolist()
        if not bad:
            break
        n = min(2 * n, config.max_steps)  # every row still missing the target has used the same steps so far
        out = out.with_rows(bad, rerun(bad, replace(config, n_steps=n)))
    return out


@dataclass(frozen=True)
class AttributionResult:
    config: AttributionConfig
    model_name: str
    prompt: str
    target_ids: tuple[int, ...]  # gold token(s) attributed (one per target position)
    target_positions: tuple[int, ...]  # token position of each target
    layers: tuple[int, ...]
    path: Literal["fast", "reference"]
    scores: torch.Tensor  # [n_layers_attributed, d_mlp], summed over targets
    activations: torch.Tensor  # [n_targets, n_layers_attributed, d_mlp] clean activations at the targets
    deltas: torch.Tensor  # [n_layers_attributed] Captum convergence delta sum(attr) - (f_input - f_baseline)
    f_input: torch.Tensor  # [n_layers_attributed] f of the unpatched model (same for every layer)
    f_baseline: torch.Tensor  # [n_layers_attributed] f with that layer's activation at the target zeroed
    steps: tuple[int, ...] = ()  # quadrature steps used per attributed layer (max over targets)

    @classmethod
    def of_targets(
        cls,
        config: AttributionConfig,
        model_name: str,
        prompt: str,
        targets: Sequence[tuple[int, int]],
        layers: tuple[int, ...],
        path: Literal["fast", "reference"],
        parts: Sequence[QueryScores],
    ) -> AttributionResult:
        """The result of a prompt from one :class:`QueryScores` per target ``(gold, position)``: sums over targets."""
        return cls(
            config=config,
            model_name=model_name,
            prompt=prompt,
            target_ids=tuple(gold for gold, _ in targets),
            target_positions=tuple(pos for _, pos in targets),
            layers=layers,
            path=path,
            scores=torch.stack([q.scores for q in parts]).sum(0).cpu(),
            activations=torch.stack([q.activations for q in parts]).cpu(),
            deltas=torch.stack([q.deltas for q in parts]).sum(0),
            f_input=torch.stack([q.f_input for q in parts]).sum(0),
            f_baseline=torch.stack([q.f_baseline for q in parts]).sum(0),
            steps=tuple(max(q.steps[i] for q in parts) for i in range(len(layers))),
        )

    def top(self, k: int = 10) -> list[tuple[int, int, float]]:
        """The ``k`` highest-scoring neurons as ``(layer, neuron, score)``."""
        flat = self.scores.flatten()
        vals, idx = flat.topk(min(k, flat.numel()))
        d = self.scores.shape[1]
        return [(self.layers[i // d], i % d, v) for i, v in zip(idx.tolist(), vals.tolist())]

    def to_frame(self) -> pd.DataFrame:
        """One row per neuron: layer (block index), neuron, score, and the layer's completeness error ``delta``."""
        n_layers, d_mlp = self.scores.shape
        return pd.DataFrame(
            {
                "layer": [layer for layer in self.layers for _ in range(d_mlp)],
                "neuron": list(range(d_mlp)) * n_layers,
                "score": self.scores.detach().float().flatten().cpu().numpy(),
                "delta": self.deltas.detach().float().cpu().repeat_interleave(d_mlp).numpy(),
            }
        )

    def plot(self, ax: Any = None, *, top: int = 10) -> Any:
        """Layer x rank heatmap of the ``top`` scores per layer, each cell labelled with its neuron index."""
        return draw_attribution(self.scores, ax, layers=self.layers, top=top)

    def save(self, folder: str | Path) -> Path:
        """Write ``attribution.csv`` (:meth:`to_frame`) and ``attribution.png`` (:meth:`plot`) into ``folder``."""
        return save_result(folder, "attribution", self.to_frame(), self.plot)
