"""Fixtures of the attribution tests: tiny random BERT/BLOOM/GPT-2/Qwen2 models whose FFNs matter.

* ``model_dirs`` -- family -> directory of a 3-layer random model, block weights scaled x8;
* ``lm_of(fam, dtype=torch.float64)`` -- that model loaded (once per family and dtype; read-only).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from lrp2_interp.models.builders import RandomModelConfig, build_random_model
from lrp2_interp.models.loading import LanguageModel, load_model

CORPUS = [
    "the capital of france is paris .",
    "berlin is the capital of germany .",
    "tokyo is in japan and rome is in italy .",
    "madrid spain lisbon portugal",
] * 5


def _sharpened(directory: Path, fam: str, scale: float = 8.0) -> Path:
    """Scale the block weights so the FFNs matter: at init (std 0.02) zeroing a whole layer moves p(gold) ~1e-5."""
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

    model = (AutoModelForMaskedLM if fam == "bert" else AutoModelForCausalLM).from_pretrained(directory)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() == 2 and any(k in name for k in (".layer.", ".h.", ".layers.")):
                param.mul_(scale)
    model.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("attr_models")
    cfg = dict(n_layers=3, d_model=32, n_heads=4, d_mlp=48)
    return {
        fam: _sharpened(
            build_random_model(RandomModelConfig(family=fam, **cfg), CORPUS, root / fam, tokenizer_vocab_size=200), fam
        )
        for fam in ("bert", "bloom", "gpt2", "qwen2")
    }


@pytest.fixture(scope="session")
def lm_of(model_dirs) -> Callable[..., LanguageModel]:
    """``lm_of(fam, dtype=torch.float64)``: the loaded model of ``model_dirs[fam]`` (cached per family and dtype)."""
    loaded: dict[tuple[str, torch.dtype], LanguageModel] = {}

    def load(fam: str, dtype: torch.dtype = torch.float64) -> LanguageModel:
        if (fam, dtype) not in loaded:
            loaded[(fam, dtype)] = load_model(model_dirs[fam], dtype=dtype)
        return loaded[(fam, dtype)]

    return load
