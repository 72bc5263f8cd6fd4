"""results.md, the CSVs and the plots from result JSON files: what ``mlpbench table`` writes.

Contract:
- Input: the cells ``bench.results.read.collect`` keeps (one per machine × scenario × backend, the
  newest when files repeat one); unusable files are its ``problems``, passed on in
  ``TablesReport.problems``. Caveats come from ``bench.report.caveats``.
- Machines never share a table: each machine_id gets its own tables, and "vs numpy" pairs medians
  measured on the same machine only.
- ``write_tables`` writes results.md, the CSVs of ``CSV_COLUMNS`` (long form: one row per
  machine × scenario × backend over its seeds, raw numbers, with n_seeds and 95 % intervals),
  runs.csv (one row per seed), the plots where matplotlib is installed (accuracy_vs_time.png,
  speed.png, gap_ladder.png and scaling.png where the results hold a ladder or a sweep) and
  index.html where Jinja2 and Bokeh are (``bench.report.html``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.errors import MlpbenchError
from bench.report.answer import answer_lines
from bench.report.caveats import agreement, caveats
from bench.report.facts import machine_facts_table
from bench.report.formatting import bullets, escape_markdown, to_markdown
from bench.report.frame import CSV_COLUMNS, FRAME_COLUMNS, runs_frame
from bench.report.ladder import LEGEND as LADDER_LEGEND
from bench.report.ladder import ladder_frame, ladder_table
from bench.report.pareto import LEGEND as PARETO_LEGEND
from bench.report.pareto import front_lines, pareto_frame, pareto_markdown
from bench.report.questions import LEGEND as QUESTIONS_LEGEND
from bench.report.questions import questions_table
from bench.report.scaling import points_frame, scaling_rows
from bench.report.summary import cells_frame
from bench.report.tables import by_machine, headline_markdown_of, machine_sections
from bench.report.tta import COLUMNS as TTA_COLUMNS
from bench.report.tta import LEGEND as TTA_LEGEND
from bench.report.tta import tta_frame, tta_markdown
from bench.results.read import Collection, collect


@dataclass(frozen=True)
class TablesReport:
    """What ``write_tables`` did: files written (empty when no file held a result), one line per
    unusable file or skipped step, the whole results.md text, and one line per unstable cell."""

    written: list[Path]
    problems: list[str]
    markdown: str
    unstable: list[str] = field(default_factory=list)
    answer: list[str] = field(default_factory=list)  # ``answer.answer_lines``
    page: Path | None = None  # index.html, where it was written


def unstable_lines(cells: pd.DataFrame) -> list[str]:
    """'machine: backend × scenario: why' for each cell whose speed is unstable."""
    rows = cells[cells["unstable"].map(lambda v: isinstance(v, str) and bool(v))]
    return [f"{r.machine_id}: {r.backend} × {r.scenario}: {r.unstable}" for r in rows.itertuples()]


UNSTABLE_LEGEND = (
    "A speed is unstable when its warm epochs vary more than 10 % within a process, or its "
    "rounds (one process per seed) more than 10 % between processes (coefficient of variation); "
    "what the machine was doing meanwhile follows (load, threads against cores, CPU clock, "
    "swap), as recorded for each cell."
)


SCALING_LEGEND = (
    "Per backend over the sweep's points (means over seeds): a least-squares fit of step time = "
    "fixed cost + FLOPs per step / rate — the fixed cost per step, the sustained rate and its "
    "share of the device's measured GEMM peak, and the largest relative residual of the fit "
    "(a large one: the line does not describe that backend). Crossover: the swept value where the "
    "backend's step time crosses NumPy's (log-log interpolation between measured points, mean "
    "over the seeds that cross, with its 95 % interval), and on which side the backend is the "
    "faster. Regime at the measured point nearest the scenario's own batch size or width (as "
    "its runs in these results that do not sweep it record it; the smaller point on a tie; "
    "the smallest point where they hold none): overhead-bound when the fixed cost is over half "
    "the step, else "
    "memory- or compute-bound by the nearer roofline ceiling (GEMM peak; memory bandwidth × "
    "the step's arithmetic intensity, from an estimate of its least traffic). Plot: scaling.png."
)


def scaling_markdown(runs: pd.DataFrame, machines: dict) -> list[str]:
    """The scaling section for one machine's runs (nothing when they hold no sweep)."""
    rows = scaling_rows(points_frame(runs, machines))
    if rows.empty:
        return []
    parts = ["### How cost grows (sweeps)", SCALING_LEGEND]
    for (origin, key, others), group in rows.groupby(["origin", "key", "others"], sort=False):
        table = pd.DataFrame(
            {
                "backend": group["backend"],
                "fixed µs/step": group["fixed_us"].map(lambda v: f"{v:,.1f}"),
                "rate GFLOP/s": group["rate_gflops"].map(lambda v: f"{v:,.1f}"),
                "% peak": group["rate_peak_pct"].map(lambda v: "—" if v != v else f"{v:.0f} %"),
                "max residual": group["max_residual_pct"].map(lambda v: f"{v:.0f} %"),
                f"crossover {key} vs numpy": group["crossover_text"],
                "regime": group["regime"],
            }
        ).set_index("backend")
        title = f"{origin}, sweeping {key}" + (f" ({others})" if others else "")
        parts += [f"#### {escape_markdown(title)}", to_markdown(table, align="left")]
        parts.append(bullets([f"{r.backend}: {r.regime_words}" for r in group.itertuples()]))
    return parts


def results_markdown(collection: Collection, target: float | None = None) -> str:
    """results.md: sources, headline, then per machine its tables (over seeds), unstable speeds,
    the scaling section, the questions and the gap ladder where its results allow; caveats
    (ending with the agreement paragraph where it applies) and machine facts."""
    runs = runs_frame(collection.cells, collection.machines)
    cells = cells_frame(runs)
    parts = [
        "# mlpbench results",
        "Read from:\n\n" + bullets(collection.sources),
        "## Summary",
        headline_markdown_of(cells),
    ]
    for machine, rows in by_machine(cells):
        parts.append(f"## Results on {escape_markdown(machine)}")
        parts += machine_sections(rows)
        mine = runs[runs["machine_id"] == machine]
        times = tta_frame(mine, target)
        if not times.empty:
            parts += ["### Time to accuracy", TTA_LEGEND, tta_markdown(times)]
            front = pareto_frame(mine, rows, times)
            if not front.empty:
                parts += ["### Accuracy against time (Pareto)", PARETO_LEGEND]
                parts += [bullets(front_lines(front)), pareto_markdown(front)]
        unstable = unstable_lines(rows)
        if unstable:
            parts += ["### Unstable speeds (⚠)", UNSTABLE_LEGEND, bullets(unstable)]
        parts += scaling_markdown(runs[runs["machine_id"] == machine], collection.machines)
        parts += _answers(runs[runs["machine_id"] == machine])
    parts += [
        "## Caveats",
        bullets(caveats(runs, collection)) or "No generated caveats.",
        *agreement(runs, collection.machines),
    ]
    parts += ["## Machines", to_markdown(machine_facts_table(collection.machines), align="left")]
    return "\n\n".join(parts) + "\n"


def _answers(runs: pd.DataFrame) -> list[str]:
    """The questions section and the gap ladder for one machine, where its results allow."""
    parts = []
    questions = questions_table(runs)
    if not questions.empty:
        table = to_markdown(questions.set_index("question"), align="left")
        parts += ["### Questions", QUESTIONS_LEGEND, table]
    ladder = ladder_frame(runs)
    if not ladder.empty:
        parts += ["### The report's gap, factor by factor", LADDER_LEGEND]
        parts.append(to_markdown(ladder_table(ladder)))
    return parts


def write_tables(paths: Sequence[Path], out_dir: Path, target: float | None = None) -> TablesReport:
    """Read ``paths``; write results.md, the CSVs, the plots and the page into ``out_dir``
    (created if needed). ``target``: every cell's target accuracy for its time to accuracy
    (None: each scenario's own). Writes nothing when no file held a result. Raises
    MlpbenchError (one line) when ``out_dir`` cannot be written."""
    collection = collect(paths)
    if not collection.cells:
        return TablesReport([], list(collection.problems), "")
    markdown = results_markdown(collection, target)
    runs = runs_frame(collection.cells, collection.machines)
    cells = cells_frame(runs)
    tables = {**{name: (cells, columns) for name, columns in CSV_COLUMNS.items()}}
    tables["runs.csv"] = (runs, FRAME_COLUMNS)  # one row per seed
    times = tta_frame(runs, target)
    tables["time_to_accuracy.csv"] = (times, TTA_COLUMNS)
    out_dir, problems = Path(out_dir), list(collection.problems)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "results.md").write_text(markdown, encoding="utf-8")
        written = [out_dir / "results.md"]
        for name, (frame, columns) in tables.items():
            frame.reindex(columns=columns).to_csv(out_dir / name, index=False, float_format="%.6g")
            written.append(out_dir / name)
        written += _plots(cells, runs, collection.machines, out_dir, problems)
        written += _page(collection, runs, cells, times, out_dir, problems)
    except OSError as err:
        raise MlpbenchError(
            f"cannot write tables to {out_dir}: {err.strerror or err}; choose another --out"
        ) from None
    page = out_dir / "index.html"
    return TablesReport(
        written,
        problems,
        markdown,
        unstable_lines(cells),
        answer_lines(runs, cells),
        page if page in written else None,
    )


def _page(
    collection: Collection,
    runs: pd.DataFrame,
    cells: pd.DataFrame,
    times: pd.DataFrame,
    out_dir: Path,
    problems: list,
) -> list[Path]:
    from bench.report.html import PageUnavailable, write_page

    try:
        return [write_page(collection, runs, cells, times, out_dir)]
    except PageUnavailable as err:
        problems.append(str(err))
        return []


def _plots(
    cells: pd.DataFrame,
    runs: pd.DataFrame,
    machines: dict,
    out_dir: Path,
    problems: list[str],
) -> list[Path]:
    from bench.report.plots import (
        PlotsUnavailable,
        write_ladder_plot,
        write_plots,
        write_scaling_plot,
    )

    ladders = {m: ladder_frame(r) for m, r in runs.groupby("machine_id", sort=False)}
    points = points_frame(runs, machines)
    try:
        return (
            write_plots(cells, out_dir)
            + write_ladder_plot(ladders, out_dir)
            + write_scaling_plot(points, out_dir)
        )
    except PlotsUnavailable as err:
        problems.append(str(err))
        return []
