"""Knowledge-neuron attribution (Dai et al. 2022) with Captum integrated gradients.

For a prompt and its gold object, the attribution of FFN neuron ``i`` of layer
``l`` (the activation at TransformerLens hook ``blocks.{l}.mlp.hook_post``) is the
integrated gradient of ``f`` = probability (or log-probability, ``log_prob=True``)
of the gold token at the *target position* with respect to that layer's
activation ``a`` at the target position, from the zero baseline::

    attr_l = a * sum_k w_k * d f(alpha_k * a) / d a        (all other layers run normally)

Target position: the ``[MASK]`` of a masked LM, the last prompt token of a causal
LM (BOS is prepended when the tokenizer has one, as in :mod:`lrp2_interp.probing.api`).

Multi-token objects (``target_token``):

* ``"first"`` (default): the first object token at its position (a masked-LM
  prompt may hold one mask or one mask per object token; the first is used);
* ``"sum"``: the sum over object tokens of each token's attribution, token ``t``
  at its own position -- mask ``t`` of a masked LM (one mask per token required);
  for a causal LM the prompt is extended with the gold tokens before ``t``
  (teacher forcing) and ``t`` is predicted at the last position.
  ``deltas`` / ``f_input`` / ``f_baseline`` are then sums over tokens too.

Quadrature (``method``): ``"gausslegendre_graded"`` (default, 8 steps: Gauss-Legendre in ``t``
with ``alpha = t**3``, nodes crowded towards alpha = 0 where trained pre-norm models put most of the
integral -- see :func:`quadrature` and the accuracy table in ``benchmarks/README.md``); Captum's
``"riemann_left"`` (alphas ``0, 1/n, .., (n-1)/n``, weights ``1/n``), ``"riemann_right"`` (the
paper's formula, alphas ``1/n .. 1``), ``"riemann_middle"``, ``"riemann_trapezoid"`` (Captum's: alphas
``linspace(0, 1, n)`` but weights ``1/n``, so its weights sum to ``(n-1)/n``), ``"gausslegendre"``; and
``"kn_linspace"``, the rule of EleutherAI's knowledge-neurons 0.0.2 (alphas ``linspace(0, 1, n)`` --
both ends -- each weighted ``1/n``; note that this is *not* riemann_left).

Adaptive steps (``target_delta``): every layer whose completeness error ``|delta|`` exceeds it is
recomputed at twice the steps until it is met or ``max_steps`` is reached; ``AttributionResult.steps``
records the steps each layer used.  Many facts and conditions per pass:
:func:`lrp2_interp.attribution.batch.attribute_batch`.

Two paths compute the same numbers, both through ``captum.attr.IntegratedGradients``:

* ``"reference"``: per layer, a forward function runs the whole model through
  ``lm.bridge`` with a hook on ``mlp.hook_post`` replacing the target position's
  activation (any family, any extra hooks);
* ``"fast"`` (:mod:`lrp2_interp.attribution.fast.ig`): hand-written BERT/BLOOM/GPT-2/Qwen2 and, for every other
  causal decoder (Gemma-3, ...), :mod:`lrp2_interp.attribution.fast.generic`; one Captum call
  over all layers with a forward function that resumes from a cached clean pass
  (identical scores up to float rounding; 5x less CPU time than knowledge-neurons
  0.0.2 on an mBERT-sized model, see ``benchmarks/README.md``).  Extra hooks on other hook points than
  ``hook_resid_post`` / ``mlp.hook_post`` make ``path="auto"`` fall back to the
  reference; hooks on those two must act position-wise (LRP2's do), otherwise
  ask for ``path="reference"``.  The fast path's ``deltas`` use Captum's
  definition with ``f(input)`` = the clean ``f`` (no extra forward passes).

Extra hooks (``extra_hooks``, TransformerLens ``(name, fn)`` pairs) run in every
forward pass, before the patching hook on the same hook point.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from tqdm.auto import tqdm

from lrp2_interp.attribution.fast.bert import Hooks
from lrp2_interp.attribution.fast.ig import FastModel, StagedForward, Unsupported, fast_model
from lrp2_interp.errors import InputError, check_layer
from lrp2_interp.models.loading import Batch, FwdHooks, LanguageModel
from lrp2_interp.prompts import causal_ids

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
METHODS = CAPTUM_METHODS + ("kn_linspace", "gausslegendre_graded")
GRADING = 3  # gausslegendre_graded: alpha = t**GRADING with t on Gauss-Legendre nodes


def quadrature(method: str, n: int) -> tuple[list[float], list[float]]:
    """(weights, alphas) of the custom rules: ``kn_linspace`` and ``gausslegendre_graded``.

    ``gausslegendre_graded`` is Gauss-Legendre in ``t`` after substituting ``alpha = t**3``
    (``d alpha = 3 t**2 dt``): its nodes crowd towards alpha = 0, where the integrand of trained
    pre-norm models has its spike (a block's FFN output, rescaled by the next norm, stops mattering
    once it dominates the residual), and it stays exact for smooth integrands as n grows.
    """
    if method == "kn_linspace":
        return [1.0 / n] * n, torch.linspace(0, 1, n).tolist()
    import numpy as np

    x, w = np.polynomial.legendre.leggauss(n)
    t, wt = (x + 1) / 2, w / 2
    return (wt * GRADING * t ** (GRADING - 1)).tolist(), (t**GRADING).tolist()


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
    progress: bool = True
    # adaptive steps: a layer whose |completeness delta| exceeds target_delta is recomputed with twice the
    # steps, until it is met or max_steps is reached (the steps used are in AttributionResult.steps)
    target_delta: float | None = None
    max_steps: int = 512

    def validate(self, n_layers: int) -> tuple[int, ...]:
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

    def top(self, k: int = 10) -> list[tuple[int, int, float]]:
        """The ``k`` highest-scoring neurons as ``(layer, neuron, score)``."""
        flat = self.scores.flatten()
        vals, idx = flat.topk(min(k, flat.numel()))
        d = self.scores.shape[1]
        return [(self.layers[i // d], i % d, v) for i, v in zip(idx.tolist(), vals.tolist())]


@dataclass(frozen=True)
class Query:
    """One target of a prompt: token ids, the position predicting ``gold`` and ``gold`` itself."""

    ids: torch.Tensor  # [pos] long
    position: int
    gold: int


def queries(lm: LanguageModel, prompt: str, target: str | Sequence[int], config: AttributionConfig) -> list[Query]:
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


def _f(logits: torch.Tensor, gold: int, log_prob: bool) -> torch.Tensor:  # [n, vocab] -> [n]
    lp = torch.log_softmax(logits, dim=-1)[:, gold]
    return lp if log_prob else lp.exp()


def integrated_gradients(
    forward: Callable[..., torch.Tensor],
    inputs: torch.Tensor,
    config: AttributionConfig,
    rows_per_batch: int,
    layer_idx: torch.Tensor | None = None,
    *,
    delta: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Captum IG of ``forward`` over ``inputs`` [n, d] from zero: (attributions [n, d], deltas [n] or None).

    ``layer_idx`` [n] is passed to ``forward`` as an additional argument (Captum
    repeats it for every step); ``rows_per_batch`` is Captum's internal batch size.
    ``delta=False`` skips Captum's convergence delta (two extra forward passes).
    """
    from captum.attr import IntegratedGradients

    ig = IntegratedGradients(forward)
    base = torch.zeros_like(inputs)
    args = (layer_idx,) if layer_idx is not None else None
    n, n_steps = inputs.shape[0], config.n_steps
    rows = max(int(rows_per_batch), n)
    if config.method in CAPTUM_METHODS:
        out = ig.attribute(
            inputs,
            baselines=base,
            additional_forward_args=args,
            n_steps=n_steps,
            method=config.method,
            internal_batch_size=rows,
            return_convergence_delta=delta,
        )
        return out if delta else (out, None)
    # custom rules: Captum's own integration with explicit step sizes and alphas (chunked like internal batching)
    sizes, alphas = quadrature(config.method, n_steps)
    per = max(1, rows // n)
    attr = torch.zeros_like(inputs)
    for s in range(0, n_steps, per):
        attr = attr + captum_custom_rule(ig, inputs, base, args, sizes[s : s + per], alphas[s : s + per])
    return attr, ig.compute_convergence_delta(attr, base, inputs, additional_forward_args=args) if delta else None


def captum_custom_rule(
    ig, inputs: torch.Tensor, base: torch.Tensor, args: tuple | None, sizes: Sequence[float], alphas: Sequence[float]
) -> torch.Tensor:
    """IG of ``inputs`` [n, d] with explicit quadrature ``sizes``/``alphas`` (one Captum batch) -> [n, d].

    Captum's public ``attribute`` offers only its named rules; a custom rule (``kn_linspace``) needs the
    private ``IntegratedGradients._attribute(step_sizes_and_alphas=...)``.  This is the one place that calls
    it (``tests/test_attribution_generic.py::test_captum_private_rule_api`` fails loudly if Captum changes it).
    """
    out = ig._attribute(
        (inputs,),
        (base,),
        additional_forward_args=args,
        n_steps=len(sizes),
        step_sizes_and_alphas=(list(sizes), list(alphas)),
    )
    return out[0].detach()


class _PatchedForward:
    """Reference forward: the whole model via ``lm.bridge`` with layer ``l``'s activation at ``p`` set to x."""

    def __init__(self, lm: LanguageModel, q: Query, layer: int, hooks: FwdHooks, log_prob: bool):
        self.lm, self.q, self.layer, self.hooks, self.log_prob = lm, q, layer, list(hooks), log_prob

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # x [N, d_mlp] -> f [N]
        n, p = x.shape[0], self.q.position

        def patch(act: torch.Tensor, hook=None) -> torch.Tensor:  # act [N, pos, d_mlp]
            return torch.cat([act[:, :p], x[:, None].to(act.dtype), act[:, p + 1 :]], dim=1)

        ids = self.q.ids[None].repeat(n, 1)
        logits = self.lm.logits(Batch(ids, torch.ones_like(ids)), self.hooks + [(self.lm.mlp_post(self.layer), patch)])
        # + 0 * x keeps x in the graph when a hook cuts the layer off (Captum's autograd.grad needs a path)
        return _f(logits[:, p], self.q.gold, self.log_prob) + 0.0 * x.sum(1).to(logits.dtype)


def _reference_rows(lm: LanguageModel, n_pos: int, budget_mb: float) -> int:
    itemsize = torch.empty((), dtype=lm.dtype).element_size()
    cfg = lm.bridge.cfg
    vocab = int(lm.bridge.original_model.get_output_embeddings().weight.shape[0])
    per = (
        lm.n_layers * n_pos * (14 * lm.d_model + 3 * lm.d_mlp + 3 * int(cfg.n_heads) * n_pos) + 3 * n_pos * vocab
    ) * itemsize
    return max(1, int(budget_mb * 2**20 // per))


def _reference_query(
    lm: LanguageModel, q: Query, layers: tuple[int, ...], config: AttributionConfig, hooks: FwdHooks
) -> tuple[torch.Tensor, ...]:
    store: dict[int, torch.Tensor] = {}

    def grab(layer: int):
        def hook(act: torch.Tensor, hook=None) -> None:
            store[layer] = act[0, q.position].detach().clone()

        return hook

    ids = q.ids[None]
    with torch.no_grad():
        logits = lm.logits(Batch(ids, torch.ones_like(ids)), list(hooks) + [(lm.mlp_post(l), grab(l)) for l in layers])
        f_clean = float(_f(logits[:, q.position], q.gold, config.log_prob)[0])
    rows = _reference_rows(lm, ids.shape[1], config.memory_budget_mb)
    scores, deltas, f_base = [], [], []
    for layer in tqdm(layers, desc="IG layers (reference)", disable=not config.progress, leave=False):
        fwd = _PatchedForward(lm, q, layer, hooks, config.log_prob)
        attr, delta = integrated_gradients(fwd, store[layer][None], config, rows)
        with torch.no_grad():
            f_base.append(float(fwd(torch.zeros_like(store[layer][None]))[0]))
        scores.append(attr[0].detach())
        deltas.append(float(delta[0]))
    acts = torch.stack([store[l] for l in layers])
    f64 = dict(dtype=torch.float64)
    return (
        torch.stack(scores),
        acts,
        torch.tensor(deltas, **f64),
        torch.full((len(layers),), f_clean, **f64),
        torch.tensor(f_base, **f64),
    )


def _fast_query(
    fm: FastModel, lm: LanguageModel, q: Query, layers: tuple[int, ...], config: AttributionConfig, hooks: FwdHooks
) -> tuple[torch.Tensor, ...]:
    fwd = StagedForward(fm, q.ids, q.position, q.gold, log_prob=config.log_prob, hooks=hooks, lm=lm)
    acts = fwd.activations(layers)  # [n_layers, d_mlp]
    layer_idx = torch.tensor(layers, device=acts.device)
    rows = max(1, int(config.memory_budget_mb * 2**20 // fm.bytes_per_row(q.ids.shape[0], layers)))
    attr, _ = integrated_gradients(fwd, acts, config, rows, layer_idx, delta=False)
    if all(l in fwd.f_zero for l in layers):  # the quadrature evaluated alpha = 0 already
        f_base = torch.tensor([fwd.f_zero[l] for l in layers], dtype=torch.float64)
    else:
        with torch.no_grad():
            f_base = fwd(torch.zeros_like(acts), layer_idx).cpu().to(torch.float64)  # [n_layers]
    f_in = torch.full((len(layers),), fwd.f_clean, dtype=torch.float64)
    # Captum's convergence delta, sum(attr) - (f(input) - f(baseline)), without its two extra forward passes:
    # f(input) is the clean f (the patch at alpha=1 changes nothing)
    delta = attr.detach().sum(1).cpu().to(torch.float64) - (f_in - f_base)
    return attr.detach(), acts, delta, f_in, f_base


def _choose_path(lm: LanguageModel, config: AttributionConfig, hooks: FwdHooks) -> FastModel | None:
    """The fast implementation to use, or None for the reference path."""
    if config.path == "reference":
        return None
    try:
        Hooks.parse(lm, hooks)
        return fast_model(lm)
    except Unsupported as err:
        if config.path == "fast":
            raise InputError(f"the fast attribution path cannot run here: {err}", field="path") from None
        return None


def _adaptive_query(
    lm: LanguageModel,
    q: Query,
    layers: tuple[int, ...],
    config: AttributionConfig,
    hooks: FwdHooks,
    fm: FastModel | None,
) -> tuple[tuple[torch.Tensor, ...], list[int]]:
    """One query at ``config.n_steps``; with ``target_delta``, the layers that miss it again at doubled steps."""

    def run(ls: tuple[int, ...], cfg: AttributionConfig) -> tuple[torch.Tensor, ...]:
        return _fast_query(fm, lm, q, ls, cfg, hooks) if fm is not None else _reference_query(lm, q, ls, cfg, hooks)

    parts = [t.clone() for t in run(layers, config)]  # scores, activations, deltas, f_input, f_baseline
    steps = [config.n_steps] * len(layers)
    n = config.n_steps
    while config.target_delta is not None and n < config.max_steps:
        bad = [i for i in range(len(layers)) if abs(float(parts[2][i])) > config.target_delta]
        if not bad:
            break
        n = min(2 * n, config.max_steps)  # every layer still missing the target has used the same steps so far
        new = run(tuple(layers[i] for i in bad), AttributionConfig(**{**config.__dict__, "n_steps": n}))
        for k, i in enumerate(bad):
            for t in (0, 2, 3, 4):
                parts[t][i] = new[t][k]
            steps[i] = n
    return tuple(parts), steps


def _attribute(
    lm: LanguageModel,
    prompt: str,
    target: str | Sequence[int],
    config: AttributionConfig,
    layers: tuple[int, ...],
    hooks: FwdHooks,
    fm: FastModel | None,
) -> AttributionResult:
    qs = queries(lm, prompt, target, config)
    runs = [_adaptive_query(lm, q, layers, config, hooks, fm) for q in qs]
    parts = [r[0] for r in runs]
    total = [torch.stack([part[i] for part in parts]).sum(0) for i in (0, 2, 3, 4)]
    return AttributionResult(
        config=config,
        model_name=lm.name,
        prompt=prompt,
        target_ids=tuple(q.gold for q in qs),
        target_positions=tuple(q.position for q in qs),
        layers=layers,
        path="fast" if fm is not None else "reference",
        scores=total[0].cpu(),
        activations=torch.stack([part[1] for part in parts]).cpu(),
        deltas=total[1],
        f_input=total[2],
        f_baseline=total[3],
        steps=tuple(max(r[1][i] for r in runs) for i in range(len(layers))),
    )


def attribute_neurons(
    lm: LanguageModel,
    prompt: str,
    target: str | Sequence[int],
    config: AttributionConfig = AttributionConfig(),
    extra_hooks: FwdHooks | None = None,
) -> AttributionResult:
    """Knowledge-neuron attribution scores of every FFN neuron for one prompt and its gold object.

    ``target`` is the object text (tokenized with ``lm.token_ids``; give causal LMs a
    leading space where the tokenizer needs one) or its token ids.
    """
    layers = config.validate(lm.n_layers)
    hooks = list(extra_hooks or [])
    return _attribute(lm, prompt, target, config, layers, hooks, _choose_path(lm, config, hooks))


def attribute_many(
    lm: LanguageModel,
    prompts: Sequence[str],
    targets: Sequence[str | Sequence[int]],
    config: AttributionConfig = AttributionConfig(),
    extra_hooks: FwdHooks | None = None,
) -> list[AttributionResult]:
    """:func:`attribute_neurons` over many prompts (one result each), with a progress bar.

    The fast implementation is built once and reused for every prompt.
    """
    if len(prompts) != len(targets):
        raise InputError(f"{len(prompts)} prompts but {len(targets)} targets", field="targets")
    layers = config.validate(lm.n_layers)
    hooks = list(extra_hooks or [])
    fm = _choose_path(lm, config, hooks)
    quiet = AttributionConfig(**{**config.__dict__, "progress": False})
    out = []
    for prompt, target in tqdm(list(zip(prompts, targets)), desc="knowledge-neuron IG", disable=not config.progress):
        res = _attribute(lm, prompt, target, quiet, layers, hooks, fm)
        out.append(AttributionResult(**{**res.__dict__, "config": config}))
    return out


def stack_scores(results: Sequence[AttributionResult]) -> torch.Tensor:
    """Scores of many results as one tensor ``[n_results, n_layers, d_mlp]`` (same layers required)."""
    if not results:
        raise InputError("no results to stack")
    if len({r.layers for r in results}) != 1:
        raise InputError("results attribute different layers; cannot stack", field="layers")
    return torch.stack([r.scores for r in results])
