"""How many integrated-gradient rows fit a memory budget: the one autograd-memory estimate.

Both attribution paths size their Captum batches from ``AttributionConfig.memory_budget_mb``
with the same per-block figure: one position of one block keeps about
``14 d_model + 3 d_mlp + 3 n_heads n_pos`` activations alive for the backward pass (the
attention scores grow with the sequence), and the head keeps ``3 vocab`` per scored position.
The estimate is rough on purpose; it only has to keep a batch within a budget.
"""

from __future__ import annotations


def block_elements(d_model: int, d_mlp: int, n_heads: int, n_pos: int) -> int:
    """Activations one position of one block keeps for the backward pass, in a sequence of ``n_pos``."""
    return 14 * d_model + 3 * d_mlp + 3 * n_heads * n_pos


def head_elements(vocab: int) -> int:
    """Activations of the unembedding and its softmax for one scored position."""
    return 3 * vocab


def rows_in_budget(budget_mb: float, bytes_per_row: float) -> int:
    """Rows of ``bytes_per_row`` bytes that fit ``budget_mb`` MiB (at least one)."""
    return max(1, int(budget_mb * 2**20 // bytes_per_row))
