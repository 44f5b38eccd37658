"""Test helper: one HF pass recording every layer's FFN-output-projection input, next to the TL cache."""

from __future__ import annotations

import torch


def hf_run_with_ffn_inputs(lm, hf, down_proj, texts):
    """``(batch, hf_output, cache, ffn_inputs)``: one HF pass (hidden states on) recording the input of every
    layer's FFN output projection (``down_proj(hf, layer)``), and the TransformerLens cache of the same batch."""
    batch = lm.encode(texts)
    grabbed: dict[int, torch.Tensor] = {}
    handles = [
        down_proj(hf, layer).register_forward_pre_hook(
            lambda mod, args, layer=layer: grabbed.__setitem__(layer, args[0].detach())
        )
        for layer in range(lm.n_layers)
    ]
    try:
        with torch.no_grad():
            out = hf(input_ids=batch.input_ids, attention_mask=batch.attention_mask, output_hidden_states=True)
    finally:
        for h in handles:
            h.remove()
    with torch.no_grad():
        _, cache = lm.bridge.run_with_cache(batch.input_ids, attention_mask=batch.attention_mask)
    return batch, out, cache, grabbed
