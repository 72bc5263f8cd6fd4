"""Reporting: result JSON → tables, caveats and plots. Reads JSON only: nothing here imports a
backend or the scenario catalogue, so tables can be made on any machine.

- ``frame``: the runs frame (one row per result cell, raw numbers; the CSVs' columns).
- ``tables``: the markdown tables (accuracy, speed, cold start, headline).
- ``caveats``: generated lines saying what the tables cannot.
- ``facts``: the Machines table.
- ``plots``: accuracy against time, epoch times (matplotlib, optional).
- ``formatting``: seconds and markdown, shared by the above.
- ``write``: results.md, the CSVs and the plots into a folder (``mlpbench table``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from bench.report.write import TablesReport, write_tables


def write_tables_and_report(files: list[Path], out_dir: Path) -> TablesReport:
    """``write_tables``, then one stderr line per problem and one stdout line per file written."""
    report = write_tables(files, out_dir)
    for problem in report.problems:
        print(f"mlpbench: {problem}", file=sys.stderr)
    for path in report.written:
        print(f"wrote {path}")
    for line in report.unstable:
        print(f"mlpbench: unstable: {line}")
    return report
