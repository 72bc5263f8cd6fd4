"""``python -m bench.report.landing results``: results/index.html, one row per published machine.

Each machine folder under DIR that holds an ``index.html`` (``mlpbench table`` writes it) and a
``speed.csv`` is listed with the date of its newest results, its backends and its headline — the
baseline's median warm epoch per backend and its ratio to NumPy (shipped division) — and a link
to its page. Reads the CSVs and JSON only; every string is escaped (Jinja2 autoescape).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from bench.report.formatting import format_seconds
from bench.report.html import MISSING, TEMPLATES, PageUnavailable


def machine_row(folder: Path) -> dict[str, Any] | None:
    """The landing page's row for one machine folder, or None when it has no page."""
    page, speed = folder / "index.html", folder / "speed.csv"
    if not page.is_file() or not speed.is_file():
        return None
    frame = pd.read_csv(speed)
    dates = []
    for path in sorted(folder.glob("*.json")):
        try:
            dates.append(str(json.loads(path.read_text(encoding="utf-8")).get("datetime", ""))[:10])
        except (OSError, ValueError, AttributeError):
            continue
    shipped = ~frame["backend"].astype(str).str.endswith(")")  # not "keras (tuned)"
    base = frame[(frame["scenario"] == "baseline") & (frame["status"] != "skipped") & shipped]
    headline = [
        f"{r.backend}: {format_seconds(r.median_s_per_epoch)} s"
        + ("" if r.relative_to_numpy != r.relative_to_numpy else f" (×{r.relative_to_numpy:.2f})")
        for r in base.itertuples()
    ]
    return {
        "id": folder.name,
        "href": f"{folder.name}/index.html",
        "date": max(dates, default="?"),
        "backends": ", ".join(dict.fromkeys(str(b) for b in frame["backend"])),
        "headline": headline or ["no baseline cell"],
    }


def write_landing(results: Path) -> Path:
    """Write ``results/index.html``; PageUnavailable without Jinja2."""
    try:
        import jinja2
    except ImportError:
        raise PageUnavailable(MISSING) from None
    rows = [
        r
        for folder in sorted(results.iterdir())
        if folder.is_dir()
        if (r := machine_row(folder)) is not None
    ]
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    path = results / "index.html"
    path.write_text(environment.get_template("landing.html.j2").render(machines=rows), "utf-8")
    return path


if __name__ == "__main__":
    try:
        print(f"wrote {write_landing(Path(sys.argv[1] if len(sys.argv) > 1 else 'results'))}")
    except PageUnavailable as err:
        print(f"mlpbench: {err}", file=sys.stderr)
        sys.exit(1)
