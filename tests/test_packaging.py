"""Packaging and CI: the wheel ships every subpackage and the facts; CI runs the README's test commands.

A non-editable ``pip install .`` ships the facts: the default --facts, the organism and the demo find them.
"""

from __future__ import annotations

import os
import re
import shlex
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
        "from lrp2_interp.organism.organism_config import default_facts_root; r = shipped_facts_root(); "
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


def test_every_subpackage_is_listed_for_the_wheel():
    """A subpackage missing from [tool.setuptools] packages would be left out of a non-editable install."""
    tomllib = pytest.importorskip("tomllib")
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "lrp2_interp").rglob("__init__.py")}
    assert found - listed == set(), "add them to [tool.setuptools] packages in pyproject.toml"
    assert listed - found == {"lrp2_interp.data.facts"}  # package data, mapped from data/facts


def readme_test_commands(readme: str) -> list[list[str]]:
    """The commands of the README's "Test" bash block, as argument lists (comments and VAR=value prefixes off)."""
    section = readme.split("\n## Test\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "no bash block in the README's Test section"
    out = []
    for line in block.group(1).splitlines():
        words = shlex.split(line, comments=True)
        while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
            words = words[1:]
        if words:
            out.append(words)
    return out


def ci_commands(script: str) -> list[list[str]]:
    """The commands .ci/run hands to its ``check`` function, as argument lists."""
    return [shlex.split(m) for m in re.findall(r"^check (.+)$", script, re.M)]


def covers(ci: list[str], cmd: list[str]) -> bool:
    """``ci`` runs ``cmd``: the same program with every word of ``cmd`` in order (CI may add flags, never drop one)."""
    rest = iter(ci[1:])
    return bool(ci) and ci[0] == cmd[0] and all(word in rest for word in cmd[1:])


def test_ci_runs_every_test_command_of_the_readme():
    readme = readme_test_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    ci = ci_commands((ROOT / ".ci" / "run").read_text(encoding="utf-8"))
    assert [c[0] for c in readme] == ["python", "ruff", "ruff", "mypy"]
    missing = [cmd for cmd in readme if not any(covers(c, cmd) for c in ci)]
    assert not missing, f".ci/run does not run {missing}"


def test_the_readme_and_ci_parsers_see_a_dropped_command():
    readme = "# T\n\n## Test\n\n```bash\nHF_HUB_OFFLINE=1 python -m pytest -q\nmypy  # types\n```\n\n## Next\n"
    assert readme_test_commands(readme) == [["python", "-m", "pytest", "-q"], ["mypy"]]
    ci = ci_commands("set -e\ncheck python -m pytest -p no:cacheprovider -q\nruff check .\n")
    assert ci == [["python", "-m", "pytest", "-p", "no:cacheprovider", "-q"]]
    assert covers(ci[0], ["python", "-m", "pytest", "-q"])
    assert not covers(ci[0], ["python", "-m", "pytest", "-q", "-x"])  # a dropped flag
    assert not covers(ci[0], ["python", "-m", "pytest", "-q", "-m"])  # words out of order
    assert not covers(ci[0], ["mypy"])
