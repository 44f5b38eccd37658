"""Architecture guards computed from the package source with ``ast``: cycles, private imports, size, docstrings, _API.

Nothing here imports ``lrp2_interp``: every guard parses the files under a package
folder, so it also runs on the tiny synthetic packages (``tmp_path``) that show each
guard reports what it is meant to catch.

* imports: every ``import`` / ``from ... import`` of a module of the package, at any
  depth (function-level imports included), except under ``if TYPE_CHECKING:``
  (annotation-only imports never run); ``from pkg.a import b`` is an edge to the
  module ``pkg.a.b`` when that file exists, else to ``pkg.a``;
* private names: ``from pkg.x import _y``, ``pkg.x._y`` / ``alias._y`` on an imported
  module, or a private module (``pkg.a._m``) imported from outside its package ``pkg.a``;
  dunders (``__version__``) are public;
* size: at most :data:`MAX_LINES` lines a module; docstring: a non-blank first line;
* ``_API`` (the lazy public-name table of ``pkg/__init__.py``): each name is defined at
  the top level (def, class, assignment or import) of the module it points to.
"""

from __future__ import annotations

import ast
import itertools
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "lrp2_interp"
MAX_LINES = 400


@dataclass(frozen=True)
class Module:
    name: str  # dotted, e.g. "pkg.a.b"; a package's __init__.py is the package's name
    path: Path
    is_package: bool
    tree: ast.Module
    n_lines: int


def discover(pkg_dir: Path) -> dict[str, Module]:
    """Every module of the package folder ``pkg_dir`` (its name is the folder's name), by dotted name."""
    out = {}
    for path in sorted(pkg_dir.rglob("*.py")):
        parts = path.relative_to(pkg_dir.parent).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        text = path.read_text(encoding="utf-8")
        out[name] = Module(name, path, is_package, ast.parse(text, str(path)), len(text.splitlines()))
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST):
    """Every node of ``tree``, skipping the bodies of ``if TYPE_CHECKING:`` blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
        else:
            stack.extend(ast.iter_child_nodes(node))


def _absolute(mod: Module, node: ast.ImportFrom) -> str:
    """The absolute dotted module of a ``from ... import`` (relative levels resolved)."""
    if not node.level:
        return node.module or ""
    base = mod.name.split(".") if mod.is_package else mod.name.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(mod: Module, modules: dict[str, Module]) -> list[tuple[str, int, str | None]]:
    """``(target module, line, imported name or None)`` for each runtime import of a package module by ``mod``."""
    out = []
    for node in _runtime_nodes(mod.tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno, None) for a in node.names if a.name in modules]
        elif isinstance(node, ast.ImportFrom):
            src = _absolute(mod, node)
            for a in node.names:
                if f"{src}.{a.name}" in modules:
                    out.append((f"{src}.{a.name}", node.lineno, None))
                elif src in modules:
                    out.append((src, node.lineno, a.name))
    return sorted(out, key=lambda t: t[1])


def import_graph(modules: dict[str, Module]) -> dict[str, dict[str, int]]:
    """module -> {imported module: line of the first such import} (self-imports left out)."""
    graph: dict[str, dict[str, int]] = {name: {} for name in modules}
    for name, mod in modules.items():
        for target, line, _ in imports(mod, modules):
            if target != name:
                graph[name].setdefault(target, line)
    return graph


def _components(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    comps: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            comps.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return comps


def import_cycles(modules: dict[str, Module]) -> list[str]:
    """One shortest cycle per strongly connected component, as ``a (line) -> b (line) -> a``."""
    graph = import_graph(modules)
    found = []
    for comp in _components(graph):
        if len(comp) < 2:
            continue
        members, start = set(comp), comp[0]
        paths = {start: [start]}
        frontier = [start]
        cycle = None
        while frontier and cycle is None:
            nxt = []
            for v in frontier:
                for w in sorted(graph[v]):
                    if w == start:
                        cycle = [*paths[v], start]
                        break
                    if w in members and w not in paths:
                        paths[w] = [*paths[v], w]
                        nxt.append(w)
                if cycle:
                    break
            frontier = nxt
        assert cycle is not None  # a component of two or more modules holds a cycle through each member
        hops = [f"{a} (line {graph[a][b]})" for a, b in itertools.pairwise(cycle)]
        found.append(" -> ".join([*hops, cycle[-1]]))
    return found


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _dotted(node: ast.expr) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def private_imports(modules: dict[str, Module]) -> list[str]:
    """Each use by one module of another module's private name (see the module docstring)."""
    found: list[tuple[str, int, str]] = []
    for name, mod in sorted(modules.items()):
        where = mod.path.relative_to(mod.path.parents[len(name.split(".")) - (0 if mod.is_package else 1)]).as_posix()
        own_package = name if mod.is_package else name.rpartition(".")[0]
        aliases: dict[str, str] = {}  # local name -> package module it is bound to
        for node in _runtime_nodes(mod.tree):
            if isinstance(node, ast.Import):
                for a in node.names:  # `import pkg.a.b` binds `pkg`; `import pkg.a.b as m` binds `m`
                    if a.name in modules:
                        top = a.name.partition(".")[0]
                        aliases[a.asname or top] = a.name if a.asname else top
            elif isinstance(node, ast.ImportFrom):
                src = _absolute(mod, node)
                for a in node.names:
                    if f"{src}.{a.name}" in modules:
                        aliases[a.asname or a.name] = f"{src}.{a.name}"
        for target, line, imported in imports(mod, modules):
            if target == name:
                continue
            if imported is not None and _private(imported):
                found.append((where, line, f"imports {target}.{imported}"))
            parent, _, leaf = target.rpartition(".")
            if _private(leaf) and parent != own_package:
                found.append((where, line, f"imports the private module {target}"))
        for node in ast.walk(mod.tree):
            if not (isinstance(node, ast.Attribute) and _private(node.attr)):
                continue
            base = _dotted(node.value)
            if base is None:
                continue
            head, _, rest = base.partition(".")
            target = aliases.get(head)
            target = f"{target}.{rest}" if target and rest else target
            if target in modules and target != name:
                found.append((where, node.lineno, f"uses {target}.{node.attr}"))
    return [f"{where} line {line}: {what}" for where, line, what in sorted(found)]


def long_modules(modules: dict[str, Module], limit: int = MAX_LINES) -> list[str]:
    return [f"{m.name}: {m.n_lines} lines (limit {limit})" for m in modules.values() if m.n_lines > limit]


def missing_docstrings(modules: dict[str, Module]) -> list[str]:
    """Modules whose docstring is absent or starts with a blank line."""
    out = []
    for m in modules.values():
        doc = ast.get_docstring(m.tree, clean=False)
        if not doc or not doc.splitlines()[0].strip():
            out.append(m.name)
    return out


def _top_level_names(tree: ast.Module) -> set[str]:
    """Names bound at a module's top level: defs, classes, assignments, imports (inside top-level if/try too)."""
    names: set[str] = set()
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                names.update(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.If):
            stack += node.body + node.orelse
        elif isinstance(node, ast.Try):
            stack += node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body]
    return names


def api_table(init: Module) -> dict[str, str]:
    """The ``_API`` dict literal of a package's ``__init__`` (public name -> module relative to the package)."""
    for node in init.tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id == "_API":
            table = ast.literal_eval(value)
            assert isinstance(table, dict)
            return table
    raise AssertionError(f"no _API table in {init.path}")


def broken_api(modules: dict[str, Module], package: str) -> list[str]:
    """``_API`` entries whose module is missing or does not define the name."""
    out = []
    for public, rel in api_table(modules[package]).items():
        target = modules.get(f"{package}.{rel}")
        if target is None:
            out.append(f"{public}: no module {package}.{rel}")
        elif public not in _top_level_names(target.tree):
            out.append(f"{public}: not defined at the top level of {package}.{rel}")
    return out


# --- the guards, on the package -------------------------------------------------------------------------------

MODULES = discover(ROOT / PACKAGE)


def test_the_package_is_found():
    assert f"{PACKAGE}.models.loading" in MODULES and len(MODULES) > 40


def test_no_import_cycle():
    cycles = import_cycles(MODULES)
    assert not cycles, "\n".join(cycles)


def test_no_module_uses_another_modules_private_names():
    private = private_imports(MODULES)
    assert not private, "\n".join(private)


def test_every_module_is_at_most_400_lines():
    long = long_modules(MODULES)
    assert not long, "\n".join(long)


def test_every_module_docstring_has_a_first_line():
    undocumented = missing_docstrings(MODULES)
    assert not undocumented, "\n".join(undocumented)


def test_every_public_api_name_exists_in_its_module():
    assert len(api_table(MODULES[PACKAGE])) > 50
    broken = broken_api(MODULES, PACKAGE)
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
    assert import_cycles(modules) == ["pkg.a (line 2) -> pkg.b (line 4) -> pkg.c (line 2) -> pkg.a"]


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
