"""The markdown tables of results.md: accuracy, speed, cold start and the headline, one machine
at a time (rows scenario, a column group per backend), formatted from the runs frame."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pandas as pd

from bench.report.formatting import format_seconds, to_markdown
from bench.report.frame import runs_frame
from bench.report.summary import cells_frame
from bench.results.read import collect

Formatter = Callable[[pd.Series], str]


def _spread(r: pd.Series, low: str, high: str, text: Callable[[float], str]) -> str:
    """' ± half-width' of the 95 % interval over seeds; '' for one seed (no interval)."""
    if r["n_seeds"] < 2 or math.isnan(r[low]):
        return ""
    return f" ± {text((r[high] - r[low]) / 2)}"


def _final(r: pd.Series) -> str:
    text = f"{r['final_test_accuracy_pct']:.2f}"
    text += _spread(r, "ci95_low", "ci95_high", lambda v: f"{v:.2f}")
    if r["status"] in ("incomplete", "failed"):
        text += f" ({r['status']}: {r['epochs_run']}/{r['epochs']} ep)"
    return text


def _median(r: pd.Series, unit: str = "") -> str:
    cold = " (epoch 1, cold)" if r["epochs_run"] < 2 else ""
    spread = _spread(r, "speed_ci95_low", "speed_ci95_high", format_seconds)
    return format_seconds(r["median_s_per_epoch"]) + spread + unit + cold + _unstable_mark(r)


def _unless_nan(column: str, text: Callable[[float], str]) -> Formatter:
    """A formatter for ``column``: '—' when its value is NaN, else ``text(value)``."""

    def formatted(r: pd.Series) -> str:
        value = r[column]
        return "—" if math.isnan(value) else text(value)

    return formatted


_epoch5 = _unless_nan("test_accuracy_epoch5_pct", lambda v: f"{v:.2f}")


def _relative(r: pd.Series) -> str:
    """'×1.82 [1.75, 1.90]': the ratio to the reference paired by seed, with its 95 % interval
    ('×1.82' with one seed; '—' when there is no reference to pair with)."""
    value = r["relative_to_numpy"]
    if math.isnan(value):
        return "—"
    low, high = r.get("ratio_ci95_low", math.nan), r.get("ratio_ci95_high", math.nan)
    interval = "" if pd.isna(low) or pd.isna(high) else f" [{low:.2f}, {high:.2f}]"
    return f"×{value:.2f}{interval}"


def _unstable_mark(r: pd.Series) -> str:
    return " ⚠" if isinstance(r.get("unstable"), str) and r.get("unstable") else ""


_overhead = _unless_nan(
    "cold_overhead_s", lambda v: f"{'+' if v >= 0 else '−'}{format_seconds(abs(v))}"
)


def _device_step(r: pd.Series) -> str:
    """Median device µs per step and the interquartile range of the step times ('—' if none)."""
    median, iqr = r["device_step_median_us"], r["device_step_iqr_us"]
    if math.isnan(median):
        return "—"
    return f"{median:,.1f}" + ("" if math.isnan(iqr) else f" (IQR {iqr:,.1f})")


#: Columns shown only where some cell of the machine measured them (label → frame column).
MEASURED_ONLY = {"device s/epoch": "device_s_per_epoch", "device µs/step": "device_step_median_us"}


def _headline_cell(r: pd.Series) -> str:
    return f"{_final(r)} % · {_median(r, ' s')} · {_relative(r)}"


TABLES: dict[str, tuple[str, dict[str, Formatter]]] = {
    "Accuracy": (
        "Test accuracy (%) after the last epoch run (final) and after epoch 5 (ep5; — when the "
        "run has fewer than 5 epochs), means over the seeds run; ± is the half-width of the "
        "Student-t 95 % confidence interval over seeds (none with one seed); seeds = seeds per "
        "cell and epochs = epochs run (per backend, in column order, when they differ).",
        {"final %": _final, "ep5 %": _epoch5},
    ),
    "Speed": (
        "Median seconds per warm training epoch (build and evaluation excluded; with several "
        "seeds the mean of each seed's median, ± its 95 % interval), samples per "
        "second (= n_train / median), speed relative to NumPy on this machine (NumPy's median "
        "/ this one; ×2.00 = twice as fast), achieved GFLOP/s (the epoch's matrix products only) "
        "and its share of the GEMM peak of the device the cell ran on, measured on this machine "
        "in the same run: NumPy's on the host CPU for CPU cells, the GPU's own float32 (TF32 "
        "where the cell allowed it, float64 for float64 runs) for GPU cells (the FLOP floor: "
        "100 % would mean nothing but peak-rate matrix products). Where a backend measures it "
        "(CUDA events before the first step and after each): device s/epoch, the median device "
        "time of a warm epoch beside its wall time, and device µs/step, the median over warm "
        "epochs of each epoch's median step (± its interquartile range).",
        {
            "s/epoch": _median,
            "samples/s": lambda r: f"{r['samples_per_s']:,.0f}",
            "vs numpy": _relative,
            "GFLOP/s": _unless_nan("gflops", lambda v: f"{v:.1f}"),
            "% GEMM peak": _unless_nan("gemm_peak_pct", lambda v: f"{v:.0f} %"),
            "device s/epoch": _unless_nan("device_s_per_epoch", format_seconds),
            "device µs/step": _device_step,
        },
    ),
    "Cold start": (
        "Epoch-1 seconds, build seconds (model, optimizer state, data to the device; untimed) "
        "and cold overhead = epoch 1 − median warm epoch.",
        {
            "epoch 1 s": lambda r: format_seconds(r["epoch1_s"]),
            "build s": lambda r: format_seconds(r["build_s"]),
            "cold overhead s": _overhead,
        },
    ),
    "Memory": (
        "Peak resident memory of the process that trained the cell (host, MiB; with "
        "`--executor process` each cell has its own process, otherwise it is the shared "
        "process's peak so far) and the device's where the backend measures it (GPU, MiB), "
        "named by what it measures: (pool) CuPy's memory pool, arrays and cached blocks; "
        "(allocator peak) PyTorch's most bytes in tensors; (process peak) the XLA or TensorFlow "
        "allocator's peak over the whole process. They are not the same measure.",
        {
            "host MiB": _unless_nan("host_peak_mib", lambda v: f"{v:,.0f}"),
            "GPU MiB": lambda r: (
                ""
                if pd.isna(r["gpu_peak_mib"])
                else f"{r['gpu_peak_mib']:,.0f} ({r['gpu_memory_measure']})"
            ),
        },
    ),
}


def wide_table(frame: pd.DataFrame, columns: dict[str, Formatter]) -> pd.DataFrame:
    """Rows scenario, columns '<backend> <label>' (one machine's rows): formatted text; a skipped
    cell reads 'skipped', a scenario × backend that was not run reads 'not run'."""
    texts = {
        label: frame.apply(lambda r, f=fmt: "skipped" if r["status"] == "skipped" else f(r), axis=1)
        for label, fmt in columns.items()
    }
    shown = frame[["scenario", "backend"]].assign(**texts)
    wide = shown.pivot(index="scenario", columns="backend", values=list(columns))
    order = [(label, b) for b in frame["backend"].unique() for label in columns]
    wide = wide.reindex(columns=order).reindex(frame["scenario"].unique())
    wide.columns = [f"{b} {label}".strip() for label, b in wide.columns]
    wide.index.name = "scenario"
    return wide.fillna("not run")


def metric_tables(frame: pd.DataFrame) -> dict[str, tuple[str, pd.DataFrame]]:
    """{title: (legend, wide table)} for accuracy, speed, cold start and, where some cell
    measured it, memory (one machine's rows)."""
    tables = {
        title: (legend, wide_table(frame, _measured(frame, cols)))
        for title, (legend, cols) in TABLES.items()
    }
    if frame[["host_peak_mib", "gpu_peak_mib"]].isna().all(axis=None):
        del tables["Memory"]  # nothing measured (the pytest-benchmark suite records no memory)
    accuracy = tables["Accuracy"][1]
    for column in ("epochs_run", "n_seeds"):
        counts = frame.groupby("scenario", sort=False)[column].agg(_distinct)
        accuracy.insert(0, "epochs" if column == "epochs_run" else "seeds", counts)
    return tables


def _measured(frame: pd.DataFrame, columns: dict[str, Formatter]) -> dict[str, Formatter]:
    """``columns`` less those in MEASURED_ONLY that no row of ``frame`` measured."""
    return {
        label: fmt
        for label, fmt in columns.items()
        if label not in MEASURED_ONLY or frame[MEASURED_ONLY[label]].notna().any()
    }


def _distinct(values: pd.Series) -> str:
    return "/".join(str(int(v)) for v in dict.fromkeys(values.dropna())) or "—"


def headline_table(frame: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """(legend, table) for one machine: rows scenario, one column per backend."""
    legend = (
        "final test accuracy (%) · median warm s/epoch · speed vs NumPy on this machine "
        "(± = 95 % interval over seeds)"
    )
    return legend, wide_table(frame, {"": _headline_cell})


def headline_markdown(paths: Sequence[Path]) -> str:
    """The headline table (final test accuracy % · median warm s/epoch · speed vs NumPy), one per
    machine, as markdown for a README; unusable files are ignored ('' when none is usable)."""
    collection = collect(paths)
    if not collection.cells:
        return ""
    return headline_markdown_of(cells_frame(runs_frame(collection.cells, collection.machines)))


def by_machine(frame: pd.DataFrame) -> Iterator[tuple[str, pd.DataFrame]]:
    """(machine_id, its rows) for each machine, in order of first appearance."""
    for machine in frame["machine_id"].unique():
        yield machine, frame[frame["machine_id"] == machine]


def headline_markdown_of(frame: pd.DataFrame) -> str:
    parts = []
    for machine, rows in by_machine(frame):
        legend, table = headline_table(rows)
        parts += [f"**{machine}** — {legend}", to_markdown(table)]
    return "\n\n".join(parts)
