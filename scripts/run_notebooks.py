"""Execute the notebooks in place with their parameters, and record in each which code produced its outputs.

    python scripts/run_notebooks.py               # every notebook, default parameters: Gemma-3-270m
    python scripts/run_notebooks.py 02 04         # some notebooks (prefixes of their file names)
    python scripts/run_notebooks.py -p language=zh -p facts_per_relation=3   # override parameters
    python scripts/run_notebooks.py --small       # CI's small parameters: a tiny random Gemma-3-shaped model
    python scripts/run_notebooks.py --check       # only check that every notebook's outputs come from its code

Parameters follow papermill's convention: the first code cell of a notebook is tagged
``parameters`` and holds its defaults; a run with other values inserts a cell tagged
``injected-parameters`` after it (``papermill -p NAME VALUE`` would run them the same way).
``--small`` uses :data:`SMALL` for each notebook: a tiny random Gemma-3-shaped model built from the
shipped facts (``lx.build_random_model``) and, for 04, a folder written by
``benchmarks/real_scale.py`` on that model with tiny sizes, both under ``--workdir``.

Each executed notebook stores in its metadata (``metadata.lrp2_interp``) the sha256 of its code
cells (the parameters and injected cells included), the parameters it ran with and its wall time;
:func:`check` (and ``tests/test_notebooks.py``) fails when a notebook's code no longer hashes to
the stored value, i.e. when code was edited without executing the notebook again.  Markdown
cells are not hashed: interpretation text can be edited after a run.  A notebook with an
``out_dir`` parameter writes its files there; a folder under ``results/notebooks/`` is emptied
before each run (so a rerun with other sizes never meets its earlier shards).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
SCRATCH = REPO / "results" / "notebooks"
META = "lrp2_interp"
PARAMETERS, INJECTED = "parameters", "injected-parameters"

#: tiny sizes of CI's model: a Gemma-3-shaped causal decoder of 4 blocks (shift points -1..3)
TINY_MODEL = dict(family="gemma3", n_layers=4, d_model=32, n_heads=4, d_mlp=64, max_positions=128)
#: CI's parameters per notebook (``{model}``, ``{real_scale}``, ``{out}`` are filled in by :func:`small_parameters`)
SMALL: dict[str, dict[str, Any]] = {
    "01_lrp2_quickstart": dict(model="{model}", facts_per_relation=2, max_candidates=5, pair=(0, 2), sweep_layers=None),
    "02_knowledge_neurons": dict(
        model="{model}",
        languages=("fr", "zh"),
        lrp2_pairs={"fr": (0, 2), "zh": (1, 3)},
        facts_per_relation=1,
        n_perm=100,
        n_boot=100,
        out_dir="{out}",
    ),
    "03_methods_compared": dict(
        model="{model}",
        max_dev=8,
        max_test=8,
        first_rung=4,
        lrp2_layers=None,
        sigmas=(-0.5, 0.0, 0.5),
        n_boot=100,
        lens_facts_per_relation=2,
    ),
    "04_real_size_results": dict(results_dir="{real_scale}"),
}
#: ``benchmarks/real_scale.py`` arguments of CI's real-size folder (two languages, a few facts each)
SMALL_REAL_SCALE = ["--languages", "fr", "zh", "--dev", "8", "--test", "8", "--first-rung", "4", "--controls", "2"]
SMALL_REAL_SCALE += ["--n-boot", "100", "--threads", "1"]


# ------------------------------------------------------------------ cells, parameters and the code hash
def code_hash(nb: Any) -> str:
    """sha256 of the notebook's code cells (parameters and injected-parameters cells included), in order."""
    sources = [c.source for c in nb.cells if c.cell_type == "code"]
    return hashlib.sha256(json.dumps(sources, ensure_ascii=False).encode("utf-8")).hexdigest()


def tagged(nb: Any, tag: str) -> int | None:
    """Index of the first cell tagged ``tag`` (None when there is none)."""
    return next((i for i, c in enumerate(nb.cells) if tag in c.get("metadata", {}).get("tags", [])), None)


def assignments(source: str) -> dict[str, Any]:
    """``NAME = literal`` assignments of a parameters cell (other statements are ignored)."""
    out: dict[str, Any] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return out


def defaults(nb: Any) -> dict[str, Any]:
    """The notebook's default parameters (its ``parameters`` cell)."""
    i = tagged(nb, PARAMETERS)
    if i is None:
        raise SystemExit(f"{nb.metadata.get('name', 'notebook')}: no cell is tagged '{PARAMETERS}'")
    return assignments(nb.cells[i].source)


def inject(nb: Any, params: Mapping[str, Any]) -> None:
    """Replace any injected cell by one holding ``params`` right after the ``parameters`` cell (none if empty)."""
    import nbformat

    old = tagged(nb, INJECTED)
    if old is not None:
        del nb.cells[old]
    known = defaults(nb)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise SystemExit(f"unknown parameter(s) {unknown}; the notebook has {sorted(known)}")
    if params:
        lines = ["# Parameters"] + [f"{k} = {v!r}" for k, v in params.items()]
        cell = nbformat.v4.new_code_cell("\n".join(lines), metadata={"tags": [INJECTED]})
        nb.cells.insert(tagged(nb, PARAMETERS) + 1, cell)


# ------------------------------------------------------------------ executing
def kernel_env() -> dict[str, str]:
    """The kernel's environment: this checkout's package first on the path, the hub offline, no progress bars
    (the notebooks' stored outputs hold results, not bars; tqdm's "IProgress not found" warning is silenced)."""
    env = dict(os.environ)
    env.setdefault("TQDM_DISABLE", "1")
    env.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    env["PYTHONWARNINGS"] = ",".join(filter(None, [env.get("PYTHONWARNINGS"), "ignore:IProgress not found"]))
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def _clear_scratch(params: Mapping[str, Any], cwd: Path) -> None:
    out = params.get("out_dir")
    if isinstance(out, str):
        folder = (cwd / out).resolve()
        if folder.is_relative_to(SCRATCH.resolve()) and folder.is_dir():
            shutil.rmtree(folder)


def execute(
    path: Path,
    params: Mapping[str, Any] | None = None,
    *,
    out_path: Path | None = None,
    small: bool = False,
    timeout: int = 3600,
) -> Any:
    """Run ``path`` top to bottom with ``params`` injected (cwd: its folder); store its hash and write it.

    Raises (and writes nothing) when a cell fails.  Returns the executed notebook.
    """
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    params = dict(params or {})
    inject(nb, params)
    used = {**defaults(nb), **params}
    _clear_scratch(used, path.parent)
    t0 = time.time()
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute(env=kernel_env())
    nb.metadata[META] = {
        "code_sha256": code_hash(nb),
        "parameters": {k: _jsonable(v) for k, v in used.items()},
        "small": small,
        "wall_seconds": round(time.time() - t0, 1),
        "command": "python scripts/run_notebooks.py" + (" --small" if small else ""),
    }
    target = out_path or path
    tmp = target.with_suffix(".ipynb.tmp")
    nbformat.write(nb, tmp)
    os.replace(tmp, target)
    return nb


def _jsonable(value: Any) -> Any:
    """``value`` as JSON holds it (tuples become lists; anything else not JSON, its ``str``)."""
    return json.loads(json.dumps(value, default=str))


# ------------------------------------------------------------------ CI's small parameters
def prepare_small(workdir: Path) -> dict[str, Path]:
    """CI's tiny model and real-size folder under ``workdir`` (built once, reused while present)."""
    sys.path.insert(0, str(REPO))
    import lrp2_interp as lx

    model = workdir / "tiny-gemma3"
    if not (model / "config.json").is_file():
        facts = lx.load_facts()
        lx.build_random_model(lx.RandomModelConfig(**TINY_MODEL), lx.fact_sentences(facts), model)
    real_scale = workdir / "real_scale"
    if not (real_scale / "summary.csv").is_file():
        spec = importlib.util.spec_from_file_location("real_scale", REPO / "benchmarks" / "real_scale.py")
        assert spec is not None and spec.loader is not None
        bench = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(bench)
        facts_root = str(lx.shipped_facts_root())
        argv = ["--model", str(model), "--facts", facts_root, "--out", str(real_scale), *SMALL_REAL_SCALE]
        bench.main(argv)
    return {"model": model, "real_scale": real_scale}


def small_parameters(stem: str, workdir: Path, prepared: Mapping[str, Path], cwd: Path = NOTEBOOKS) -> dict[str, Any]:
    """:data:`SMALL`'s parameters of notebook ``stem`` with the paths filled in (relative to ``cwd`` when inside it)."""

    def where(p: Path) -> str:
        rel = os.path.relpath(p, cwd)
        return rel if not rel.startswith(os.pardir * 3) else str(p)

    paths = {"model": where(prepared["model"]), "real_scale": where(prepared["real_scale"])}
    paths["out"] = where(workdir / stem)
    return {k: v.format(**paths) if isinstance(v, str) else v for k, v in SMALL.get(stem, {}).items()}


# ------------------------------------------------------------------ checking
def check(path: Path) -> list[str]:
    """What is wrong with a committed notebook: not executed by this script, code edited since, failed cells."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    name = path.name
    meta = nb.metadata.get(META)
    if not meta or "code_sha256" not in meta:
        return [f"{name}: not executed by scripts/run_notebooks.py (no metadata.{META}.code_sha256)"]
    problems = []
    if meta["code_sha256"] != code_hash(nb):
        problems.append(
            f"{name}: its code changed since its outputs were produced; run `python scripts/run_notebooks.py "
            f"{name[:2]}` (or `--small`) again"
        )
    counts = [c.get("execution_count") for c in nb.cells if c.cell_type == "code"]
    if any(n is None for n in counts) or counts != sorted(counts) or len(set(counts)) != len(counts):
        problems.append(f"{name}: code cells not executed top to bottom in one run (execution counts {counts})")
    for i, c in enumerate(nb.cells):
        for o in c.get("outputs", []) if c.cell_type == "code" else []:
            if o.get("output_type") == "error":
                problems.append(f"{name}: cell {i} failed: {o.get('ename')}: {o.get('evalue')}")
    return problems


def notebooks(names: Sequence[str]) -> list[Path]:
    found = sorted(NOTEBOOKS.glob("*.ipynb"))
    if not names:
        return found
    picked = [p for p in found if any(p.name.startswith(n) for n in names)]
    missing = [n for n in names if not any(p.name.startswith(n) for p in found)]
    if missing:
        raise SystemExit(f"no notebook named {missing} in {NOTEBOOKS} (have {[p.name for p in found]})")
    return picked


def parse_parameter(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise SystemExit(f"-p takes NAME=VALUE (a Python literal), got {text!r}")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name, value  # a bare string


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*", help="notebooks to run (file-name prefixes such as 01 04); default: all")
    ap.add_argument(
        "--small", action="store_true", help="CI's small parameters (tiny random model) instead of defaults"
    )
    ap.add_argument("--check", action="store_true", help="only check the stored code hashes and outputs")
    ap.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE", help="override a parameter")
    ap.add_argument("--workdir", default=str(SCRATCH / "small"), help="where --small builds its model and folder")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds one cell may run")
    args = ap.parse_args(argv)
    paths = notebooks(args.names)
    if args.check:
        problems = [p for path in paths for p in check(path)]
        print("\n".join(problems) or f"{len(paths)} notebooks: outputs produced by their current code")
        return 1 if problems else 0
    overrides = dict(parse_parameter(p) for p in args.parameter)
    known = {name for path in paths for name in defaults(_read(path))}
    if set(overrides) - known:
        raise SystemExit(f"no notebook run has parameter(s) {sorted(set(overrides) - known)} (known: {sorted(known)})")
    prepared = prepare_small(Path(args.workdir).resolve()) if args.small else {}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout
    print(f"running {len(paths)} notebooks at {commit.strip() or 'an unknown commit'}", flush=True)
    for path in paths:
        params = small_parameters(path.stem, Path(args.workdir).resolve(), prepared) if args.small else {}
        params.update({k: v for k, v in overrides.items() if k in defaults(_read(path))})
        t0 = time.time()
        execute(path, params, small=args.small, timeout=args.timeout)
        print(f"{path.name}: {time.time() - t0:.0f} s", flush=True)
    return 0


def _read(path: Path) -> Any:
    import nbformat

    return nbformat.read(path, as_version=4)


if __name__ == "__main__":
    sys.exit(main())
