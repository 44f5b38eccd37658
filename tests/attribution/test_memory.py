"""The one autograd-memory estimate that sizes both attribution paths' Captum batches."""

from __future__ import annotations

import pytest
import torch

from lrp2_interp.attribution.memory import block_elements, head_elements, rows_in_budget
from lrp2_interp.attribution.reference import reference_rows


def test_block_and_head_elements_by_hand() -> None:
    # 14 * 8 + 3 * 32 + 3 * 2 heads * 5 positions = 112 + 96 + 30
    assert block_elements(8, 32, 2, 5) == 238
    assert head_elements(100) == 300


@pytest.mark.parametrize(("budget", "per_row", "rows"), [(1, 2**19, 2), (1, 2**21, 1), (0.5, 1024, 512)])
def test_rows_in_budget(budget: float, per_row: int, rows: int) -> None:
    assert rows_in_budget(budget, per_row) == rows


def test_reference_rows_follow_the_estimate(bloom_lm) -> None:
    lm = bloom_lm
    n_pos = 6
    vocab = int(lm.bridge.original_model.get_output_embeddings().weight.shape[0])
    block = block_elements(lm.d_model, lm.d_mlp, int(lm.bridge.cfg.n_heads), n_pos)
    per = (lm.n_layers * n_pos * block + n_pos * head_elements(vocab)) * torch.empty((), dtype=lm.dtype).element_size()
    assert reference_rows(lm, n_pos, 64) == max(1, 64 * 2**20 // per)
    assert reference_rows(lm, n_pos, 64) > reference_rows(lm, 3 * n_pos, 64)  # longer prompts: fewer rows
