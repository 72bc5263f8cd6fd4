"""The checks every MNIST format ends in: shapes, row counts, dtypes and value ranges.

A reader hands each pair of arrays (x, y) to `checked_split`, which returns them as uint8 or
raises a one-line `DataError` naming the file, the array and (for a bad value) where it sits.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from bench.errors import DataError
from bench.mnist import N_FEATURES

KEYS = ("x_train", "y_train", "x_test", "y_test")


class Origin(NamedTuple):
    """Where an array came from, for error messages: the file, the array's name, and how
    row i maps to a place in the file (a CSV line when `line_offset` is set, else "row i")."""

    file: Path
    name: str
    line_offset: int | None = None

    def at(self, i: int) -> str:
        return f"row {i}" if self.line_offset is None else f"line {i + self.line_offset}"


def checked_splits(
    arrays: dict[str, np.ndarray], origin: Callable[[str], Origin]
) -> dict[str, np.ndarray]:
    """`checked_split` on train then test of the four `KEYS` arrays; `origin(key)` says where
    each array came from."""
    out: dict[str, np.ndarray] = {}
    for split in ("train", "test"):
        xk, yk = f"x_{split}", f"y_{split}"
        out[xk], out[yk] = checked_split(arrays[xk], arrays[yk], origin(xk), origin(yk))
    return out


def checked_split(
    x: np.ndarray, y: np.ndarray, xo: Origin, yo: Origin
) -> tuple[np.ndarray, np.ndarray]:
    """Validate one split and return (x uint8 (n, 784), y uint8 (n,)); DataError if invalid."""
    x = _as_matrix(x, xo)
    if y.ndim != 1:
        raise DataError(f"{yo.file}: {yo.name} has shape {y.shape}; expected (n,)")
    if len(x) != len(y):
        where = "" if yo.file == xo.file else f" in {yo.file}"
        raise DataError(
            f"{xo.file}: {xo.name} has {len(x)} rows but {yo.name}{where} has {len(y)}; "
            f"they must match"
        )
    if len(x) == 0:
        raise DataError(f"{xo.file}: {xo.name} has no rows; need at least 1")
    return _to_uint8(x, xo, 255), _to_uint8(y, yo, 9)


def _as_matrix(x: np.ndarray, origin: Origin) -> np.ndarray:
    """(n, 28, 28) or (n, 784) -> (n, 784) view; DataError for any other shape."""
    if x.ndim == 3 and x.shape[1:] == (28, 28):
        return x.reshape(len(x), N_FEATURES)
    if x.ndim == 2 and x.shape[1] == N_FEATURES:
        return x
    raise DataError(
        f"{origin.file}: {origin.name} has shape {x.shape}; expected (n, 784) or (n, 28, 28)"
    )


def _to_uint8(a: np.ndarray, origin: Origin, high: int) -> np.ndarray:
    """Check `a` holds integers 0..high (any int/uint/float dtype) and return it as uint8."""
    if a.dtype.kind not in "iuf":
        raise DataError(
            f"{origin.file}: {origin.name} has dtype {a.dtype}; expected integers 0..{high}"
        )
    if a.dtype.kind == "f":
        fractional = a != np.round(a)  # NaN counts as fractional
        if fractional.any():
            _raise_first(fractional, a, origin, "is not an integer" + _scaled_hint(a, high))
    if a.dtype != np.uint8 or high < 255:
        _raise_first((a < 0) | (a > high), a, origin, f"is outside 0..{high}")
    return np.ascontiguousarray(a, dtype=np.uint8)


def _scaled_hint(a: np.ndarray, high: int) -> str:
    """A hint when float pixels look already divided by 255."""
    finite = a[np.isfinite(a)]
    if high == 255 and finite.size and finite.min() >= 0.0 and finite.max() <= 1.0:
        return "; they look already scaled to [0, 1], save the raw 0..255 values instead"
    return ""


def _raise_first(bad: np.ndarray, a: np.ndarray, origin: Origin, problem: str) -> None:
    """DataError naming the first element where `bad` is True, if any."""
    if not bad.any():
        return
    flat = int(np.argmax(bad))
    row = flat // a.shape[1] if a.ndim == 2 else flat
    value = a.reshape(-1)[flat].item()
    raise DataError(f"{origin.file}: {origin.name} value {value!r} at {origin.at(row)} {problem}")
