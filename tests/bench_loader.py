"""Test helper: import a script of ``benchmarks/`` as a module and run its ``main`` with given arguments."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run_benchmark(name: str, argv: list[str], monkeypatch) -> ModuleType:
    """Load ``benchmarks/{name}.py``, run ``main()`` with ``sys.argv = [name.py, *argv]``; return the module."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setattr(sys, "argv", [f"{name}.py", *argv])
    bench.main()
    return bench
