"""How many integrated-gradient rows fit a memory budget: the one autograd-memory estimate.

Both attribution paths size their Captum batches from ``AttributionConfig.memory_budget_mb``
with the same per-block figure: one position of one block keeps about
``14 d_model + 3 d_mlp + 3 n_heads n_pos`` activations alive for the backward pass (the
attention scores grow with the sequence), and the head keeps ``3 vocab`` per scored position.
A row is one quadrature step of one layer; the rows of a prompt (``layers x steps``) run in passes
of as many rows as the budget holds.  :func:`estimate` gives the whole picture for a model shape
(weights, bytes per row, rows per pass, passes, peak), the figures of the README's table.
The estimate is rough on purpose; it only has to keep a batch within a budget.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def block_elements(d_model: int, d_mlp: int, n_heads: int, n_pos: int) -> int:
    """Activations one position of one block keeps for the backward pass, in a sequence of ``n_pos``."""
    return 14 * d_model + 3 * d_mlp + 3 * n_heads * n_pos


def head_elements(vocab: int) -> int:
    """Activations of the unembedding and its softmax for one scored position."""
    return 3 * vocab


def rows_in_budget(budget_mb: float, bytes_per_row: float) -> int:
    """Rows of ``bytes_per_row`` bytes that fit ``budget_mb`` MiB (at least one)."""
    return max(1, int(budget_mb * 2**20 // bytes_per_row))


@dataclass(frozen=True)
class ModelShape:
    """The sizes the estimate needs (``params``: all weights, for the peak)."""

    n_layers: int
    d_model: int
    d_mlp: int
    n_heads: int
    vocab: int
    params: int = 0
    causal: bool = True


def fast_row_bytes(shape: ModelShape, n_pos: int, layers: Sequence[int], itemsize: int) -> int:
    """Autograd memory of one row on the fast path (one step of one layer), averaged over ``layers``.

    Causal decoders run each row from its layer to the end at the target position only; encoders run the
    layers after the next one at every position."""
    d, m, h, n_layers = shape.d_model, shape.d_mlp, shape.n_heads, shape.n_layers
    head = head_elements(shape.vocab) + 8 * d
    block = block_elements(d, m, h, n_pos)
    if shape.causal:
        blocks = sum(n_layers - 1 - l for l in layers) / len(layers)
        return int((blocks * block + head) * itemsize) + 1
    full = n_pos * block
    query = n_pos * 3 * d + block_elements(d, m, 0, n_pos)
    blocks = sum(max(0, n_layers - 2 - l) for l in layers) / len(layers)
    return int((blocks * full + query + head) * itemsize) + 1


def reference_row_bytes(shape: ModelShape, n_pos: int, itemsize: int) -> int:
    """Autograd memory of one row on the reference path: the whole model at every position, the head too."""
    block = block_elements(shape.d_model, shape.d_mlp, shape.n_heads, n_pos)
    return (shape.n_layers * n_pos * block + n_pos * head_elements(shape.vocab)) * itemsize


@dataclass(frozen=True)
class Estimate:
    """Memory of knowledge-neuron attribution of one prompt, fast path, every layer (MiB)."""

    weights_mb: float
    row_mb: float  # one (layer, step) row
    rows_per_pass: int
    passes: int  # Captum passes per prompt
    pass_mb: float  # autograd memory of one full pass
    peak_mb: float  # weights + clean-pass keys/values + one pass
    reference_row_mb: float  # one row on the reference path (split or offloaded models, unsupported families)


def estimate(shape: ModelShape, itemsize: int, *, n_pos: int, n_steps: int, budget_mb: float) -> Estimate:
    """The memory of attributing every layer of one ``n_pos``-token prompt at ``n_steps`` steps within ``budget_mb``."""
    row = fast_row_bytes(shape, n_pos, range(shape.n_layers), itemsize)
    rows = rows_in_budget(budget_mb, row)
    total = shape.n_layers * n_steps
    per_pass = min(rows, total)
    kv = 2 * shape.n_layers * n_pos * shape.d_model * itemsize  # the clean pass's keys and values
    mib = 2**20
    return Estimate(
        weights_mb=shape.params * itemsize / mib,
        row_mb=row / mib,
        rows_per_pass=per_pass,
        passes=math.ceil(total / per_pass),
        pass_mb=per_pass * row / mib,
        peak_mb=(shape.params * itemsize + kv + per_pass * row) / mib,
        reference_row_mb=reference_row_bytes(shape, n_pos, itemsize) / mib,
    )
