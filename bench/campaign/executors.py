"""Executors: where a cell trains. ``process`` gives every cell
a fresh Python process, as asv and pyperf do: no global state (TF32, Keras' backend and floatx,
XLA caches, BLAS thread limits, denormal flags) leaks from one cell into the next, the cell's own
peak memory can be measured, and a native crash costs that cell only. ``inprocess`` trains in
this process (for tests and debugging: exceptions propagate with their tracebacks).

An executor's ``run(cell, on_epoch)`` returns the cell's ``Result`` — complete, skipped,
interrupted (Ctrl-C: the finished epochs, ``complete=False``) or failed (``failed`` = one line).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from dataclasses import replace
from typing import Protocol

from bench.cell.spec import CellSpec, EpochCallback, train_here
from bench.cell.worker import MARK
from bench.data import DataCache, load_raw
from bench.results.record import EpochRecord, Result


class Executor(Protocol):
    name: str

    def run(self, cell: CellSpec, on_epoch: EpochCallback | None = None) -> Result: ...


class InProcess:
    """Every cell in this process, one after another; data loaded once per path."""

    name = "inprocess"

    def __init__(self) -> None:
        self._data: dict[tuple, DataCache] = {}

    def run(self, cell: CellSpec, on_epoch: EpochCallback | None = None) -> Result:
        key = (cell.data, cell.n_train, cell.n_test)
        if key not in self._data:
            self._data[key] = DataCache(load_raw(cell.data), cell.n_train, cell.n_test)
        result = train_here(cell, self._data[key], on_epoch)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
        return replace(result, pid=os.getpid(), peak_rss_bytes=peak)


class Subprocess:
    """Each cell in a fresh ``python -m bench.cell.worker``; its peak RSS from ``wait4``."""

    name = "process"

    def run(self, cell: CellSpec, on_epoch: EpochCallback | None = None) -> Result:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.cell.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,  # a terminal's Ctrl-C reaches us only; we pass it on once
        )
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(cell.to_dict()) + "\n")
        proc.stdin.close()
        history: list[EpochRecord] = []
        outcome: dict = {}
        interrupted = False
        while True:
            try:
                for line in proc.stdout:
                    read_line(line, cell, history, outcome, on_epoch)
                break
            except KeyboardInterrupt:  # pass Ctrl-C on; keep reading what the worker sends back
                interrupted = True
                proc.send_signal(signal.SIGINT)
        return reap(proc, cell, history, outcome, interrupted)


def reap(
    proc: subprocess.Popen,
    cell: CellSpec,
    history: list[EpochRecord],
    outcome: dict,
    interrupted: bool,
    conditions: dict | None = None,
    **fields: object,
) -> Result:
    """Wait for a worker and make its cell's ``Result``: the one it sent, or — when it sent
    none — its finished epochs, failed with why it ended (not failed when interrupted after an
    epoch). Adds its pid, peak RSS and ``fields`` (Result fields); its context switches and
    ``conditions`` go into a sent result's conditions, and ``conditions`` with the switches into
    an unfinished one's where given."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    measured = {"pid": proc.pid, "peak_rss_bytes": usage.ru_maxrss * 1024, **fields}
    switches = {"involuntary_switches": usage.ru_nivcsw, "voluntary_switches": usage.ru_nvcsw}
    seen = {**switches, **(conditions or {})}
    if "result" in outcome:
        done = outcome["result"]
        return replace(done, **measured, conditions={**done.conditions, **seen})
    reason = outcome.get("failed") or death_reason(proc.returncode)
    if interrupted and history:
        reason = None  # interrupted, not failed: the finished epochs stand
    return Result(
        backend=cell.backend,
        scenario=cell.scenario,
        history=tuple(history),
        complete=False,
        failed=reason,
        settings=outcome.get("settings", {}),
        conditions=seen if conditions is not None else {},
        **outcome.get("sizes", {}),
        **measured,
    )


def read_line(
    line: str, cell: CellSpec, history: list, outcome: dict, on_epoch: EpochCallback | None
) -> str | None:
    """One line from a worker: protocol lines update ``history`` / ``outcome`` and return their
    kind; anything else is the framework's output, passed on to stderr (None)."""
    if not line.startswith(MARK):
        sys.stderr.write(line)
        return None
    kind, _, payload = line[len(MARK) :].partition(" ")
    data = json.loads(payload)
    if kind == "epoch":
        if "settings" in data:
            outcome["settings"] = data.pop("settings")
        record = EpochRecord(**data)
        history.append(record)
        if on_epoch is not None:
            on_epoch(cell, record)
    elif kind == "result":
        outcome["result"] = Result.from_dict(data)
    elif kind == "failed":
        outcome["failed"] = data["reason"]
    elif kind == "data":
        outcome["sizes"] = data
    elif kind == "ready":
        outcome["ready"] = True
    return kind


def death_reason(code: int | None) -> str:
    """One line for a worker that ended without saying why."""
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"its process was killed by {name} (signal {-code})"
    return f"its process exited with status {code} without a result"


EXECUTORS: dict[str, type] = {"process": Subprocess, "inprocess": InProcess}
