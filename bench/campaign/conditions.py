"""What the machine was doing while a cell ran: load from other processes, CPU frequency, swap.

Read from /proc on Linux (``{}`` elsewhere), before and after each cell, by the parent of
``mlpbench run``; the worker adds its own thread count and the parent the cell's context switches
(from ``wait4``). The tables use them to say *why* a number is unstable (pyperf does the same).
"""

from __future__ import annotations

import contextlib
import os
import re
from typing import Any


def snapshot() -> dict[str, Any]:
    """Load average (1 min), CPU MHz range over the cores, swap in use (MiB), when readable."""
    facts: dict[str, Any] = {}
    with contextlib.suppress(OSError):
        facts["load_1m"] = round(os.getloadavg()[0], 2)
    mhz = _cpu_mhz()
    if mhz:
        facts["cpu_mhz_min"], facts["cpu_mhz_max"] = min(mhz), max(mhz)
    swap = _swap_used_mib()
    if swap is not None:
        facts["swap_used_mib"] = swap
    return facts


def during(before: dict[str, Any], after: dict[str, Any], **measured: Any) -> dict[str, Any]:
    """One cell's conditions: the snapshots' worst values and what was measured of the cell."""
    out: dict[str, Any] = {"cores": os.cpu_count()}
    loads = [s["load_1m"] for s in (before, after) if "load_1m" in s]
    if loads:
        out["load_1m_max"] = max(loads)
    lows = [s["cpu_mhz_min"] for s in (before, after) if "cpu_mhz_min" in s]
    highs = [s["cpu_mhz_max"] for s in (before, after) if "cpu_mhz_max" in s]
    if lows and highs:
        out["cpu_mhz_min"], out["cpu_mhz_max"] = min(lows), max(highs)
    swaps = [s["swap_used_mib"] for s in (before, after) if "swap_used_mib" in s]
    if len(swaps) == 2:
        out["swap_growth_mib"] = swaps[1] - swaps[0]
    return {**out, **{k: v for k, v in measured.items() if v is not None}}


def _cpu_mhz() -> list[float]:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            return [float(v) for v in re.findall(r"^cpu MHz\s*:\s*([\d.]+)", f.read(), re.M)]
    except OSError:
        return []


def _swap_used_mib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            info = dict(re.findall(r"^(\w+):\s+(\d+) kB", f.read(), re.MULTILINE))
    except OSError:
        return None
    if "SwapTotal" not in info or "SwapFree" not in info:
        return None
    return round((int(info["SwapTotal"]) - int(info["SwapFree"])) / 1024, 1)
