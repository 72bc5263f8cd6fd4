"""Formatting shared by the tables, the page and the plots: seconds, ratios, markdown tables,
bullet lists."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd


def format_seconds(seconds: float) -> str:
    """Seconds with three significant digits ('0.0584', '2.30', '123'); '—' for none."""
    if seconds is None or math.isnan(seconds):
        return "—"
    return f"{seconds:.0f}" if abs(seconds) >= 100 else f"{seconds:#.3g}"


def escape_markdown(text: object) -> str:
    """Text from a results file as inert markdown: HTML's special characters as entities (a
    markdown viewer renders raw HTML), a table's pipe escaped, line breaks as spaces."""
    return (
        str(text)
        .replace("\\", "\\\\")  # first: the escapes below must stay escapes
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("|", "\\|")
        .replace("](", "]\\(")  # no [link](url) or ![image](url) from a name
        .replace("\r", " ")
        .replace("\n", " ")
    )


def to_markdown(table: pd.DataFrame, align: str = "right") -> str:
    """The table as GitHub markdown, cells exactly as formatted (no re-parsing of numbers), every
    cell, header and row name escaped (``escape_markdown``): names come from results files."""
    colalign = ("left", *[align] * len(table.columns))
    safe = table.map(escape_markdown)
    safe.index = [escape_markdown(v) for v in table.index]
    safe.index.name = None if table.index.name is None else escape_markdown(table.index.name)
    safe.columns = [escape_markdown(c) for c in table.columns]
    return safe.to_markdown(disable_numparse=True, colalign=colalign)


def bullets(lines: Sequence[str]) -> str:
    return "\n".join(f"- {escape_markdown(line)}" for line in lines)


def ratio_text(value: float, low: float, high: float) -> str:
    """'×1.82 [1.75, 1.90]'; '×1.82' without an interval (one seed, or a tie such as the
    reference against itself); '—' without a value."""
    if value != value:
        return "—"
    tied = low != low or high != high or not high > low
    return f"×{value:.2f}" + ("" if tied else f" [{low:.2f}, {high:.2f}]")
