"""The notebooks: written with the package only, committed with the outputs their current code produced, and
executed end to end with CI's small parameters (``scripts/run_notebooks.py --small``'s: a tiny random model).

Nothing here is asserted inside a notebook: the notebooks hold analyses, these tests hold the checks.
"""

from __future__ import annotations

import ast
import importlib.util
import shutil
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
IDS = [p.name for p in NOTEBOOKS]


def load_runner():
    spec = importlib.util.spec_from_file_location("run_notebooks", ROOT / "scripts" / "run_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


runner = load_runner()


def code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


# --- the committed notebooks (fast) ----------------------------------------------------------------------------


def test_there_are_the_four_notebooks():
    assert [p.stem[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04"]
    assert set(runner.SMALL) == {p.stem for p in NOTEBOOKS}, "every notebook needs CI's small parameters"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_committed_outputs_come_from_the_current_code(path):
    """Fails when a code cell was edited without executing the notebook again (scripts/run_notebooks.py)."""
    assert runner.check(path) == []


def test_the_check_fails_on_edited_code_and_failed_cells_but_not_on_edited_text(tmp_path):
    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    nb.cells[0].source += "\n\nA sentence added after the run."
    nbformat.write(nb, tmp_path / "text.ipynb")
    assert runner.check(tmp_path / "text.ipynb") == []
    code_cells(nb)[-1].source += "\nprint('edited')"
    nbformat.write(nb, tmp_path / "code.ipynb")
    (problem,) = runner.check(tmp_path / "code.ipynb")
    assert "code changed since its outputs were produced" in problem
    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    code_cells(nb)[-1].outputs.append(nbformat.v4.new_output("error", ename="ValueError", evalue="boom", traceback=[]))
    nbformat.write(nb, tmp_path / "error.ipynb")
    assert any("ValueError: boom" in p for p in runner.check(tmp_path / "error.ipynb"))
    del nb.metadata[runner.META]
    nbformat.write(nb, tmp_path / "bare.ipynb")
    assert "not executed by scripts/run_notebooks.py" in runner.check(tmp_path / "bare.ipynb")[0]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebooks_use_the_package_only(path):
    """One import (the front door), no function or class of their own, no asserts, no environment toggles."""
    nb = nbformat.read(path, as_version=4)
    source = "\n".join(c.source for c in code_cells(nb))
    imports = [line for line in source.splitlines() if line.lstrip().startswith(("import ", "from "))]
    assert imports == ["import lrp2_interp as lx"]
    for node in ast.walk(ast.parse(source)):
        assert not isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Lambda, ast.Assert)), ast.dump(node)[:80]
    assert "environ" not in source and "getenv" not in source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_the_parameters_cell_comes_first_and_defaults_to_the_real_model(path):
    nb = nbformat.read(path, as_version=4)
    first = code_cells(nb)[0]
    assert tags(first) == ["parameters"]
    body = ast.parse(first.source).body
    assert all(isinstance(n, ast.Assign) for n in body), "the parameters cell holds assignments only"
    params = runner.defaults(nb)
    assert len(params) == len(body), "every parameter is a literal (papermill can override it)"
    if "model" in params:
        assert params["model"] == "gemma-3-270m" and params["facts_root"] is None
    else:
        assert params == {"results_dir": "../docs/results/real_scale"}
    assert set(runner.SMALL[path.stem]) <= set(params)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_every_result_is_followed_by_a_paragraph(path):
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and not {"parameters", "injected-parameters"} & set(tags(cell)):
            assert i + 1 < len(nb.cells) and nb.cells[i + 1].cell_type == "markdown", f"cell {i}: no text after it"


def test_parameters_are_injected_after_the_parameters_cell():
    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    runner.inject(nb, {"language": "zh", "pair": (1, 2)})
    i = runner.tagged(nb, "parameters")
    assert tags(nb.cells[i + 1]) == ["injected-parameters"]
    assert runner.assignments(nb.cells[i + 1].source) == {"language": "zh", "pair": (1, 2)}
    runner.inject(nb, {})  # a default run: no injected cell
    assert runner.tagged(nb, "injected-parameters") is None
    with pytest.raises(SystemExit, match="unknown parameter"):
        runner.inject(nb, {"no_such_parameter": 1})


# --- executing them (slow) -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """CI's tiny model and a real-size folder written by benchmarks/real_scale.py on it (tiny sizes)."""
    workdir = tmp_path_factory.mktemp("notebooks")
    return workdir, runner.prepare_small(workdir)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs_with_small_parameters(path, small, tmp_path):
    workdir, prepared = small
    params = runner.small_parameters(path.stem, workdir, prepared)
    out = tmp_path / path.name
    nb = runner.execute(path, params, out_path=out, small=True, timeout=900)  # raises on a failing cell
    assert runner.check(out) == []
    assert nb.metadata[runner.META]["parameters"]["model" if "model" in params else "results_dir"] != "gemma-3-270m"
    for cell in code_cells(nb):
        if ".plot(" in cell.source or "lx.draw_" in cell.source:
            shown = [o for o in cell.outputs if "image/png" in o.get("data", {})]
            assert shown, f"this cell draws but shows no figure:\n{cell.source}"


@pytest.mark.slow
def test_a_failing_cell_fails_the_run_and_writes_nothing(tmp_path):
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
            nbformat.v4.new_code_cell("raise ValueError('boom')"),
        ]
    )
    path = tmp_path / "failing.ipynb"
    nbformat.write(nb, path)
    shutil.copy(path, tmp_path / "before.ipynb")
    with pytest.raises(Exception, match="boom"):
        runner.execute(path, {"x": 2}, timeout=120)
    assert path.read_bytes() == (tmp_path / "before.ipynb").read_bytes()
