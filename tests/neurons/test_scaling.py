"""Knowledge-neuron scaling as an Intervention: exact scaling, a same-size random control, fit and selection."""

from __future__ import annotations

import pytest
import torch

from lrp2_interp.errors import InputError
from lrp2_interp.facts import load_facts, shipped_facts_root
from lrp2_interp.interventions.protocol import Intervention
from lrp2_interp.interventions.selection import CHOSEN, SelectionConfig, select_and_score
from lrp2_interp.methods.registry import MethodOptions, build_interventions
from lrp2_interp.models.hooks import mlp_post_hook
from lrp2_interp.models.loading import load_model
from lrp2_interp.neurons.scaling import NeuronScaling, scale_hooks
from lrp2_interp.neurons.sets import NeuronSet

L, D = 4, 64


@pytest.fixture(scope="module")
def lm(repo_model_dir):
    return load_model(str(repo_model_dir("gpt2", n_layers=L)))


@pytest.fixture(scope="module")
def facts():
    return load_facts(shipped_facts_root(), ["en", "fr"], max_facts_per_relation=4)


def _given(lm) -> NeuronScaling:
    sites = NeuronSet(frozenset({(0, 3), (0, 7), (2, 1)}))
    return NeuronScaling("fr", neurons=sites, factors=(0.0, 2.0)).fit(lm, None)  # type: ignore[arg-type]


def test_hooks_scale_exactly_the_set_at_every_position(lm):
    scaling = _given(lm)
    assert isinstance(scaling, Intervention) and scaling.settings() == [0.0, 2.0]
    hooks = dict(scaling.hooks(2.0))
    assert sorted(hooks) == [mlp_post_hook(0), mlp_post_hook(2)]
    x = torch.randn(2, 5, lm.d_mlp)
    out = hooks[mlp_post_hook(0)](x)
    changed = (out != x).any(dim=(0, 1)).nonzero().flatten().tolist()
    assert changed == [3, 7] and torch.equal(out[..., 3], 2 * x[..., 3])
    assert scaling.label(0.0) == "x0" and scaling.label(2.0) == "x2"


def test_target_positions_limit_the_scaling():
    mask = torch.zeros(1, 4, dtype=torch.bool)
    mask[0, 1] = True
    target = torch.tensor([[False, True, False]])
    ((_, fn),) = scale_hooks(mask, 0.0, target)
    x = torch.ones(1, 3, 4)
    out = fn(x)
    assert out[0, 1, 1] == 0 and out[0, 0, 1] == 1 and out[0, 2, 1] == 1 and out[..., [0, 2, 3]].eq(1).all()


def test_control_keeps_the_per_layer_sizes_and_changes_the_neurons(lm):
    scaling = _given(lm)
    real = scaling.hooks(0.0)
    c0, c1 = scaling.control(0.0, 0), scaling.control(0.0, 1)
    assert [n for n, _ in c0] == [n for n, _ in real]  # same layers
    x = torch.randn(1, 2, lm.d_mlp)

    def zeroed(hooks):
        return {n: (fn(x) == 0).any(dim=(0, 1)).nonzero().flatten().tolist() for n, fn in hooks}

    z_real, z0, z1 = zeroed(real), zeroed(c0), zeroed(c1)
    assert {n: len(v) for n, v in z0.items()} == {n: len(v) for n, v in z_real.items()}  # 2 in layer 0, 1 in 2
    assert z0 != z_real and z0 != z1
    assert zeroed(scaling.control(0.0, 0)) == z0  # seeded


def test_errors_name_the_field(lm):
    with pytest.raises(InputError, match="at least one factor"):
        NeuronScaling("fr", factors=())
    with pytest.raises(InputError, match="call fit"):
        NeuronScaling("fr").hooks(0.0)
    outside = NeuronSet(frozenset({(L + 3, 0)}))
    with pytest.raises(InputError):
        NeuronScaling("fr", neurons=outside).fit(lm, None)  # type: ignore[arg-type]


def test_fit_finds_source_neurons_and_selection_runs_end_to_end(lm, facts):
    (inter,) = build_interventions(lm, "fr", ["kn_scaling"], MethodOptions(scale_factors=(0.0, 2.0)))
    assert isinstance(inter, NeuronScaling)
    fitted = inter.fit(lm, facts)
    assert fitted.neurons is not None and len(fitted.neurons) > 0  # the source's neurons shared by dev facts
    res = select_and_score(lm, facts, inter, SelectionConfig(max_dev=8, max_test=8, first_rung=4, n_controls=2))
    assert res.method == "kn_scaling" and res.chosen in (0.0, 2.0)
    assert set(res.conditions()) >= {CHOSEN, "matched control 0", "matched control 1"}
    assert len(res.correct(CHOSEN)) == 8
