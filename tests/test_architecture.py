"""The architecture guards (tests/arch_guards.py) on lrp2_interp, and synthetic packages each guard must flag.

A failure names the modules and lines at fault: fix those modules, do not loosen the guard.
"""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path

import pytest
from arch_guards import (
    MAX_LINES,
    Module,
    api_table,
    broken_api,
    discover,
    import_cycles,
    import_graph,
    layer_violations,
    long_modules,
    missing_docstrings,
    private_imports,
)

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "lrp2_interp"
RUNAWAY_LINES = 2 * MAX_LINES  # a module this long is no longer one readable concept


# --- the guards, on the package -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def package() -> dict[str, Module]:
    return discover(ROOT / PACKAGE)


def test_the_package_is_found(package):
    assert f"{PACKAGE}.errors" in package and len(package) > 40


def test_no_import_cycle(package):
    cycles = import_cycles(package)
    assert not cycles, "\n".join(cycles)


def test_no_module_uses_another_modules_private_names(package):
    private = private_imports(package)
    assert not private, "\n".join(private)


#: the package's layers, bottom up (docs/architecture.md): a part imports only from lower layers
LAYERS = [
    {
        "errors",
        "files",
        "distributed",
        "execution",
        "layers",
        "languages",
        "metrics",
        "paired",
        "corpus",
        "fonts",
        "drawing",
        "figures",
        "heldout_figures",
        "plots",
        "gallery",
    },
    {"fact_files"},
    {"facts", "manifest", "real_size"},
    {"store"},
    {"models"},
    {"prompts"},
    {"probing"},
    {"lrp2"},
    {"interventions"},
    {"attribution"},
    {"neurons"},
    {"methods", "organism", "presets"},
    {"demo"},
    {"cli"},
]


def test_imports_follow_the_layers(package):
    # facts and manifest share a layer: the manifest records the facts' digest (a function-level import)
    found = [v for v in layer_violations(package, PACKAGE, LAYERS) if not ("manifest" in v and "facts" in v)]
    assert not found, "\n".join(found)


def test_a_layer_violation_is_reported(tmp_path):
    modules = make_package(
        tmp_path,
        {
            "low.py": '"""Low."""\n\ndef f():\n    from pkg.high import g\n    return g\n',
            "high.py": '"""High."""\n\nfrom pkg.low import f\n\ndef g():\n    return f\n',
            "side_a.py": '"""Side a."""\n\nfrom pkg.side_b import h\n',
            "side_b.py": '"""Side b."""\n\nh = 1\n',
        },
    )
    found = layer_violations(modules, "pkg", [{"low"}, {"high"}, {"side_a", "side_b"}])
    assert any("pkg.low" in v and "pkg.high" in v for v in found)
    assert any("pkg.side_a" in v and "pkg.side_b" in v for v in found)
    assert not any(v.startswith("pkg.high:") for v in found)  # importing downwards is fine
    assert any("no layer" in v for v in layer_violations(modules, "pkg", [{"high"}]))


def test_a_long_module_is_a_warning_and_only_a_runaway_one_fails(package):
    """Past 400 lines a module is flagged for review (does it hold more than one concept?), never split for its
    length alone; past 800 lines it fails."""
    for line in long_modules(package):
        warnings.warn(f"{line}: does it hold more than one concept?", stacklevel=1)
    runaway = long_modules(package, limit=RUNAWAY_LINES)
    assert not runaway, "\n".join(runaway)


def test_every_module_docstring_has_a_first_line(package):
    undocumented = missing_docstrings(package)
    assert not undocumented, "\n".join(undocumented)


def test_every_public_api_name_exists_in_its_module(package):
    assert len(api_table(package[PACKAGE])) > 50
    broken = broken_api(package, PACKAGE)
    assert not broken, "\n".join(broken)


# --- each guard catches what it should, on tiny synthetic packages --------------------------------------------


def make_package(tmp_path: Path, files: dict[str, str]) -> dict[str, Module]:
    """Write ``files`` (path under the package ``pkg`` -> source) and discover the package."""
    for rel, text in {"__init__.py": '"""Pkg."""\n', **files}.items():
        path = tmp_path / "pkg" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return discover(tmp_path / "pkg")


CLEAN = {
    "sub/__init__.py": '"""Sub."""\n',
    "sub/a.py": '"""A."""\nfrom pkg.sub.b import f\nimport pkg.c as c\n\ndef g():\n    return c.h() + f()\n',
    "sub/b.py": '"""B."""\nfrom pkg.sub import _helpers\n\ndef f():\n    return _helpers.one()\n',
    "sub/_helpers.py": '"""Helpers private to sub."""\n\ndef one():\n    return 1\n',
    "c.py": '"""C."""\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.sub.a import g\n\n'
    "def h():\n    return 2\n\ndef _private():\n    return _private\n",
}


def test_a_clean_synthetic_package_passes_every_guard(tmp_path):
    modules = make_package(tmp_path, CLEAN)
    assert set(modules) == {"pkg", "pkg.sub", "pkg.sub.a", "pkg.sub.b", "pkg.sub._helpers", "pkg.c"}
    assert import_graph(modules)["pkg.sub.a"] == {"pkg.sub.b": 2, "pkg.c": 3}
    assert import_graph(modules)["pkg.c"] == {}  # the TYPE_CHECKING import does not run
    assert import_cycles(modules) == []
    assert private_imports(modules) == []
    assert long_modules(modules) == []
    assert missing_docstrings(modules) == []


def test_cycle_through_a_function_level_import_is_reported(tmp_path):
    modules = make_package(
        tmp_path,
        {
            "a.py": '"""A."""\nfrom pkg.b import f\n',
            "b.py": '"""B."""\n\ndef f():\n    import pkg.c\n    return pkg.c\n',
            "c.py": '"""C."""\nfrom pkg import a\n',
            "d.py": '"""D, outside the cycle."""\nimport pkg.a\n',
        },
    )
    assert import_cycles(modules) == [
        "pkg.a (line 2) -> pkg.b (line 4) -> pkg.c (line 2) -> pkg.a (the cycle is among pkg.a, pkg.b, pkg.c)"
    ]


def test_relative_import_cycle_is_reported(tmp_path):
    modules = make_package(
        tmp_path,
        {
            "s/__init__.py": '"""S."""\n',
            "s/x.py": '"""X."""\nfrom .y import f\n',
            "s/y.py": '"""Y."""\nfrom . import x\n',
        },
    )
    assert import_cycles(modules) == ["pkg.s.x (line 2) -> pkg.s.y (line 2) -> pkg.s.x"]


def test_private_names_of_other_modules_are_reported(tmp_path):
    modules = make_package(
        tmp_path,
        {
            "lib.py": '"""Lib."""\n_SECRET = 1\n\ndef _helper():\n    return 1\n',
            "sub/__init__.py": '"""Sub."""\n',
            "sub/_impl.py": '"""Private to sub."""\nX = 1\n',
            "by_name.py": '"""Imports it by name."""\nfrom pkg.lib import _helper\n',
            "by_attr.py": '"""Reads it on the module."""\nimport pkg.lib as lib\n\ndef f():\n    return lib._SECRET\n',
            "by_path.py": '"""Reads it by dotted path."""\nimport pkg.lib\nV = pkg.lib._helper()\n',
            "by_module.py": '"""Imports a private module from outside its package."""\nfrom pkg.sub._impl import X\n',
            "fine.py": '"""Public names and dunders only."""\nfrom pkg import lib\nfrom pkg.lib import __doc__\nV = lib.__name__\n',
        },
    )
    assert private_imports(modules) == [
        "pkg/by_attr.py line 5: uses pkg.lib._SECRET",
        "pkg/by_module.py line 2: imports the private module pkg.sub._impl",
        "pkg/by_name.py line 2: imports pkg.lib._helper",
        "pkg/by_path.py line 3: uses pkg.lib._helper",
    ]


def test_long_modules_and_missing_docstrings_are_reported(tmp_path):
    body = "".join(f"x{i} = {i}\n" for i in range(MAX_LINES))
    modules = make_package(
        tmp_path,
        {
            "long.py": '"""Long."""\n' + body,
            "limit.py": '"""Exactly at the limit."""\n' + body[: body.rindex("x")],
            "bare.py": "X = 1\n",
            "blank_first.py": '"""\nThe text starts on the second line."""\n',
        },
    )
    assert modules["pkg.limit"].n_lines == MAX_LINES
    assert long_modules(modules) == [f"pkg.long: {MAX_LINES + 1} lines (limit {MAX_LINES})"]
    assert sorted(missing_docstrings(modules)) == ["pkg.bare", "pkg.blank_first"]


def test_api_names_missing_from_their_module_are_reported(tmp_path):
    modules = make_package(
        tmp_path,
        {
            "__init__.py": '"""Pkg."""\n_API: dict[str, str] = {"f": "m", "C": "m", "V": "m", "T": "m", '
            '"W": "m", "gone": "m", "lost": "nowhere", "inner": "m"}\n',
            "m.py": '"""M."""\nfrom typing import Any as T\nV, W = 1, 2\n\nclass C:\n    pass\n\n'
            "def f():\n    inner = 1\n    return inner\n",
        },
    )
    assert broken_api(modules, "pkg") == [
        "gone: not defined at the top level of pkg.m",
        "lost: no module pkg.nowhere",
        "inner: not defined at the top level of pkg.m",
    ]
