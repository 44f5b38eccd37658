"""Booting the TransformerLens bridge on one device or across devices (accelerate), and what reduced precision means.

:func:`load_hf_model` loads the HF model and places it: on one device, or split by accelerate with a
``device_map`` (``"auto"``, or a dict of module name -> ``"cpu"`` / ``"disk"`` / GPU index) and
``max_memory``, the options ``TransformerBridge.boot_transformers`` would pass to ``from_pretrained``
itself.  :func:`boot_bridge` then wraps it; in between, the loaded weights are checked under the
checkpoint's own parameter names (:func:`lrp2_interp.models.loading.check_loaded_weights`), which the
bridge's wrapping changes.  :func:`ffn_width` reads the FFN width from the HF config (the bridge
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


def load_hf_model(
    name: str,
    *,
    hf_model: Any,
    model_class: Any,
    device: str | torch.device,
    dtype: torch.dtype,
    device_map: DeviceMap | None = None,
    max_memory: dict[str | int, str | int] | None = None,
    offload_folder: str | Path | None = None,
) -> Any:
    """The HF model with its weights, placed and in ``dtype``, not yet wrapped by the bridge.

    Without ``device_map``/``max_memory``: ``hf_model`` (or ``model_class.from_pretrained(name)``) moved to
    ``device``.  With them: ``model_class.from_pretrained`` splits it with accelerate (``device`` ignored, no
    ``hf_model`` accepted), as ``TransformerBridge.boot_transformers`` would load it with these options,
    floating parameters then cast to ``dtype`` as it would."""
    if device_map is not None or max_memory is not None:
        if hf_model is not None:
            raise InputError("device_map/max_memory load the weights themselves: pass no hf_model", field="device_map")
        return _load_split(name, model_class, dtype, device_map, max_memory, offload_folder)
    if hf_model is None:
        try:
            hf_model = model_class.from_pretrained(name, torch_dtype=dtype)
        except (OSError, ValueError, RuntimeError) as err:  # e.g. corrupt weights that passed the size check
            raise InputError(f"cannot load the weights: {first_line(err)}", file=name) from None
    return hf_model.to(device=device, dtype=dtype).eval()


def _load_split(
    name: str,
    model_class: Any,
    dtype: torch.dtype,
    device_map: DeviceMap | None,
    max_memory: dict[str | int, str | int] | None,
    offload_folder: str | Path | None,
) -> Any:
    """``model_class.from_pretrained`` with accelerate's ``device_map`` (default ``"auto"``) and ``max_memory``,
    after the maps the bridge refuses are refused (GPUs mixed with CPU or disk, the meta device)."""
    from transformer_lens.utilities.multi_gpu import maybe_cast_floating_params, resolve_device_map

    placement = device_map if device_map is not None else "auto"
    try:
        resolve_device_map(None, placement, None, max_memory)  # raises ValueError on a map the bridge cannot run
        meta = (
            [k for k, v in placement.items() if str(v).strip().lower() == "meta"] if isinstance(placement, dict) else []
        )
        if meta:
            raise ValueError(f"device_map contains meta target(s): {meta}")
        kwargs: dict[str, Any] = {"torch_dtype": dtype, "device_map": placement}
        if max_memory is not None:
            kwargs["max_memory"] = max_memory
        if offload_folder is not None:
            kwargs["offload_folder"] = str(offload_folder)
        hf_model = model_class.from_pretrained(name, **kwargs)
    except (OSError, ValueError, RuntimeError) as err:
        raise InputError(f"cannot load '{name}' with device_map={device_map!r}: {first_line(err)}") from None
    maybe_cast_floating_params(hf_model, dtype)  # parameters kept in float32 by from_pretrained, as the bridge does
    return hf_model.eval()


def boot_bridge(
    name: str, archs: Sequence[str], *, hf_model: Any, tokenizer: Any, device: str | torch.device, dtype: torch.dtype
) -> tuple[Any, torch.device]:
    """``(bridge, device of the input embedding)``: ``hf_model`` (from :func:`load_hf_model`) wrapped by the
    bridge; a model split by accelerate (its ``hf_device_map``) keeps its placement (``device`` ignored)."""
    from transformer_lens.model_bridge import TransformerBridge

    overrides = config_overrides(archs)
    if not getattr(hf_model, "hf_device_map", None):
        bridge = TransformerBridge.boot_transformers(
            name, hf_model=hf_model, tokenizer=tokenizer, device=device, dtype=dtype, hf_config_overrides=overrides
        )
        return bridge.eval(), torch.device(device)
    try:
        bridge = TransformerBridge.boot_transformers(
            name, hf_model=hf_model, tokenizer=tokenizer, dtype=dtype, hf_config_overrides=overrides
        )
    except (OSError, ValueError, RuntimeError) as err:  # e.g. a map accelerate did not honour
        raise InputError(f"cannot load '{name}' split by accelerate: {first_line(err)}") from None
    return bridge.eval(), torch.device(str(bridge.cfg.device))


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
