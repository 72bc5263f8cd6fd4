"""Load MNIST from the shipped .npz, a user's .npz, a CSV pair or the original IDX files.

Every loader ends in the same checks and yields a `RawMNIST` of uint8 arrays; `prepare` turns that
into a `Dataset` of scaled floats for a backend. Any problem with a file is raised as one-line
`DataError` naming the file, the problem and (where there is one) the fix. The format readers
live in `bench.data.files`, the checks they end in in `bench.data.checks`.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backends.api import TrainData
from bench.data.checks import KEYS
from bench.data.files import read_folder, read_npz, refuse_loose_member
from bench.errors import ConfigError, DataError
from bench.mnist import MNIST_TEST, MNIST_TRAIN, N_FEATURES

SHIPPED_PATH: Path = Path(__file__).with_name("mnist.npz")

ARRAY_SHA256: dict[str, str] = {
    "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}

_SHIPPED_SHAPES = {
    "x_train": (MNIST_TRAIN, N_FEATURES),
    "y_train": (MNIST_TRAIN,),
    "x_test": (MNIST_TEST, N_FEATURES),
    "y_test": (MNIST_TEST,),
}
_DTYPES = ("float32", "float64")
_REINSTALL = "reinstall mlpbench or re-checkout bench/data/mnist.npz"


@dataclass(frozen=True, eq=False)
class RawMNIST:
    """MNIST as loaded: uint8 x_train (n_train, 784), y_train (n_train,), x_test (n_test, 784),
    y_test (n_test,), with n >= 1 and labels 0..9 (loaders check values; construction checks
    dtypes and shapes).

    `source` says where the data came from (path and format); `verified` is True when the
    per-array sha256 of all four arrays matched the shipped MNIST (`ARRAY_SHA256`).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    verified: bool

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            ok = (
                isinstance(x, np.ndarray)
                and isinstance(y, np.ndarray)
                and x.dtype == np.uint8
                and y.dtype == np.uint8
                and x.ndim == 2
                and x.shape[1] == N_FEATURES
                and y.shape == (x.shape[0],)
                and x.shape[0] >= 1
            )
            if not ok:
                raise DataError(
                    f"{self.source}: x_{split}/y_{split} must be uint8 arrays of shape "
                    f"(n, 784) and (n,) with n >= 1"
                )


@dataclass(frozen=True, eq=False)
class Dataset(TrainData):
    """Training/test data ready for a backend: ``backends.api.TrainData`` plus dtype and source.

    x_train (n_train, 784) and x_test (n_test, 784) are C-contiguous arrays in `dtype`
    ("float32" or "float64") holding pixel / 255 computed in that dtype, so values lie in
    [0, 1]; y_train (n_train,) and y_test (n_test,) are int64 labels 0..9.
    """

    dtype: str
    source: str

    def subset(self, n_train: int | None = None, n_test: int | None = None) -> Dataset:
        """The first `n_train` training and `n_test` test rows (None keeps all), as views.

        Raises ConfigError unless 1 <= n <= the rows available.
        """
        k_train = _subset_size("n_train", n_train, self.n_train)
        k_test = _subset_size("n_test", n_test, self.n_test)
        if (k_train, k_test) == (self.n_train, self.n_test):
            return self
        return Dataset(
            x_train=self.x_train[:k_train],
            y_train=self.y_train[:k_train],
            x_test=self.x_test[:k_test],
            y_test=self.y_test[:k_test],
            dtype=self.dtype,
            source=f"{self.source} [first {k_train} train / {k_test} test rows]",
        )


def load_raw(path: str | Path | None = None) -> RawMNIST:
    """Load MNIST as uint8 arrays from `path`, or from the shipped copy when `path` is None.

    `path` may be a Keras-style .npz file (keys x_train, y_train, x_test, y_test; x as
    (n, 28, 28) or (n, 784)) or a folder holding either the original IDX files (gzipped or
    not) or mnist_train.csv + mnist_test.csv (IDX wins when a folder has both). The shipped
    copy must match `ARRAY_SHA256`; other data may differ and then has verified=False.
    Raises DataError (one line, naming the file) for anything missing, corrupt or out of range.
    """
    if path is None:
        return _load_shipped(SHIPPED_PATH)
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(
            f"{p}: no such file or folder; pass --data a .npz file or a folder with the "
            f"MNIST CSV or IDX files (or omit it to use the shipped copy)"
        )
    if p.is_dir():
        return _raw(*read_folder(p))
    refuse_loose_member(p)
    return _raw(*read_npz(p))


def prepare(raw: RawMNIST, dtype: str = "float32") -> Dataset:
    """Scale `raw` for a backend: x as (n, 784) `dtype` in [0, 1] (value / 255 in that dtype),
    y as int64. Raises ConfigError unless dtype is "float32" or "float64"."""
    dt = _float_dtype(dtype)
    return Dataset(
        x_train=_scale(raw.x_train, dt),
        y_train=raw.y_train.astype(np.int64),
        x_test=_scale(raw.x_test, dt),
        y_test=raw.y_test.astype(np.int64),
        dtype=dt.name,
        source=raw.source,
    )


class DataCache:
    """``raw`` prepared (and cut to the first ``n_train`` / ``n_test`` rows; None keeps all) once
    per dtype, on first use. ConfigError at construction when a slice exceeds the data."""

    def __init__(
        self, raw: RawMNIST, n_train: int | None = None, n_test: int | None = None
    ) -> None:
        # the slice is checked against the data now (ConfigError), before any conversion
        _subset_size("n_train", n_train, int(raw.x_train.shape[0]))
        _subset_size("n_test", n_test, int(raw.x_test.shape[0]))
        self.raw, self.n_train, self.n_test = raw, n_train, n_test
        self._by_dtype: dict[str, Dataset] = {}

    def get(self, dtype: str) -> Dataset:
        if dtype not in self._by_dtype:
            self._by_dtype[dtype] = prepare(self.raw, dtype).subset(self.n_train, self.n_test)
        return self._by_dtype[dtype]


def load_dataset(path: str | Path | None = None, dtype: str = "float32") -> Dataset:
    """`load_raw(path)` then `prepare(..., dtype)`; the dtype is checked before any loading."""
    _float_dtype(dtype)
    return prepare(load_raw(path), dtype)


# --- dataset helpers -------------------------------------------------------------------------


def _float_dtype(dtype: object) -> np.dtype:
    """The numpy dtype for "float32"/"float64" (or equivalents); ConfigError for anything else."""
    try:
        dt = None if dtype is None else np.dtype(dtype)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        dt = None
    if dt is None or dt.name not in _DTYPES:
        raise ConfigError(f"dtype {dtype!r} is not supported; use 'float32' or 'float64'")
    return dt


def _scale(x: np.ndarray, dt: np.dtype) -> np.ndarray:
    """uint8 (n, 784) -> `dt` (n, 784) holding x / 255, divided in `dt`."""
    out = x.astype(dt)
    out /= dt.type(255)
    return out


def _subset_size(name: str, n: int | None, available: int) -> int:
    if n is None:
        return available
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 1 <= n <= available:
        raise ConfigError(f"{name}={n!r} is out of range; use 1..{available}")
    return int(n)


# --- the shipped copy and its sha256 ---------------------------------------------------------


def _matches_shipped(arrays: dict[str, np.ndarray]) -> bool:
    """Whether the four uint8 arrays are byte-identical to the shipped MNIST."""
    return all(
        arrays[k].shape == _SHIPPED_SHAPES[k]
        and hashlib.sha256(np.ascontiguousarray(arrays[k]).reshape(-1).data).hexdigest()
        == ARRAY_SHA256[k]
        for k in KEYS
    )


def _raw(arrays: dict[str, np.ndarray], source: str) -> RawMNIST:
    return RawMNIST(**arrays, source=source, verified=_matches_shipped(arrays))


def _load_shipped(path: Path) -> RawMNIST:
    """The shipped copy, which must exist, parse and match ARRAY_SHA256."""
    if not path.is_file():
        raise DataError(f"{path}: the shipped MNIST copy is missing; {_REINSTALL}")
    try:
        raw = _raw(*read_npz(path))
    except DataError as err:
        reason = str(err).removeprefix(f"{path}: ").split("; ")[0]  # drop the generic fix
        raise DataError(
            f"{path}: the shipped MNIST copy is corrupt ({reason}); {_REINSTALL}"
        ) from None
    if not raw.verified:
        raise DataError(
            f"{path}: the shipped MNIST copy is corrupt (sha256 does not match); {_REINSTALL}"
        )
    return dataclasses.replace(raw, source=f"{path} (shipped Keras .npz, sha256 verified)")
