"""The one place that talks to Captum: integrated gradients of a forward function under any quadrature rule.

Captum's named rules (``riemann_*``, ``gausslegendre``) go through its public
``IntegratedGradients.attribute``.  The custom rules (``kn_linspace``, ``gausslegendre_graded``:
:func:`quadrature`) need explicit weights and alphas, which only the private
``IntegratedGradients._attribute(step_sizes_and_alphas=...)`` accepts; :func:`captum_custom_rule`
is the single call site and checks that signature first, failing with a clear message when a
Captum release changes it (``tests/attribution/test_captum_ig.py`` checks it too).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, Literal, overload

import torch

from lrp2_interp.attribution.ig_config import CAPTUM_METHODS, AttributionConfig

__all__ = ["GRADING", "PRIVATE_RULE_PARAMETERS", "captum_custom_rule", "integrated_gradients", "quadrature"]

GRADING = 3  # gausslegendre_graded: alpha = t**GRADING with t on Gauss-Legendre nodes
# the parameters of IntegratedGradients._attribute that captum_custom_rule passes
PRIVATE_RULE_PARAMETERS = ("inputs", "baselines", "additional_forward_args", "n_steps", "step_sizes_and_alphas")


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


@overload
def integrated_gradients(
    forward: Callable[..., torch.Tensor],
    inputs: torch.Tensor,
    config: AttributionConfig,
    rows_per_batch: int,
    layer_idx: torch.Tensor | None = None,
    *,
    delta: Literal[True] = True,
) -> tuple[torch.Tensor, torch.Tensor]: ...


@overload
def integrated_gradients(
    forward: Callable[..., torch.Tensor],
    inputs: torch.Tensor,
    config: AttributionConfig,
    rows_per_batch: int,
    layer_idx: torch.Tensor | None = None,
    *,
    delta: Literal[False],
) -> tuple[torch.Tensor, None]: ...


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

    ``config`` gives the rule (``method``, ``n_steps``); ``layer_idx`` [n] is passed to ``forward``
    as an additional argument (Captum repeats it for every step); ``rows_per_batch`` is Captum's
    internal batch size.  ``delta=False`` skips Captum's convergence delta (two extra forward passes).
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
        if delta:
            attr, deltas = out
            return attr, deltas
        return out, None
    # custom rules: Captum's own integration with explicit step sizes and alphas (chunked like internal batching)
    sizes, alphas = quadrature(config.method, n_steps)
    per = max(1, rows // n)
    attr = torch.zeros_like(inputs)
    for s in range(0, n_steps, per):
        attr = attr + captum_custom_rule(ig, inputs, base, args, sizes[s : s + per], alphas[s : s + per])
    if not delta:
        return attr, None
    return attr, ig.compute_convergence_delta(attr, base, inputs, additional_forward_args=args)


def captum_custom_rule(
    ig: Any,
    inputs: torch.Tensor,
    base: torch.Tensor,
    args: tuple[Any, ...] | None,
    sizes: Sequence[float],
    alphas: Sequence[float],
) -> torch.Tensor:
    """IG of ``inputs`` [n, d] with explicit quadrature ``sizes``/``alphas`` (one Captum batch) -> [n, d].

    ``ig``: a ``captum.attr.IntegratedGradients``.  Captum's public ``attribute`` offers only its named
    rules; a custom rule needs the private ``IntegratedGradients._attribute(step_sizes_and_alphas=...)``.
    This is the one place that calls it; a changed signature raises a ``RuntimeError`` naming the gap.
    """
    params = inspect.signature(type(ig)._attribute).parameters
    missing = [p for p in PRIVATE_RULE_PARAMETERS if p not in params]
    if missing:
        raise RuntimeError(
            f"Captum changed the private IntegratedGradients._attribute (no {', '.join(missing)}): the custom "
            f"quadrature rules (kn_linspace, gausslegendre_graded) cannot run; update "
            f"lrp2_interp.attribution.captum_ig.captum_custom_rule for this Captum version"
        )
    out = ig._attribute(
        (inputs,),
        (base,),
        additional_forward_args=args,
        n_steps=len(sizes),
        step_sizes_and_alphas=(list(sizes), list(alphas)),
    )
    return out[0].detach()
