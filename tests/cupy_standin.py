"""A NumPy-backed stand-in for the ``cupy`` module, to check CuPy's host/device discipline on a CPU.

Why a stand-in: the machines that run the tests have no NVIDIA GPU, and CuPy cannot even be
imported without a CUDA driver, so ``CupyMLP`` would otherwise never run here at all. This module
is built in code (a ``types.ModuleType``) and put in ``sys.modules["cupy"]`` by ``install``; NumPy
does the arithmetic, so it checks the *wiring and the discipline* of the CuPy path — nothing
synchronizes the host or copies a device value to the host inside a timed epoch, CUDA events are
read only after the harness's clock stops — never CUDA's numerics or speed (a real GPU checks those:
tests/test_agreement.py and tests/test_cupy_backend.py).

What it models, and only that (everything else is missing, so a new use fails loudly):

- device arrays: ``DeviceArray``, an ``np.ndarray`` subclass. Every way of reading one on the host
  (``float()``, ``int()``, ``bool()``, ``operator.index()``, ``.item()``, ``.tolist()``, ``.get()``,
  ``.tobytes()``, ``repr()``/``str()``/``format()``, ``cupy.asnumpy``) is a device→host copy that
  waits for the device on a GPU; inside a timed epoch it raises ``AssertionError`` naming the
  operation. Reductions, ``count_nonzero``, ``argmax`` and scalar indexing give 0-d device arrays,
  as CuPy's do, never NumPy scalars. ``np.asarray``/``np.array``/``np.asanyarray``/
  ``np.ascontiguousarray`` of a device array raise ``TypeError`` at any time, as CuPy's implicit
  conversion does (NumPy never asks a subclass's ``__array__``, so those four are wrapped in the
  ``numpy`` module while the stand-in is installed; NumPy's own internals are unaffected). Device
  arithmetic with a host ``numpy.ndarray`` operand raises ``TypeError``, as CuPy's ufuncs do.
  ``empty``/``empty_like`` are filled with NaN (floats) or a huge sentinel (ints): a read of memory
  the engine never wrote shows up in its results.
- the clock: ``Discipline`` — untimed → in epoch (``watch_epochs`` marks a backend's
  ``train_epoch`` call) → returned (the harness's clock still runs) → untimed at the next stream
  synchronize (the harness's closing ``synchronize()``). Any other synchronize, event wait or
  ``get_elapsed_time`` inside that window fails.
- CUDA events on a fake device clock that advances one tick (1 µs) per kernel and per record, so
  elapsed times are positive and additive; an unrecorded event cannot be timed.
- uploads (``asarray`` of host data: allowed, asynchronous in CuPy, but logged per epoch), events
  created inside an epoch, a memory pool (bytes of live device arrays plus freed, cached blocks
  until ``free_all_blocks``; copies made by ndarray methods are not counted), one fake GPU
  (compute capability 9.0) and cuBLAS's per-dtype compute type (TF32 is recorded, not emulated).

What it cannot see: reads that bypass Python-level hooks — the buffer protocol (``memoryview``,
``np.frombuffer``), ``.view(np.ndarray)``, ``.ctypes``/``.data``, C extensions, and a ``numpy``
converter bound by name before ``install`` (``from numpy import asarray``). On a GPU those raise
or read device pointers; here they would silently read the NumPy memory.
"""

from __future__ import annotations

import functools
import importlib.machinery
import operator
import os
import sys
import types
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

VERSION = "14.0.0+numpy-standin"
TICK_MS = 1e-3  # one kernel (or event record) on the fake device clock: 1 µs
DEVICE_PROPERTIES = {
    "name": b"NumPy stand-in for a CUDA GPU",
    "major": 9,
    "minor": 0,
    "totalGlobalMem": 80 * 2**30,
}
DRIVER_VERSION = RUNTIME_VERSION = 12080
IMPLICIT_CONVERSION = (
    "Implicit conversion to a NumPy array is not allowed. "
    "Please use `.get()` to construct a NumPy array explicitly."
)
# NumPy's own converters, bound before ``install`` wraps the ``numpy`` module's names.
_host_asarray, _host_array = np.asarray, np.array

UFUNCS = ("add", "divide", "exp", "greater", "greater_equal", "log", "matmul", "maximum")
UFUNCS += ("multiply", "sqrt", "square", "subtract", "equal")


# ----------------------------------------------------------------------------------- the clock
@dataclass
class EpochLog:
    """What happened inside one watched ``train_epoch`` (while the harness's clock ran)."""

    uploads: list[tuple[str, int]] = field(default_factory=list)  # (what, bytes) host→device
    events_created: int = 0
    metrics: Any = None  # what train_epoch returned


class Discipline:
    """The harness's clock as the device sees it, and every rule broken while it ran.

    untimed ─(train_epoch called)→ in epoch ─(it returns)→ returned ─(stream synchronize)→ untimed

    The stream synchronize that ends "returned" is the harness's clock-stop synchronize
    (``bench.cell.timing.timed``): the only synchronization allowed while the clock runs.
    """

    UNTIMED = "untimed"
    IN_EPOCH = "inside train_epoch"
    RETURNED = "after train_epoch returned, before the harness's closing synchronize"

    def __init__(self) -> None:
        self.phase = self.UNTIMED
        self.violations: list[str] = []
        self.epochs: list[EpochLog] = []
        self._depth = 0

    @property
    def timed(self) -> bool:
        return self.phase != self.UNTIMED

    def _fail(self, message: str) -> None:
        self.violations.append(message)
        raise AssertionError(message)

    def host_read(self, what: str) -> None:
        if self.timed:
            self._fail(
                f"{what} of a device array while the harness's clock runs ({self.phase}): a "
                "device→host copy that waits for the GPU"
            )

    def stream_synchronize(self, what: str) -> None:
        if self.phase == self.IN_EPOCH:
            self._fail(f"{what} inside a timed epoch ({self.phase}): a host synchronization")
        self.phase = self.UNTIMED  # in RETURNED this is the harness's clock-stop synchronize

    def wait(self, what: str) -> None:
        """A wait other than the harness's own synchronize (an event's, an elapsed-time read)."""
        if self.timed:
            self._fail(
                f"{what} while the harness's clock runs ({self.phase}): it waits for the GPU; "
                "read device times after the closing synchronize"
            )

    def upload(self, what: str, nbytes: int) -> None:
        if self.timed:
            self.epochs[-1].uploads.append((what, nbytes))

    def event_created(self) -> None:
        if self.timed:
            self.epochs[-1].events_created += 1

    def enter_epoch(self) -> None:
        self._depth += 1
        if self._depth > 1:  # a watched train_epoch calling another (super().train_epoch)
            return
        if self.phase != self.UNTIMED:
            self._depth = 0
            self._fail(f"train_epoch called {self.phase}: the clock of the previous never stopped")
        self.phase = self.IN_EPOCH
        self.epochs.append(EpochLog())

    def leave_epoch(self, metrics: Any, failed: bool) -> None:
        self._depth -= 1
        if self._depth == 0:
            self.phase = self.UNTIMED if failed else self.RETURNED
            self.epochs[-1].metrics = metrics


@dataclass
class Device:
    """The stand-in GPU: its clock discipline, kernel clock, memory pool and cuBLAS settings."""

    discipline: Discipline = field(default_factory=Discipline)
    ticks: int = 0  # kernels and event records so far
    # the device work known to the host as finished: a stream or event synchronize advances it;
    # queued work is not finished until then (an event's elapsed time is "not ready" before)
    completed: int = 0
    pool: MemoryPool = field(default_factory=lambda: MemoryPool())
    compute_types: dict[str, int] = field(default_factory=dict)  # dtype char → compute type

    def kernel(self) -> None:
        self.ticks += 1


_ACTIVE: Device | None = None  # set by ``install`` for the duration of a test


def _device() -> Device:
    if _ACTIVE is None:
        raise RuntimeError("the cupy stand-in is not installed (tests/cupy_standin.install)")
    return _ACTIVE


def _host_read(what: str) -> None:
    if _ACTIVE is not None:  # arrays outliving their test read freely
        _ACTIVE.discipline.host_read(what)


def _kernel() -> None:
    if _ACTIVE is not None:
        _ACTIVE.kernel()


# ------------------------------------------------------------------------------ device memory
class MemoryPool:
    """CuPy's default pool, by bytes: live arrays are used; freed blocks stay cached (and count in
    ``total_bytes``) until ``free_all_blocks``; a new array reuses cached bytes first."""

    def __init__(self) -> None:
        self._used = 0
        self._cached = 0

    def _allocate(self, owner: np.ndarray) -> None:
        n = owner.nbytes
        reused = min(n, self._cached)
        self._cached -= reused
        self._used += n
        weakref.finalize(owner, self._release, n)

    def _release(self, n: int) -> None:
        self._used -= n
        self._cached += n

    def used_bytes(self) -> int:
        return self._used

    def free_bytes(self) -> int:
        return self._cached

    def total_bytes(self) -> int:
        return self._used + self._cached

    def free_all_blocks(self, stream: Any = None) -> None:
        self._cached = 0


def _owner(a: Any) -> Any:
    while isinstance(a, np.ndarray) and a.base is not None:
        a = a.base
    return a


def _new_device(host: Any) -> DeviceArray:
    """A device array owning fresh memory holding ``host`` (taken over, not copied)."""
    host = _host_asarray(host)
    if isinstance(host, DeviceArray):
        host = host.view(np.ndarray)
    if _ACTIVE is not None:
        _ACTIVE.pool._allocate(host)
    return host.view(DeviceArray)


def _raw(a: DeviceArray) -> np.ndarray:
    """The NumPy view of a device array's memory (no copy, no host read: stand-in internals)."""
    return a.view(np.ndarray)


def _index(key: Any) -> Any:
    """An index with device arrays in it, as NumPy views (CuPy indexes with them on the device)."""
    if isinstance(key, tuple):
        return tuple(_raw(k) if isinstance(k, DeviceArray) else k for k in key)
    return _raw(key) if isinstance(key, DeviceArray) else key


def _operand(x: Any, where: str) -> Any:
    if isinstance(x, DeviceArray):
        return _raw(x)
    if isinstance(x, np.ndarray) and x.ndim > 0:
        raise TypeError(
            f"{where}: a host numpy.ndarray operand on the device (CuPy: Unsupported type "
            "<class 'numpy.ndarray'>); upload it with cupy.asarray first"
        )
    return x


def _result(r: Any, inputs: tuple[Any, ...] = ()) -> Any:
    """NumPy's result as the device's: arrays and NumPy scalars become device arrays (a view of
    an input stays a view); other Python values (shapes, flags) stay as they are."""
    if isinstance(r, tuple | list):
        return type(r)(_result(x, inputs) for x in r)
    if isinstance(r, np.ndarray):
        owner = _owner(r)
        if any(owner is _owner(x) for x in inputs if isinstance(x, np.ndarray)):
            return r.view(DeviceArray)
        return _new_device(r)
    if isinstance(r, np.generic):
        return _new_device(r)
    return r


class DeviceArray(np.ndarray):
    """An array in the stand-in's device memory: NumPy holds the numbers, and every host read
    (see the module docstring) passes the clock's ``Discipline``."""

    __array_priority__ = 100

    # ---- host reads: each is a device→host copy that waits for the device on a GPU
    def __float__(self) -> float:
        _host_read("float()")
        return float(_raw(self))

    def __int__(self) -> int:
        _host_read("int()")
        return int(_raw(self))

    def __index__(self) -> int:
        _host_read("operator.index()")
        return operator.index(_raw(self))

    def __bool__(self) -> bool:
        _host_read("bool()")
        return bool(_raw(self))

    def __complex__(self) -> complex:
        _host_read("complex()")
        return complex(_raw(self))

    def item(self, *args: Any) -> Any:
        _host_read(".item()")
        return _raw(self).item(*args)

    def tolist(self) -> Any:
        _host_read(".tolist()")
        return _raw(self).tolist()

    def tobytes(self, order: str = "C") -> bytes:
        _host_read(".tobytes()")
        return _raw(self).tobytes(order)

    def get(self, stream: Any = None, order: str = "C", out: Any = None, blocking: bool = True):
        _host_read(".get()")
        return _host_array(_raw(self), order=order)

    def __repr__(self) -> str:
        _host_read("repr()")
        return repr(_raw(self))

    def __str__(self) -> str:
        _host_read("str()")
        return str(_raw(self))

    def __format__(self, spec: str) -> str:
        _host_read("format()")
        return format(_raw(self), spec)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TypeError(IMPLICIT_CONVERSION)  # never asked by NumPy for a subclass; see install

    # ---- device-side operations: results stay on the device
    def __getitem__(self, key: Any) -> Any:
        r = super().__getitem__(_index(key))
        if isinstance(r, np.generic):  # CuPy: a 0-d device array, not a host scalar
            return _new_device(r)
        return r

    def __setitem__(self, key: Any, value: Any) -> None:
        if isinstance(value, DeviceArray):
            value = _raw(value)
        elif isinstance(value, np.ndarray) and value.ndim > 0 and _ACTIVE is not None:
            _ACTIVE.discipline.upload("__setitem__ of a host array", value.nbytes)
        _kernel()
        super().__setitem__(_index(key), value)

    def __iter__(self) -> Iterator[Any]:
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self.shape[0]))

    def argmax(self, axis: Any = None, out: Any = None, keepdims: bool = False) -> Any:
        return argmax(self, axis=axis, out=out, keepdims=keepdims)

    def argmin(self, axis: Any = None, out: Any = None, keepdims: bool = False) -> Any:
        _kernel()
        return _result(_raw(self).argmin(axis=axis, keepdims=keepdims))

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        where = ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}"
        args = tuple(_operand(x, where) for x in inputs)
        out = kwargs.get("out")
        if out is not None:
            for o in out:
                if o is not None and not isinstance(o, DeviceArray):
                    raise TypeError(f"{where}: out= must be a device array, got {type(o)}")
            kwargs["out"] = tuple(None if o is None else _raw(o) for o in out)
        _kernel()
        r = getattr(ufunc, method)(*args, **kwargs)
        if method == "at":
            return None
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _result(r)

    def __array_function__(self, func: Any, kinds: Any, args: Any, kwargs: Any) -> Any:
        """NumPy's functions on device arrays, as CuPy dispatches them to its own: computed on
        the raw views (so NumPy's internal ``bool()``/``index`` calls read no device value) and
        returned on the device."""

        def raw(x: Any) -> Any:
            if isinstance(x, DeviceArray):
                return _raw(x)
            if isinstance(x, list | tuple):
                return type(x)(raw(v) for v in x)
            return x

        out = kwargs.get("out")
        _kernel()
        r = func(*raw(args), **{k: raw(v) for k, v in kwargs.items()})
        if isinstance(out, DeviceArray):
            return out
        return _result(r, tuple(raw(a) for a in args if isinstance(a, DeviceArray)))


# ---------------------------------------------------------------------------- module functions
class _Ufunc:
    """``cupy.<name>``: NumPy's ufunc, refusing host arrays (CuPy's ufuncs take device arrays
    and scalars only)."""

    def __init__(self, ufunc: np.ufunc) -> None:
        self._ufunc = ufunc
        self.__name__ = ufunc.__name__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not any(isinstance(a, DeviceArray) for a in args):
            raise TypeError(f"cupy.{self.__name__}: no device array among its operands")
        return self._ufunc(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:  # .reduce and friends
        return getattr(self._ufunc, name)


def asarray(a: Any, dtype: Any = None, order: Any = None, *, blocking: bool = False) -> Any:
    """Device arrays as they are (or cast); host data uploaded: an asynchronous copy in CuPy
    (staged through pinned memory) unless ``blocking``, which waits for the stream."""
    if isinstance(a, DeviceArray):
        return a if dtype is None or a.dtype == np.dtype(dtype) else a.astype(dtype)
    host = _host_array(a, dtype=dtype, order=order or "K", copy=True)
    device = _device()
    device.discipline.upload("cupy.asarray", host.nbytes)
    if blocking:
        device.discipline.stream_synchronize("cupy.asarray(blocking=True)")
    device.kernel()
    return _new_device(host)


def asnumpy(a: Any, stream: Any = None, order: str = "C", out: Any = None, blocking: bool = True):
    if isinstance(a, DeviceArray):
        _host_read("cupy.asnumpy")
        return _host_array(_raw(a), order=order)
    return _host_asarray(a, order=order)


def _created(host: np.ndarray) -> DeviceArray:
    _device().kernel()
    return _new_device(host)


def _poisoned(host: np.ndarray) -> np.ndarray:
    """Uninitialized device memory, made visible: NaN in floats, a huge value in integers."""
    if host.dtype.kind in "fc":
        host.fill(np.nan)
    elif host.dtype.kind in "iu":
        host.fill(np.iinfo(host.dtype).max)
    return host


def zeros(shape: Any, dtype: Any = float, order: str = "C") -> DeviceArray:
    return _created(np.zeros(shape, dtype, order))


def ones(shape: Any, dtype: Any = float, order: str = "C") -> DeviceArray:
    return _created(np.ones(shape, dtype, order))


def empty(shape: Any, dtype: Any = float, order: str = "C") -> DeviceArray:
    return _created(_poisoned(np.empty(shape, dtype, order)))


def zeros_like(a: DeviceArray, dtype: Any = None) -> DeviceArray:
    return _created(np.zeros(a.shape, dtype or a.dtype))


def empty_like(a: DeviceArray, dtype: Any = None) -> DeviceArray:
    return _created(_poisoned(np.empty(a.shape, dtype or a.dtype)))


def arange(*args: Any, dtype: Any = None) -> DeviceArray:
    return _created(np.arange(*args, dtype=dtype))


def _device_arg(a: Any, where: str) -> np.ndarray:
    if not isinstance(a, DeviceArray):
        raise TypeError(f"cupy.{where}: expected a device array, got {type(a).__name__}")
    return _raw(a)


def take(a: Any, indices: Any, axis: Any = None, out: Any = None) -> Any:
    raw_a = _device_arg(a, "take")
    raw_idx = _raw(indices) if isinstance(indices, DeviceArray) else _operand(indices, "take")
    _kernel()
    if out is None:
        return _result(np.take(raw_a, raw_idx, axis=axis))
    np.take(raw_a, raw_idx, axis=axis, out=_device_arg(out, "take(out=)"))
    return out


def argmax(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: bool = False):
    raw = _device_arg(a, "argmax")
    _kernel()
    if out is not None:
        np.argmax(raw, axis=axis, out=_device_arg(out, "argmax(out=)"), keepdims=keepdims)
        return out
    r = _host_asarray(np.argmax(raw, axis=axis, keepdims=keepdims))
    return _new_device(r if dtype is None else r.astype(dtype))


def count_nonzero(a: Any, axis: Any = None) -> DeviceArray:
    raw = _device_arg(a, "count_nonzero")
    _kernel()
    return _new_device(_host_asarray(np.count_nonzero(raw, axis=axis), dtype=np.intp))


class Generator:
    """``cupy.random.Generator`` on NumPy's PCG64: the same draws as ``np.random.default_rng``
    (CuPy's own bit generator differs; the stand-in checks wiring, not CuPy's random stream)."""

    def __init__(self, seed: Any) -> None:
        self._rng = np.random.default_rng(seed)

    def random(self, size: Any = None, dtype: Any = np.float64, out: Any = None) -> DeviceArray:
        _kernel()
        if out is not None:
            self._rng.random(size, dtype=dtype, out=_device_arg(out, "random(out=)"))
            return out
        return _new_device(_host_asarray(self._rng.random(size, dtype=dtype)))


def default_rng(seed: Any = None) -> Generator:
    return Generator(seed)


def get_default_memory_pool() -> MemoryPool:
    return _device().pool


# ------------------------------------------------------------------------------------ cuda
class Event:
    """``cupy.cuda.Event``: records the device clock; reading it waits (outside the clock only)."""

    def __init__(
        self, block: bool = False, disable_timing: bool = False, interprocess: bool = False
    ) -> None:
        self._tick: int | None = None
        self._timing = not disable_timing
        _device().discipline.event_created()

    def record(self, stream: Any = None) -> None:
        device = _device()
        device.kernel()
        self._tick = device.ticks

    def synchronize(self) -> None:
        device = _device()
        device.discipline.wait("cupy.cuda.Event.synchronize()")
        if self._tick is not None:
            device.completed = max(device.completed, self._tick)

    @property
    def done(self) -> bool:
        device = _device()
        device.discipline.wait("cupy.cuda.Event.done")
        return self._tick is None or self._tick <= device.completed


def get_elapsed_time(start_event: Event, end_event: Event) -> float:
    """Milliseconds from ``start_event`` to ``end_event``. Like CuPy's (a bare
    ``cudaEventElapsedTime``) it does not wait: an end event the host has not seen finish (no
    stream or event synchronize since it was recorded) is ``cudaErrorNotReady``."""
    device = _device()
    device.discipline.wait("cupy.cuda.get_elapsed_time (reading CUDA events)")
    for event in (start_event, end_event):
        if event._tick is None or not event._timing:
            raise RuntimeError("cudaErrorInvalidResourceHandle: an event not recorded with timing")
    if end_event._tick > device.completed:
        raise RuntimeError("cudaErrorNotReady: the end event has not completed (synchronize it)")
    return (end_event._tick - start_event._tick) * TICK_MS


class Stream:
    def synchronize(self) -> None:
        device = _device()
        device.discipline.stream_synchronize("cupy.cuda.Stream.synchronize()")
        device.completed = device.ticks


_STREAM = Stream()


def get_current_stream() -> Stream:
    return _STREAM


def _runtime() -> types.ModuleType:
    runtime = types.ModuleType("cupy.cuda.runtime")

    def get_device_properties(device: int) -> dict[str, Any]:
        if device != 0:
            raise RuntimeError(f"cudaErrorInvalidDevice: no device {device}")
        return dict(DEVICE_PROPERTIES)

    runtime.getDeviceCount = lambda: 1
    runtime.getDevice = lambda: 0
    runtime.getDeviceProperties = get_device_properties
    runtime.driverGetVersion = lambda: DRIVER_VERSION
    runtime.runtimeGetVersion = lambda: RUNTIME_VERSION
    return runtime


# ---------------------------------------------------------------- cuBLAS compute types (TF32)
COMPUTE_TYPE_TBD, COMPUTE_TYPE_DEFAULT, COMPUTE_TYPE_PEDANTIC = 0, 1, 2
COMPUTE_TYPE_FP16, COMPUTE_TYPE_FP32, COMPUTE_TYPE_FP64 = 3, 4, 5
COMPUTE_TYPE_BF16, COMPUTE_TYPE_TF32 = 6, 7


def set_compute_type(dtype: Any, compute_type: int) -> None:
    if compute_type not in range(8):
        raise ValueError(f"Unknown compute type: {compute_type}")
    _device().compute_types[np.dtype(dtype).char] = compute_type


def get_compute_type(dtype: Any) -> int:
    """As CuPy: the first call for a dtype reads ``CUPY_TF32`` (float32 only) and caches."""
    char = np.dtype(dtype).char
    types_ = _device().compute_types
    if types_.get(char, COMPUTE_TYPE_TBD) == COMPUTE_TYPE_TBD:
        tf32 = char in "fF" and int(os.environ.get("CUPY_TF32", "0")) > 0
        types_[char] = COMPUTE_TYPE_TF32 if tf32 else COMPUTE_TYPE_DEFAULT
    return types_[char]


# ----------------------------------------------------------------------------------- install
def build_module() -> dict[str, types.ModuleType]:
    """The stand-in's modules by import name: ``cupy`` and the submodules CupyMLP imports."""
    cupy = types.ModuleType("cupy", "NumPy-backed stand-in for CuPy (tests/cupy_standin.py)")
    cupy.__spec__ = importlib.machinery.ModuleSpec("cupy", None, is_package=True)
    cupy.__path__ = []
    cupy.__version__ = VERSION
    cupy.ndarray = DeviceArray
    cupy.float32, cupy.float64, cupy.int64, cupy.intp, cupy.bool_ = (
        np.float32,
        np.float64,
        np.int64,
        np.intp,
        np.bool_,
    )
    for name in UFUNCS:
        setattr(cupy, name, _Ufunc(getattr(np, name)))
    for fn in (asarray, asnumpy, zeros, ones, empty, zeros_like, empty_like, arange, take):
        setattr(cupy, fn.__name__, fn)
    cupy.argmax, cupy.count_nonzero = argmax, count_nonzero
    cupy.get_default_memory_pool = get_default_memory_pool

    random = types.ModuleType("cupy.random")
    random.default_rng, random.Generator = default_rng, Generator
    cuda = types.ModuleType("cupy.cuda")
    cuda.Event, cuda.Stream = Event, Stream
    cuda.get_elapsed_time, cuda.get_current_stream = get_elapsed_time, get_current_stream
    cuda.runtime = _runtime()
    core = types.ModuleType("cupy._core")
    core.__path__ = []
    linalg = types.ModuleType("cupy._core._routines_linalg")
    for name, value in globals().items():
        if name.startswith("COMPUTE_TYPE_"):
            setattr(linalg, name, value)
    linalg.get_compute_type, linalg.set_compute_type = get_compute_type, set_compute_type
    cupy.random, cupy.cuda, cupy._core, core._routines_linalg = random, cuda, core, linalg
    return {
        "cupy": cupy,
        "cupy.random": random,
        "cupy.cuda": cuda,
        "cupy.cuda.runtime": cuda.runtime,
        "cupy._core": core,
        "cupy._core._routines_linalg": linalg,
    }


def _refusing(convert: Callable[..., Any]) -> Callable[..., Any]:
    """``numpy.<convert>`` that refuses a device array, as CuPy's implicit conversion does."""

    @functools.wraps(convert)
    def wrapper(obj: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(obj, DeviceArray):
            raise TypeError(f"numpy.{convert.__name__} of a device array: {IMPLICIT_CONVERSION}")
        return convert(obj, *args, **kwargs)

    return wrapper


def install(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """Put a fresh stand-in in ``sys.modules`` as ``cupy`` (and its submodules) until
    ``monkeypatch`` is undone; returns it. Its state is ``standin_device()``."""
    modules = build_module()
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(sys.modules[__name__], "_ACTIVE", Device())
    for name in ("asarray", "array", "asanyarray", "ascontiguousarray"):
        monkeypatch.setattr(np, name, _refusing(getattr(np, name)))
    monkeypatch.delenv("CUPY_TF32", raising=False)  # the stand-in reads it as CuPy does
    return modules["cupy"]


def standin_device() -> Device:
    """The installed stand-in's device: its ``discipline``, clock ``ticks``, ``pool``."""
    return _device()


def watch_epochs(monkeypatch: pytest.MonkeyPatch, cls: type) -> None:
    """Wrap ``cls.train_epoch`` (until ``monkeypatch`` is undone) so the discipline knows when the
    harness's clock runs: from the call to the first stream synchronize after it returns."""
    inner = cls.train_epoch

    @functools.wraps(inner)
    def train_epoch(self: Any, order: np.ndarray) -> Any:
        discipline = _device().discipline
        discipline.enter_epoch()
        try:
            metrics = inner(self, order)
        except BaseException:
            discipline.leave_epoch(None, failed=True)
            raise
        discipline.leave_epoch(metrics, failed=False)
        return metrics

    monkeypatch.setattr(cls, "train_epoch", train_epoch)
