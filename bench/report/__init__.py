"""Reporting: result JSON → tables, caveats and plots. Reads JSON only: nothing here imports a
backend or the scenario catalogue, so tables can be made on any machine.

- ``frame``: the runs frame (one row per result: machine × scenario × backend × seed, raw
  numbers; runs.csv and the CSVs' columns).
- ``summary``: the cells frame (one row per machine × scenario × backend over its seeds: means,
  95 % intervals, the paired ratio to NumPy, instability).
- ``tables``: the markdown tables (per scenario, memory, headline).
- ``questions``, ``ladder``: the report's questions, paired by seed, and the gap ladder.
- ``scaling``: how cost grows over a sweep (fits, crossovers, regimes).
- ``caveats``: generated lines saying what the tables cannot.
- ``facts``: the Machines table.
- ``plots``: accuracy against time, epoch times, the gap ladder, scaling (matplotlib, optional).
- ``html``, ``landing``: a results folder's index.html and results/index.html (Jinja2 + Bokeh).
- ``formatting``: seconds and markdown, shared by the above.
- ``outputs``: results.md, the CSVs, the plots and the page into a folder (``mlpbench table``).
- ``answer``: the closing lines of a run: the answer per scenario, unstable count, the page.
- ``compare``: ``mlpbench compare``, speed regressions between two result sets.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bench.report.answer import closing_lines
from bench.report.outputs import TablesReport, write_tables


def write_tables_and_report(
    files: list[Path], out_dir: Path, quiet: bool = False, target: float | None = None
) -> TablesReport:
    """``write_tables``, then one stderr line per problem, one stdout line per file written
    (not with ``quiet``), and the closing lines: the answer per scenario, the unstable speeds'
    count, the page to open."""
    report = write_tables(files, out_dir, target)
    for problem in report.problems:
        print(f"mlpbench: {problem}", file=sys.stderr)
    for path in [] if quiet else report.written:
        print(f"wrote {path}")
    for line in closing_lines(report.answer, report.unstable, report.page):
        print(line)
    return report
