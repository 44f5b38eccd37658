"""Knowledge-neuron attribution (Dai et al. 2022): attribute_neurons / attribute_many, on the fast or reference path.

For a prompt and its gold object, the attribution of FFN neuron ``i`` of layer ``l`` (the
activation at TransformerLens hook ``blocks.{l}.mlp.hook_post``) is the integrated gradient of
``f`` = probability (or log-probability, ``log_prob=True``) of the gold token at the *target
position* (:mod:`lrp2_interp.attribution.queries`) with respect to that layer's activation ``a``
at the target position, from the zero baseline::

    attr_l = a * sum_k w_k * d f(alpha_k * a) / d a        (all other layers run normally)

With ``target_token="sum"``, ``scores`` / ``deltas`` / ``f_input`` / ``f_baseline`` are sums over
the object's tokens.  Rules, steps and adaptive steps: :mod:`lrp2_interp.attribution.ig_config`.
Many facts and conditions per pass: :func:`lrp2_interp.attribution.batch.attribute_batch`.

Two paths compute the same numbers, both through Captum (:mod:`lrp2_interp.attribution.captum_ig`):

* ``"reference"`` (:mod:`lrp2_interp.attribution.reference_ig`): per layer, the whole model through
  ``lm.bridge`` with a hook replacing the target position's activation (any family, any extra hooks);
* ``"fast"`` (:mod:`lrp2_interp.attribution.fast.ig`): hand-written BERT and, for every causal
  decoder (BLOOM, GPT-2, Qwen2, Gemma-3, ...), :mod:`lrp2_interp.attribution.fast.generic`; one Captum
  call over all layers with a forward function that resumes from a cached clean pass (identical
  scores up to float rounding; 5x less CPU time than knowledge-neurons 0.0.2 on an mBERT-sized
  model, see ``benchmarks/README.md``).  Extra hooks on other hook points than ``hook_resid_post`` /
  ``mlp.hook_post`` make ``path="auto"`` fall back to the reference; hooks on those two must act
  position-wise (LRP2's do), otherwise ask for ``path="reference"``.  The fast path's ``deltas`` use
  Captum's definition with ``f(input)`` = the clean ``f`` (no extra forward passes).

Extra hooks (``fwd_hooks``, TransformerLens ``(name, fn)`` pairs) run in every forward pass,
before the patching hook on the same hook point; on both paths ``fn`` receives the bridge's
``HookPoint`` as ``hook=``.  ``extra_hooks=`` is the deprecated name of ``fwd_hooks=`` (it warns
once and goes in the next release).  One fact of a fact set: :func:`attribute_fact`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
from tqdm.auto import tqdm

from lrp2_interp.attribution.captum_ig import integrated_gradients
from lrp2_interp.attribution.fast.decoder_engine import BatchedForward, Unit, ig_rows
from lrp2_interp.attribution.fast.family_parts import Hooks
from lrp2_interp.attribution.fast.generic import GenericDecoder
from lrp2_interp.attribution.fast.ig import FastModel, StagedForward, fast_model
from lrp2_interp.attribution.ig_config import METHODS, AttributionConfig, AttributionResult, QueryScores, adaptive_steps
from lrp2_interp.attribution.memory import rows_in_budget
from lrp2_interp.attribution.queries import Query, queries
from lrp2_interp.attribution.reference_ig import reference_query
from lrp2_interp.errors import InputError, Unsupported
from lrp2_interp.facts import FactSet
from lrp2_interp.models.hooks import renamed_hooks
from lrp2_interp.models.loading import FwdHooks, LanguageModel
from lrp2_interp.prompts import FactKey, attribution_queries

# AttributionConfig, AttributionResult and METHODS are defined in attribution.config; they are part of this API
__all__ = [
    "METHODS",
    "AttributionConfig",
    "AttributionResult",
    "attribute_fact",
    "attribute_many",
    "attribute_neurons",
    "choose_path",
    "stack_scores",
]


def fast_query(
    fm: FastModel, lm: LanguageModel, q: Query, layers: tuple[int, ...], config: AttributionConfig, hooks: FwdHooks
) -> QueryScores:
    """Attribution of ``layers`` for one query on the fast path: one Captum call over all layers."""
    if isinstance(fm.family, GenericDecoder):  # every causal decoder: the decoder engine with this one query
        if q.position != q.ids.shape[0] - 1:
            raise Unsupported("the causal decoder engine needs the target at the last position")
        bf = BatchedForward(fm.family, [Unit(q.ids, q.gold, Hooks.parse(lm, hooks))], log_prob=config.log_prob)
        return ig_rows(bf, fm, torch.tensor(layers), config, layers)
    fwd = StagedForward(fm, q.ids, q.position, q.gold, log_prob=config.log_prob, hooks=hooks, lm=lm)
    acts = fwd.activations(layers)  # [n_layers, d_mlp]
    layer_idx = torch.tensor(layers, device=acts.device)
    rows = rows_in_budget(config.memory_budget_mb, fm.bytes_per_row(q.ids.shape[0], layers))
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
    return QueryScores(attr.detach(), acts, delta, f_in, f_base, (config.n_steps,) * len(layers))


def choose_path(lm: LanguageModel, config: AttributionConfig, *hook_sets: FwdHooks | None) -> FastModel | None:
    """The fast implementation that honours every one of ``hook_sets``, or None for the reference path.

    ``config.path="fast"`` turns "cannot" into an InputError.
    """
    if config.path == "reference":
        return None
    try:
        for hooks in hook_sets:
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
    progress: bool,
) -> QueryScores:
    """One query at ``config.n_steps``; with ``target_delta``, the layers that miss it again at doubled steps."""

    def run(ls: tuple[int, ...], cfg: AttributionConfig) -> QueryScores:
        if fm is not None:
            return fast_query(fm, lm, q, ls, cfg, hooks)
        return reference_query(lm, q, ls, cfg, hooks, progress=progress)

    return adaptive_steps(config, run(layers, config), lambda bad, cfg: run(tuple(layers[i] for i in bad), cfg))


def _attribute(
    lm: LanguageModel,
    prompt: str,
    target: str | Sequence[int],
    config: AttributionConfig,
    layers: tuple[int, ...],
    hooks: FwdHooks,
    fm: FastModel | None,
    progress: bool,
) -> AttributionResult:
    qs = queries(lm, prompt, target, config)
    parts = [_adaptive_query(lm, q, layers, config, hooks, fm, progress) for q in qs]
    path: Literal["fast", "reference"] = "fast" if fm is not None else "reference"
    targets = [(q.gold, q.position) for q in qs]
    return AttributionResult.of_targets(config, lm.name, prompt, targets, layers, path, parts)


def attribute_neurons(
    lm: LanguageModel,
    prompt: str,
    target: str | Sequence[int],
    config: AttributionConfig | None = None,
    fwd_hooks: FwdHooks | None = None,
    *,
    progress: bool = True,
    extra_hooks: FwdHooks | None = None,
) -> AttributionResult:
    """Knowledge-neuron attribution scores of every FFN neuron for one prompt and its gold object.

    Args:
        lm: the model.
        prompt: the query: a masked prompt (masked LMs) or the prefix before the object (causal LMs).
        target: the object text (tokenized with ``lm.token_ids``; give causal LMs a leading space where
            the tokenizer needs one) or its token ids.
        config: steps, quadrature rule, layers, path (``None``: ``AttributionConfig()``).
        fwd_hooks: TransformerLens ``(hook_name, fn)`` hooks run in every forward pass (e.g. LRP2's).
        progress: a progress bar over the layers of the reference path.
        extra_hooks: deprecated name of ``fwd_hooks``.

    Returns:
        :class:`~lrp2_interp.attribution.ig_config.AttributionResult` (``.scores``: ``[n_layers, d_mlp]``).

    (``lm`` and ``facts`` as in :mod:`lrp2_interp.lrp2.front`.)

    >>> res = lx.attribute_neurons(lm, "The capital of France is", " Paris", progress=False)
    >>> tuple(res.scores.shape) == (lm.n_layers, lm.d_mlp)
    True
    """
    config = AttributionConfig() if config is None else config
    layers = config.validate(lm.n_layers)
    hooks = renamed_hooks(fwd_hooks, extra_hooks, "attribute_neurons")
    return _attribute(lm, prompt, target, config, layers, hooks, choose_path(lm, config, hooks), progress)


def attribute_many(
    lm: LanguageModel,
    prompts: Sequence[str],
    targets: Sequence[str | Sequence[int]],
    config: AttributionConfig | None = None,
    fwd_hooks: FwdHooks | None = None,
    *,
    progress: bool = True,
    tick: Callable[[int], object] | None = None,
    extra_hooks: FwdHooks | None = None,
) -> list[AttributionResult]:
    """:func:`attribute_neurons` over many prompts (one result each), with a progress bar over prompts.

    The fast implementation is built once and reused for every prompt (``extra_hooks``: deprecated
    name of ``fwd_hooks``).  ``progress``: a bar with the ETA over the prompts (stderr); ``tick``: called
    with 1 after each prompt (a caller's own bar over many calls, e.g. the knowledge-neuron pipeline's).
    """
    config = AttributionConfig() if config is None else config
    if len(prompts) != len(targets):
        raise InputError(f"{len(prompts)} prompts but {len(targets)} targets", field="targets")
    layers = config.validate(lm.n_layers)
    hooks = renamed_hooks(fwd_hooks, extra_hooks, "attribute_many")
    fm = choose_path(lm, config, hooks)
    out = []
    for prompt, target in tqdm(list(zip(prompts, targets)), desc="knowledge-neuron IG", disable=not progress):
        out.append(_attribute(lm, prompt, target, config, layers, hooks, fm, progress=False))
        if tick is not None:
            tick(1)
    return out


def attribute_fact(
    lm: LanguageModel,
    facts: FactSet,
    language: str,
    fact: FactKey,
    config: AttributionConfig | None = None,
    fwd_hooks: FwdHooks | None = None,
    *,
    progress: bool = False,
) -> AttributionResult:
    """Knowledge-neuron attribution of one fact of a fact set, asked in ``language``.

    The prompt and gold tokens are :func:`lrp2_interp.prompts.attribution_queries`' (every
    object token, one mask per token for masked LMs); the scores sum over the object's tokens
    as ``config.target_token`` says.

    Args:
        lm: the model.
        facts: the fact set (:func:`lrp2_interp.load_facts`).
        language: the language of the query.
        fact: its ``(relation, lineid)``.
        config: attribution settings (``None``: ``AttributionConfig()``).
        fwd_hooks: hooks run in every forward pass (e.g. ``lrp2_hooks(...)``).
        progress: a progress bar over the layers of the reference path.

    (``lm``, ``facts`` and ``vec`` as in :mod:`lrp2_interp.lrp2.front`.)

    >>> fact = next(facts.iter_facts("fr"))
    >>> hooks = lx.lrp2_hooks(lm, vec, "fr", lx.LRP2Config(m=0, n=1))
    >>> with_lrp2 = lx.attribute_fact(lm, facts, "fr", (fact.relation, fact.lineid), fwd_hooks=hooks)
    >>> res = lx.attribute_fact(lm, facts, "fr", (fact.relation, fact.lineid))
    >>> len(res.layers) == lm.n_layers, with_lrp2.scores.shape == res.scores.shape
    (True, True)
    >>> ax = res.plot()  # layer x rank heatmap of the top neurons (a matplotlib Axes)
    """
    ((prompt, gold),) = attribution_queries(lm, facts, language, [fact])
    return attribute_neurons(lm, prompt, gold, config, fwd_hooks, progress=progress)


def stack_scores(results: Sequence[AttributionResult]) -> torch.Tensor:
    """Scores of many results as one tensor ``[n_results, n_layers, d_mlp]`` (same layers required)."""
    if not results:
        raise InputError("no results to stack")
    if len({r.layers for r in results}) != 1:
        raise InputError("results attribute different layers; cannot stack", field="layers")
    return torch.stack([r.scores for r in results])
