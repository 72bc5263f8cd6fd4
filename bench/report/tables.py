"""The markdown tables of results.md, one machine at a time, formatted from the cells frame
(``bench.report.summary``): one table per scenario (rows backend: seeds, accuracy, speed and its
ratio to NumPy, GFLOP/s and share of the GEMM peak, the cold epoch — or device times where a
backend records them), the memory table (rows scenario × backend) and the headline (rows
scenario)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pandas as pd

from bench.report.formatting import escape_markdown, format_seconds, ratio_text, to_markdown
from bench.report.frame import division_of, runs_frame
from bench.report.summary import cells_frame
from bench.results.read import collect
from bench.stats import (
    REFERENCE,
    REFERENCE_RULE,
    has_warm_epochs,
    paired_difference,
    speed_ratio,
    warm_epochs,
)

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
    cold = "" if has_warm_epochs(r["epochs_run"]) else " (epoch 1, cold)"
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
    """'×1.82 [1.75, 1.90]': the ratio to the reference (``stats.REFERENCE_RULE``), 95 % interval
    ('×1.82' with one seed or a tie, such as the reference against itself; '—' when there is
    no reference to pair with)."""
    return ratio_text(
        r["relative_to_numpy"],
        r.get("ratio_ci95_low", math.nan),
        r.get("ratio_ci95_high", math.nan),
    )


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


PER_SCENARIO_LEGEND = (
    "One table per scenario, backends as rows (tuned ones as `backend (tuned)`). seeds: seeds "
    "(rounds) run. final %: test accuracy after the last epoch, mean over seeds ± the half-width "
    "of its Student-t 95 % interval. s/epoch: median seconds per warm training epoch (build and "
    "evaluation excluded; the mean over seeds of each seed's median ± its 95 % interval; ⚠ "
    "unstable, see below). "
    + REFERENCE_RULE
    + " GFLOP/s: achieved, the epoch's matrix products only; % "
    "peak: its share of the GEMM peak of the device the cell ran on, measured on this machine "
    "in the same run (NumPy's on the host CPU for CPU cells; the GPU's own float32, TF32 or "
    "float64 rate for GPU cells). epoch 1 s: the cold epoch. Where a backend measures them "
    "(CUDA events), device s/epoch and device µs/step (median step ± its interquartile range) "
    "replace GFLOP/s and epoch 1 s. More in the CSVs: accuracy after epoch 5, samples/s, build "
    "and cold-overhead seconds, the variation within and between rounds."
)
MEMORY_LEGEND = (
    "Peak resident memory of the process that trained the cell (host, MiB; with "
    "`--executor lockstep`, the default, or `process` each cell has its own process; with "
    "`inprocess` it is the shared process's peak so far) and the device's where the backend "
    "measures it (GPU, MiB), named by what it measures: (pool) CuPy's memory pool, arrays and "
    "cached blocks; (allocator peak) PyTorch's "
    "most bytes in tensors; (process peak) the XLA or TensorFlow allocator's peak over the whole "
    "process. They are not the same measure."
)


def _seeds(r: pd.Series) -> str:
    return str(int(r["n_seeds"])) if r["n_seeds"] == r["n_seeds"] else "0"


SCENARIO_COLUMNS: dict[str, Formatter] = {
    "seeds": _seeds,
    "final %": _final,
    "s/epoch": _median,
    "vs numpy": _relative,
    "GFLOP/s": _unless_nan("gflops", lambda v: f"{v:.1f}"),
    "% peak": _unless_nan("gemm_peak_pct", lambda v: f"{v:.0f} %"),
    "epoch 1 s": lambda r: format_seconds(r["epoch1_s"]),
}
#: On a device that records CUDA events these replace GFLOP/s and epoch 1 s (8 columns at most).
DEVICE_COLUMNS: dict[str, Formatter] = {
    "device s/epoch": _unless_nan("device_s_per_epoch", format_seconds),
    "device µs/step": _device_step,
}


def _cell(label: str, fmt: Formatter, r: pd.Series) -> str:
    if r["status"] != "skipped" or label == "seeds":
        return fmt(r)
    return f"skipped: {r['reason']}" if label == "s/epoch" else "skipped"


def scenario_table(rows: pd.DataFrame, device: bool) -> pd.DataFrame:
    """One scenario's cells of one machine: rows backend, ``SCENARIO_COLUMNS`` (with the device
    columns instead of GFLOP/s and epoch 1 s when ``device``); a skipped cell says why."""
    columns = dict(SCENARIO_COLUMNS)
    if device:
        del columns["GFLOP/s"], columns["epoch 1 s"]
        columns.update(DEVICE_COLUMNS)
    table = pd.DataFrame(
        [
            {label: _cell(label, fmt, r) for label, fmt in columns.items()}
            for _, r in rows.iterrows()
        ],
        index=list(rows["backend"]),
    )
    table.index.name = "backend"
    return table


def memory_table(frame: pd.DataFrame) -> pd.DataFrame | None:
    """Rows scenario × backend with host and GPU peaks (None when nothing measured memory)."""
    if frame[["host_peak_mib", "gpu_peak_mib"]].isna().all(axis=None):
        return None  # the pytest-benchmark suite records no memory
    ran = frame[frame["status"] != "skipped"]
    host = _unless_nan("host_peak_mib", lambda v: f"{v:,.0f}")
    table = pd.DataFrame(
        {
            "backend": list(ran["backend"]),
            "host MiB": [host(r) for _, r in ran.iterrows()],
            "GPU MiB": [_gpu_memory(r) for _, r in ran.iterrows()],
        },
        index=list(ran["scenario"]),
    )
    table.index.name = "scenario"
    return table


def _gpu_memory(r: pd.Series) -> str:
    if pd.isna(r["gpu_peak_mib"]):
        return "—"
    return f"{r['gpu_peak_mib']:,.0f} ({r['gpu_memory_measure']})"


def machine_sections(frame: pd.DataFrame) -> list[str]:
    """One machine's per-scenario tables and its memory table, as markdown parts."""
    device = bool(frame[["device_s_per_epoch", "device_step_median_us"]].notna().any(axis=None))
    parts = ["### Per scenario", PER_SCENARIO_LEGEND]
    for scenario, rows in frame.groupby("scenario", sort=False):
        parts += [f"#### {escape_markdown(scenario)}", to_markdown(scenario_table(rows, device))]
    memory = memory_table(frame)
    if memory is not None:
        parts += ["### Memory", MEMORY_LEGEND, to_markdown(memory)]
    return parts


HEADLINE_LEGEND = (
    "per scenario: NumPy's median warm s/epoch, the fastest backend with its lead over the next "
    "fastest of the same run (the same rule), its s/epoch and its ratio to its reference row "
    "([95 % interval]; see vs numpy below), and the most accurate backend with its final test "
    "accuracy (± = 95 % interval over seeds) and its lead over the next. A winner is named only "
    "where the paired interval of its lead excludes a tie; otherwise the row says tie, or, with "
    "one seed, that it cannot tell"
)


def headline_table(frame: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """(legend, table) for one machine: rows scenario, five columns."""
    rows = []
    for scenario, group in frame.groupby("scenario", sort=False):
        ran = group[(group["status"] != "skipped") & group["median_s_per_epoch"].notna()]
        if ran.empty:
            continue
        fastest = ran.loc[ran["median_s_per_epoch"].idxmin()]
        best = ran.loc[ran["final_test_accuracy_pct"].idxmax()]
        numpy = ran[ran["backend"] == REFERENCE]

        rows.append(
            {
                "scenario": scenario,
                "numpy s/epoch": _median(numpy.iloc[0]) if len(numpy) else "not run",
                "fastest": _winner(fastest, _runner_up(ran, fastest, "median_s_per_epoch")),
                "its s/epoch": _median(fastest),
                "vs numpy": _relative(fastest),
                "most accurate": _most_accurate(
                    best, _runner_up(ran, best, "final_test_accuracy_pct", largest=True)
                ),
            }
        )
    table = pd.DataFrame(rows).set_index("scenario") if rows else pd.DataFrame()
    return HEADLINE_LEGEND, table


def fastest_text(ran: pd.DataFrame) -> str:
    """The fastest of ``ran`` (cells of one scenario that ran) with its lead over the next of
    its run, or a tie, and its median warm s/epoch: the summary's rule in words."""
    fastest = ran.loc[ran["median_s_per_epoch"].idxmin()]
    winner = _winner(fastest, _runner_up(ran, fastest, "median_s_per_epoch"))
    return f"{winner} ({format_seconds(fastest['median_s_per_epoch'])} s/epoch)"


def _runner_up(
    ran: pd.DataFrame, leader: pd.Series, column: str, largest: bool = False
) -> pd.Series | None:
    """The next row after ``leader`` by ``column`` among the rows of its own division (the same
    run: their seeds pair; rows of another run would carry the drift between runs)."""
    same = ran[[division_of(b) == division_of(leader["backend"]) for b in ran["backend"]]]
    others = same[same["backend"] != leader["backend"]].dropna(subset=[column])
    if others.empty:
        return None
    return others.loc[others[column].idxmax() if largest else others[column].idxmin()]


def _winner(leader: pd.Series, next_: pd.Series | None) -> str:
    """'jax, ×1.48 [1.32, 1.67] ahead of numpy', 'tie: jax, keras-jax (×1.05 [0.95, 1.16])', or
    'jax? one seed cannot tell it from numpy (×1.05)'."""
    if next_ is None:
        return str(leader["backend"])
    lockstep = all(r.get("lockstep") in (True,) for r in (next_, leader))
    lead, levels = speed_ratio(_warm_by_seed(next_), _warm_by_seed(leader), lockstep)
    rounds = levels.rounds if levels is not None else lead.n  # seeds, never epochs
    shown = (
        lead.shown()
        if lead.n
        else f"×{next_['median_s_per_epoch'] / leader['median_s_per_epoch']:.2f}"
    )
    return _verdict(leader, next_, rounds, lead.testable and lead.low > 1, shown)


def _most_accurate(leader: pd.Series, next_: pd.Series | None) -> str:
    shown = f"{leader['backend']}: {_final(leader)} %"
    if next_ is None:
        return shown
    lead = paired_difference(_accuracy_by_seed(next_), _accuracy_by_seed(leader))
    mean = (
        lead.mean
        if lead.n
        else leader["final_test_accuracy_pct"] - next_["final_test_accuracy_pct"]
    )
    gap = f"{mean:+.2f} pt" + (f" [{lead.low:+.2f}, {lead.high:+.2f}]" * lead.spread_known)
    named = _verdict(leader, next_, lead.n, lead.excludes_zero and lead.low > 0, gap)
    return f"{named}; {_final(leader)} %"


def _verdict(leader: pd.Series, next_: pd.Series, n: int, shown_apart: bool, lead: str) -> str:
    first, second = leader["backend"], next_["backend"]
    if n < 2:  # one seed, or results without seeds (one each)
        return f"{first}? one seed cannot tell it from {second} ({lead}; run --rounds 3 or more)"
    if shown_apart:
        return f"{first}, {lead} ahead of {second}"
    return f"tie: {first}, {second} ({lead})"


def _histories(r: pd.Series) -> list[tuple[int, list]]:
    """(seed, history) of each of the cell's runs; [] when the cell does not record them."""
    seeds, histories = r.get("seeds"), r.get("histories")
    if not isinstance(seeds, list) or not isinstance(histories, list):
        return []
    return list(zip(seeds, histories, strict=True)) if len(seeds) == len(histories) else []


def _accuracy_by_seed(r: pd.Series) -> dict[int, float]:
    """seed → the run's final test accuracy (%)."""
    return {seed: 100 * history[-1]["test_accuracy"] for seed, history in _histories(r)}


def _warm_by_seed(r: pd.Series) -> dict[int, list[float]]:
    """seed → the run's warm epochs' seconds, in order."""
    return {seed: warm_epochs([h["seconds"] for h in history]) for seed, history in _histories(r)}


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
        parts += [f"**{escape_markdown(machine)}** — {legend}", to_markdown(table)]
    return "\n\n".join(parts)
