"""Layer numbering: the package's block indices, the paper's layer numbers and the shift points.

The one place the mapping is defined.  The package indexes layers by
TransformerLens *block index* ``b`` (0-based): language vectors, ``LRP2Config(m,
n)``, sweeps, attribution and neuron tables all use it.  Xu, Li, Xiong (EMNLP
2023) count layers from 1 (LIRP at ``1 <= i < L``, LSRP at ``i < j <= L``), as
HuggingFace's ``hidden_states`` tuple does, whose entry 0 is the embedding
output::

    block index b   paper layer   HF hidden_states   hook point (models/loading.py)
    -------------   -----------   ----------------   -------------------------------
    EMBEDDINGS=-1   0             [0]                blocks.0.hook_resid_pre
    0               1             [1]                blocks.0.hook_resid_post
    k-1             k             [k]                blocks.{k-1}.hook_resid_post
    L-1             L             [L]                blocks.{L-1}.hook_resid_post

So ``paper_layer(b) = b + 1`` and ``block_index(k) = k - 1``.  The embedding
output (what some re-implementations shift) is the extra shift point
``EMBEDDINGS = -1``: language vectors carry a row for it and LRP2 accepts
``m = -1`` (and ``n = -1`` when ``m = -1``) to shift there.  ``-1`` never means
"the last layer" anywhere in the package; range checks refuse every other
negative value.  The paper itself never shifts the embeddings (its smallest m
is paper layer 1 = block 0).

Tables keep their block-index columns (``m``, ``n``, ``layer``) and add the
paper's numbers next to them (``paper_m``, ``paper_n``, ``paper_layer``);
heatmap axes show both (:func:`layer_label`).
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable

from lrp2_interp.errors import InputError

#: block index of the embedding output (the input of block 0, HF ``hidden_states[0]``)
EMBEDDINGS = -1


def paper_layer(block: int) -> int:
    """The paper's 1-based layer number of block index ``block`` (embeddings: 0)."""
    return int(block) + 1


def block_index(paper: int) -> int:
    """Inverse of :func:`paper_layer`: paper layer ``k`` is block ``k - 1`` (paper 0 = :data:`EMBEDDINGS`)."""
    return int(paper) - 1


def check_shift_point(layer: int, n_layers: int, *, field: str = "layer") -> int:
    """Return ``layer`` (as ``int``) if it is :data:`EMBEDDINGS` or a block ``0 <= layer < n_layers``; else InputError.

    Any integer type is accepted (``np.int64`` from a table or ``np.arange``); bools and floats are not.
    """
    if not isinstance(layer, numbers.Integral) or isinstance(layer, bool) or not EMBEDDINGS <= int(layer) < n_layers:
        raise InputError(
            f"shift point {layer!r} is out of range: the model has {n_layers} layers "
            f"(blocks 0..{n_layers - 1}, or {EMBEDDINGS} for the embedding output)",
            field=field,
        )
    return int(layer)


def shift_points(n_layers: int, *, embeddings: bool = False) -> tuple[int, ...]:
    """Every block index (``0..n_layers-1``), preceded by :data:`EMBEDDINGS` when ``embeddings``."""
    return ((EMBEDDINGS,) if embeddings else ()) + tuple(range(n_layers))


def layer_label(block: int) -> str:
    """Axis label of a block index showing both numberings: ``"0 (L1)"``, ``"emb (L0)"``."""
    block = int(block)
    return f"{'emb' if block == EMBEDDINGS else block} (L{paper_layer(block)})"


def layer_labels(blocks: Iterable) -> list[str]:
    """:func:`layer_label` of each entry (non-integers, e.g. NaN or ``"all"``, pass through as text)."""
    out = []
    for b in blocks:
        try:
            out.append(layer_label(int(b)) if float(b) == int(b) else str(b))
        except (TypeError, ValueError):
            out.append(str(b))
    return out
