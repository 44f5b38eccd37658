"""The prepared GPU run (benchmarks/gpu.py, run by benchmarks/gpu.sh): its code path on the CPU, quick mode."""

from __future__ import annotations

import re
from pathlib import Path

from bench_loader import BENCHMARKS, run_benchmark


def test_gpu_benchmark_code_path_on_cpu(monkeypatch, capsys):
    run_benchmark("gpu", ["--device", "cpu", "--dtype", "bfloat16", "--quick"], monkeypatch)
    out = capsys.readouterr().out.splitlines()
    lines = {l.split(":")[0]: l for l in out if l.startswith(("attribution:", "probing:", "sweep:"))}
    assert set(lines) == {"attribution", "probing", "sweep"}, out
    assert re.search(r"attribution: \d+\.\d+ prompts/s \(2 prompts", lines["attribution"])
    assert re.search(r"probing: \d+\.\d+ fact-conditions/s \(7 facts x 1 condition", lines["probing"])
    # 3 layers -> 3 pairs, plus the baseline
    assert re.search(r"sweep: \d+\.\d+ fact-conditions/s \(7 facts x 4 conditions", lines["sweep"])
    assert all("peak" in l and "MiB" in l for l in lines.values())


def test_gpu_script_runs_the_benchmark_on_cuda_in_bfloat16():
    script = (BENCHMARKS / "gpu.sh").read_text()
    assert "python benchmarks/gpu.py --device cuda --dtype bfloat16" in script
    assert Path(BENCHMARKS / "gpu.sh").stat().st_mode & 0o111, "gpu.sh must be executable"
