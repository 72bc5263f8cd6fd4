"""Backend discovery: every class declared under the entry-point group ``mlpbench.backends``.

A backend is ``name = "module:Class"`` in some installed distribution's entry points (mlpbench's
own backends are declared the same way, in ``pyproject.toml``). Classes are imported only when
asked for. A plug-in that fails to import, or whose class lacks part of the contract in
``backends.api``, is *unavailable* with a one-line reason: it never breaks ``mlpbench list`` or a
run of other backends. Two distributions declaring the same name is a ConfigError naming both.
"""

from __future__ import annotations

import functools
import importlib.metadata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from backends.api import OptionError, RunOptions
from bench.errors import BackendUnavailable, ConfigError

if TYPE_CHECKING:
    from backends.api import Backend

GROUP = "mlpbench.backends"
#: The reference backend: listed first, and the column every speed is compared with.
REFERENCE = "numpy"
#: What a backend class must provide (``backends.api.Backend``).
CONTRACT = (
    "unavailable_reason",
    "build",
    "train_epoch",
    "evaluate",
    "get_weights",
    "set_weights",
    "synchronize",
    "settings",
)


@dataclass(frozen=True)
class Entry:
    """One declared backend: its entry-point name, target "module:Class" and distribution."""

    name: str
    target: str
    distribution: str


@functools.cache
def entries() -> dict[str, Entry]:
    """name → Entry for every installed backend, the reference first, then by name."""
    found: dict[str, list[Entry]] = {}
    for ep in importlib.metadata.entry_points(group=GROUP):
        dist = ep.dist.name if ep.dist is not None else "unknown distribution"
        entry = Entry(ep.name, ep.value, dist)
        if entry not in found.setdefault(ep.name, []):  # the same dist seen on two paths
            found[ep.name].append(entry)
    for name, declared in found.items():
        if len(declared) > 1:
            owners = " and ".join(f"{e.distribution} ({e.target})" for e in declared)
            raise ConfigError(
                f"backend {name!r} is declared by two distributions: {owners}; uninstall one"
            )
    order = sorted(found, key=lambda n: (n != REFERENCE, n))
    return {name: found[name][0] for name in order}


def refresh() -> None:
    """Forget what was discovered and loaded: the next call looks at the installed
    distributions again (after installing a plug-in into a running process, or in tests)."""
    entries.cache_clear()
    _load.cache_clear()


def names() -> list[str]:
    """Every declared backend's name, available or not (the reference first)."""
    return list(entries())


def check_name(name: str) -> str:
    if name not in entries():
        choices = ", ".join(names()) or "none: is mlpbench installed (pip install -e .)?"
        raise ConfigError(f"unknown backend {name!r}; choose from {choices} (or 'all')")
    return name


@functools.cache
def _load(name: str) -> tuple[type | None, str | None]:
    """(class, None), or (None, one-line reason) when it cannot be imported or breaks the
    contract."""
    entry = entries()[check_name(name)]
    module_name, _, attr = entry.target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split(".") if attr else ():
            obj = getattr(obj, part)
    except Exception as err:  # a plug-in's import error must not break other backends
        return None, f"{entry.target} from {entry.distribution} failed to import: {_line(err)}"
    missing = [m for m in CONTRACT if not callable(getattr(obj, m, None))]
    if not isinstance(obj, type) or missing:
        what = f"lacks {', '.join(missing)}" if missing else "is not a class"
        return None, f"{entry.target} from {entry.distribution} {what} (see backends.api)"
    return obj, None


def backend_class(name: str) -> type[Backend]:
    """The class behind ``name``; BackendUnavailable when it cannot be loaded."""
    cls, problem = _load(name)
    if cls is None:
        raise BackendUnavailable(f"backend {name!r} is unavailable: {problem}")
    return cls


def unavailable_reason(name: str) -> str | None:
    """One line saying why ``name`` cannot run here, or None."""
    cls, problem = _load(name)
    if cls is None:
        return problem
    try:
        reason = cls.unavailable_reason()
    except Exception as err:
        return f"its unavailable_reason() raised {_line(err)}"
    return None if reason is None else _line(reason)


def options_of(name: str) -> dict[str, str]:
    """The backend's own options (name → help); {} when it declares none or cannot load."""
    cls, _ = _load(name)
    return dict(getattr(cls, "OPTIONS", {}) or {})


def create(name: str, options: RunOptions | None = None) -> Backend:
    """A fresh backend instance; BackendUnavailable when it cannot run here, ConfigError (one
    line) for an option it does not have or a bad value."""
    reason = unavailable_reason(name)
    if reason is not None:
        raise BackendUnavailable(f"backend {name!r} is unavailable: {reason}")
    options = options or RunOptions()
    unknown = sorted(set(options.backend) - set(options_of(name)))
    if unknown:
        known = ", ".join(options_of(name)) or "none"
        raise ConfigError(f"backend {name!r} has no option {unknown[0]!r}; its options: {known}")
    try:
        return backend_class(name)(options)
    except OptionError as err:
        raise ConfigError(f"backend {name!r}: {err}") from None


def machine_facts() -> dict[str, Any]:
    """Facts about this machine that only backends know (NumPy's BLAS pools, the GPUs), merged
    from every available backend's optional ``machine_facts()``; the first backend to give a key
    wins (the reference first), inside objects and lists of objects too: the GPUs that CuPy,
    JAX and torch each describe (a list in device order) become one list, each device's object
    holding every key some backend gave. A backend whose facts fail adds ``{name}_error``."""
    facts: dict[str, Any] = {}
    for name in names():
        cls, _ = _load(name)
        if cls is None or not hasattr(cls, "machine_facts") or unavailable_reason(name):
            continue
        try:
            given = cls.machine_facts()
        except Exception as err:  # a broken driver must not stop a CPU benchmark
            given = {f"{name}_error": _line(err)}
        facts = _merged(facts, given)
    return facts


def _merged(first: Any, later: Any) -> Any:
    """``first`` with what only ``later`` has: objects key by key, equally long lists of objects
    item by item (recursively); anything else keeps ``first``."""
    if isinstance(first, dict) and isinstance(later, dict):
        merged = {k: _merged(v, later[k]) if k in later else v for k, v in first.items()}
        return {**merged, **{k: v for k, v in later.items() if k not in first}}
    if (
        isinstance(first, list)
        and isinstance(later, list)
        and len(first) == len(later)
        and all(isinstance(v, dict) for v in (*first, *later))
    ):
        return [_merged(a, b) for a, b in zip(first, later, strict=True)]
    return first


def _line(value: object) -> str:
    """The first line of an exception or message, with the exception's type."""
    text = str(value).strip().splitlines()[0] if str(value).strip() else ""
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {text}" if text else type(value).__name__
    return text
