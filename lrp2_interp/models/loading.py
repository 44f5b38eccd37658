"""Loading models through TransformerLens, and the model object every analysis runs on.

:func:`load_model` accepts a hub name (users with internet) or a local directory
made with ``save_pretrained``.  It loads the HF model and tokenizer with
``transformers`` and wraps them with
``TransformerBridge.boot_transformers(name, hf_model=..., tokenizer=...)`` so every
analysis in the package runs on TransformerLens hook points (their names are built
in :mod:`lrp2_interp.models.hooks`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from lrp2_interp.errors import InputError, check_layer
from lrp2_interp.layers import check_shift_point
from lrp2_interp.models.builders import pad_rows
from lrp2_interp.models.hooks import (
    FwdHooks,
    bind_hooks,
    mlp_out_hook,
    mlp_post_hook,
    mlp_pre_hook,
    resid_post_hook,
    shift_point_hook,
)
from lrp2_interp.models.placement import DeviceMap, boot_bridge, ffn_width, load_hf_model, note_precision

ModelKind = Literal["masked", "causal"]

_MASKED_SUFFIXES = ("ForMaskedLM",)
_CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel")


@dataclass(frozen=True)
class Batch:
    """A padded batch of token ids."""

    input_ids: torch.Tensor  # [batch, pos] long
    attention_mask: torch.Tensor  # [batch, pos] long, 1 = real token

    def to(self, device: torch.device | str) -> Batch:
        return Batch(self.input_ids.to(device), self.attention_mask.to(device))


@dataclass
class LanguageModel:
    """A TransformerLens-wrapped masked or causal LM and what the package needs to know of it."""

    name: str
    kind: ModelKind
    bridge: Any  # transformer_lens.model_bridge.TransformerBridge
    tokenizer: Any  # transformers.PreTrainedTokenizerBase
    device: torch.device
    dtype: torch.dtype
    n_layers: int
    d_model: int
    d_mlp: int
    special_ids: frozenset[int] = field(default_factory=frozenset)

    # ---- hook names (delegating to the module functions, with range checks) ----
    def resid_post(self, layer: int) -> str:
        return resid_post_hook(check_layer(layer, self.n_layers))

    def mlp_post(self, layer: int) -> str:
        return mlp_post_hook(check_layer(layer, self.n_layers))

    def shift_point(self, layer: int) -> str:
        """Hook of a shift point: a block index or ``layers.EMBEDDINGS`` (the embedding output)."""
        return shift_point_hook(check_shift_point(layer, self.n_layers))

    def mlp_pre(self, layer: int) -> str:
        return mlp_pre_hook(check_layer(layer, self.n_layers))

    def mlp_out(self, layer: int) -> str:
        return mlp_out_hook(check_layer(layer, self.n_layers))

    # ---- tokens ----
    @property
    def mask_token(self) -> str:
        tok = self.tokenizer.mask_token
        if self.kind != "masked" or tok is None:
            raise InputError(
                f"model '{self.name}' has no mask token: it is a {self.kind} LM and cannot be "
                "probed as a masked LM (use it as a causal LM)",
                field="mask_token",
            )
        return tok

    @property
    def mask_token_id(self) -> int:
        return self.tokenizer.convert_tokens_to_ids(self.mask_token)

    def token_ids(self, text: str) -> list[int]:
        """Token ids of ``text`` without special tokens (for object labels)."""
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode(self, texts: Sequence[str], *, add_special_tokens: bool = True) -> Batch:
        """Tokenize and right-pad ``texts``.

        For causal LMs a BOS token is prepended when the tokenizer has one but does
        not add it itself, so every forward pass sees what probing and attribution
        (which prepend BOS to the query) see.
        """
        bos = self.tokenizer.bos_token_id
        if self.kind == "causal" and add_special_tokens and bos is not None:
            rows = [list(self.tokenizer(t)["input_ids"]) for t in texts]
            return self.pad_ids([r if r[:1] == [bos] else [bos] + r for r in rows])
        enc = self.tokenizer(
            list(texts),
            return_tensors="pt",
            padding=True,
            add_special_tokens=add_special_tokens,
        )
        self.check_positions(int(enc["input_ids"].shape[1]))
        return Batch(enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device))

    @property
    def max_positions(self) -> int | None:
        """The most positions the model reads (``n_ctx``), or None when the config does not say."""
        n = getattr(self.bridge.cfg, "n_ctx", None)
        return int(n) if isinstance(n, int) and n > 0 else None

    def check_positions(self, n_tokens: int, *, field: str = "prompt") -> None:
        """Refuse an input longer than the model's positions (it would crash or silently wrap)."""
        limit = self.max_positions
        if limit is not None and n_tokens > limit:
            raise InputError(
                f"input of {n_tokens} tokens is longer than the {limit} positions of model '{self.name}'", field=field
            )

    def pad_ids(self, rows: Sequence[Sequence[int]]) -> Batch:
        """Right-pad already tokenized rows."""
        self.check_positions(max(len(r) for r in rows))
        ids, mask = pad_rows(rows, self.tokenizer.pad_token_id)  # [n, width] each
        return Batch(ids.to(self.device), mask.to(self.device))

    # ---- forward ----
    def logits(self, batch: Batch, fwd_hooks: FwdHooks | None = None) -> torch.Tensor:
        """Logits ``[batch, pos, vocab]`` with optional TransformerLens forward hooks.

        Hooks that count positions from each row's end (:class:`~lrp2_interp.models.hooks.RowLengthHook`)
        are bound to the batch's row lengths first.
        """
        if fwd_hooks:
            hooks = bind_hooks(fwd_hooks, batch.attention_mask)
            return self.bridge.run_with_hooks(batch.input_ids, attention_mask=batch.attention_mask, fwd_hooks=hooks)
        return self.bridge(batch.input_ids, attention_mask=batch.attention_mask)

    @property
    def fingerprint(self) -> str:
        """A short hash of the first input-embedding rows: tells two models with the same name apart."""
        import hashlib

        w = self.bridge.original_model.get_input_embeddings().weight[:8].detach().float().cpu()
        return hashlib.sha1(w.numpy().round(5).tobytes()).hexdigest()[:16]

    def real_token_mask(self, batch: Batch) -> torch.Tensor:
        """``[batch, pos]`` bool: real (non-padding, non-special) tokens."""
        keep = batch.attention_mask.bool()
        if self.special_ids:
            special = torch.tensor(sorted(self.special_ids), device=batch.input_ids.device)
            keep &= ~torch.isin(batch.input_ids, special)
        return keep


def unknown_only(lm: LanguageModel, ids: Sequence[int]) -> bool:
    """True when ``ids`` is empty or every id is the tokenizer's unknown token (the text is not covered)."""
    unk = lm.tokenizer.unk_token_id
    return not ids or (unk is not None and all(i == unk for i in ids))


_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer.model",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "sentencepiece.bpe.model",
)


def check_model_folder(folder: str | Path) -> None:
    """Refuse a local model folder that cannot give a working model, naming the file and field.

    Checks ``config.json`` (a JSON object with ``model_type``), the weights (present,
    and every ``.safetensors`` file as long as its header says), and the tokenizer
    files (without them ``transformers`` may build a tiny all-unknown tokenizer and
    every result would be silently meaningless).
    """
    import json

    folder = Path(folder)
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        have = ", ".join(sorted(p.name for p in folder.iterdir())[:8]) or "nothing"
        raise InputError(f"not a model folder: no config.json (it holds {have})", file=folder)
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"config.json is not valid JSON ({err})", file=cfg_path) from None
    if not isinstance(cfg, dict) or not cfg.get("model_type"):
        raise InputError(
            "config.json names no model_type (empty or not a transformers config)", file=cfg_path, field="model_type"
        )
    weights = [folder / n for n in _WEIGHT_FILES if (folder / n).is_file()] + sorted(folder.glob("*.safetensors"))
    if not weights:
        raise InputError(f"no model weights ({' or '.join(_WEIGHT_FILES[::2])})", file=folder)
    for path in sorted({w for w in weights if w.suffix == ".safetensors"}):
        _check_safetensors(path)
    if not any((folder / n).is_file() for n in _TOKENIZER_FILES):
        raise InputError(
            f"no tokenizer files ({', '.join(_TOKENIZER_FILES)}): save the tokenizer with the model", file=folder
        )


def _check_safetensors(path: Path) -> None:
    """The file is at least as long as its header and the tensors it lists (catches a truncated copy)."""
    import json

    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if n < 2 or 8 + n > size:
            raise InputError(f"truncated or not a safetensors file ({size} bytes)", file=path)
        try:
            header = json.loads(fh.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise InputError("unreadable safetensors header (truncated or corrupt file)", file=path) from None
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + n + end > size:
        raise InputError(f"truncated safetensors file: {size} bytes, its header needs {8 + n + end}", file=path)


def check_loaded_weights(hf_model: Any, tokenizer: Any, name: str) -> None:
    """Refuse, once per load, weights holding NaN/inf and a tokenizer with ids past the embedding table.

    ``hf_model`` is the HF model before the bridge wraps it, so a refused weight is named as in the
    checkpoint (``model.layers.0.mlp.up_proj.weight``).

    Cheap: one ``isfinite().all()`` reduction per parameter tensor, no copy of the weights.
    A NaN weight would otherwise give every candidate the same NaN score (the alphabet decides),
    and a token id past the table an IndexError deep inside the forward pass.
    """
    with torch.no_grad():
        for pname, param in hf_model.named_parameters():
            if param.device.type == "meta" or not param.is_floating_point():
                continue  # offloaded (meta) weights load on use and are not checked here
            if not bool(torch.isfinite(param).all()):
                n_bad = int((~torch.isfinite(param)).sum())
                raise InputError(
                    f"model weight '{pname}' holds {n_bad} non-finite value(s) (NaN or inf): corrupt weights",
                    file=name,
                    field=pname,
                )
    rows = hf_model.get_input_embeddings().weight.shape[0]
    if tokenizer.vocab_size > rows:  # the base vocabulary (special tokens added past it may be unused)
        raise InputError(
            f"the tokenizer has {tokenizer.vocab_size} tokens but the model's embedding table only {rows} rows "
            "(tokenizer of another model?)",
            file=name,
            field="vocab_size",
        )


def _infer_kind(architectures: Sequence[str] | None) -> ModelKind | None:
    for arch in architectures or ():
        if arch.endswith(_MASKED_SUFFIXES):
            return "masked"
        if arch.endswith(_CAUSAL_SUFFIXES):
            return "causal"
    return None


def load_model(
    name_or_dir: str | Path,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    kind: ModelKind | None = None,
    hf_model: Any = None,
    tokenizer: Any = None,
    device_map: DeviceMap | None = None,
    max_memory: dict[str | int, str | int] | None = None,
    offload_folder: str | Path | None = None,
) -> LanguageModel:
    """Load a HF masked/causal LM (hub name or local directory) as a :class:`LanguageModel`.

    ``hf_model``/``tokenizer`` may be passed to wrap objects already in memory.  A documented
    offline name (``"gemma-3-270m"``, see :mod:`lrp2_interp.models.offline`) is converted once from
    its installed package into a cached folder and loaded from there; ``lm.name`` keeps the name.

    A model that does not fit one device: ``device_map`` (``"auto"``, ``"balanced"`` or a dict of
    module name -> device, ``"cpu"`` or ``"disk"``), ``max_memory`` (per device) and ``offload_folder``
    (for ``"disk"`` targets) are handed to ``TransformerBridge.boot_transformers``, which loads the model
    with accelerate; ``device`` is then ignored and ``lm.device`` is the device of the input embedding.
    Encoder-decoder models (mT5, ...) are refused: the package needs an encoder-only masked LM or a
    decoder-only causal LM.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

    from lrp2_interp.models.offline import is_offline_name, resolve_offline_model

    display_name = str(name_or_dir)
    name = (
        str(resolve_offline_model(display_name)) if hf_model is None and is_offline_name(display_name) else display_name
    )
    if not Path(name).is_dir() and (name.startswith((".", "/", "~")) or name.count("/") > 1):
        raise InputError(f"model directory '{name}' does not exist", file=name)
    if hf_model is None and Path(name).is_dir():
        check_model_folder(name)
    try:
        config = hf_model.config if hf_model is not None else AutoConfig.from_pretrained(name)
    except (OSError, ValueError) as err:
        offline = bool(os.environ.get("HF_HUB_OFFLINE"))
        first = (str(err).strip().splitlines() or [""])[0]
        if offline and not Path(name).exists():
            raise InputError(
                f"no such model folder ({Path(name).resolve()}) and no hub model '{name}' in the local "
                "cache (offline: HF_HUB_OFFLINE is set)",
                file=name,
            ) from None
        raise InputError(
            f"cannot load model config for '{name}'{' (offline)' if offline else ''}: {first}", file=name
        ) from None
    archs = list(getattr(config, "architectures", None) or [])
    if getattr(config, "is_encoder_decoder", False):
        raise InputError(
            f"'{name}' is an encoder-decoder model ({', '.join(archs) or config.model_type}): not supported; "
            "use an encoder-only masked LM (BERT, XLM-RoBERTa) or a decoder-only causal LM",
            file=name,
            field="architectures",
        )
    inferred = _infer_kind(archs)
    if kind is None:
        if inferred is None:
            raise InputError(
                f"cannot tell whether '{name}' is a masked or causal LM from its config "
                f"(architectures={archs}); pass kind='masked' or kind='causal'",
                file=name,
                field="architectures",
            )
        kind = inferred
    elif inferred is not None and kind != inferred:
        raise InputError(f"'{name}' is a {inferred} LM ({', '.join(archs)}), not a {kind} LM", file=name, field="kind")
    if tokenizer is None:
        try:
            tokenizer = AutoTokenizer.from_pretrained(name)
        except (OSError, ValueError) as err:
            raise InputError(
                f"cannot load the tokenizer: {(str(err).strip().splitlines() or [''])[0]}", file=name
            ) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    tokenizer.padding_side = "right"
    hf_model = load_hf_model(
        name,
        hf_model=hf_model,
        model_class=AutoModelForMaskedLM if kind == "masked" else AutoModelForCausalLM,
        device=device,
        dtype=dtype,
        device_map=device_map,
        max_memory=max_memory,
        offload_folder=offload_folder,
    )
    check_loaded_weights(hf_model, tokenizer, name)  # before the bridge renames its modules' parameters
    bridge, placed = boot_bridge(name, archs, hf_model=hf_model, tokenizer=tokenizer, device=device, dtype=dtype)
    cfg = bridge.cfg
    special = {i for i in tokenizer.all_special_ids if i is not None}
    d_mlp = ffn_width(config, cfg.d_mlp)
    if d_mlp is None:
        raise InputError("the model config names no FFN width (d_mlp): not a supported architecture", file=name)
    note_precision(display_name, dtype)
    lm = LanguageModel(
        name=display_name,
        kind=kind,
        bridge=bridge,
        tokenizer=tokenizer,
        device=placed,
        dtype=dtype,
        n_layers=int(cfg.n_layers),
        d_model=int(cfg.d_model),
        d_mlp=int(d_mlp),
        special_ids=frozenset(special),
    )
    if kind == "masked":
        _ = lm.mask_token  # raises a clear InputError when the tokenizer has no mask token
    return lm
