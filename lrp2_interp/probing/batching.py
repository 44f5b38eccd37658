"""Forward passes and batch sizes of the fast probing path (shared by its masked and causal parts and the sweep).

:func:`forward` is one bridge pass like :meth:`LanguageModel.logits` -- positional hooks bound
to the batch's row lengths -- with extra bridge arguments (a KV cache); the budget helpers size
batches and unembedding chunks from ``ProbeConfig.memory_mb``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch

from lrp2_interp.models.hooks import bind_hooks
from lrp2_interp.models.loading import FwdHooks, LanguageModel
from lrp2_interp.probing.types import ProbeConfig


def forward(lm: LanguageModel, ids: torch.Tensor, mask: torch.Tensor, hooks: FwdHooks | None, **kw: Any) -> Any:
    """One bridge forward pass on ``ids`` ``[b, pos]`` with ``mask`` (``[b, pos]``, or ``[b, past + pos]`` with a
    cache); hooks that count from a row's end are bound to the rows of ``mask`` (only valid without a cache).

    A KV cache goes in as ``past_key_values``, the name TransformerBridge's attention reads
    (:mod:`lrp2_interp.models.layer_runner`); transformers 5 warns on every call that the name is
    deprecated, which here is noise on every batch, so that one warning is silenced for this call only.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`past_key_values` is deprecated", category=FutureWarning)
        if hooks:
            return lm.bridge.run_with_hooks(ids, attention_mask=mask, fwd_hooks=bind_hooks(hooks, mask), **kw)
        return lm.bridge(ids, attention_mask=mask, **kw)


def vocab_size(lm: LanguageModel) -> int:
    return int(lm.bridge.cfg.d_vocab)


def rows_per_pass(lm: LanguageModel, config: ProbeConfig, width: int, extra_states: int = 0) -> int:
    """Rows of ``width`` tokens that fit the memory budget (activations, plus ``extra_states`` cached states)."""
    per_token = 4 * (12 * lm.d_model + 3 * lm.d_mlp + extra_states * lm.d_model)
    rows = (config.memory_mb << 20) // max(1, per_token * width)
    return int(max(1, min(config.batch_size, rows)))


def logit_rows(lm: LanguageModel, config: ProbeConfig) -> int:
    """Unembedding rows per chunk: logits and log-softmax ([rows, vocab] float32) within half the budget."""
    return int(max(1, (config.memory_mb << 19) // (8 * vocab_size(lm))))


def batches(lengths: Sequence[int], rows_for_width: Callable[[int], int]) -> list[list[int]]:
    """Indices grouped into length-sorted batches; ``rows_for_width(width)`` caps each batch's size."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    out: list[list[int]] = []
    for i in order:
        if out and len(out[-1]) < rows_for_width(lengths[i]):
            out[-1].append(i)
        else:
            out.append([i])
    return out
