"""Readers for the MNIST file formats: a Keras-style .npz, the CSV pair, the IDX files (gzipped
or not).

Each reader returns the four checked uint8 arrays (keyed by `KEYS`) and a `source` text saying
where they came from and in which format; any problem is a one-line `DataError` naming the file.
"""

from __future__ import annotations

import gzip
import struct
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np

from bench.data.checks import KEYS, Origin, checked_split, checked_splits
from bench.errors import DataError
from bench.mnist import N_FEATURES

Arrays = dict[str, np.ndarray]

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


def _oneline(err: BaseException) -> str:
    """An exception's text squeezed onto one line (or its type name when it has none)."""
    return " ".join(str(err).split()) or type(err).__name__


def _cannot_read(path: Path, err: OSError) -> DataError:
    return DataError(f"{path}: cannot read ({_oneline(err)})")


# --- .npz ------------------------------------------------------------------------------------


def refuse_loose_member(p: Path) -> None:
    """A CSV or IDX file passed on its own: point at its folder instead."""
    names = {n for names, _ in _IDX_FILES.values() for n in names}
    if p.suffix.lower() == ".csv" or p.name.removesuffix(".gz") in names:
        raise DataError(
            f"{p}: is one file of a set; pass its folder ({p.parent}) holding the CSV pair "
            f"or all four IDX files"
        )


def read_npz(path: Path) -> tuple[Arrays, str]:
    """A Keras-style .npz (never unpickling) -> (arrays, source); DataError for anything wrong."""
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
    return checked_splits(arrays, lambda key: Origin(path, key)), f"{path} (Keras .npz)"


def _check_zip_magic(path: Path) -> None:
    try:
        with path.open("rb") as fh:
            head = fh.read(6)
    except OSError as err:
        raise _cannot_read(path, err) from None
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


# --- folders: IDX or CSV ---------------------------------------------------------------------


def read_folder(folder: Path) -> tuple[Arrays, str]:
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


def _load_idx(folder: Path, files: dict[str, Path]) -> tuple[Arrays, str]:
    arrays = {role: _read_idx(files[role], _IDX_FILES[role][1]) for role in KEYS}
    out = checked_splits(
        arrays, lambda key: Origin(files[key], "images" if key[0] == "x" else "labels")
    )
    gz = " gzipped" if any(p.suffix == ".gz" for p in files.values()) else ""
    return out, f"{folder} (IDX files{gz})"


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
        raise _cannot_read(path, err) from None


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


def _load_csv_pair(folder: Path, train: Path, test: Path) -> tuple[Arrays, str]:
    out: Arrays = {}
    for split, path in (("train", train), ("test", test)):
        out[f"x_{split}"], out[f"y_{split}"] = _read_csv(path)
    return out, f"{folder} (CSV pair {train.name}, {test.name})"


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
    return checked_split(
        table[:, 1:], table[:, 0], Origin(path, "pixel", offset), Origin(path, "label", offset)
    )


def _csv_header_rows(path: Path) -> int:
    """1 when the first line is a header (not all numbers), else 0."""
    try:
        with path.open(encoding="latin-1") as fh:
            first = fh.readline()
    except OSError as err:
        raise _cannot_read(path, err) from None
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
            raise _cannot_read(path, err) from None
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
