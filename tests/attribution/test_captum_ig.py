"""Integrated gradients through Captum (attribution/captum_ig.py): every rule in closed form, and the private
Captum API the custom rules depend on."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from lrp2_interp.attribution.captum_ig import (
    PRIVATE_RULE_PARAMETERS,
    captum_custom_rule,
    integrated_gradients,
    quadrature,
)
from lrp2_interp.attribution.ig_config import CUSTOM_METHODS, AttributionConfig


@pytest.mark.parametrize(
    "method, factor",
    [
        ("riemann_left", 19 / 20),
        ("riemann_right", 21 / 20),
        ("kn_linspace", 1.0),
        ("gausslegendre", 1.0),
        ("gausslegendre_graded", 1.0),
    ],
)
def test_quadrature_rules_in_closed_form(method, factor):
    # f(x) = sum x_i^2 over each row: exact IG is x_i^2; riemann_left gives x^2 (n-1)/n, right (n+1)/n,
    # knowledge-neurons' linspace(0, 1, n) / n rule gives exactly x^2 (mean of the alphas is 1/2)
    x = torch.tensor([[1.0, -2.0, 3.0], [0.5, 0.0, 2.0]], dtype=torch.float64)
    cfg = AttributionConfig(n_steps=20, method=method)
    attr, delta = integrated_gradients(lambda t: (t**2).sum(1), x, cfg, rows_per_batch=7)  # 7: several batches
    assert torch.allclose(attr, factor * x**2, atol=1e-6)
    assert torch.allclose(delta, attr.sum(1) - (x**2).sum(1), atol=1e-6)


def test_no_delta_skips_it_and_keeps_the_attributions():
    x = torch.tensor([[1.0, -2.0, 3.0]], dtype=torch.float64)
    for method in ("riemann_right", *CUSTOM_METHODS):
        cfg = AttributionConfig(n_steps=6, method=method)
        with_delta, delta = integrated_gradients(lambda t: (t**3).sum(1), x, cfg, rows_per_batch=4)
        without, none = integrated_gradients(lambda t: (t**3).sum(1), x, cfg, rows_per_batch=4, delta=False)
        assert none is None and delta is not None and torch.equal(with_delta, without), method


# ---------------------------------------------------------------- Captum's private rule API
def test_captum_private_rule_signature():
    """The custom rules call ``IntegratedGradients._attribute(step_sizes_and_alphas=...)``: a Captum release that
    renames or drops these parameters must fail here, by name, not deep inside an attribution."""
    from captum.attr import IntegratedGradients

    params = inspect.signature(IntegratedGradients._attribute).parameters
    missing = [p for p in PRIVATE_RULE_PARAMETERS if p not in params]
    assert not missing, (
        f"Captum changed IntegratedGradients._attribute: no {missing}; update "
        "lrp2_interp.attribution.captum_ig.captum_custom_rule"
    )


@pytest.mark.parametrize("n", [2, 4, 8])  # powers of 2: Captum builds Riemann alphas in float32, exact here
def test_custom_rule_call_equals_captum_public_rules(n):
    """The private call with the weights/alphas of Captum's own riemann_right and gausslegendre rules gives what
    Captum's public ``attribute(method=...)`` gives: the private path integrates as the public one does."""
    from captum.attr import IntegratedGradients

    torch.manual_seed(0)
    x = torch.randn(3, 5, dtype=torch.float64)
    fn = lambda t: torch.tanh(t).pow(3).sum(1) + (t[:, :1] * t[:, 1:2]).squeeze(1)  # noqa: E731
    ig = IntegratedGradients(fn)
    base = torch.zeros_like(x)
    gl_x, gl_w = np.polynomial.legendre.leggauss(n)
    rules = {
        "riemann_right": ([1.0 / n] * n, [k / n for k in range(1, n + 1)]),
        "gausslegendre": ((gl_w / 2).tolist(), ((gl_x + 1) / 2).tolist()),
    }
    for method, (sizes, alphas) in rules.items():
        public = ig.attribute(x, baselines=base, n_steps=n, method=method)
        private = captum_custom_rule(ig, x, base, None, sizes, alphas)
        assert torch.allclose(private, public, rtol=1e-12, atol=1e-12), method


def test_custom_rule_by_hand():
    from captum.attr import IntegratedGradients

    x = torch.tensor([[1.0, -2.0, 3.0]], dtype=torch.float64)
    ig = IntegratedGradients(lambda t: (t**3).sum(1))
    attr = captum_custom_rule(ig, x, torch.zeros_like(x), None, [0.5, 0.5], [0.25, 0.75])
    # d/dx (x^3) at alpha x is 3 alpha^2 x^2; weights 0.5 at alphas 1/4, 3/4: x * 3 x^2 (1/16 + 9/16) / 2
    assert torch.allclose(attr, x * 3 * x**2 * (0.0625 + 0.5625) / 2)


def test_changed_private_signature_fails_with_a_clear_message():
    class ChangedIG:  # a future Captum whose private method lost step_sizes_and_alphas
        def _attribute(self, inputs, baselines, additional_forward_args=None, n_steps=50, method="x"):
            raise AssertionError("must not be called with a guessed signature")

    x = torch.ones(1, 2)
    with pytest.raises(RuntimeError, match=r"Captum changed .*step_sizes_and_alphas.*captum_custom_rule"):
        captum_custom_rule(ChangedIG(), x, torch.zeros_like(x), None, [1.0], [1.0])


def test_quadrature_weights_integrate_polynomials():
    for n in (5, 8):  # 3 t^8 in t: exact from 5 Gauss-Legendre points
        w, a = quadrature("gausslegendre_graded", n)
        assert abs(sum(w) - 1) < 1e-12 and all(0 < t < 1 for t in a)
        assert abs(sum(wi * ai**2 for wi, ai in zip(w, a)) - 1 / 3) < 1e-12  # int_0^1 alpha^2 = 1/3
    w, a = quadrature("kn_linspace", 5)
    assert w == [0.2] * 5 and a[0] == 0.0 and a[-1] == 1.0
