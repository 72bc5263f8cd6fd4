"""Backend discovery: every class declared under the entry-point group ``mlpbench.backends``.

A backend is ``name = "module:Class"`` in some installed distribution's entry points (mlpbench's
own backends are declared the same way, in ``pyproject.toml``). Classes are imported only when
asked for. A plug-in that fails to import, or whose class lacks part of the contract in
``backends.api``, is *unavailable* with a one-line reason: it never breaks ``mlpbench list`` or a
run of other backends. Two distributions declaring the same name is a ConfigError naming both.

One framework per process. Importing a backend's module and reading its ``OPTIONS`` imports no
framework; everything else a parent process needs to know — whether a backend can run here, its
device, its machine facts — it learns from ``probe``: a short ``python -m bench.cell.probe`` in a
fresh process per backend (in parallel), cached for the process. Frameworks can crash each other
in one process (TensorFlow beside PyTorch's triton dies with SIGSEGV), so ``mlpbench list``, the
parent of ``mlpbench run`` and the machine facts never import one; a probe that dies reports its
backend unavailable in one line, and the others carry on. ``unavailable_reason`` and ``create``
work in the calling process: for a cell's own process, where its one framework belongs.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from backends.api import OptionError, RunOptions
from bench.errors import BackendUnavailable, ConfigError
from bench.stats import REFERENCE  # listed first; the row every speed is compared with

if TYPE_CHECKING:
    from backends.api import Backend

GROUP = "mlpbench.backends"
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
    """Forget what was discovered, loaded and probed: the next call looks at the installed
    distributions again (after installing a plug-in into a running process, or in tests)."""
    entries.cache_clear()
    _load.cache_clear()
    _probe.cache_clear()


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
        return None, f"{entry.target} from {entry.distribution} failed to import: {one_line(err)}"
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
        return f"its unavailable_reason() raised {one_line(err)}"
    return None if reason is None else one_line(reason)


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


#: Seconds a probe may take (importing a framework, and with facts its GEMM peaks on a GPU).
PROBE_TIMEOUT = 300
#: What a probe that died of SIGSEGV most likely met (see the module's docstring).
SEGFAULT_HINT = (
    "TensorFlow and triton in one process? (PyTorch's default Linux wheel brings triton; the "
    "CPU build, pip install 'torch==2.13.*', has none)"
)


@dataclass(frozen=True)
class Probe:
    """What backend ``name`` said of this machine from its own process: ``reason`` (None: it can
    run here), ``device`` ("cpu" or "gpu" when it can), ``option_error`` (the one-line
    ConfigError its options gave, if any), ``facts`` (its ``machine_facts()`` when asked for),
    ``seconds`` (the probe's wall time)."""

    name: str
    reason: str | None
    device: str | None = None
    option_error: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    threads: int | None = None


def probe(name: str, facts: bool = False, options: RunOptions | None = None) -> Probe:
    """Ask backend ``name`` in a fresh process (``python -m bench.cell.probe``) whether it can run
    here, its device as made with ``options`` (and whether they are valid) and, with ``facts``,
    its machine facts; cached for this process. A probe that crashes, hangs or answers nonsense
    makes the backend unavailable with a one-line reason. The child sees this process's
    ``sys.path`` (plug-ins installed at run time too)."""
    options = options or RunOptions()
    return _probe(check_name(name), facts, options.tf32, tuple(sorted(options.backend.items())))


@functools.cache
def _probe(name: str, facts: bool, tf32: bool, backend: tuple[tuple[str, str], ...]) -> Probe:
    cls, problem = _load(name)
    if cls is None:
        return Probe(name, problem)
    args = [sys.executable, "-m", "bench.cell.probe", name, *(["--facts"] if facts else [])]
    args += [*(["--tf32"] if tf32 else []), *(f"-O{k}={v}" for k, v in backend)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        # a probe only looks: JAX must not take 75 % of a GPU that the next probe or cell needs
        "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
    }
    started = time.perf_counter()
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # on a timeout the whole group goes, grandchildren too
    )
    try:
        stdout, stderr = proc.communicate(timeout=PROBE_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return Probe(name, f"probe did not answer in {PROBE_TIMEOUT} s", seconds=PROBE_TIMEOUT)
    seconds = time.perf_counter() - started
    if proc.returncode < 0:
        try:
            signame = signal.Signals(-proc.returncode).name
        except ValueError:
            signame = f"signal {-proc.returncode}"
        hint = f" — {SEGFAULT_HINT}" if signame == "SIGSEGV" else ""
        return Probe(name, f"probe died with {signame}{hint}", seconds=seconds)
    answer = _last_json_line(stdout)
    if proc.returncode != 0 or answer is None:
        last = (stderr.strip().splitlines() or ["no output"])[-1]
        return Probe(name, f"probe failed (exit {proc.returncode}): {last}", seconds=seconds)
    return Probe(
        name,
        answer["reason"],
        answer["device"],
        answer.get("option_error"),
        answer["facts"] or {},
        seconds,
        answer.get("threads"),
    )


def _last_json_line(text: str) -> dict[str, Any] | None:
    for line in reversed(text.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict) and {"reason", "device", "facts"} <= set(value):
            return value
    return None


def probe_all(
    names: Iterable[str],
    facts: bool = False,
    options: Mapping[str, RunOptions] | None = None,
    serial: bool = False,
) -> dict[str, Probe]:
    """``probe`` of each backend in ``names`` (with its ``options``), side by side, or one at a
    time with ``serial``; name → Probe, in that order."""
    names = list(names)
    options = options or {}
    workers = 1 if serial else max(1, min(len(names), os.cpu_count() or 1, 8))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        probes = list(pool.map(lambda n: probe(n, facts, options.get(n)), names))
    return dict(zip(names, probes, strict=True))


def backend_facts() -> dict[str, Any]:
    """Facts about this machine that only backends know (NumPy's BLAS pools, the GPUs), each
    backend asked in its own process (``probe``), merged from every available backend's
    optional ``machine_facts()``; the first backend to give a key wins (the reference first),
    inside objects and lists of objects too: the GPUs that CuPy, JAX and torch each describe (a
    list in device order) become one list, each device's object holding every key some backend
    gave. A backend whose facts fail adds ``{name}_error``."""
    with_facts = [n for n in names() if hasattr(_load(n)[0], "machine_facts")]
    # facts measure GEMM peaks: on a GPU two probes at once would share the device they time
    gpu = any(p.device == "gpu" for p in probe_all(with_facts).values())
    facts: dict[str, Any] = {}
    for found in probe_all(with_facts, facts=True, serial=gpu).values():
        facts = _merged(facts, found.facts)
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


def one_line(value: object) -> str:
    """The first line of an exception or message, with the exception's type."""
    text = str(value).strip().splitlines()[0] if str(value).strip() else ""
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {text}" if text else type(value).__name__
    return text
