"""The runs frame → results.md (markdown via tabulate), CSVs and plots: ``mlpbench table``.

Contract:
- Input: the cells ``bench.result_files.collect`` keeps (one per machine × scenario × backend, the
  newest when files repeat one); unusable files are its ``problems``, passed on in
  ``TablesReport.problems``. Caveats come from ``bench.caveats``.
- Machines never share a table: each machine_id gets its own accuracy, speed and cold-start tables,
  and "vs numpy" divides medians measured on the same machine only.
- Units: seconds of wall clock, accuracy in percent, samples per second.
- ``write_tables`` writes results.md, accuracy.csv, speed.csv and cold_start.csv (long form: one
  row per machine × scenario × backend, raw numbers), accuracy_vs_time.png and speed.png.

Sections: the runs frame → markdown tables → machine facts → results.md and writing.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

import backends
import scenarios
from bench.caveats import AGREEMENT, caveats
from bench.errors import MlpbenchError
from bench.result_files import Cell, Collection, as_dict, collect


@dataclass(frozen=True)
class TablesReport:
    """What ``write_tables`` did: files written (empty when no file held a result), one line per
    unusable file or skipped step, and the whole results.md text."""

    written: list[Path]
    problems: list[str]
    markdown: str


# --- the runs frame: one row per kept cell, raw numbers ------------------------------------------

#: Each CSV's columns (long form, raw numbers; seconds, percent, samples per second).
KEY_COLUMNS = ["machine_id", "scenario", "backend", "status"]
# fmt: off
CSV_COLUMNS = {
    "accuracy.csv": [*KEY_COLUMNS, "epochs_run", "epochs", "final_test_accuracy_pct",
                     "test_accuracy_epoch5_pct", "n_train", "n_test", "reason", "source"],
    "speed.csv": [*KEY_COLUMNS, "median_s_per_epoch", "samples_per_s", "relative_to_numpy",
                  "gflops", "gemm_peak_pct", "stats_over", "n_train", "source"],
    "cold_start.csv": [*KEY_COLUMNS, "epoch1_s", "build_s", "cold_overhead_s",
                       "median_s_per_epoch", "source"],
}
# fmt: on
FRAME_COLUMNS = [
    *dict.fromkeys(c for cols in CSV_COLUMNS.values() for c in cols if c != "relative_to_numpy"),
    "settings",
    "history",
]


def runs_frame(
    cells: Sequence[Cell], machines: dict[str, dict[str, Any]] | None = None
) -> pd.DataFrame:
    """One row per cell, ordered by catalogue scenario order, then backend (numpy first).
    Seconds are wall clock; ``relative_to_numpy`` = numpy's median / this median on the same
    machine and scenario, NaN unless both medians are over warm epochs; ``gflops`` = the epoch's
    matrix-product GFLOP / median seconds; ``gemm_peak_pct`` = gflops as a percentage of the NumPy
    GEMM peak measured on that machine (``machines``' facts) for the run's dtype."""
    rows = [{**_row(c), **_peak_share(c, machines or {})} for c in cells]
    frame = pd.DataFrame(rows).reindex(columns=FRAME_COLUMNS)
    frame = frame.astype({c: "Int64" for c in ("epochs_run", "epochs", "n_train", "n_test")})
    numpy = frame[frame["backend"] == "numpy"].set_index(["machine_id", "scenario"])
    same = pd.MultiIndex.from_frame(frame[["machine_id", "scenario"]])
    warm = frame["median_s_per_epoch"].where(frame["epochs_run"] >= 2).to_numpy(dtype=float)
    numpy_warm = numpy["median_s_per_epoch"].where(numpy["epochs_run"] >= 2)
    frame["relative_to_numpy"] = numpy_warm.reindex(same).to_numpy(dtype=float) / warm
    order = _order(frame["scenario"], scenarios.SCENARIOS), _order(frame["backend"], _backends())
    frame = frame.assign(_s=frame["scenario"].map(order[0]), _b=frame["backend"].map(order[1]))
    return frame.sort_values(["_s", "_b"]).drop(columns=["_s", "_b"]).reset_index(drop=True)


def _row(cell: Cell) -> dict[str, Any]:
    row = {
        "machine_id": cell.machine_id,
        "scenario": cell.scenario,
        "backend": cell.backend,
        "source": cell.source,
        "reason": cell.reason,
        "settings": {},
        "history": [],
    }
    if cell.entry is None:
        return {**row, "status": "skipped"}
    extra = cell.entry["extra_info"]
    history = extra["history"]
    settings = as_dict(extra.get("settings"))
    epoch5 = [h["test_accuracy"] for h in history if h.get("epoch") == 5]
    return {
        **row,
        "status": "ok" if extra.get("complete", True) else "incomplete",
        "epochs_run": len(history),
        "epochs": settings.get("epochs", len(history)),
        "final_test_accuracy_pct": 100 * history[-1]["test_accuracy"],
        "test_accuracy_epoch5_pct": 100 * epoch5[0] if epoch5 else math.nan,
        "n_train": extra["n_train"],
        "n_test": extra.get("n_test"),
        "settings": settings,
        "history": history,
        **_timing(cell.entry),
    }


def _peak_share(cell: Cell, machines: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Achieved GFLOP/s and its share (%) of the machine's measured GEMM peak in the run's dtype."""
    if cell.entry is None or not cell.entry["extra_info"].get("epoch_gflop"):
        return {"gflops": math.nan, "gemm_peak_pct": math.nan}
    extra = cell.entry["extra_info"]
    gflops = extra["epoch_gflop"] / _timing(cell.entry)["median_s_per_epoch"]
    facts = as_dict(as_dict(machines.get(cell.machine_id)).get("mlpbench"))
    peak = as_dict(facts.get("gemm_peak_gflops")).get(as_dict(extra.get("settings")).get("dtype"))
    return {"gflops": gflops, "gemm_peak_pct": 100 * gflops / peak if peak else math.nan}


def _timing(entry: dict[str, Any]) -> dict[str, Any]:
    """Median epoch seconds (from stats.data when present), throughput and cold start."""
    extra, stats = entry["extra_info"], entry["stats"]
    median = statistics.median(stats["data"]) if stats.get("data") else stats["median"]
    cold = extra["history"][0]["seconds"]
    return {
        "median_s_per_epoch": median,
        "samples_per_s": extra["n_train"] / median,
        "stats_over": extra.get("stats_over"),
        "epoch1_s": cold,
        "build_s": extra.get("build_seconds"),
        "cold_overhead_s": cold - median if len(extra["history"]) > 1 else math.nan,
    }


def _backends() -> list[str]:
    return ["numpy", *backends.names()]


def _order(values: pd.Series, catalogue: Sequence[str]) -> dict[str, tuple[int, str]]:
    known = list(dict.fromkeys(catalogue))
    return {v: (known.index(v) if v in known else len(known), v) for v in values.unique()}


# --- markdown tables -----------------------------------------------------------------------------

Formatter = Callable[[pd.Series], str]


def format_seconds(seconds: float) -> str:
    """Seconds with three significant digits ('0.0584', '2.30', '123'); '—' for none."""
    if seconds is None or math.isnan(seconds):
        return "—"
    return f"{seconds:.0f}" if abs(seconds) >= 100 else f"{seconds:#.3g}"


def _final(r: pd.Series) -> str:
    text = f"{r['final_test_accuracy_pct']:.2f}"
    if r["status"] == "incomplete":
        text += f" (incomplete: {r['epochs_run']}/{r['epochs']} ep)"
    return text


def _median(r: pd.Series, unit: str = "") -> str:
    cold = " (epoch 1, cold)" if r["epochs_run"] < 2 else ""
    return format_seconds(r["median_s_per_epoch"]) + unit + cold


def _unless_nan(column: str, text: Callable[[float], str]) -> Formatter:
    """A formatter for ``column``: '—' when its value is NaN, else ``text(value)``."""

    def formatted(r: pd.Series) -> str:
        value = r[column]
        return "—" if math.isnan(value) else text(value)

    return formatted


_epoch5 = _unless_nan("test_accuracy_epoch5_pct", lambda v: f"{v:.2f}")
_relative = _unless_nan("relative_to_numpy", lambda v: f"×{v:.2f}")
_overhead = _unless_nan(
    "cold_overhead_s", lambda v: f"{'+' if v >= 0 else '−'}{format_seconds(abs(v))}"
)


def _headline_cell(r: pd.Series) -> str:
    return f"{_final(r)} % · {_median(r, ' s')} · {_relative(r)}"


TABLES: dict[str, tuple[str, dict[str, Formatter]]] = {
    "Accuracy": (
        "Test accuracy (%) after the last epoch run (final) and after epoch 5 (ep5; — when the "
        "run has fewer than 5 epochs); epochs = epochs run (per backend, in column order, when "
        "they differ).",
        {"final %": _final, "ep5 %": _epoch5},
    ),
    "Speed": (
        "Median seconds per warm training epoch (build and evaluation excluded), samples per "
        "second (= n_train / median), speed relative to NumPy on this machine (NumPy's median "
        "/ this one; ×2.00 = twice as fast), achieved GFLOP/s (the epoch's matrix products only) "
        "and its share of the NumPy GEMM peak measured on this machine in the same run (the "
        "FLOP floor: 100 % would mean nothing but peak-rate matrix products).",
        {
            "s/epoch": _median,
            "samples/s": lambda r: f"{r['samples_per_s']:,.0f}",
            "vs numpy": _relative,
            "GFLOP/s": _unless_nan("gflops", lambda v: f"{v:.1f}"),
            "% GEMM peak": _unless_nan("gemm_peak_pct", lambda v: f"{v:.0f} %"),
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
    """{title: (legend, wide table)} for accuracy, speed and cold start (one machine's rows)."""
    tables = {title: (legend, wide_table(frame, cols)) for title, (legend, cols) in TABLES.items()}
    epochs = frame.groupby("scenario", sort=False)["epochs_run"].agg(_distinct)
    tables["Accuracy"][1].insert(0, "epochs", epochs.reindex(tables["Accuracy"][1].index))
    return tables


def _distinct(values: pd.Series) -> str:
    return "/".join(str(int(v)) for v in dict.fromkeys(values.dropna())) or "—"


def headline_table(frame: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """(legend, table) for one machine: rows scenario, one column per backend."""
    legend = "final test accuracy (%) · median warm s/epoch · speed vs NumPy on this machine"
    return legend, wide_table(frame, {"": _headline_cell})


def headline_markdown(paths: Sequence[Path]) -> str:
    """The headline table (final test accuracy % · median warm s/epoch · speed vs NumPy), one per
    machine, as markdown for a README; unusable files are ignored ('' when none is usable)."""
    collection = collect(paths)
    return _headline(runs_frame(collection.cells, collection.machines)) if collection.cells else ""


def _by_machine(frame: pd.DataFrame) -> Iterator[tuple[str, pd.DataFrame]]:
    """(machine_id, its rows) for each machine, in order of first appearance."""
    for machine in frame["machine_id"].unique():
        yield machine, frame[frame["machine_id"] == machine]


def _headline(frame: pd.DataFrame) -> str:
    parts = []
    for machine, rows in _by_machine(frame):
        legend, table = headline_table(rows)
        parts += [f"**{machine}** — {legend}", to_markdown(table)]
    return "\n\n".join(parts)


# --- machine facts -------------------------------------------------------------------------------


def machine_facts_table(machines: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Rows fact, one column per machine_id: CPU, BLAS, packages, env, GPUs, Python."""
    return pd.DataFrame({m: _facts(info) for m, info in machines.items()}).rename_axis("fact")


def _facts(info: dict[str, Any]) -> dict[str, str]:
    facts = info.get("mlpbench") if isinstance(info.get("mlpbench"), dict) else None
    python = f"{info.get('python_implementation', '')} {info.get('python_version', '?')}"
    if facts is None:
        cpu = (info.get("cpu") or {}).get("brand_raw", "?")
        return {
            "CPU model": cpu,
            "logical CPUs": str((info.get("cpu") or {}).get("count", "?")),
            "BLAS": "not recorded (no mlpbench machine facts in this file)",
            "Python": python,
        }
    return {
        "CPU model": str(facts.get("cpu_model", "?")),
        "logical CPUs": str(facts.get("logical_cpus", "?")),
        "BLAS": "; ".join(_blas(p) for p in facts.get("blas") or []) or "none found",
        "packages": ", ".join(f"{k} {v}" for k, v in (facts.get("packages") or {}).items()),
        "env": ", ".join(f"{k}={v}" for k, v in (facts.get("env") or {}).items()) or "none set",
        "GPUs": "; ".join(_gpu(g) for g in facts.get("gpus") or []) or "none",
        "Python": python.strip(),
        "system": f"{info.get('system', '?')} {info.get('release', '')}".strip(),
    }


def _blas(pool: dict[str, Any]) -> str:
    return (
        f"{pool.get('internal_api')} {pool.get('version')} ({pool.get('architecture')}, "
        f"{pool.get('num_threads')} threads)"
    )


def _gpu(gpu: dict[str, Any]) -> str:
    rest = ", ".join(f"{k} {v}" for k, v in gpu.items() if k != "name")
    return f"{gpu.get('name', 'GPU')} ({rest})" if rest else str(gpu.get("name", "GPU"))


# --- results.md and writing ----------------------------------------------------------------------


def results_markdown(collection: Collection) -> str:
    """results.md: sources, headline, per-machine accuracy / speed / cold-start tables, caveats
    (ending with the agreement paragraph) and machine facts."""
    frame = runs_frame(collection.cells, collection.machines)
    parts = [
        "# mlpbench results",
        "Read from:\n\n" + _bullets(collection.sources),
        "## Summary",
        _headline(frame),
    ]
    for machine, rows in _by_machine(frame):
        parts.append(f"## Results on {machine}")
        for title, (legend, table) in metric_tables(rows).items():
            parts += [f"### {title}", legend, to_markdown(table)]
    parts += [
        "## Caveats",
        _bullets(caveats(frame, collection)) or "No generated caveats.",
        AGREEMENT,
    ]
    parts += ["## Machines", to_markdown(machine_facts_table(collection.machines), align="left")]
    return "\n\n".join(parts) + "\n"


def write_tables(paths: Sequence[Path], out_dir: Path) -> TablesReport:
    """Read ``paths``; write results.md, the CSVs and the plots into ``out_dir`` (created if
    needed). Writes nothing when no file held a result. Raises MlpbenchError (one line) when
    ``out_dir`` cannot be written."""
    collection = collect(paths)
    if not collection.cells:
        return TablesReport([], list(collection.problems), "")
    markdown = results_markdown(collection)
    frame = runs_frame(collection.cells, collection.machines)
    out_dir, problems = Path(out_dir), list(collection.problems)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "results.md").write_text(markdown, encoding="utf-8")
        written = [out_dir / "results.md"]
        for name, columns in CSV_COLUMNS.items():
            frame.reindex(columns=columns).to_csv(out_dir / name, index=False, float_format="%.6g")
            written.append(out_dir / name)
        written += _plots(frame, out_dir, problems)
    except OSError as err:
        raise MlpbenchError(
            f"cannot write tables to {out_dir}: {err.strerror or err}; choose another --out"
        ) from None
    return TablesReport(written, problems, markdown)


def _plots(frame: pd.DataFrame, out_dir: Path, problems: list[str]) -> list[Path]:
    from bench import plots

    try:
        return plots.write_plots(frame, out_dir)
    except plots.PlotsUnavailable as err:
        problems.append(str(err))
        return []


def to_markdown(table: pd.DataFrame, align: str = "right") -> str:
    """The table as GitHub markdown, cells exactly as formatted (no re-parsing of numbers)."""
    colalign = ("left", *[align] * len(table.columns))
    return table.to_markdown(disable_numparse=True, colalign=colalign)


def _bullets(lines: Sequence[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)
