"""The layout's rules, read from the source: no import cycles, and the reporting side reads JSON
only (it never imports a backend, the registry, the training code or the scenario catalogue).

Imports are collected with ``ast`` from every project module, inside functions too; imports
under ``if TYPE_CHECKING:`` are left out (they never run). Importing ``a.b.c`` also runs the
packages ``a`` and ``a.b``, so those count as dependencies as well — except a module's own
enclosing packages, which are already running when it is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bench", "backends", "scenarios")
#: The reporting side: what ``mlpbench table`` runs.
REPORTING = ("bench.report", "bench.results.read")
#: What the reporting side must never reach.
PRODUCING = ("backends", "bench.registry", "bench.train", "bench.data", "scenarios")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {
        module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))
    }


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node except those under ``if TYPE_CHECKING:``."""
    nodes, stack = [], [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        nodes.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return nodes


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules that importing ``name`` runs directly (with their parent packages)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    parts = name.split(".")
    enclosing = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        for target in targets:
            pieces = target.split(".")
            parents = {".".join(pieces[:i]) for i in range(1, len(pieces))} - enclosing
            found |= ({target} | parents) & set(modules)
    return found - {name}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for w in graph.get(todo.pop(), ()):
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return seen


def test_the_graph_sees_imports_inside_functions(graph: dict[str, set[str]]) -> None:
    # bench.cli imports the run command inside cmd_run only: the collector must see it
    assert "bench.campaign.command" in graph["bench.cli"]


def test_no_import_cycles(graph: dict[str, set[str]]) -> None:
    assert cycles(graph) == []


def test_cycle_finder_finds_a_planted_cycle(graph: dict[str, set[str]]) -> None:
    planted = {k: set(v) for k, v in graph.items()}
    planted["bench.cell.timing"].add("bench.campaign.command")  # command → … → timing → command
    assert any("bench.cell.timing" in c for c in cycles(planted))


@pytest.mark.parametrize("start", REPORTING)
def test_reporting_side_reads_json_only(graph: dict[str, set[str]], start: str) -> None:
    starts = [m for m in graph if m == start or m.startswith(f"{start}.")]
    assert starts
    for module in starts:
        reached = reachable(graph, module)
        bad = sorted(m for m in reached if m.startswith(PRODUCING))
        assert bad == [], f"{module} reaches {bad}"
