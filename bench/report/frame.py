"""The runs frame: one row per kept result cell, raw numbers, read from the result JSON only.

Units: seconds of wall clock, accuracy in percent, samples per second. The CSVs are columns of it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

import pandas as pd

from bench.results.read import Cell, as_dict
from bench.stats import (
    COLD_EPOCHS,
    REFERENCE,
    Levels,
    Ratio,
    has_warm_epochs,
    reference_of,
    round_median,
    speed_ratio,
    warm_epochs,
)

#: Each CSV's columns (long form, raw numbers; seconds, percent, samples per second, MiB).
KEY_COLUMNS = ["machine_id", "scenario", "backend", "status"]
#: Columns of the cells frame (over seeds) beside each estimate: seeds and 95 % intervals.
SPREAD = ["n_seeds", "ci95_low", "ci95_high"]
# fmt: off
CSV_COLUMNS = {
    "accuracy.csv": [*KEY_COLUMNS, "epochs_run", "epochs", "final_test_accuracy_pct", *SPREAD,
                     "test_accuracy_epoch5_pct", "n_train", "n_test", "reason", "source"],
    "speed.csv": [*KEY_COLUMNS, "median_s_per_epoch", "n_seeds", "speed_ci95_low",
                  "speed_ci95_high", "samples_per_s", "relative_to_numpy", "gflops",
                  "gemm_peak_pct", "peak_of", "device_s_per_epoch", "device_step_median_us",
                  "device_step_iqr_us", "stats_over", "n_train", "source",
                  # later additions go at the end, so the columns keep their places
                  "ratio_ci95_low", "ratio_ci95_high", "within_cv_pct", "between_cv_pct",
                  "unstable", "ratio_pairs", "ratio_level"],
    "cold_start.csv": [*KEY_COLUMNS, "epoch1_s", "build_s", "cold_overhead_s",
                       "median_s_per_epoch", "source"],
    "memory.csv": [*KEY_COLUMNS, "host_peak_mib", "gpu_peak_mib", "gpu_memory_measure", "pid",
                   "source"],
}
# fmt: on
#: Columns that describe a cell over its seeds, never one run.
CELL_ONLY = ("within_cv_pct", "between_cv_pct", "unstable", "ratio_pairs", "ratio_level")
#: The runs frame's numeric and text columns (one row per seed): runs.csv.
FRAME_COLUMNS = [
    "machine_id",
    "scenario",
    "backend",
    "seed",
    "status",
    *dict.fromkeys(
        c
        for cols in CSV_COLUMNS.values()
        for c in cols
        if c not in (*KEY_COLUMNS, *SPREAD, *CELL_ONLY, "relative_to_numpy")
        and not c.startswith(("speed_ci95", "ratio_ci95"))
    ),
    "relative_to_numpy",
    "round",
    "position",
    "steps_per_epoch",
    "step_bytes",
    "epoch_gflop",
    "design",
]
#: Columns of the runs frame that hold structures, not numbers (not in runs.csv).
NESTED_COLUMNS = ["settings", "history", "recipe", "warm_seconds", "conditions"]


def runs_frame(
    cells: Sequence[Cell], machines: dict[str, dict[str, Any]] | None = None
) -> pd.DataFrame:
    """One row per result (machine × scenario × backend × seed), ordered by scenario, then
    backend (numpy first), then seed, each in order of first appearance in the files.
    Seconds are wall clock; ``relative_to_numpy`` = numpy's median / this median on the same
    machine, scenario and seed, NaN unless both medians are over warm epochs; ``gflops`` = the
    epoch's matrix-product GFLOP / median seconds; ``gemm_peak_pct`` = gflops as a percentage of
    the GEMM peak of the device the cell ran on, measured on that machine in the same run
    (``machines``' facts): NumPy's on the host CPU for a CPU cell, the GPU's own (its float32,
    TF32 when the cell allowed TF32, or float64 rate) for a GPU cell; ``peak_of`` names which.
    ``device_s_per_epoch`` and ``device_step_*_us`` are the backend's device-side (CUDA event)
    times over the same warm epochs: the median epoch, and the median over epochs of each
    epoch's per-step median and interquartile range, in microseconds."""
    rows = [{**_row(c), **_peak_share(c, machines or {})} for c in cells]
    frame = pd.DataFrame(rows).reindex(columns=FRAME_COLUMNS + NESTED_COLUMNS)
    frame = frame.astype(
        {c: "Int64" for c in ("seed", "epochs_run", "epochs", "n_train", "n_test", "round",
                              "position")}
    )  # fmt: skip
    frame["relative_to_numpy"] = relative_to_reference(frame, ["machine_id", "scenario", "seed"])
    return sort_cells(frame, ["seed"])


def references(frame: pd.DataFrame) -> dict[tuple[str, str, str], str]:
    """(machine, scenario, backend) → the row its speed and accuracy are compared with:
    ``stats.reference_of`` among the backends with a warm run on that machine and scenario. The
    one choice the runs frame, the cells frame and the questions all use."""
    ran = frame[(frame["status"] != "skipped") & has_warm(frame)]
    present = ran.groupby(["machine_id", "scenario"], sort=False)["backend"].agg(set)
    cells = frame[["machine_id", "scenario", "backend"]].drop_duplicates()
    return {
        (m, s, b): reference_of(b, present.get((m, s), set()))
        for m, s, b in cells.itertuples(index=False)
    }


def relative_to_reference(frame: pd.DataFrame, keys: list[str]) -> pd.Series:
    """The reference row's warm median / each row's, matched on ``keys`` (the reference as
    ``references`` chooses it); NaN unless both are over warm epochs (a cold-only time is not
    comparable)."""
    warm = frame["median_s_per_epoch"].where(has_warm(frame))
    rows = frame.assign(_warm=warm).drop_duplicates([*keys, "backend"])
    chosen = references(frame)
    against = [
        chosen[(m, s, b)]
        for m, s, b in zip(frame["machine_id"], frame["scenario"], frame["backend"], strict=True)
    ]
    lookup = rows.set_index([*keys, "backend"])["_warm"]
    index = pd.MultiIndex.from_arrays([*(frame[k] for k in keys), against])
    reference = lookup.reindex(index).to_numpy(dtype=float)
    return pd.Series(reference / warm.to_numpy(dtype=float), frame.index)


def warm_by_round(group: pd.DataFrame) -> dict[int, list[float]]:
    """Runs of one cell → round (seed; -1 without one) → its warm epochs' seconds, in order."""
    seeds = group["seed"].fillna(-1).astype(int)
    return {
        seed: warm_epochs([h["seconds"] for h in history])
        for seed, history in zip(seeds, group["history"], strict=True)
        if isinstance(history, list)
    }


def in_lockstep(group: pd.DataFrame) -> bool:
    """Whether every run of ``group`` trained in lockstep rounds (``design``)."""
    return bool(len(group)) and bool((group["design"] == "lockstep").all())


def speed_ratio_between(
    reference: pd.DataFrame, group: pd.DataFrame
) -> tuple[Ratio, Levels | None]:
    """The reference cell's time / this cell's, from their runs' warm epochs by the one rule
    (``bench.stats.speed_ratio``): epoch by epoch where both trained in lockstep in one run (the
    same results file); rounds of two runs pair only by their medians."""
    same_run = set(reference["source"]) == set(group["source"])
    return speed_ratio(
        warm_by_round(reference),
        warm_by_round(group),
        same_run and in_lockstep(reference) and in_lockstep(group),
    )


def division_of(backend: str) -> str:
    """A table row's division: 'tuned' for 'jax (tuned)' (``results.read.division_label``),
    'shipped' for a plain name."""
    return backend.rsplit(" (", 1)[1].rstrip(")") if str(backend).endswith(")") else "shipped"


def base_of(backend: str) -> str:
    """The backend a table row is of: 'jax' for 'jax (tuned)'."""
    return str(backend).rsplit(" (", 1)[0] if str(backend).endswith(")") else str(backend)


def has_warm(frame: pd.DataFrame) -> pd.Series:
    """Per row: whether its run has a warm epoch (``bench.stats.has_warm_epochs``)."""
    return (
        frame["epochs_run"].map(lambda n: not pd.isna(n) and has_warm_epochs(int(n))).astype(bool)
    )


def sort_cells(frame: pd.DataFrame, then: list[str]) -> pd.DataFrame:
    """Scenarios, then backends (numpy first), in order of first appearance; then ``then``."""
    order = _order(frame["scenario"], []), _order(frame["backend"], [REFERENCE])
    frame = frame.assign(_s=frame["scenario"].map(order[0]), _b=frame["backend"].map(order[1]))
    by = ["_s", "_b", *then]
    return frame.sort_values(by, kind="stable").drop(columns=["_s", "_b"]).reset_index(drop=True)


def _row(cell: Cell) -> dict[str, Any]:
    row = {
        "machine_id": cell.machine_id,
        "scenario": cell.scenario,
        "backend": cell.backend,
        "seed": cell.seed,
        "source": cell.source,
        "reason": cell.reason,
        "settings": {},
        "history": [],
        "recipe": {},
        "warm_seconds": [],
        "conditions": {},
    }
    if cell.entry is None:
        return {**row, "status": "skipped"}
    extra = cell.entry["extra_info"]
    history = extra["history"]
    settings = as_dict(extra.get("settings"))
    epoch5 = [h["test_accuracy"] for h in history if h.get("epoch") == 5]
    return {
        **row,
        "status": _status(extra),
        "reason": extra.get("failed"),
        "epochs_run": len(history),
        "epochs": settings.get("epochs") or _scenario_epochs(extra) or len(history),
        "final_test_accuracy_pct": 100 * history[-1]["test_accuracy"],
        "test_accuracy_epoch5_pct": 100 * epoch5[0] if epoch5 else math.nan,
        "n_train": extra["n_train"],
        "n_test": extra.get("n_test"),
        "settings": settings,
        "history": history,
        "recipe": as_dict(extra.get("scenario")),
        "warm_seconds": list(cell.entry["stats"].get("data") or [])
        if has_warm_epochs(len(history))
        else [],
        "conditions": as_dict(extra.get("conditions")),
        "steps_per_epoch": extra.get("steps_per_epoch", math.nan),
        "step_bytes": extra.get("step_bytes", math.nan),
        "epoch_gflop": extra.get("epoch_gflop", math.nan),
        "round": extra.get("round"),
        "position": extra.get("position"),
        "design": extra.get("design"),
        **_timing(cell.entry),
        **_device_time(history),
        **_memory(extra, settings),
    }


def _scenario_epochs(extra: dict[str, Any]) -> int | None:
    return as_dict(extra.get("scenario")).get("epochs")


def _status(extra: dict[str, Any]) -> str:
    if extra.get("failed"):
        return "failed"
    return "ok" if extra.get("complete", True) else "incomplete"


#: Where backends record the peak device memory of a run (bytes), in settings().
GPU_PEAK_KEYS = ("gpu_peak_bytes", "gpu_peak_memory_bytes", "peak_pool_bytes")
#: What each framework's number measures, as backends name it in ``gpu_memory_measure``:
#: "pool" (CuPy: bytes its memory pool holds, in arrays and cached blocks), "allocator peak"
#: (PyTorch: the most bytes its caching allocator had in tensors), "process peak" (JAX/XLA and
#: TensorFlow: the allocator's peak over the whole process, which cannot be reset). Results from
#: before the name was recorded say "unnamed".
GPU_MEASURES = ("pool", "allocator peak", "process peak")


def _memory(extra: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """Host peak RSS of the process that trained the cell, and the device's peak, in MiB, with
    what that device number measures (``GPU_MEASURES``): three frameworks, three measures."""
    key = next((k for k in GPU_PEAK_KEYS if isinstance(settings.get(k), int)), None)
    rss = extra.get("peak_rss_bytes")
    return {
        "host_peak_mib": rss / 2**20 if rss else math.nan,
        "gpu_peak_mib": settings[key] / 2**20 if key else math.nan,
        "gpu_memory_measure": settings.get("gpu_memory_measure", "unnamed") if key else None,
        "pid": extra.get("pid"),
    }


def _peak_share(cell: Cell, machines: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Achieved GFLOP/s and its share (%) of the GEMM peak of the device the cell ran on."""
    if cell.entry is None or not cell.entry["extra_info"].get("epoch_gflop"):
        return {"gflops": math.nan, "gemm_peak_pct": math.nan, "peak_of": None}
    extra = cell.entry["extra_info"]
    gflops = extra["epoch_gflop"] / _timing(cell.entry)["median_s_per_epoch"]
    facts = as_dict(as_dict(machines.get(cell.machine_id)).get("mlpbench"))
    peak, peak_of = device_peak(facts, as_dict(extra.get("settings")))
    share = 100 * gflops / peak if peak else math.nan
    return {"gflops": gflops, "gemm_peak_pct": share, "peak_of": peak_of if peak else None}


def device_peak(facts: dict[str, Any], settings: dict[str, Any]) -> tuple[float | None, str]:
    """(GEMM peak GFLOP/s, what it is) for a cell's settings on a machine's facts: the GPU's
    own rate for a GPU cell (TF32 when the cell allowed it and ran float32), never the host's;
    NumPy's host rate for a CPU cell. None when that device's peak was not measured."""
    dtype = settings.get("dtype")
    if settings.get("device") != "gpu":
        return as_dict(facts.get("gemm_peak_gflops")).get(dtype), f"host CPU {dtype}"
    kind = "tf32" if dtype == "float32" and settings.get("tf32") is True else dtype
    gpu = _gpu_of(facts.get("gpus"), settings.get("gpu"))
    return as_dict(gpu.get("gemm_peak_gflops")).get(kind), f"{gpu.get('name', 'GPU')} {kind}"


def _gpu_of(gpus: Any, used: Any) -> dict[str, Any]:
    """The machine's facts about the GPU a cell used (``settings["gpu"]``: CuPy's device object
    or a name): matched by index, else by name, else the only GPU; {} when it is ambiguous."""
    gpus = [g for g in gpus if isinstance(g, dict)] if isinstance(gpus, list) else []
    if isinstance(used, dict) and "index" in used:
        found = [g for g in gpus if g.get("index") == used["index"]]
    else:
        name = used.get("name") if isinstance(used, dict) else used
        found = [g for g in gpus if g.get("name") == name and "gemm_peak_gflops" in g]
    found = found or (gpus if len(gpus) == 1 else [])
    return found[0] if found else {}


def _device_time(history: list[dict[str, Any]]) -> dict[str, float]:
    """Median device seconds per warm epoch (epochs 2.., or epoch 1 alone), and the median over
    those epochs of each one's per-step median and IQR (µs); NaN where not measured."""
    warm = history[COLD_EPOCHS:] or history

    def median_of(key: str, scale: float = 1.0) -> float:
        values = [h[key] for h in warm if isinstance(h.get(key), int | float)]
        return scale * statistics.median(values) if values else math.nan

    return {
        "device_s_per_epoch": median_of("device_seconds"),
        "device_step_median_us": median_of("device_step_median_s", 1e6),
        "device_step_iqr_us": median_of("device_step_iqr_s", 1e6),
    }


def _timing(entry: dict[str, Any]) -> dict[str, Any]:
    """Median epoch seconds (from stats.data when present), throughput and cold start."""
    extra, stats = entry["extra_info"], entry["stats"]
    median = round_median(stats["data"]) if stats.get("data") else stats["median"]
    cold = extra["history"][0]["seconds"]
    return {
        "median_s_per_epoch": median,
        "samples_per_s": extra["n_train"] / median,
        "stats_over": extra.get("stats_over"),
        "epoch1_s": cold,
        "build_s": extra.get("build_seconds"),
        "cold_overhead_s": cold - median if has_warm_epochs(len(extra["history"])) else math.nan,
    }


def _order(values: pd.Series, first: Sequence[str]) -> dict[str, int]:
    """Sort keys: the names in ``first``, then the others in order of first appearance (the
    order the results files list them in)."""
    known = list(dict.fromkeys([*first, *values.unique()]))
    return {v: known.index(v) for v in values.unique()}
