"""Load MNIST from the shipped .npz, a user's .npz, a CSV pair or the original IDX files.

Every loader ends in the same checks and yields a `RawMNIST` of uint8 arrays; `prepare` turns that
into a `Dataset` of scaled floats for a backend. Any problem with a file is raised as one-line
`DataError` naming the file, the problem and (where there is one) the fix.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import struct
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from bench.errors import ConfigError, DataError

SHIPPED_PATH: Path = Path(__file__).with_name("mnist.npz")

ARRAY_SHA256: dict[str, str] = {
    "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}

KEYS = ("x_train", "y_train", "x_test", "y_test")
N_FEATURES = 784
_SHIPPED_SHAPES = {
    "x_train": (60000, N_FEATURES),
    "y_train": (60000,),
    "x_test": (10000, N_FEATURES),
    "y_test": (10000,),
}
_DTYPES = ("float32", "float64")
_CSV_NAMES = ("mnist_train.csv", "mnist_test.csv")
_CSV_COLUMNS = 1 + N_FEATURES
# role -> (accepted base names, IDX magic number)
_IDX_FILES = {
    "x_train": (("train-images-idx3-ubyte", "train-images.idx3-ubyte"), 2051),
    "y_train": (("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"), 2049),
    "x_test": (("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"), 2051),
    "y_test": (("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"), 2049),
}
_NO_MNIST_HINT = (
    "expected mnist_train.csv + mnist_test.csv, or the IDX files train-images-idx3-ubyte, "
    "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte "
    "(optionally .gz; the '.idx3-ubyte' spelling is accepted too), or pass a .npz file"
)
_REINSTALL = "reinstall mlpbench or re-checkout bench/mnist.npz"
# What reading a corrupt zip/npy member can raise (zlib.error and BadZipFile are not OSErrors).
_NPZ_READ_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    KeyError,
    RuntimeError,
    NotImplementedError,
    MemoryError,
    struct.error,
    zlib.error,
    zipfile.BadZipFile,
)


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
class Dataset:
    """Training/test data ready for a backend.

    x_train (n_train, 784) and x_test (n_test, 784) are C-contiguous arrays in `dtype`
    ("float32" or "float64") holding pixel / 255 computed in that dtype, so values lie in
    [0, 1]; y_train (n_train,) and y_test (n_test,) are int64 labels 0..9.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    dtype: str
    source: str

    @property
    def n_train(self) -> int:
        """Number of training rows."""
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        """Number of test rows."""
        return int(self.x_test.shape[0])

    @property
    def n_features(self) -> int:
        """Number of input features per row (784 for MNIST)."""
        return int(self.x_train.shape[1])

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
        return _load_folder(p)
    _refuse_loose_member(p)
    return _load_npz(p)


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


# --- checks shared by every format -----------------------------------------------------------


class _Origin(NamedTuple):
    """Where an array came from, for error messages: the file, the array's name, and how
    row i maps to a place in the file (a CSV line when `line_offset` is set, else "row i")."""

    file: Path
    name: str
    line_offset: int | None = None

    def at(self, i: int) -> str:
        return f"row {i}" if self.line_offset is None else f"line {i + self.line_offset}"


def _checked_split(
    x: np.ndarray, y: np.ndarray, xo: _Origin, yo: _Origin
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


def _as_matrix(x: np.ndarray, origin: _Origin) -> np.ndarray:
    """(n, 28, 28) or (n, 784) -> (n, 784) view; DataError for any other shape."""
    if x.ndim == 3 and x.shape[1:] == (28, 28):
        return x.reshape(len(x), N_FEATURES)
    if x.ndim == 2 and x.shape[1] == N_FEATURES:
        return x
    raise DataError(
        f"{origin.file}: {origin.name} has shape {x.shape}; expected (n, 784) or (n, 28, 28)"
    )


def _to_uint8(a: np.ndarray, origin: _Origin, high: int) -> np.ndarray:
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


def _raise_first(bad: np.ndarray, a: np.ndarray, origin: _Origin, problem: str) -> None:
    """DataError naming the first element where `bad` is True, if any."""
    if not bad.any():
        return
    flat = int(np.argmax(bad))
    row = flat // a.shape[1] if a.ndim == 2 else flat
    value = a.reshape(-1)[flat].item()
    raise DataError(f"{origin.file}: {origin.name} value {value!r} at {origin.at(row)} {problem}")


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


def _oneline(err: BaseException) -> str:
    """An exception's text squeezed onto one line (or its type name when it has none)."""
    return " ".join(str(err).split()) or type(err).__name__


# --- .npz ------------------------------------------------------------------------------------


def _load_shipped(path: Path) -> RawMNIST:
    """The shipped copy, which must exist, parse and match ARRAY_SHA256."""
    if not path.is_file():
        raise DataError(f"{path}: the shipped MNIST copy is missing; {_REINSTALL}")
    try:
        raw = _load_npz(path)
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


def _refuse_loose_member(p: Path) -> None:
    """A CSV or IDX file passed on its own: point at its folder instead."""
    names = {n for names, _ in _IDX_FILES.values() for n in names}
    if p.suffix.lower() == ".csv" or p.name.removesuffix(".gz") in names:
        raise DataError(
            f"{p}: is one file of a set; pass its folder ({p.parent}) holding the CSV pair "
            f"or all four IDX files"
        )


def _load_npz(path: Path) -> RawMNIST:
    """A Keras-style .npz (never unpickling) -> RawMNIST; DataError for anything wrong."""
    _check_zip_magic(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in KEYS if k not in npz.files]
            if missing:
                raise DataError(
                    f"{path}: missing key(s) {', '.join(missing)} (found: "
                    f"{', '.join(npz.files) or 'none'}); expected x_train, y_train, x_test, "
                    f"y_test as in Keras' mnist.npz"
                )
            arrays = {k: _npz_member(npz, k, path) for k in KEYS}
    except DataError:
        raise
    except _NPZ_READ_ERRORS as err:
        raise DataError(
            f"{path}: not a valid .npz (truncated or corrupt zip: {_oneline(err)}); "
            f"re-download it or pass another --data PATH"
        ) from None
    return _raw(_checked_arrays(arrays, path), f"{path} (Keras .npz)")


def _check_zip_magic(path: Path) -> None:
    try:
        with path.open("rb") as fh:
            head = fh.read(6)
    except OSError as err:
        raise DataError(f"{path}: cannot read ({_oneline(err)})") from None
    if head.startswith(b"\x93NUMPY"):
        raise DataError(
            f"{path}: is a single .npy array, not a .npz archive; save the four arrays with "
            f"np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)"
        )
    if not head.startswith(b"PK"):
        raise DataError(
            f"{path}: not a valid .npz (not a zip archive; truncated or corrupt?); "
            f"re-download it or pass another --data PATH"
        )


def _npz_member(npz: np.lib.npyio.NpzFile, key: str, path: Path) -> np.ndarray:
    try:
        return npz[key]
    except ValueError as err:
        if "pickle" not in str(err) and "Object arrays" not in str(err):
            raise
        raise DataError(
            f"{path}: {key} is an object (pickled) array, which is never unpickled; "
            f"re-save it as a plain numeric array (e.g. uint8)"
        ) from None


def _checked_arrays(arrays: dict[str, np.ndarray], path: Path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for split in ("train", "test"):
        xk, yk = f"x_{split}", f"y_{split}"
        out[xk], out[yk] = _checked_split(
            arrays[xk], arrays[yk], _Origin(path, xk), _Origin(path, yk)
        )
    return out


# --- folders: IDX or CSV ---------------------------------------------------------------------


def _load_folder(folder: Path) -> RawMNIST:
    """Pick the format by what `folder` holds: all four IDX files, else the CSV pair."""
    idx = {role: _find_idx(folder, names) for role, (names, _) in _IDX_FILES.items()}
    found = {role: p for role, p in idx.items() if p is not None}
    if len(found) == len(idx):
        return _load_idx(folder, found)
    csvs = [folder / n for n in _CSV_NAMES]
    have_csv = [p.is_file() for p in csvs]
    if all(have_csv):
        return _load_csv_pair(folder, *csvs)
    if found:
        missing = [_IDX_FILES[r][0][0] for r, p in idx.items() if p is None]
        raise DataError(
            f"{folder}: has IDX file(s) {', '.join(p.name for p in found.values())} but lacks "
            f"{', '.join(missing)} (or .gz); add them or pass another --data PATH"
        )
    if any(have_csv):
        have, lack = (_CSV_NAMES[0], _CSV_NAMES[1]) if have_csv[0] else _CSV_NAMES[::-1]
        raise DataError(f"{folder}: has {have} but not {lack}; both are needed")
    raise DataError(f"{folder}: no MNIST files found; {_NO_MNIST_HINT}")


def _find_idx(folder: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _load_idx(folder: Path, files: dict[str, Path]) -> RawMNIST:
    arrays = {role: _read_idx(files[role], _IDX_FILES[role][1]) for role in KEYS}
    out: dict[str, np.ndarray] = {}
    for split in ("train", "test"):
        xk, yk = f"x_{split}", f"y_{split}"
        out[xk], out[yk] = _checked_split(
            arrays[xk], arrays[yk], _Origin(files[xk], "images"), _Origin(files[yk], "labels")
        )
    gz = " gzipped" if any(p.suffix == ".gz" for p in files.values()) else ""
    return _raw(out, f"{folder} (IDX files{gz})")


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it ends in .gz; DataError if unreadable or corrupt."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise DataError(
            f"{path}: not a valid gzip file (truncated or corrupt: {_oneline(err)}); re-download it"
        ) from None
    except OSError as err:
        raise DataError(f"{path}: cannot read ({_oneline(err)})") from None


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """Parse an IDX file: magic 2051 -> uint8 (n, 28, 28) images, 2049 -> uint8 (n,) labels."""
    data = _read_bytes(path)
    ndim = 3 if magic == 2051 else 1
    header = 4 * (1 + ndim)
    if len(data) < header:
        raise DataError(
            f"{path}: only {len(data)} bytes, too short for an IDX header; re-download it"
        )
    got, *dims = struct.unpack(f">{1 + ndim}i", data[:header])
    if got != magic:
        what = "images" if magic == 2051 else "labels"
        raise DataError(
            f"{path}: IDX magic number is {got}, expected {magic} for {what}; wrong or corrupt file"
        )
    if ndim == 3 and dims[1:] != [28, 28]:
        raise DataError(f"{path}: images are {dims[1]}x{dims[2]}; MNIST images are 28x28")
    promised = header + int(np.prod(dims))
    if len(data) != promised:
        raise DataError(
            f"{path}: file holds {len(data)} bytes but its header promises {promised} "
            f"({dims[0]} items); truncated or corrupt, re-download it"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims).copy()


def _load_csv_pair(folder: Path, train: Path, test: Path) -> RawMNIST:
    out: dict[str, np.ndarray] = {}
    for split, path in (("train", train), ("test", test)):
        out[f"x_{split}"], out[f"y_{split}"] = _read_csv(path)
    return _raw(out, f"{folder} (CSV pair {train.name}, {test.name})")


def _read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Label + 784 pixel columns per row, after an optional header -> (x uint8, y uint8)."""
    skip = _csv_header_rows(path)
    table = _parse_csv(path, skip)
    if table.shape[0] == 0:
        raise DataError(f"{path}: has no data rows; expected a header then label + 784 pixels")
    if table.shape[1] != _CSV_COLUMNS:
        raise DataError(
            f"{path}: rows have {table.shape[1]} columns; expected {_CSV_COLUMNS} "
            f"(label + 784 pixels)"
        )
    offset = 1 + skip  # data row i sits on line i + offset (1-based)
    return _checked_split(
        table[:, 1:], table[:, 0], _Origin(path, "pixel", offset), _Origin(path, "label", offset)
    )


def _csv_header_rows(path: Path) -> int:
    """1 when the first line is a header (not all numbers), else 0."""
    try:
        with path.open(encoding="latin-1") as fh:
            first = fh.readline()
    except OSError as err:
        raise DataError(f"{path}: cannot read ({_oneline(err)})") from None
    return 0 if first.strip() and all(_is_number(f) for f in first.split(",")) else 1


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _parse_csv(path: Path, skip: int) -> np.ndarray:
    """2-D table of the data rows: int32 fast path, float64 if some values are written as
    floats (range/integrality are checked later); DataError naming the first bad line."""
    last: ValueError | None = None
    for dtype in (np.int32, np.float64):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
                return np.loadtxt(
                    path,
                    delimiter=",",
                    skiprows=skip,
                    dtype=dtype,
                    ndmin=2,
                    encoding="latin-1",
                    comments=None,
                )
        except OSError as err:
            raise DataError(f"{path}: cannot read ({_oneline(err)})") from None
        except ValueError as err:
            last = err
    raise DataError(_diagnose_csv(path, skip, last))


def _diagnose_csv(path: Path, skip: int, err: ValueError | None) -> str:
    """Find the first line with the wrong column count or a non-numeric value (slow path)."""
    with path.open(encoding="latin-1") as fh:
        for lineno, line in enumerate(fh, start=1):
            if lineno <= skip or not line.strip():
                continue
            fields = line.rstrip("\r\n").split(",")
            if len(fields) != _CSV_COLUMNS:
                return (
                    f"{path}: line {lineno} has {len(fields)} columns; expected {_CSV_COLUMNS} "
                    f"(label + 784 pixels)"
                )
            try:
                np.array(fields, dtype=np.float64)
            except ValueError:
                bad = [(j, f) for j, f in enumerate(fields, 1) if not _is_number(f)]
                if not bad:
                    continue
                col, value = bad[0]
                return (
                    f"{path}: line {lineno}, column {col}: {value.strip()!r} is not a number; "
                    f"expected integers (label 0..9, pixels 0..255)"
                )
    detail = f" ({_oneline(err)})" if err else ""
    return f"{path}: cannot parse as CSV{detail}; expected a header then label + 784 pixels"
