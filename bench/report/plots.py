"""Plots for ``mlpbench table``: test accuracy against training time, median epoch times, the gap
ladder (``write_ladder_plot``) and how cost grows over a sweep (``write_scaling_plot``).

matplotlib is optional (the 'plots' extra) and imported here only when a plot is drawn, through
its object API on the Agg canvas (no display, no pyplot global state). ``write_plots`` takes the
cells frame from ``bench.report.summary.cells_frame`` (one row per machine × scenario × backend
over its seeds; skipped rows are ignored); the ladder and scaling plots take the frames of
``bench.report.ladder`` and ``bench.report.scaling``.
Times are training wall-clock seconds: build and evaluation time are excluded.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from bench.report.formatting import format_seconds
from bench.report.frame import has_warm
from bench.stats import has_warm_epochs

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

MISSING = "plots skipped: matplotlib is not installed (pip install 'mlpbench[plots]')"
LINESTYLES = ("-", "--", ":", "-.")
LOG_RATIO = 20  # use a log axis when the largest value is this many times the smallest


class PlotsUnavailable(Exception):
    """matplotlib cannot be imported; the message is the one-line problem to report."""


def write_plots(frame: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Write accuracy_vs_time.png and speed.png into ``out_dir``; [] when no run finished an
    epoch. Raises PlotsUnavailable when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotsUnavailable(MISSING) from None
    ran = frame[frame["status"] != "skipped"]
    if ran.empty:
        return []
    styles = _styles(ran)
    paths = [out_dir / "accuracy_vs_time.png", out_dir / "speed.png"]
    for path, draw in zip(paths, (accuracy_vs_time, speed_chart), strict=True):
        figure = draw(Figure(layout="constrained"), ran, styles)
        figure.savefig(path, dpi=110)
    return paths


def write_ladder_plot(ladders: dict[str, pd.DataFrame], out_dir: Path) -> list[Path]:
    """gap_ladder.png: per machine with a gap ladder, mean final test accuracy on each rung (with
    its 95 % interval over seeds), one line per backend; [] when no machine has one."""
    from matplotlib.figure import Figure

    ladders = {m: frame for m, frame in ladders.items() if not frame.empty}
    if not ladders:
        return []
    figure = Figure(layout="constrained")
    figure.set_size_inches(8.5, 3.8 * len(ladders) + 0.6)
    axes = figure.subplots(len(ladders), 1, squeeze=False).ravel()
    for ax, (machine, ladder) in zip(axes, ladders.items(), strict=True):
        for i, (backend, rungs) in enumerate(ladder.groupby("backend", sort=False)):
            ax.errorbar(
                rungs["rung"],
                rungs["accuracy_pct"],
                yerr=rungs["ci95_half"].fillna(0.0),
                marker="o",
                capsize=3,
                label=backend,
                color=f"C{i % 10}",
            )
        first = ladder.drop_duplicates("rung").sort_values("rung")
        ax.set_xticks(
            first["rung"],
            [f"{r}. {s}" for r, s in zip(first["rung"], first["scenario"], strict=True)],
            rotation=20,
            ha="right",
            fontsize=8,
        )
        ax.set_ylabel("final test accuracy (%)")
        ax.set_title(f"The report's gap, one change per rung — {machine}")
        ax.grid(alpha=0.3)
    _legend(figure, axes[0])
    path = out_dir / "gap_ladder.png"
    figure.savefig(path, dpi=110)
    return [path]


def _styles(frame: pd.DataFrame) -> dict[tuple[str, str], dict[str, Any]]:
    """(machine, backend) → line label, colour (by backend) and line style (by machine)."""
    backends = list(frame["backend"].unique())
    machines = list(frame["machine_id"].unique())
    styles = {}
    for machine, backend in dict.fromkeys(zip(frame["machine_id"], frame["backend"], strict=True)):
        label = backend if len(machines) == 1 else f"{backend} @ {machine}"
        styles[machine, backend] = {
            "label": label,
            "color": f"C{backends.index(backend) % 10}",
            "linestyle": LINESTYLES[machines.index(machine) % len(LINESTYLES)],
        }
    return styles


def accuracy_vs_time(figure: Figure, frame: pd.DataFrame, styles: dict) -> Figure:
    """One panel per scenario: test accuracy (%) after each epoch against cumulative training
    seconds, one line per backend (and machine)."""
    names = list(frame["scenario"].unique())
    ncols = min(3, len(names))
    nrows = math.ceil(len(names) / ncols)
    figure.set_size_inches(4.6 * ncols, 3.4 * nrows + 0.9)
    axes = figure.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, name in zip(axes, names, strict=False):
        _accuracy_panel(ax, frame[frame["scenario"] == name], styles)
        ax.set_title(name, fontweight="bold")
        ax.set_xlabel(
            "cumulative training time (s)\nbuild and evaluation time excluded", fontsize=8
        )
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    figure.supylabel("test accuracy (%)")
    figure.suptitle("Test accuracy after each epoch against training time")
    _legend(figure, axes[0])
    return figure


def _accuracy_panel(ax: Axes, frame: pd.DataFrame, styles: dict) -> None:
    """Per cell: the mean over seeds of test accuracy after each epoch against the mean
    cumulative training time, with the seeds' range as a band (one seed: no band)."""
    totals = []
    for r in frame.itertuples():
        epochs = min(len(h) for h in r.histories)
        seconds = pd.DataFrame([[e["seconds"] for e in h[:epochs]] for h in r.histories])
        accuracy = pd.DataFrame(
            [[100 * e["test_accuracy"] for e in h[:epochs]] for h in r.histories]
        )
        time = seconds.cumsum(axis=1).mean()
        style = styles[r.machine_id, r.backend]
        ax.plot(time, accuracy.mean(), marker="o", markersize=3, **style)
        if len(r.histories) > 1:
            ax.fill_between(time, accuracy.min(), accuracy.max(), color=style["color"], alpha=0.15)
        totals.append(time.iloc[-1])
    if max(totals) > LOG_RATIO * min(totals):
        ax.set_xscale("log")
    else:
        ax.set_xlim(left=0)  # the time to the first point is part of the story
    ax.grid(alpha=0.3)


def _legend(figure: Figure, ax: Axes) -> None:
    """One legend for the figure, below the panels (every panel shares its labels)."""
    handles, labels = [], []
    for a in figure.axes:
        for handle, label in zip(*a.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    figure.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 6))


def speed_chart(figure: Figure, frame: pd.DataFrame, styles: dict) -> Figure:
    """Median warm seconds per epoch as bars (over seeds: the mean of the seeds' medians, with
    its 95 % interval as an error bar): groups by scenario, one bar per backend; one panel per
    machine, titled with its machine_id; log scale when the values span a wide range."""
    machines = list(frame["machine_id"].unique())
    width = max(6.0, 1.2 * frame["scenario"].nunique() * frame["backend"].nunique() ** 0.5 + 2)
    figure.set_size_inches(width, 3.8 * len(machines) + 0.6)
    axes = figure.subplots(len(machines), 1, squeeze=False).ravel()
    for ax, machine in zip(axes, machines, strict=True):
        _speed_panel(ax, frame[frame["machine_id"] == machine], styles)
        ax.set_title(f"Median warm epoch time — {machine}")
    _legend(figure, axes[0])
    return figure


def _speed_panel(ax: Axes, frame: pd.DataFrame, styles: dict) -> None:
    names = list(frame["scenario"].unique())
    backends = list(frame["backend"].unique())
    width = min(0.8 / len(backends), 0.35)
    for i, backend in enumerate(backends):
        rows = frame[frame["backend"] == backend]
        x = [names.index(s) + (i - (len(backends) - 1) / 2) * width for s in rows["scenario"]]
        color = styles[rows["machine_id"].iloc[0], backend]["color"]
        spread = (rows["speed_ci95_high"] - rows["speed_ci95_low"]) / 2
        bars = ax.bar(
            x,
            rows["median_s_per_epoch"],
            width,
            yerr=spread.where(spread.notna(), 0.0),
            capsize=2,
            label=backend,
            color=color,
            hatch=[_hatch(n) for n in rows["epochs_run"]],
            edgecolor="white",
        )
        labels = [format_seconds(v) for v in rows["median_s_per_epoch"]]
        ax.bar_label(bars, labels=labels, fontsize=7, padding=1)
    if not has_warm(frame).all():
        ax.bar([0], [0], 0, color="lightgrey", hatch="//", label="hatched: epoch 1 only (cold)")
    _speed_axes(ax, names, frame["median_s_per_epoch"])


def _speed_axes(ax: Axes, names: list[str], values: pd.Series) -> None:
    if values.max() > LOG_RATIO * values.min():
        ax.set_yscale("log")
    ax.margins(y=0.15)
    ax.set_xticks(range(len(names)), names)
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_ylabel("median warm s/epoch (lower is faster)", fontsize=9)
    ax.grid(axis="y", alpha=0.3)


def _hatch(epochs_run: int) -> str:
    """Hatched bars: only a cold epoch-1 time exists for that run."""
    return "" if has_warm_epochs(epochs_run) else "//"


def write_scaling_plot(points: pd.DataFrame, out_dir: Path) -> list[Path]:
    """scaling.png: per machine × swept key, seconds per step and GFLOP/s against the swept
    value (log-log, means over seeds, one line per backend), with the roofline's ceilings on
    the rate panel: the measured GEMM peak and bandwidth × the step's arithmetic intensity.
    [] when the results hold no sweep."""
    from matplotlib.figure import Figure

    if points.empty:
        return []
    groups = list(points.groupby(["machine_id", "origin", "key", "others"], sort=False))
    figure = Figure(figsize=(10, 3.6 * len(groups)), layout="constrained")
    axes = figure.subplots(len(groups), 2, squeeze=False)
    for (ax_time, ax_rate), ((machine, origin, key, others), group) in zip(
        axes, groups, strict=True
    ):
        means = group.groupby(["backend", "x"], sort=True).mean(numeric_only=True).reset_index()
        for backend, rows in means.groupby("backend", sort=False):
            ax_time.plot(rows["x"], 1e6 * rows["step_s"], marker="o", label=backend)
            ax_rate.plot(rows["x"], rows["gflops"], marker="o", label=backend)
        ceiling = means.groupby("x").mean(numeric_only=True)
        if ceiling["peak_gflops"].notna().any():
            ax_rate.plot(
                ceiling.index, ceiling["peak_gflops"], "k--", linewidth=1, label="GEMM peak"
            )
        if ceiling["bandwidth_gbs"].notna().any():
            intensity = ceiling["flops_per_step"] / ceiling["bytes_per_step"]
            ax_rate.plot(ceiling.index, ceiling["bandwidth_gbs"] * intensity, "k:", linewidth=1,
                         label="bandwidth × intensity")  # fmt: skip
        where = f"{origin}, {key}" + (f" ({others})" if others else "") + f" — {machine}"
        for ax, label in ((ax_time, "µs per step"), (ax_rate, "GFLOP/s")):
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel(key)
            ax.set_ylabel(label)
            ax.set_title(where, fontsize=9)
            ax.grid(True, which="both", alpha=0.3)
        ax_rate.legend(fontsize=7)
    path = out_dir / "scaling.png"
    figure.savefig(path, dpi=110)
    return [path]
