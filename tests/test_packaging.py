"""A non-editable ``pip install .`` ships the facts: the default --facts, the organism and the demo find them."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_ships_the_facts_and_finds_them(tmp_path, repo_model_dir):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next(wheels.glob("*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(n for n in names if n.startswith("lrp2_interp/data/facts/"))
    expected = sorted(
        f"lrp2_interp/data/facts/{p.relative_to(ROOT / 'data' / 'facts')}"
        for p in (ROOT / "data" / "facts").glob("*/*.jsonl")
    )
    assert shipped == expected
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    env = {**os.environ, "PYTHONPATH": str(target), "HF_HUB_OFFLINE": "1"}
    code = (
        "import lrp2_interp, sys; from lrp2_interp.facts import shipped_facts_root, load_facts; "
        "from lrp2_interp.organism.config import default_facts_root; r = shipped_facts_root(); "
        "assert r == default_facts_root(); print(lrp2_interp.__file__); print(r); "
        "print(load_facts(r).n_facts('en'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    module, root, n = out.stdout.split()
    assert module.startswith(str(target)) and root.startswith(str(target)) and int(n) > 0
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "lrp2_interp.cli.main",
            "probe",
            "--model",
            str(repo_model_dir("bert")),
            "--languages",
            "en",
            "--relations",
            "P36",
            "--max-facts",
            "2",
            "--out",
            "probe",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cli.returncode == 0, cli.stderr
    assert (tmp_path / "probe" / "predictions.csv").is_file()
