"""The fast path's shared pieces (attribution/fast/family_parts.py, fast/protocol.py): hooks sorted by hook point, called
with the bridge's HookPoint; families tagged by kind."""

from __future__ import annotations

import pytest
import torch

from lrp2_interp.attribution.attribute import attribute_neurons
from lrp2_interp.attribution.fast.families import FamilyKind
from lrp2_interp.attribution.fast.family_parts import HookKind, Hooks
from lrp2_interp.attribution.fast.ig import fast_model
from lrp2_interp.attribution.ig_config import AttributionConfig
from lrp2_interp.errors import InputError, Unsupported

pytestmark = pytest.mark.usefixtures("single_thread")


def _double(act, hook):
    return 2 * act


def _add_one_in_place(act, hook):
    act.add_(1.0)


def test_hooks_are_sorted_by_hook_point_and_get_the_bridges_hook_point(bert_lm):
    lm = bert_lm
    hooks = Hooks.parse(
        lm, [(lm.mlp_post(1), _double), (lm.resid_post(0), _double), (lm.mlp_post(1), _add_one_in_place)]
    )
    (first, second) = hooks.at(HookKind.MLP_POST, 1)
    assert first.fn is _double and second.fn is _add_one_in_place  # order kept
    assert first.point is lm.bridge.hook_dict[lm.mlp_post(1)] and first.point.layer() == 1
    assert hooks.at(HookKind.RESID_POST, 0)[0].point.name == lm.bridge.hook_dict[lm.resid_post(0)].name
    assert hooks.at(HookKind.MLP_POST, 0) == () and hooks.at(HookKind.RESID_POST, 1) == ()
    # the bridge's own name of a hook point addresses the same point as its alias
    own = Hooks.parse(lm, [(first.point.name, _double)])
    assert own.at(HookKind.MLP_POST, 1)[0].point is first.point
    x = torch.ones(1, 3, 2)
    assert torch.equal(hooks.apply(HookKind.MLP_POST, 1, x), torch.full((1, 3, 2), 3.0)) and torch.equal(
        x, torch.ones(1, 3, 2)
    )
    row = hooks.apply_at(HookKind.MLP_POST, 1, torch.zeros(2, 2), 1, torch.ones(3, 2))  # [n, k] at position 1
    assert torch.equal(row, torch.ones(2, 2))
    assert Hooks().apply(HookKind.RESID_POST, 0, x) is x


def test_other_hook_points_are_unsupported_and_auto_takes_the_reference_path(bert_lm):
    lm = bert_lm
    hook = [(lm.mlp_pre(1), lambda act, hook: act)]
    with pytest.raises(Unsupported, match="hook point"):
        Hooks.parse(lm, hook)
    prompt = "Paris is the capital of [MASK] ."
    cfg = AttributionConfig(n_steps=2, layers=(1,))
    assert attribute_neurons(lm, prompt, "France", cfg, hook, progress=False).path == "reference"
    with pytest.raises(InputError, match="fast attribution path"):
        attribute_neurons(lm, prompt, "France", AttributionConfig(n_steps=2, path="fast"), hook)


@pytest.mark.parametrize(
    "fam, kind",
    [
        ("bert", FamilyKind.ENCODER),
        ("bloom", FamilyKind.CAUSAL),
        ("gpt2", FamilyKind.CAUSAL),
        ("qwen2", FamilyKind.CAUSAL),
    ],
)
def test_every_family_is_tagged_with_its_kind(request, fam, kind):
    fm = fast_model(request.getfixturevalue(f"{fam}_lm"))
    assert fm.family.kind is kind and fm.causal == (kind is FamilyKind.CAUSAL)
