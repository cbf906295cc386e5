"""The package's modules import one another one way only: no cycle.

``DESIGN.md``'s layers, whose imports point downward, need at least that:
no module imports one that imports it back, at the top of the file or
inside a function (an import inside a function that closes a cycle hides
the cycle; it does not remove it). Without a cycle the modules have an
order in which every import points down.
"""

from __future__ import annotations

import ast
from pathlib import Path

import sk_replearn

PACKAGE = Path(sk_replearn.__file__).resolve().parent

#: Imports allowed to point upward, each with its reason.
UPWARD = {
    # The registry of the classes a saved file may name: the package's
    # public names, read when a file is loaded.
    ("sk_replearn.persistence._codec", "sk_replearn"),
}


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _imported(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``module`` imports, anywhere in its file."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            for alias in node.names:
                full = f"{name}.{alias.name}"
                # ``from . import _kernels``: a compiled submodule, not its package
                compiled = any(PACKAGE.parent.glob(full.replace(".", "/") + ".*.so"))
                found.add(full if full in modules or compiled else name)
    return {m for m in found if m in modules and m != module}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {m: _imported(m, p, modules) for m, p in modules.items()}
    for source, target in UPWARD:
        graph[source].discard(target)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph``, as the modules along it; None if none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_module_imports_one_that_imports_it():
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycle(graph) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_allowed_upward_imports_are_still_there():
    """Each exception names an import the code still has."""
    modules = _modules()
    for source, target in UPWARD:
        assert target in _imported(source, modules[source], modules)
