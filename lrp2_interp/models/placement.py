"""Booting the TransformerLens bridge on one device or across devices (accelerate), and what reduced precision means.

:func:`boot_bridge` wraps a HF model already loaded on one device, or lets
``TransformerBridge.boot_transformers`` load it itself with a ``device_map`` (``"auto"``, or a dict of
module name -> ``"cpu"`` / ``"disk"`` / GPU index) and ``max_memory``: the bridge's own options,
passed through unchanged.  :func:`ffn_width` reads the FFN width from the HF config (the bridge
assumes ``4 d_model`` for XGLM); :func:`note_precision` gives the one-line note on bfloat16/float16.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from lrp2_interp.errors import InputError

DeviceMap = str | dict[str, str | int]

#: HF classes the bridge does not name but reads with the adapter of the same architecture
BRIDGE_ALIASES = {"XLMRobertaForMaskedLM": "RobertaForMaskedLM"}


class ReducedPrecisionNote(UserWarning):
    """The one-line note that a model runs in bfloat16/float16, whose results can differ from float32."""


def first_line(err: BaseException) -> str:
    """The first line of an exception's message."""
    return (str(err).strip().splitlines() or [""])[0]


def config_overrides(archs: Sequence[str]) -> dict[str, Any] | None:
    """``hf_config_overrides`` that point the bridge at the adapter of an aliased class, or None."""
    alias = next((BRIDGE_ALIASES[a] for a in archs if a in BRIDGE_ALIASES), None)
    return None if alias is None else {"architectures": [alias]}


def boot_bridge(
    name: str,
    archs: Sequence[str],
    *,
    hf_model: Any,
    model_class: Any,
    tokenizer: Any,
    device: str | torch.device,
    dtype: torch.dtype,
    device_map: DeviceMap | None = None,
    max_memory: dict[str | int, str | int] | None = None,
    offload_folder: str | Path | None = None,
) -> tuple[Any, torch.device]:
    """``(bridge, device of the input embedding)``; with ``device_map``/``max_memory`` the bridge loads the
    weights itself through accelerate (``device`` ignored), otherwise the HF model (``hf_model`` or
    ``model_class.from_pretrained(name)``) is moved to ``device`` and wrapped."""
    from transformer_lens.model_bridge import TransformerBridge

    overrides = config_overrides(archs)
    if device_map is not None or max_memory is not None:
        if hf_model is not None:
            raise InputError("device_map/max_memory load the weights themselves: pass no hf_model", field="device_map")
        try:
            bridge = TransformerBridge.boot_transformers(
                name,
                tokenizer=tokenizer,
                dtype=dtype,
                hf_config_overrides=overrides,
                device_map=device_map if device_map is not None else "auto",
                max_memory=max_memory,
                offload_folder=None if offload_folder is None else str(offload_folder),
            )
        except (OSError, ValueError, RuntimeError) as err:
            raise InputError(f"cannot load '{name}' with device_map={device_map!r}: {first_line(err)}") from None
        return bridge.eval(), torch.device(str(bridge.cfg.device))
    if hf_model is None:
        try:
            hf_model = model_class.from_pretrained(name, torch_dtype=dtype)
        except (OSError, ValueError, RuntimeError) as err:  # e.g. corrupt weights that passed the size check
            raise InputError(f"cannot load the weights: {first_line(err)}", file=name) from None
    hf_model = hf_model.to(device=device, dtype=dtype).eval()
    bridge = TransformerBridge.boot_transformers(
        name, hf_model=hf_model, tokenizer=tokenizer, device=device, dtype=dtype, hf_config_overrides=overrides
    )
    return bridge.eval(), torch.device(device)


def ffn_width(hf_config: Any, bridge_d_mlp: int | None) -> int | None:
    """The FFN width: the HF config's (``intermediate_size`` / ``ffn_dim`` / ``n_inner``), else the bridge's."""
    for key in ("intermediate_size", "ffn_dim", "n_inner"):
        value = getattr(hf_config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return bridge_d_mlp


def note_precision(name: str, dtype: torch.dtype) -> None:
    """Warn once per model and call site that bfloat16/float16 results can differ from float32."""
    if dtype in (torch.float32, torch.float64):
        return
    warnings.warn(
        f"{name} in {str(dtype).removeprefix('torch.')}: probing rankings and neuron scores can differ from "
        "float32 (parity table: benchmarks/README.md, 'Reduced precision'); verify close calls in float32",
        ReducedPrecisionNote,
        stacklevel=3,
    )
