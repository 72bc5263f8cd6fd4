"""bench.data: the shipped MNIST, every accepted format, and one-line errors for bad input.

Expected values come from MNIST itself (published labels and class counts) and from the file
formats' specs; fixtures write small files with numpy/struct/gzip directly, not via bench.data.
"""

from __future__ import annotations

import gzip
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from bench import data
from bench.data import Dataset, RawMNIST, load_dataset, load_raw, prepare
from bench.errors import ConfigError, DataError

N_TRAIN, N_TEST = 200, 100
CSV_HEADER = "label," + ",".join(f"{r}x{c}" for r in range(1, 29) for c in range(1, 29))


# --- fixtures and writers --------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> RawMNIST:
    return load_raw()


@pytest.fixture(scope="module")
def small(shipped: RawMNIST) -> dict[str, np.ndarray]:
    """First 200 train / 100 test rows of the shipped data: x uint8 (n, 784), y uint8 (n,)."""
    return {
        "x_train": shipped.x_train[:N_TRAIN].copy(),
        "y_train": shipped.y_train[:N_TRAIN].copy(),
        "x_test": shipped.x_test[:N_TEST].copy(),
        "y_test": shipped.y_test[:N_TEST].copy(),
    }


def write_npz(path: Path, arrays: dict[str, np.ndarray], square: bool = False) -> Path:
    """Keras layout; x as (n, 28, 28) when `square`."""
    out = {k: (v.reshape(-1, 28, 28) if square and k[0] == "x" else v) for k, v in arrays.items()}
    np.savez_compressed(path, **out)
    return path


def write_csv(path: Path, x: np.ndarray, y: np.ndarray) -> Path:
    """Header row, then label + 784 pixel integers per row."""
    table = np.column_stack([y.astype(np.int64), x.astype(np.int64)])
    np.savetxt(path, table, fmt="%d", delimiter=",", header=CSV_HEADER, comments="")
    return path


def write_csv_pair(folder: Path, arrays: dict[str, np.ndarray]) -> Path:
    folder.mkdir(exist_ok=True)
    write_csv(folder / "mnist_train.csv", arrays["x_train"], arrays["y_train"])
    write_csv(folder / "mnist_test.csv", arrays["x_test"], arrays["y_test"])
    return folder


def idx_images(x: np.ndarray) -> bytes:
    """IDX3: big-endian int32 magic 2051, count, rows, cols, then the pixels row-major."""
    return struct.pack(">4i", 2051, len(x), 28, 28) + x.astype(np.uint8).tobytes()


def idx_labels(y: np.ndarray) -> bytes:
    """IDX1: big-endian int32 magic 2049, count, then one byte per label."""
    return struct.pack(">2i", 2049, len(y)) + y.astype(np.uint8).tobytes()


def write_idx(
    folder: Path, arrays: dict[str, np.ndarray], gz: bool = False, dotted: bool = False
) -> Path:
    """The four IDX files; `dotted` uses the 'train-images.idx3-ubyte' spelling."""
    folder.mkdir(exist_ok=True)
    sep = "." if dotted else "-"
    blobs = {
        f"train-images{sep}idx3-ubyte": idx_images(arrays["x_train"]),
        f"train-labels{sep}idx1-ubyte": idx_labels(arrays["y_train"]),
        f"t10k-images{sep}idx3-ubyte": idx_images(arrays["x_test"]),
        f"t10k-labels{sep}idx1-ubyte": idx_labels(arrays["y_test"]),
    }
    for name, blob in blobs.items():
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(blob))
        else:
            (folder / name).write_bytes(blob)
    return folder


def assert_equal_small(raw: RawMNIST, arrays: dict[str, np.ndarray]) -> None:
    for key, expected in arrays.items():
        got = getattr(raw, key)
        assert got.dtype == np.uint8, key
        assert got.shape == expected.shape, key
        np.testing.assert_array_equal(got, expected, err_msg=key)
    assert raw.verified is False


def raises_one_line(exc: type[Exception], match: str, names: Path | str, call, *args) -> str:
    """Call, expect `exc` matching `match`, and check the message is one line naming `names`."""
    with pytest.raises(exc, match=match) as info:
        call(*args)
    msg = str(info.value)
    assert "\n" not in msg, msg
    assert str(names) in msg, msg
    return msg


# --- the shipped data ------------------------------------------------------------------------


def test_shipped_loads_and_verifies(shipped: RawMNIST) -> None:
    assert shipped.verified is True
    assert shipped.x_train.shape == (60000, 784)
    assert shipped.y_train.shape == (60000,)
    assert shipped.x_test.shape == (10000, 784)
    assert shipped.y_test.shape == (10000,)
    for arr in (shipped.x_train, shipped.y_train, shipped.x_test, shipped.y_test):
        assert arr.dtype == np.uint8
    assert "mnist.npz" in shipped.source


def test_shipped_first_labels(shipped: RawMNIST) -> None:
    assert shipped.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert shipped.y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


def test_shipped_train_label_counts(shipped: RawMNIST) -> None:
    counts = np.bincount(shipped.y_train, minlength=10).tolist()
    assert counts == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_prepare_scales_to_unit_interval(shipped: RawMNIST, dtype: str) -> None:
    ds = prepare(shipped, dtype)
    assert ds.dtype == dtype
    assert (ds.n_train, ds.n_test, ds.n_features) == (60000, 10000, 784)
    for x in (ds.x_train, ds.x_test):
        assert x.dtype == np.dtype(dtype)
        assert x.flags["C_CONTIGUOUS"]
        assert x.min() == 0.0
        assert x.max() == 1.0
    np.testing.assert_array_equal(ds.x_test * 255, shipped.x_test)  # exact, no rounding
    np.testing.assert_array_equal(ds.x_train[:5000] * 255, shipped.x_train[:5000])
    for y, raw_y in ((ds.y_train, shipped.y_train), (ds.y_test, shipped.y_test)):
        assert y.dtype == np.int64
        np.testing.assert_array_equal(y, raw_y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_prepare_every_pixel_value(dtype: type[np.floating]) -> None:
    """Each of the 256 values v becomes dtype(v) / dtype(255), and * 255 gives v back."""
    x = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 784, axis=1)
    y = (np.arange(256) % 10).astype(np.uint8)
    raw = RawMNIST(x, y, x, y, source="synthetic", verified=False)
    ds = prepare(raw, np.dtype(dtype).name)
    expected = np.arange(256, dtype=dtype) / dtype(255)
    np.testing.assert_array_equal(ds.x_train[:, 0], expected)
    np.testing.assert_array_equal(ds.x_train * 255, x)


def test_subset_takes_first_rows(shipped: RawMNIST) -> None:
    ds = prepare(shipped).subset(50, 20)
    assert isinstance(ds, Dataset)
    assert (ds.n_train, ds.n_test) == (50, 20)
    assert ds.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    np.testing.assert_array_equal(ds.x_test, shipped.x_test[:20] / np.float32(255))
    assert prepare(shipped).subset(n_test=5).n_train == 60000


@pytest.mark.parametrize("n", [0, -1, 60001])
def test_subset_out_of_range(shipped: RawMNIST, n: int) -> None:
    with pytest.raises(ConfigError, match="n_train"):
        prepare(shipped).subset(n_train=n)


# --- round trips through every format --------------------------------------------------------


@pytest.mark.parametrize("square", [False, True], ids=["n784", "n28x28"])
def test_npz_round_trip(tmp_path: Path, small: dict[str, np.ndarray], square: bool) -> None:
    path = write_npz(tmp_path / "mine.npz", small, square=square)
    raw = load_raw(path)
    assert_equal_small(raw, small)
    assert str(path) in raw.source


def test_npz_with_wider_integer_and_float_dtypes(
    tmp_path: Path, small: dict[str, np.ndarray]
) -> None:
    wide = {k: v.astype(np.int64 if k[0] == "y" else np.float64) for k, v in small.items()}
    assert_equal_small(load_raw(write_npz(tmp_path / "wide.npz", wide)), small)


def test_csv_pair_round_trip(tmp_path: Path, small: dict[str, np.ndarray]) -> None:
    folder = write_csv_pair(tmp_path / "csv", small)
    first = (folder / "mnist_train.csv").read_text().splitlines()[:2]
    assert first[0].startswith("label,1x1,1x2") and len(first[1].split(",")) == 785
    raw = load_raw(folder)
    assert_equal_small(raw, small)
    assert "CSV" in raw.source


def test_csv_without_header_row(tmp_path: Path, small: dict[str, np.ndarray]) -> None:
    folder = write_csv_pair(tmp_path / "csv", small)
    for name in ("mnist_train.csv", "mnist_test.csv"):
        path = folder / name
        path.write_text("\n".join(path.read_text().splitlines()[1:]) + "\n")
    assert_equal_small(load_raw(folder), small)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("dotted", [False, True], ids=["dash", "dot"])
def test_idx_round_trip(
    tmp_path: Path, small: dict[str, np.ndarray], gz: bool, dotted: bool
) -> None:
    folder = write_idx(tmp_path / "idx", small, gz=gz, dotted=dotted)
    raw = load_raw(folder)
    assert_equal_small(raw, small)
    assert "IDX" in raw.source


def test_load_dataset_from_path(tmp_path: Path, small: dict[str, np.ndarray]) -> None:
    ds = load_dataset(write_npz(tmp_path / "mine.npz", small), dtype="float64")
    assert ds.x_train.dtype == np.float64 and ds.y_train.dtype == np.int64
    assert (ds.n_train, ds.n_test, ds.n_features) == (N_TRAIN, N_TEST, 784)
    np.testing.assert_array_equal(ds.x_test * 255, small["x_test"])


def test_full_copy_verifies_and_tampered_copy_does_not(tmp_path: Path, shipped: RawMNIST) -> None:
    arrays = {k: getattr(shipped, k) for k in ("x_train", "y_train", "x_test", "y_test")}
    same = tmp_path / "same.npz"
    np.savez(same, **arrays)  # different bytes on disk, same content
    assert load_raw(same).verified is True

    tampered = dict(arrays, x_train=arrays["x_train"].copy())
    tampered["x_train"][123, 456] ^= 1
    path = tmp_path / "tampered.npz"
    np.savez(path, **tampered)
    raw = load_raw(path)
    assert raw.verified is False
    assert raw.x_train[123, 456] != shipped.x_train[123, 456]


# --- bad input: one line, names the file -----------------------------------------------------


def test_missing_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.npz"
    raises_one_line(DataError, "no such file", path, load_raw, path)


def test_truncated_npz(tmp_path: Path, small: dict[str, np.ndarray]) -> None:
    path = write_npz(tmp_path / "t.npz", small)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    raises_one_line(DataError, r"not a valid \.npz.*re-download", path, load_raw, path)


def test_corrupt_npz_member(tmp_path: Path, small: dict[str, np.ndarray]) -> None:
    path = write_npz(tmp_path / "c.npz", small)
    blob = bytearray(path.read_bytes())
    for i in range(200, 260):  # inside the first member's compressed data
        blob[i] ^= 0xFF
    path.write_bytes(bytes(blob))
    raises_one_line(DataError, r"not a valid \.npz", path, load_raw, path)


def test_garbage_bytes(tmp_path: Path) -> None:
    path = tmp_path / "garbage.npz"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    raises_one_line(DataError, r"not a valid \.npz", path, load_raw, path)


def test_pickled_object_array(tmp_path: Path, small: dict[str, np.ndarray]) -> None:
    path = tmp_path / "pickled.npz"
    objects = np.empty(N_TRAIN, dtype=object)
    objects[:] = [{"label": 1}] * N_TRAIN
    np.savez(path, **dict(small, y_train=objects))
    raises_one_line(DataError, "pickled", path, load_raw, path)


def test_single_npy_instead_of_npz(tmp_path: Path, small: dict[str, np.ndarray]) -> None:
    path = tmp_path / "x.npy"
    np.save(path, small["x_train"])
    raises_one_line(DataError, r"\.npy", path, load_raw, path)


def test_missing_key(tmp_path: Path, small: dict[str, np.ndarray]) -> None:
    path = tmp_path / "nokey.npz"
    np.savez(path, **{k: v for k, v in small.items() if k != "y_test"})
    raises_one_line(DataError, "missing key.*y_test", path, load_raw, path)


@pytest.mark.parametrize(
    ("key", "shape"),
    [("x_train", (N_TRAIN, 783)), ("x_train", (N_TRAIN, 27, 28)), ("y_train", (N_TRAIN, 1))],
)
def test_wrong_shape(
    tmp_path: Path, small: dict[str, np.ndarray], key: str, shape: tuple[int, ...]
) -> None:
    path = tmp_path / "shape.npz"
    np.savez(path, **dict(small, **{key: np.zeros(shape, np.uint8)}))
    raises_one_line(DataError, rf"{key} has shape", path, load_raw, path)


def test_mismatched_rows(tmp_path: Path, small: dict[str, np.ndarray]) -> None:
    path = tmp_path / "n.npz"
    np.savez(path, **dict(small, y_test=small["y_test"][:-1]))
    raises_one_line(DataError, "100 rows but y_test.* 99", path, load_raw, path)


def test_zero_rows(tmp_path: Path, small: dict[str, np.ndarray]) -> None:
    path = tmp_path / "empty.npz"
    empty = {"x_test": small["x_test"][:0], "y_test": small["y_test"][:0]}
    np.savez(path, **dict(small, **empty))
    raises_one_line(DataError, "no rows", path, load_raw, path)


def test_label_10_in_npz(tmp_path: Path, small: dict[str, np.ndarray]) -> None:
    y = small["y_train"].copy()
    y[7] = 10
    path = tmp_path / "label.npz"
    np.savez(path, **dict(small, y_train=y))
    raises_one_line(DataError, r"y_train value 10 at row 7 is outside 0\.\.9", path, load_raw, path)


def test_already_scaled_floats_in_npz(tmp_path: Path, small: dict[str, np.ndarray]) -> None:
    path = tmp_path / "scaled.npz"
    np.savez(path, **dict(small, x_train=small["x_train"] / 255.0))
    raises_one_line(DataError, "not an integer.*already scaled", path, load_raw, path)


def test_label_10_in_csv(tmp_path: Path, small: dict[str, np.ndarray]) -> None:
    y = small["y_test"].copy()
    y[3] = 10
    folder = write_csv_pair(tmp_path / "csv", dict(small, y_test=y))
    path = folder / "mnist_test.csv"  # data row 3 is on line 5 (header is line 1)
    raises_one_line(
        DataError, r"label value 10 at line 5 is outside 0\.\.9", path, load_raw, folder
    )


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("256", r"256 .*outside 0\.\.255"),
        ("-1", r"-1 .*outside 0\.\.255"),
        ("0.5", "0.5 .*not an integer"),
    ],
)
def test_bad_pixel_in_csv(
    tmp_path: Path, small: dict[str, np.ndarray], value: str, match: str
) -> None:
    folder = write_csv_pair(tmp_path / "csv", small)
    path = folder / "mnist_train.csv"
    lines = path.read_text().splitlines()
    fields = lines[2].split(",")
    fields[100] = value
    lines[2] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    msg = raises_one_line(DataError, match, path, load_raw, folder)
    assert "line 3" in msg


def test_non_numeric_csv_field(tmp_path: Path, small: dict[str, np.ndarray]) -> None:
    folder = write_csv_pair(tmp_path / "csv", small)
    path = folder / "mnist_train.csv"
    lines = path.read_text().splitlines()
    lines[4] = lines[4].replace(",0,", ",x,", 1)
    path.write_text("\n".join(lines) + "\n")
    raises_one_line(DataError, "line 5, column .*'x' is not a number", path, load_raw, folder)


def test_csv_row_with_extra_column(tmp_path: Path, small: dict[str, np.ndarray]) -> None:
    folder = write_csv_pair(tmp_path / "csv", small)
    path = folder / "mnist_train.csv"
    lines = path.read_text().splitlines()
    lines[6] += ",0"
    path.write_text("\n".join(lines) + "\n")
    raises_one_line(DataError, "line 7 has 786 columns; expected 785", path, load_raw, folder)


def test_csv_with_784_columns(tmp_path: Path, small: dict[str, np.ndarray]) -> None:
    folder = tmp_path / "csv"
    write_csv_pair(folder, small)
    path = write_csv(folder / "mnist_test.csv", small["x_test"][:, 1:], small["y_test"])
    raises_one_line(DataError, "784 columns; expected 785", path, load_raw, folder)


def test_csv_header_only(tmp_path: Path, small: dict[str, np.ndarray]) -> None:
    folder = write_csv_pair(tmp_path / "csv", small)
    path = folder / "mnist_test.csv"
    path.write_text(CSV_HEADER + "\n")
    raises_one_line(DataError, "no data rows", path, load_raw, folder)


def test_only_one_csv(tmp_path: Path, small: dict[str, np.ndarray]) -> None:
    folder = write_csv_pair(tmp_path / "csv", small)
    (folder / "mnist_test.csv").unlink()
    raises_one_line(DataError, "mnist_test.csv", folder, load_raw, folder)


def test_csv_file_instead_of_folder(tmp_path: Path, small: dict[str, np.ndarray]) -> None:
    folder = write_csv_pair(tmp_path / "csv", small)
    path = folder / "mnist_train.csv"
    raises_one_line(DataError, "pass its folder", path, load_raw, path)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_truncated_idx(tmp_path: Path, small: dict[str, np.ndarray], gz: bool) -> None:
    folder = write_idx(tmp_path / "idx", small, gz=gz)
    path = folder / ("train-images-idx3-ubyte" + (".gz" if gz else ""))
    path.write_bytes(path.read_bytes()[:-100])
    match = r"not a valid gzip" if gz else r"header promises 156816"
    raises_one_line(DataError, match, path, load_raw, folder)


def test_idx_header_only_partial(tmp_path: Path, small: dict[str, np.ndarray]) -> None:
    folder = write_idx(tmp_path / "idx", small)
    path = folder / "t10k-labels-idx1-ubyte"
    path.write_bytes(b"\x00\x00\x08")
    raises_one_line(DataError, "too short", path, load_raw, folder)


def test_wrong_idx_magic(tmp_path: Path, small: dict[str, np.ndarray]) -> None:
    folder = write_idx(tmp_path / "idx", small)
    images, labels = folder / "t10k-images-idx3-ubyte", folder / "t10k-labels-idx1-ubyte"
    labels.write_bytes(images.read_bytes())  # images where labels belong
    raises_one_line(DataError, "magic number is 2051, expected 2049", labels, load_raw, folder)


def test_idx_count_mismatch(tmp_path: Path, small: dict[str, np.ndarray]) -> None:
    folder = write_idx(tmp_path / "idx", small)
    labels = folder / "train-labels-idx1-ubyte"
    labels.write_bytes(idx_labels(small["y_train"][:-1]))
    raises_one_line(DataError, "200 rows but labels.* 199", labels, load_raw, folder)


def test_corrupt_gzip(tmp_path: Path, small: dict[str, np.ndarray]) -> None:
    folder = write_idx(tmp_path / "idx", small, gz=True)
    path = folder / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(np.random.default_rng(1).bytes(2000))
    raises_one_line(DataError, "not a valid gzip", path, load_raw, folder)


def test_partial_idx_set(tmp_path: Path, small: dict[str, np.ndarray]) -> None:
    folder = write_idx(tmp_path / "idx", small)
    (folder / "t10k-labels-idx1-ubyte").unlink()
    raises_one_line(DataError, "lacks t10k-labels-idx1-ubyte", folder, load_raw, folder)


def test_empty_folder(tmp_path: Path) -> None:
    msg = raises_one_line(DataError, "no MNIST files found", tmp_path, load_raw, tmp_path)
    assert "mnist_train.csv" in msg and "train-images-idx3-ubyte" in msg


# --- the shipped copy must verify ------------------------------------------------------------


def test_tampered_shipped_copy_is_refused(
    tmp_path: Path, shipped: RawMNIST, monkeypatch: pytest.MonkeyPatch
) -> None:
    arrays = {k: getattr(shipped, k) for k in ("x_train", "y_train", "x_test", "y_test")}
    arrays["y_test"] = arrays["y_test"].copy()
    arrays["y_test"][0] = 3
    path = tmp_path / "mnist.npz"
    np.savez(path, **arrays)
    monkeypatch.setattr(data, "SHIPPED_PATH", path)
    raises_one_line(DataError, "shipped MNIST copy is corrupt.*reinstall", path, load_raw)
    assert load_raw(path).verified is False  # the same file passed explicitly is allowed


def test_truncated_shipped_copy_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "mnist.npz"
    shutil.copyfile(data.SHIPPED_PATH, path)
    path.write_bytes(path.read_bytes()[:1000])
    monkeypatch.setattr(data, "SHIPPED_PATH", path)
    raises_one_line(DataError, "shipped MNIST copy is corrupt.*reinstall", path, load_raw)


def test_missing_shipped_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "mnist.npz"
    monkeypatch.setattr(data, "SHIPPED_PATH", path)
    raises_one_line(DataError, "shipped MNIST copy is missing.*reinstall", path, load_raw)


# --- dtype -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float16", "int8", "nonsense", None])
def test_bad_dtype(shipped: RawMNIST, dtype: object) -> None:
    with pytest.raises(ConfigError, match=r"float32.*float64") as info:
        prepare(shipped, dtype)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_load_dataset_checks_dtype_before_loading(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="float16"):
        load_dataset(tmp_path / "does-not-exist.npz", dtype="float16")
