"""Architecture guards read from a package's source with ``ast``: cycles, private names, size, docstrings, _API.

Nothing here imports the package it checks: every guard parses the files under a
package folder, so the same guards run on ``lrp2_interp`` and on tiny synthetic
packages (tests/test_architecture.py).

* imports: every ``import`` / ``from ... import`` of a module of the package, at any
  depth (function-level imports included), except under ``if TYPE_CHECKING:``
  (annotation-only imports never run); ``from pkg.a import b`` is an edge to the
  module ``pkg.a.b`` when that file exists, else to ``pkg.a``;
* private names: ``from pkg.x import _y``, ``pkg.x._y`` / ``alias._y`` on an imported
  module, or a private module (``pkg.a._m``) imported from outside its package ``pkg.a``;
  dunders (``__version__``) are public;
* size: modules over :data:`MAX_LINES` lines (a warning in the tests: one concept per module); docstring: a non-blank first line;
* ``_API`` (the lazy public-name table of ``pkg/__init__.py``): each name is defined at
  the top level (def, class, assignment or import) of the module it points to.
"""

from __future__ import annotations

import ast
import itertools
from dataclasses import dataclass
from pathlib import Path

MAX_LINES = 400


@dataclass(frozen=True)
class Module:
    name: str  # dotted, e.g. "pkg.a.b"; a package's __init__.py is the package's name
    path: Path
    rel: str  # the file, relative to the folder holding the package, e.g. "pkg/a/b.py"
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
        rel = path.relative_to(pkg_dir.parent).as_posix()
        out[name] = Module(name, path, rel, is_package, ast.parse(text, str(path)), len(text.splitlines()))
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
    """One shortest cycle per strongly connected component, as ``a (line) -> b (line) -> a``, and its members."""
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
        found.append(
            " -> ".join([*hops, cycle[-1]]) + (f" (the cycle is among {', '.join(comp)})" if len(comp) > 2 else "")
        )
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
        where = mod.rel
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


def layer_violations(modules: dict[str, Module], package: str, layers: list[set[str]]) -> list[str]:
    """Imports that reach a higher layer, or sideways into another part of the same layer.

    ``layers`` lists, bottom up, the sets of parts (``package.part`` -> ``part``: a top-level module or a
    subpackage) of each layer.  A part may import itself, anything in a lower layer, and the parts of its own
    layer only where that layer is the foundations (index 0).
    """
    rank = {part: i for i, parts in enumerate(layers) for part in parts}

    def part(name: str) -> str:
        rest = name[len(package) + 1 :] if name.startswith(package + ".") else ""
        return rest.split(".")[0] if rest else "__init__"

    out = []
    for name, targets in import_graph(modules).items():
        a = part(name)
        for target, line in targets.items():
            b = part(target)
            if a == b or b == "__init__" or a == "__init__":
                continue
            if a not in rank or b not in rank:
                out.append(f"{name}:{line}: imports {target}: part {a if a not in rank else b!r} is in no layer")
            elif rank[b] > rank[a] or (rank[b] == rank[a] and rank[a] > 0):
                out.append(f"{name}:{line}: imports {target} (layer {rank[a]} -> {rank[b]})")
    return sorted(out)


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
