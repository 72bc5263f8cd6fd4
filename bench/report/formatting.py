"""Formatting shared by the tables and the plots: seconds, markdown tables, bullet lists."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd


def format_seconds(seconds: float) -> str:
    """Seconds with three significant digits ('0.0584', '2.30', '123'); '—' for none."""
    if seconds is None or math.isnan(seconds):
        return "—"
    return f"{seconds:.0f}" if abs(seconds) >= 100 else f"{seconds:#.3g}"


def to_markdown(table: pd.DataFrame, align: str = "right") -> str:
    """The table as GitHub markdown, cells exactly as formatted (no re-parsing of numbers)."""
    colalign = ("left", *[align] * len(table.columns))
    return table.to_markdown(disable_numparse=True, colalign=colalign)


def bullets(lines: Sequence[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)
