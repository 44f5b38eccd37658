"""Learned cross-lingual alignment (INCLINE, Wang, Wu et al., ACL 2025): per-layer least-squares maps.

Fit: for every layer ``i`` the sentence representation of each language-l sentence
and of its English translation is the mean over its real tokens of the FFN output
``blocks.{i}.hook_mlp_out`` (``site="mlp_out"``, the paper) or of the residual stream
``blocks.{i}.hook_resid_post`` (``site="resid"``); ``W_i`` solves
``min ||X_l W_i - X_en||`` with :func:`torch.linalg.lstsq` (``affine=True`` appends a
column of ones, giving ``[W_i; b_i]``; ``ridge > 0`` appends ``sqrt(ridge) * I`` rows,
i.e. ridge regression, for fits with fewer sentences than dimensions).

Inference: ``x <- x + sigma * (x W_i + b_i)`` at the site of every fitted layer
(:func:`alignment_hooks`; ``rule="interpolate"`` uses ``x + sigma (x W + b - x)``
instead), with ``sigma`` swept over a grid in [-1, 1] and chosen on
dev facts (:class:`AlignmentIntervention`).  Positions: the paper patches the
last prompt position (and, generating, each new position) with ``a_i`` from a clean
run; here ``x`` is the hooked run's own value and the default is every position
(``positions="all"``, as LRP2 here: typed probing scores whole sentences, and the
hook cannot see where each row's prompt ends); a tuple of ints (negative = from
each row's last real token, bound by ``LanguageModel.logits``) restricts it.

Controls and special cases: :meth:`AlignmentMaps.random_like` draws Gaussian maps of
the same per-layer Frobenius norms (seeded); :func:`translation_maps` builds
``W = 0, b = shift`` maps, which with ``site="resid"`` and ``sigma = 1`` are exactly
LRP2's shifts (LRP2 is this alignment restricted to a translation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Literal

import torch

from lrp2_interp.errors import InputError, check_layer
from lrp2_interp.facts import FactSet
from lrp2_interp.lrp2.vectors import mean_states
from lrp2_interp.methods.controls import same_norm_random
from lrp2_interp.models.hooks import (
    FwdHooks,
    Positions,
    check_positions,
    mlp_out_hook,
    position_mask,
    resid_post_hook,
)
from lrp2_interp.models.loading import LanguageModel
from lrp2_interp.prompts import translation_prompts

Site = Literal["mlp_out", "resid"]
Rule = Literal["add", "interpolate"]


@dataclass(frozen=True)
class AlignmentConfig:
    language: str
    source: str = "en"  # the language the maps point to
    site: Site = "mlp_out"
    affine: bool = False  # fit [W; b] (the residual-stream variant's default in the CLI)
    layers: tuple[int, ...] | None = None  # None: every layer (the paper)
    ridge: float = 0.0  # 0: plain least squares
    batch_size: int = 32

    def validate(self, n_layers: int) -> tuple[int, ...]:
        if self.site not in ("mlp_out", "resid"):
            raise InputError(f"site must be 'mlp_out' or 'resid', got {self.site!r}", field="site")
        if self.ridge < 0:
            raise InputError(f"ridge must be >= 0, got {self.ridge}", field="ridge")
        layers = tuple(range(n_layers)) if self.layers is None else tuple(self.layers)
        return tuple(check_layer(layer, n_layers, field="layers") for layer in layers)


@dataclass(frozen=True)
class AlignmentMaps:
    """Per-layer maps ``x -> x W + b`` of one model (``weights[k]`` belongs to ``layers[k]``)."""

    config: AlignmentConfig
    model_name: str
    d_model: int
    layers: tuple[int, ...]
    weights: torch.Tensor = field(repr=False)  # [n_fit_layers, d_model, d_model]
    biases: torch.Tensor = field(repr=False)  # [n_fit_layers, d_model] (zeros unless affine)
    n_pairs: int = 0
    fit_r2: tuple[float, ...] = ()  # per layer: 1 - ||X W + b - Y||^2 / ||Y - mean Y||^2 on the fit pairs
    label: str = "fitted"

    def weight(self, layer: int) -> torch.Tensor:
        return self.weights[self.layers.index(layer)]

    def bias(self, layer: int) -> torch.Tensor:
        return self.biases[self.layers.index(layer)]

    def random_like(self, seed: int = 0) -> AlignmentMaps:
        """Gaussian maps with the same per-layer Frobenius norm of ``W`` (and norm of ``b``): the control."""
        gen = torch.Generator().manual_seed(seed)
        w = same_norm_random(self.weights, gen)
        b = same_norm_random(self.biases, gen)
        return replace(self, weights=w, biases=b, fit_r2=(), label=f"random(seed={seed})")


def site_hook(lm: LanguageModel, site: Site, layer: int) -> str:
    return lm.mlp_out(layer) if site == "mlp_out" else lm.resid_post(layer)


def site_name(site: Site, layer: int) -> str:
    """The hook name of ``site`` at block ``layer`` (no model needed: the layer was checked at fit time)."""
    return mlp_out_hook(layer) if site == "mlp_out" else resid_post_hook(layer)


def solve_map(
    x: torch.Tensor, y: torch.Tensor, *, affine: bool = False, ridge: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Least squares ``x W + b ~ y`` (x, y: ``[n, d]``) -> (W ``[d, d]``, b ``[d]``, R^2 on the fit rows)."""
    x, y = x.double(), y.double()
    a = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1) if affine else x  # [n, d(+1)]
    rhs = y
    if ridge > 0:
        reg = torch.eye(a.shape[1], dtype=a.dtype) * ridge**0.5
        if affine:
            reg[-1, -1] = 0.0  # the bias is not shrunk
        a, rhs = torch.cat([a, reg]), torch.cat([y, torch.zeros(a.shape[1], y.shape[1], dtype=y.dtype)])
    # gelsd: minimum-norm solution, also for rank-deficient (n < d) systems
    sol = torch.linalg.lstsq(a, rhs, driver="gelsd").solution  # [d(+1), d]
    w, b = (sol[:-1], sol[-1]) if affine else (sol, torch.zeros(y.shape[1], dtype=y.dtype))
    resid = ((x @ w + b - y) ** 2).sum()
    total = ((y - y.mean(0)) ** 2).sum().clamp(min=1e-30)
    return w.float(), b.float(), float(1 - resid / total)


def fit_alignment(
    lm: LanguageModel, sentences: Sequence[str], translations: Sequence[str], config: AlignmentConfig
) -> AlignmentMaps:
    """Fit ``W_i`` mapping language-l sentences onto their translations, layer by layer."""
    layers = config.validate(lm.n_layers)
    if len(sentences) != len(translations):
        raise InputError(
            f"{len(sentences)} sentences but {len(translations)} translations (must be parallel)", field="translations"
        )
    if len(sentences) < 2:
        raise InputError("need at least 2 parallel sentences to fit an alignment", field="sentences")
    # each sentence's float32 mean over real tokens at the site; a sentence with none is a zero row (kept parallel)
    names = [site_hook(lm, config.site, i) for i in layers]
    pooled = partial(mean_states, lm, hook_names=names, keep_empty=True, float32=True, batch_size=config.batch_size)
    x, y = pooled(sentences), pooled(translations)  # [n, L, d]
    ws, bs, r2 = [], [], []
    for k in range(len(layers)):
        w, b, score = solve_map(x[:, k], y[:, k], affine=config.affine, ridge=config.ridge)
        ws.append(w)
        bs.append(b)
        r2.append(score)
    return AlignmentMaps(
        config, lm.name, lm.d_model, layers, torch.stack(ws), torch.stack(bs), len(sentences), tuple(r2)
    )


def translation_maps(lm: LanguageModel, shifts: Mapping[int, torch.Tensor], config: AlignmentConfig) -> AlignmentMaps:
    """Maps with ``W = 0`` and ``b = shifts[layer]``: a pure translation (LRP2 with ``site="resid"``, sigma 1)."""
    layers = tuple(sorted(check_layer(layer, lm.n_layers, field="layers") for layer in shifts))
    b = torch.stack([shifts[layer].float().cpu() for layer in layers])  # [n, d]
    w = torch.zeros(len(layers), lm.d_model, lm.d_model)
    return AlignmentMaps(
        replace(config, layers=layers, affine=True), lm.name, lm.d_model, layers, w, b, label="translation"
    )


@dataclass(frozen=True, eq=False)
class AlignmentHook:
    """``x <- x + sigma * (x W + b)`` (``interpolate``: ``... - x``) at every position or at ``positions``.

    Negative positions count from each row's last real token: :meth:`bind` (called by
    ``LanguageModel.logits``) gives the hook the batch's row lengths; unbound, it refuses them.
    """

    weight: torch.Tensor  # [d_model, d_model]
    bias: torch.Tensor  # [d_model]
    sigma: float
    rule: Rule = "add"
    positions: Positions = "all"
    lengths: torch.Tensor | None = None  # [batch] real tokens per row of the batch it is bound to

    def bind(self, lengths: torch.Tensor) -> AlignmentHook:
        """This hook for a batch whose rows have ``lengths`` ``[batch]`` real tokens."""
        return self if self.positions == "all" else replace(self, lengths=lengths)

    def __call__(self, x: torch.Tensor, hook: Any = None) -> torch.Tensor:  # x: [batch, pos, d_model]
        delta = x @ self.weight.to(x.device, x.dtype) + self.bias.to(x.device, x.dtype)
        if self.rule == "interpolate":
            delta = delta - x
        if self.positions == "all":
            return x + self.sigma * delta
        sel = position_mask(self.positions, self.lengths, x.shape[0], x.shape[1], x.device)  # [batch, pos]
        return x + self.sigma * (delta * sel.to(x.dtype)[..., None])


def alignment_hooks(
    lm: LanguageModel, maps: AlignmentMaps, sigma: float, positions: Positions = "all", rule: Rule = "add"
) -> FwdHooks:
    """Forward hooks applying the map at every fitted layer's site.

    ``rule="add"`` (the paper): ``x <- x + sigma * (x W + b)``; ``rule="interpolate"``:
    ``x <- x + sigma * (x W + b - x)``, so ``sigma = 1`` lands on the mapped point and
    ``W = I, b = 0`` is the identity.
    """
    if rule not in ("add", "interpolate"):
        raise InputError(f"rule must be 'add' or 'interpolate', got {rule!r}", field="rule")
    if maps.d_model != lm.d_model or maps.model_name.split("/")[-1] != lm.name.split("/")[-1]:
        raise InputError(
            f"alignment maps are for model '{maps.model_name}' (d_model {maps.d_model}), "
            f"not '{lm.name}' (d_model {lm.d_model})",
            field="model_name",
        )
    return map_hooks(maps, sigma, positions, rule)


def map_hooks(maps: AlignmentMaps, sigma: float, positions: Positions = "all", rule: Rule = "add") -> FwdHooks:
    """The hooks of :func:`alignment_hooks` without the model check (``[]`` at ``sigma = 0``)."""
    if rule not in ("add", "interpolate"):
        raise InputError(f"rule must be 'add' or 'interpolate', got {rule!r}", field="rule")
    check_positions(positions)
    if sigma == 0:
        return []
    return [
        (
            site_name(maps.config.site, layer),
            AlignmentHook(maps.weight(layer), maps.bias(layer), sigma, rule, positions),
        )
        for layer in maps.layers
    ]


@dataclass(frozen=True, eq=False)
class AlignmentIntervention:
    """Learned alignment as an Intervention: settings are the sigmas; maps fitted on the dev facts' prompts.

    ``control(sigma, seed)``: random maps of the same per-layer norms (:meth:`AlignmentMaps.random_like`).
    """

    language: str
    source: str = "en"
    sigmas: tuple[float, ...] = (-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0)  # 0 (= baseline) can be chosen
    site: Site = "mlp_out"
    affine: bool = False
    ridge: float = 0.0
    rule: Rule = "add"
    layers: tuple[int, ...] | None = None  # None: every layer
    maps: AlignmentMaps | None = field(default=None, repr=False)  # None until fit()
    name: str = "alignment"
    title: str = "learned alignment (INCLINE, Wang et al. 2025)"

    def __post_init__(self) -> None:
        if not self.sigmas or any(not -1.0 <= s <= 1.0 for s in self.sigmas):
            raise InputError(f"sigmas must be non-empty and lie in [-1, 1], got {self.sigmas}", field="sigmas")
        if self.rule not in ("add", "interpolate"):
            raise InputError(f"rule must be 'add' or 'interpolate', got {self.rule!r}", field="rule")

    def settings(self) -> list[float]:
        return [float(s) for s in self.sigmas]

    def fit(self, lm: LanguageModel, facts: FactSet) -> AlignmentIntervention:
        """Maps from ``language``'s prompts of ``facts`` (the dev facts) onto their ``source`` translations."""
        x, y = translation_prompts(lm, facts, self.language, self.source)
        config = AlignmentConfig(
            self.language, source=self.source, site=self.site, affine=self.affine, layers=self.layers, ridge=self.ridge
        )
        return replace(self, maps=fit_alignment(lm, x, y, config))

    def _maps(self) -> AlignmentMaps:
        if self.maps is None:
            raise InputError("alignment needs maps: call fit() first or pass maps=", field="maps")
        return self.maps

    def hooks(self, setting: float) -> FwdHooks:
        return map_hooks(self._maps(), float(setting), rule=self.rule)

    def control(self, setting: float, seed: int) -> FwdHooks:
        return map_hooks(self._maps().random_like(seed), float(setting), rule=self.rule)

    def extra_controls(self, setting: float) -> dict[str, FwdHooks]:
        return {}

    def label(self, setting: float) -> str:
        return f"sigma={float(setting):+.2f}"
