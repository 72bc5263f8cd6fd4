"""``mlpbench doctor``: is this machine ready for a benchmark run, and what to change if not.

Each check prints one line, ``ok`` or ``warn`` with what to do, as pyperf's ``system show`` does:
other load, the cores against the threads each backend starts (asked of each backend in its own
process, ``bench.registry.probe``), the CPU frequency governor and turbo, memory and swap, and the
environment variables that change speed. Reads /proc and /sys (Linux); what it cannot read it says
so. Exit 0 when every check is ok, 1 when one warns (nothing is changed on the machine).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from bench import registry
from bench.campaign.conditions import snapshot
from bench.campaign.machine import SPEED_ENV


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    text: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'warn'} {self.name:<10} {self.text}"


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def check_load() -> Check:
    busy = busiest_processes()
    load = snapshot().get("load_1m")
    if load is None:
        return Check("load", True, "load average unreadable here")
    n = cores()
    if load > 0.5 or busy:
        others = ", ".join(f"{name} (pid {pid}, {pct:.0f} %)" for pid, name, pct in busy[:3])
        return Check(
            "load",
            False,
            f"load {load:.2f} on {n} cores{': ' + others if others else ''}; stop other work "
            "before a run (every busy core slows the cells that share it)",
        )
    return Check("load", True, f"load {load:.2f} on {n} cores")


def busiest_processes(window: float = 0.5, threshold: float = 10.0) -> list[tuple[int, str, float]]:
    """(pid, name, % of one core) of other processes using over ``threshold`` % over ``window``."""
    first = _cpu_times()
    time.sleep(window)
    second = _cpu_times()
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    me = os.getpid()
    busy = []
    for pid, (name, ticks) in second.items():
        if pid == me or pid not in first:
            continue
        pct = 100 * (ticks - first[pid][1]) / tick / window
        if pct > threshold:
            busy.append((pid, name, pct))
    return sorted(busy, key=lambda p: -p[2])


def _cpu_times() -> dict[int, tuple[str, int]]:
    out = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        match = re.match(r"(\d+) \((.*)\) \S+ " + r"\S+ " * 10 + r"(\d+) (\d+)", text)
        if match:
            out[int(match.group(1))] = (match.group(2), int(match.group(3)) + int(match.group(4)))
    return out


def check_governor() -> Check:
    paths = sorted(Path("/sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq/scaling_governor"))
    governors = {p.read_text().strip() for p in paths if p.is_file()}
    if not governors:
        return Check("governor", True, "no cpufreq here (a virtual machine's host decides)")
    if governors != {"performance"}:
        return Check(
            "governor",
            False,
            f"{', '.join(sorted(governors))}: the clock follows the load; for stable timings "
            "set 'performance' (cpupower frequency-set -g performance)",
        )
    return Check("governor", True, "performance")


def check_turbo() -> Check:
    no_turbo = Path("/sys/devices/system/cpu/intel_pstate/no_turbo")
    boost = Path("/sys/devices/system/cpu/cpufreq/boost")
    if no_turbo.is_file():
        on = no_turbo.read_text().strip() == "0"
    elif boost.is_file():
        on = boost.read_text().strip() == "1"
    else:
        return Check("turbo", True, "not readable here (a virtual machine's host decides)")
    if on:
        return Check("turbo", False, "on: the clock depends on temperature and the other cores; "
                     "compare only runs interleaved in one session, or switch it off")  # fmt: skip
    return Check("turbo", True, "off")


def check_memory() -> Check:
    info = _meminfo()
    if not info:
        return Check("memory", True, "/proc/meminfo unreadable here")
    available, swap = (
        info.get("MemAvailable", 0) / 2**20,
        info.get("SwapTotal", 0) - info.get("SwapFree", 0),
    )
    if available < 4:
        return Check("memory", False, f"{available:.1f} GiB available: close programs (JAX and "
                     "TensorFlow each take 1-2 GiB)")  # fmt: skip
    if swap > 0:
        return Check("memory", False, f"{swap / 1024:.0f} MiB swapped out: free memory first")
    return Check("memory", True, f"{available:.1f} GiB available, no swap in use")


def _meminfo() -> dict[str, int]:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return {}
    return {k: int(v) for k, v in re.findall(r"^(\w+):\s+(\d+) kB", text, re.MULTILINE)}


def check_environment() -> Check:
    found = {k: os.environ[k] for k in SPEED_ENV if k in os.environ}
    if not found:
        return Check("env", True, "no speed-relevant variable set (each framework's defaults)")
    shown = ", ".join(f"{k}={v}" for k, v in found.items())
    return Check("env", True, f"{shown} (recorded with every result)")


def check_threads() -> list[Check]:
    """Threads each available backend's process holds once its framework loaded, vs cores."""
    n = cores()
    checks = []
    for name, found in registry.probe_all(registry.names()).items():
        if found.reason is not None:
            continue
        threads = found.threads
        if threads is None:
            continue
        if threads > n + 2:
            checks.append(Check(f"{name}", False, f"{threads} threads once loaded, on {n} cores: "
                                "its pools compete for the cores; --threads 1 gives every "
                                "framework one (recorded in settings)"))  # fmt: skip
        else:
            checks.append(Check(f"{name}", True, f"{threads} threads once loaded, {n} cores"))
    return checks


def run_doctor() -> int:
    """Print one line per check of this machine, then "ready" or the count of warnings; 1 when
    any check warns, else 0."""
    checks = [check_load(), check_governor(), check_turbo(), check_memory(), check_environment()]
    checks += check_threads()
    for check in checks:
        print(check.line())
    warnings = sum(not c.ok for c in checks)
    print(f"{warnings} warning{'s' if warnings != 1 else ''}" if warnings else "ready")
    return 1 if warnings else 0
