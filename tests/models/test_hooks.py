"""Hook names built in one place, and positional hooks bound to each batch's row lengths."""

from __future__ import annotations

import pytest
import torch

from lrp2_interp.errors import InputError
from lrp2_interp.layers import EMBEDDINGS
from lrp2_interp.methods.alignment import AlignmentHook
from lrp2_interp.models.hooks import (
    RowLengthHook,
    ShiftHook,
    bind_hooks,
    embed_hook,
    full_lengths,
    is_unembed_hook,
    mlp_out_hook,
    mlp_post_hook,
    mlp_pre_hook,
    position_mask,
    resid_post_hook,
    shift_point_hook,
    unembed_hook,
)

pytestmark = pytest.mark.usefixtures("single_thread")


def test_hook_names():
    assert resid_post_hook(2) == "blocks.2.hook_resid_post"
    assert mlp_post_hook(1) == "blocks.1.mlp.hook_post"
    assert mlp_pre_hook(0) == "blocks.0.mlp.hook_pre"
    assert mlp_out_hook(3) == "blocks.3.hook_mlp_out"
    assert embed_hook() == shift_point_hook(EMBEDDINGS) == "blocks.0.hook_resid_pre"
    assert shift_point_hook(1) == resid_post_hook(1)
    assert is_unembed_hook(unembed_hook()) and not is_unembed_hook(resid_post_hook(0))


def test_the_model_names_the_same_hook_points_and_they_exist(bloom_lm):
    lm = bloom_lm
    for j in range(lm.n_layers):
        for name in (lm.resid_post(j), lm.mlp_post(j), lm.mlp_pre(j), lm.mlp_out(j), lm.shift_point(j)):
            assert name in lm.bridge.hook_dict, name
    assert lm.shift_point(EMBEDDINGS) in lm.bridge.hook_dict
    assert unembed_hook() in lm.bridge.hook_dict
    with pytest.raises(InputError):
        lm.resid_post(lm.n_layers)


def test_position_mask_counts_from_each_rows_end():
    lengths = torch.tensor([3, 5])
    got = position_mask((-1, 0), lengths, 2, 5, torch.device("cpu"))
    assert got.tolist() == [[True, False, True, False, False], [True, False, False, False, True]]
    # duplicates of one index (from both ends) select it once
    assert position_mask((1, -2), torch.tensor([3]), 1, 4, torch.device("cpu")).tolist() == [
        [False, True, False, False]
    ]
    # positions past a row's end (either way) are refused: they used to select nothing, silently (issue 23)
    for bad in ((9,), (-9,), (3,)):
        with pytest.raises(InputError, match="past the end of row 0"):
            position_mask(bad, torch.tensor([3]), 1, 4, torch.device("cpu"))
    # unbound: non-negative positions are fine, negative ones refused
    assert position_mask((1,), None, 2, 4, torch.device("cpu"))[:, 1].all()
    with pytest.raises(InputError, match="not bound") as err:
        position_mask((-1,), None, 2, 4, torch.device("cpu"))
    assert err.value.field == "positions"
    with pytest.raises(InputError, match="batch of 3"):
        position_mask((-1,), lengths, 3, 5, torch.device("cpu"))


@pytest.mark.parametrize(
    "make",
    [
        lambda d: ShiftHook(torch.ones(d), (-1,)),
        lambda d: AlignmentHook(torch.zeros(d, d), torch.ones(d), 1.0, "add", (-1,)),
    ],
    ids=["shift", "alignment"],
)
def test_positional_hooks_refuse_unbound_and_follow_bound_lengths(make):
    hook = make(4)
    x = torch.zeros(2, 5, 4)  # [batch, pos, d]: rows of 3 and 5 real tokens, right-padded
    assert isinstance(hook, RowLengthHook)
    with pytest.raises(InputError, match="not bound"):
        hook(x, None)
    out = hook.bind(torch.tensor([3, 5]))(x, None)
    changed = out.abs().sum(-1) > 0  # [batch, pos]
    assert changed.tolist() == [[False, False, True, False, False], [False, False, False, False, True]]
    assert hook.lengths is None  # binding returns a new hook; the original stays unbound
    full = hook.bind(full_lengths(x))(x, None)
    assert (full.abs().sum(-1) > 0).tolist() == [[False] * 4 + [True]] * 2


def test_all_positions_need_no_lengths_and_bind_hooks_leaves_other_hooks_alone():
    shift = ShiftHook(torch.ones(4))
    assert shift.bind(torch.tensor([1])) is shift
    torch.testing.assert_close(shift(torch.zeros(1, 2, 4), None), torch.ones(1, 2, 4))

    def plain(x, hook):
        return x

    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    bound = bind_hooks([("a", plain), ("b", ShiftHook(torch.ones(4), (-1,)))], mask)
    assert bound[0] == ("a", plain) and bound[1][0] == "b"
    assert bound[1][1].lengths.tolist() == [2, 3]


def test_logits_binds_positional_hooks_per_batch(bloom_lm):
    lm = bloom_lm
    batch = lm.encode(["La capitale de Japon est Tokyo .", "Kenya"])
    lengths = batch.attention_mask.sum(1).tolist()
    assert lengths[0] != lengths[1]
    seen: dict[str, torch.Tensor] = {}
    reader = [(lm.resid_post(0), lambda x, hook: seen.__setitem__("x", x.detach().clone()))]
    delta = torch.randn(lm.d_model, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        lm.logits(batch, reader)
        clean = seen["x"]
        lm.logits(batch, [(lm.resid_post(0), ShiftHook(delta, (-1,)))] + reader)
    moved = (seen["x"] - clean).abs().sum(-1) > 0  # [batch, pos]
    for row, n in enumerate(lengths):
        assert moved[row].nonzero().flatten().tolist() == [n - 1]
