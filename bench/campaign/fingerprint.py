"""What code a cell's numbers depend on, as a short hash: ``mlpbench run --resume`` keeps a
finished cell only while this is unchanged.

A backend's fingerprint covers the source of every in-tree module its class is built from — the
modules of the classes in its MRO — and, transitively, every module of the same top-level package
those import (read with ``ast``, nothing is executed), plus the harness modules that decide what is
timed and how (``HARNESS``). A change to one backend's code changes its fingerprint only; a change
to the timing harness changes every one. Modules that only read results (``READ_ONLY``: the
statistics, applied when results are tabulated) are left out even where the harness imports
them, so a change to a reporting rule keeps every finished cell. Nothing here imports a framework.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
from pathlib import Path

from bench import registry

#: Harness modules every cell's time depends on: the timed region, the session around it, the
#: initial weights and batch order, the data.
HARNESS = (
    "bench.cell.timing",
    "bench.cell.session",
    "bench.cell.initializers",
    "bench.data",
    "scenarios",
)


#: Modules no cell's numbers depend on, though the harness imports them.
READ_ONLY = ("bench.stats",)


@functools.cache
def code_fingerprint(backend: str) -> str:
    """16 hex digits over the sources backend ``backend`` runs (see the module's docstring)."""
    cls = registry.backend_class(backend)
    roots = {k.__module__ for k in cls.__mro__ if k.__module__ not in ("builtins", "typing")}
    modules = sorted(_closure({*roots, *HARNESS}))
    digest = hashlib.sha256()
    for name in modules:
        path = _source(name)
        if path is not None:
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _closure(names: set[str]) -> set[str]:
    """``names`` and the modules of their own top-level packages they import, transitively."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen or name in READ_ONLY:
            continue
        seen.add(name)
        path = _source(name)
        if path is None:
            continue
        top = name.split(".")[0]
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for imported in _imports(path, package):
            if imported.split(".")[0] == top and imported not in seen:
                todo.append(imported)
    return seen


def _imports(path: Path, package: str) -> set[str]:
    """Modules a source file imports (absolute names; ``from x import y`` adds x.y too, in case
    y is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name}


@functools.cache
def _source(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    origin = getattr(spec, "origin", None)
    if spec is None or not origin or not origin.endswith(".py"):
        return None
    return Path(origin)
