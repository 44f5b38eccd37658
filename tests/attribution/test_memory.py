"""The one autograd-memory estimate that sizes both attribution paths' Captum batches."""

from __future__ import annotations

import pytest
import torch

from lrp2_interp.attribution.memory import block_elements, head_elements, rows_in_budget
from lrp2_interp.attribution.reference_ig import reference_rows


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


def test_estimate_by_hand() -> None:
    from lrp2_interp.attribution.memory import ModelShape, estimate

    # 2 causal layers, d 4, d_mlp 8, 1 head, vocab 10, 3 positions, float32
    shape = ModelShape(2, 4, 8, 1, 10, params=1000)
    # block = 14*4 + 3*8 + 3*1*3 = 89; rows average (1 + 0) / 2 = 0.5 blocks; head = 3*10 + 8*4 = 62
    row = int((0.5 * 89 + 62) * 4) + 1  # 427 bytes
    e = estimate(shape, 4, n_pos=3, n_steps=8, budget_mb=1000 * row / 2**20)  # room for 1000 rows
    assert e.row_mb * 2**20 == row
    assert (e.rows_per_pass, e.passes) == (16, 1)  # all 2 x 8 rows in one pass
    kv = 2 * 2 * 3 * 4 * 4
    assert e.peak_mb * 2**20 == 1000 * 4 + kv + 16 * row
    assert e.reference_row_mb * 2**20 == (2 * 3 * 89 + 3 * 30) * 4
    small = estimate(shape, 4, n_pos=3, n_steps=8, budget_mb=5 * row / 2**20)  # 5 rows per pass
    assert (small.rows_per_pass, small.passes) == (5, 4)


def test_the_memory_table_runs_from_the_estimate(monkeypatch, capsys) -> None:
    from bench_loader import run_benchmark

    run_benchmark("memory_table", [], monkeypatch)
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 7") or line.startswith("| 1")]
    assert len(rows) == 6  # 1B, 7B, 70B x float32, bfloat16
