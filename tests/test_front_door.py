"""The front door: ``import lrp2_interp as lx`` reaches every public name, with no name shadowed by a module."""

from __future__ import annotations

import importlib.util
import inspect
import subprocess
import sys
from types import ModuleType

import pytest

import lrp2_interp as lx
from lrp2_interp.facts import shipped_facts_root


def test_the_lrp2_context_manager_is_not_shadowed_by_the_lrp2_subpackage():
    """``from lrp2_interp import lrp2`` gave the subpackage once it was imported, not the context manager."""
    import lrp2_interp.lrp2.similarity  # noqa: F401  (imports the subpackage, which becomes lx.lrp2)
    from lrp2_interp import apply_lrp2
    from lrp2_interp.lrp2.front import apply_lrp2 as defined

    assert apply_lrp2 is lx.apply_lrp2 is defined
    assert callable(apply_lrp2) and not isinstance(apply_lrp2, ModuleType)
    assert inspect.isgeneratorfunction(inspect.unwrap(apply_lrp2))  # a @contextmanager
    assert isinstance(lx.lrp2, ModuleType)  # the name lrp2 means the subpackage, always


def test_no_public_name_is_also_a_module_of_the_package():
    shadowed = [name for name in lx.__all__ if importlib.util.find_spec(f"lrp2_interp.{name}") is not None]
    assert not shadowed, f"public names that a submodule import would replace: {shadowed}"


def test_every_public_name_resolves():
    missing = [name for name in lx.__all__ if name != "__version__" and getattr(lx, name, None) is None]
    assert not missing


def test_subpackages_load_on_access_and_unknown_names_fail():
    assert isinstance(lx.plots, ModuleType) and lx.plots.similarity_plot is lx.similarity_plot
    try:
        lx.no_such_name
    except AttributeError as err:
        assert "no_such_name" in str(err)
    else:
        raise AssertionError("an unknown name resolved")


def test_import_does_no_work():
    code = "import sys, lrp2_interp; print('torch' in sys.modules, 'pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_load_facts_defaults_to_the_shipped_facts():
    facts = lx.load_facts(languages=["en", "fr"])
    assert facts.root == shipped_facts_root() and facts.languages == ("en", "fr") and facts.n_facts("fr") > 0


def readme_example(readme: str) -> str:
    """The python block of the README's "Python API: one import" section."""
    section = readme.split("## Python API: one import", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.usefixtures("single_thread")
def test_the_readme_example_runs_offline_with_one_import(tmp_path, monkeypatch):
    """The README's example, with a tiny random 14-layer model in place of Gemma-3-270m (same API, same facts)."""
    from pathlib import Path

    import matplotlib.pyplot as plt

    code = readme_example((Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8"))
    imports = [line for line in code.splitlines() if line.startswith(("import ", "from "))]
    assert imports == ["import lrp2_interp as lx"]
    assert 'lx.load_model("gemma-3-270m")' in code
    facts = lx.load_facts(languages=["en", "fr"])
    folder = lx.build_random_model(
        lx.RandomModelConfig(family="gpt2", n_layers=14), lx.fact_sentences(facts), tmp_path / "model"
    )
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    try:
        exec(code.replace('lx.load_model("gemma-3-270m")', f"lx.load_model({str(folder)!r})"), scope)
    finally:
        plt.close("all")
    assert scope["after"].language == "fr" and len(scope["attr"].top(5)) == 5
    assert (tmp_path / "results" / "similarity_fr" / "similarity.png").is_file()


def test_every_name_the_notebooks_use_is_on_the_front_door():
    """The notebooks import only ``lrp2_interp as lx``: each ``lx.NAME`` they call is a public name."""
    import re
    from pathlib import Path

    import nbformat

    used = set()
    for path in sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        used |= {m for c in nb.cells if c.cell_type == "code" for m in re.findall(r"\blx\.(\w+)", c.source)}
    assert used and not used - set(lx.__all__), sorted(used - set(lx.__all__))
    assert {"read_real_size", "build_interventions", "axes_grid", "draw_lens"} <= used
