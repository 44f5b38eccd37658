"""Every notebook in notebooks/ executes top to bottom (small parameter set, offline organism)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    monkeypatch.setenv("LRP2_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=900, kernel_name="python3", allow_errors=True, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # allow_errors: every cell runs and its error output is kept, so the check below can fail
    errors = [
        f"cell {i}: {o.get('ename')}: {o.get('evalue')}"
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.output_type == "error"
    ]
    assert not errors, errors
    assert list((tmp_path / "results").rglob("*.png")), "the notebook should write its heatmaps"


def test_notebook_check_catches_a_failing_cell(tmp_path):
    """The check above must be able to fail: a notebook whose cell raises gives an error output."""
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("raise ValueError('boom')"), nbformat.v4.new_code_cell("x = 1")]
    )
    NotebookClient(
        nb, timeout=120, kernel_name="python3", allow_errors=True, resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert [e["ename"] for e in errors] == ["ValueError"]


def test_notebooks_only_call_the_package():
    """Notebooks hold no analysis code of their own: no def/class, imports only from lrp2_interp and display libs."""
    assert NOTEBOOKS, "notebooks/ must not be empty"
    allowed = ("lrp2_interp", "IPython", "pandas", "torch", "os")
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            for line in cell.source.splitlines():
                s = line.strip()
                assert not s.startswith(("def ", "class ")), f"{path.name}: {s}"
                if s.startswith(("import ", "from ")):
                    assert s.split()[1].split(".")[0] in allowed, f"{path.name}: {s}"
