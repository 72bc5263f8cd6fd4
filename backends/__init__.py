"""Backend registry: name → "module:Class", imported only when asked for.

A new backend plugs in by adding one line to ``REGISTRY`` (or calling ``register``); the harness,
CLI, tests and tables find it from here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from backends.base import RunOptions
from bench.errors import BackendUnavailable, ConfigError

if TYPE_CHECKING:
    from backends.base import Backend

REGISTRY: dict[str, str] = {
    "numpy": "backends.numpy_mlp:NumpyMLP",
    "cupy": "backends.cupy_mlp:CupyMLP",
    "keras": "backends.keras_mlp:KerasMLP",
}


def register(name: str, target: str) -> None:
    """Add a backend: ``target`` is "package.module:ClassName"."""
    REGISTRY[name] = target


def names() -> list[str]:
    return list(REGISTRY)


def check_name(name: str) -> str:
    if name not in REGISTRY:
        raise ConfigError(f"unknown backend {name!r}; choose from {', '.join(REGISTRY)} (or 'all')")
    return name


def backend_class(name: str) -> type[Backend]:
    module_name, _, class_name = REGISTRY[check_name(name)].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def unavailable_reason(name: str) -> str | None:
    """One sentence saying why ``name`` cannot run here ("cupy is not installed"), or None."""
    try:
        cls = backend_class(name)
    except ImportError as err:  # a backend module that itself fails to import
        return f"{name} backend failed to import: {err}"
    return cls.unavailable_reason()


def create(name: str, options: RunOptions | None = None) -> Backend:
    """A fresh backend instance; BackendUnavailable (one line) when it cannot run here."""
    reason = unavailable_reason(name)
    if reason is not None:
        raise BackendUnavailable(f"backend {name!r} is unavailable: {reason}")
    return backend_class(name)(options or RunOptions())
