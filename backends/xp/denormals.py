"""Flush denormal floats to zero on the CPU while a block runs (FTZ + DAZ on x86-64, FZ on arm64).

Why: Adam's moments of weights whose inputs are rarely lit (MNIST's border pixels) decay
geometrically between updates, and pass through the denormal range (|x| < 1.2e-38 in float32) on
their way to zero. x86 CPUs compute on denormals many times slower, and by the second epoch
thousands of them slow every step (results/README.md has the figures). Flushing changes no result
that matters: a moment below 1e-38 moves its weight by < 1e-33. PyTorch offers the same switch
(``torch.set_flush_denormal``); TensorFlow's eager CPU kernels flush by default.

The mode lives in the calling thread's floating-point control register; we set it through glibc's
``fegetenv``/``fesetenv`` (no compiled code) and restore the previous environment afterwards, so
nothing outside the block is affected. Where the layout of ``fenv_t`` is not known (other C
libraries, other CPUs), the block runs unchanged and ``flush_denormals`` yields False.
"""

from __future__ import annotations

import ctypes
import platform
import struct
import sys
from collections.abc import Iterator
from contextlib import contextmanager

#: (byte offset of the control register in glibc's fenv_t, bits that flush denormals)
_LAYOUTS = {
    "x86_64": (28, 0x8040),  # MXCSR: FTZ (bit 15) | DAZ (bit 6)
    "aarch64": (0, 1 << 24),  # FPCR: FZ (bit 24)
}
_FENV_BYTES = 64  # ≥ sizeof(fenv_t) on both (32 and 8 bytes)


def _libc() -> ctypes.CDLL | None:
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return None
    return ctypes.CDLL(None)


_LIBC = _libc()
_LAYOUT = _LAYOUTS.get(platform.machine()) if _LIBC is not None else None


def supported() -> bool:
    """True where ``flush_denormals`` can switch the mode on (Linux/glibc on x86-64 or arm64)."""
    return _LAYOUT is not None


@contextmanager
def flush_denormals() -> Iterator[bool]:
    """Inside the block, this thread flushes denormal inputs and results to zero; yields whether
    the mode is on. The previous floating-point environment is restored on exit."""
    if _LAYOUT is None or _LIBC is None:
        yield False
        return
    offset, bits = _LAYOUT
    saved = ctypes.create_string_buffer(_FENV_BYTES)
    if _LIBC.fegetenv(saved) != 0:
        yield False
        return
    flushed = bytearray(saved.raw)
    struct.pack_into("<I", flushed, offset, struct.unpack_from("<I", flushed, offset)[0] | bits)
    on = _LIBC.fesetenv(ctypes.create_string_buffer(bytes(flushed), _FENV_BYTES)) == 0
    try:
        yield on
    finally:
        _LIBC.fesetenv(saved)
