"""Reduced precision: the parity benchmark's quick mode on tiny models, and load_model's one-line note."""

from __future__ import annotations

import warnings

import pytest
import torch
from bench_loader import run_benchmark

from lrp2_interp.models.loading import load_model
from lrp2_interp.models.placement import ReducedPrecisionNote

pytestmark = pytest.mark.usefixtures("single_thread")


def test_precision_benchmark_quick_mode(monkeypatch, capsys):
    run_benchmark("precision", ["--quick", "--families", "bert", "gpt2", "gemma3"], monkeypatch)
    out = capsys.readouterr().out
    lines = [l for l in out.splitlines() if ": top-1 agreement " in l]
    assert len(lines) == 6, out  # 3 models x (bfloat16, float16)
    rows = [l for l in out.splitlines() if l.startswith("| tiny ")]
    assert len(rows) == 6
    parsed = {(r.split("|")[1].strip(), r.split("|")[2].strip()): r.split("|") for r in rows}
    for fam in ("bert", "gpt2", "gemma3"):
        bf = float(parsed[(f"tiny {fam}", "bfloat16")][5].split("/")[0])
        fp = float(parsed[(f"tiny {fam}", "float16")][5].split("/")[0])
        # reduced precision changes the logits, float16 (10 mantissa bits) less than bfloat16 (7)
        assert 0 < fp < bf < 0.1, (fam, fp, bf)


def test_reduced_precision_is_noted_once_per_model(tiny_model_dir):
    d = tiny_model_dir("gpt2")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        load_model(d)
        assert not [w for w in seen if issubclass(w.category, ReducedPrecisionNote)]
        lm = load_model(d, dtype=torch.bfloat16)
    notes = [w for w in seen if issubclass(w.category, ReducedPrecisionNote)]
    assert len(notes) == 1 and "bfloat16" in str(notes[0].message) and "benchmarks/README.md" in str(notes[0].message)
    assert lm.dtype == torch.bfloat16 and lm.bridge.original_model.lm_head.weight.dtype == torch.bfloat16
