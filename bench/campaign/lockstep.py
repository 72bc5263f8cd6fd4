"""The ``lockstep`` executor: the backends of one scenario and round train their epochs in turn,
seconds apart, so a speed ratio pairs epochs that met the same machine.

A group is every cell of one round and one scenario (each backend, each division, each point of
a sweep over that scenario — so ``mlpbench tune``'s candidates take turns too). Each cell
gets its own fresh process (``python -m bench.cell.worker`` in lockstep mode: still one framework
per process), started one after another; each loads its data, builds and waits. Then, for every
epoch, the group's workers are told in a fresh random order — drawn from (order seed, round,
scenario, epoch) — to train that epoch, one at a time: while one trains, the others block on
their stdin. A ratio between two backends is then paired epoch by epoch, a few seconds apart,
instead of across whole cells minutes apart; the rounds stay separate processes, so a state that
lives per process (a slow mode that holds a whole process) still shows between rounds.

While a worker trains, the executor reads from /proc the CPU seconds that every other process
used: the group's waiting workers (framework pools that spin) and everything else on the machine
(``conditions``: ``idle_workers_cpu_s``, ``foreign_cpu_s``, ``steal_s``, summed over the cell's
epochs, beside ``trained_s``). The tables name these as causes of instability, or say that none
was seen.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bench.campaign.executors import read_line, reap
from bench.cell.spec import CellSpec, EpochCallback
from bench.results.record import EpochRecord, Result

DESIGN = "lockstep"
DoneCallback = Callable[[CellSpec, Result], None]


@dataclass
class Worker:
    """One cell's waiting process and what it sent back."""

    cell: CellSpec
    proc: subprocess.Popen
    history: list[EpochRecord] = field(default_factory=list)
    outcome: dict = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.time)

    @property
    def waiting(self) -> bool:
        ended = "result" in self.outcome or "failed" in self.outcome
        return "ready" in self.outcome and not ended

    def tell(self, command: str) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # a worker that died: its reaping says why
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()

    def read_until(self, kinds: tuple[str, ...], on_epoch: EpochCallback | None) -> str | None:
        """Read the worker's lines until one of ``kinds`` (or a final ``result``/``failed``, or
        the end of its output); the kind read, or None at the end."""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            kind = read_line(line, self.cell, self.history, self.outcome, on_epoch)
            if kind in kinds or kind in ("result", "failed"):
                return kind
        return None


def group_key(scenario: str, round_: int) -> tuple[str, int]:
    """The lockstep group of a cell of scenario ``scenario`` in round ``round_``: the scenario
    without its sweep point (a point is named ``scenario[key=value]`` and trains with the
    others), and the round. A results file's cells name their round by their seed (round r
    trains seed r)."""
    return scenario.split("[")[0], round_


def groups(cells: Sequence[CellSpec]) -> list[list[CellSpec]]:
    """The cells in groups of one round and one scenario (``group_key``), in the order they
    first appear."""
    found: dict[tuple, list[CellSpec]] = {}
    for cell in cells:
        found.setdefault(group_key(cell.scenario.name, cell.round), []).append(cell)
    return list(found.values())


def epoch_order(workers: Sequence[Worker], seed: int, cell: CellSpec, epoch: int) -> list[Worker]:
    """The group's workers in the order they train ``epoch``: a fresh permutation per epoch."""
    order = list(workers)
    random.Random(f"{seed}:{cell.round}:{cell.scenario.name.split('[')[0]}:{epoch}").shuffle(order)
    return order


class Lockstep:
    """Runs a list of cells as lockstep groups (see the module's docstring)."""

    name = DESIGN

    def __init__(
        self, order_seed: int = 0, python: Callable[[CellSpec], str] | None = None
    ) -> None:
        """``python``: the interpreter a cell's worker runs under (default: this one) — e.g.
        another virtual environment's, with another version of a framework and mlpbench in it."""
        self.order_seed = order_seed
        self.python = python or (lambda _cell: sys.executable)

    def run(self, cell: CellSpec, on_epoch: EpochCallback | None = None) -> Result:
        """A single cell is a group of one."""
        results: list[Result] = []
        self.run_many([cell], lambda _, r: results.append(r), on_epoch)
        return results[0]

    def run_many(
        self, cells: Sequence[CellSpec], done: DoneCallback, on_epoch: EpochCallback | None
    ) -> None:
        """Every group in turn; ``done(cell, result)`` for each cell as its group ends. Ctrl-C
        stops the group's workers, hands back their finished epochs (incomplete) and re-raises."""
        for group in groups(cells):
            self._run_group(group, done, on_epoch)

    def _run_group(
        self, group: list[CellSpec], done: DoneCallback, on_epoch: EpochCallback | None
    ) -> None:
        workers: list[Worker] = []
        try:
            for cell in group:  # one at a time: loading and building do not overlap
                worker = start_worker(cell, self.python(cell))
                workers.append(worker)
                worker.read_until(("ready",), on_epoch)
            for epoch in range(1, max(c.scenario.epochs for c in group) + 1):
                for worker in epoch_order(workers, self.order_seed, group[0], epoch):
                    if worker.waiting and epoch <= worker.cell.scenario.epochs:
                        train_epoch(worker, workers, on_epoch)
        except KeyboardInterrupt:
            for worker in workers:
                _interrupt(worker)
            finish(workers, done, on_epoch, interrupted=True)
            raise
        finish(workers, done, on_epoch, interrupted=False)


def start_worker(cell: CellSpec, python: str) -> Worker:
    """``cell``'s worker process in lockstep mode (it loads, builds, says ``ready`` and waits)."""
    proc = subprocess.Popen(
        [python, "-m", "bench.cell.worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a terminal's Ctrl-C reaches the parent only
    )
    worker = Worker(cell, proc)
    worker.tell(json.dumps({**cell.to_dict(), "lockstep": True}))
    return worker


def train_epoch(worker: Worker, group: list[Worker], on_epoch: EpochCallback | None) -> None:
    """Tell ``worker`` to train one epoch and wait for it; add what every other process used
    meanwhile to the worker's ``cpu`` tally."""
    others = [w.proc.pid for w in group if w is not worker]
    before = _cpu_now(worker.proc.pid, others)
    worker.tell("epoch")
    worker.read_until(("epoch",), on_epoch)
    after = _cpu_now(worker.proc.pid, others)
    for key, value in _cpu_used(before, after).items():
        worker.cpu[key] = worker.cpu.get(key, 0.0) + value


def finish(
    workers: list[Worker], done: DoneCallback, on_epoch: EpochCallback | None, interrupted: bool
) -> None:
    """Tell every worker to stop, collect its result, reap it and report it."""
    for worker in workers:
        if worker.waiting:
            worker.tell("stop")
        if worker.proc.stdin is not None and not worker.proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                worker.proc.stdin.close()
        worker.read_until(("result",), on_epoch)
        done(worker.cell, _result(worker, interrupted))


def _result(worker: Worker, interrupted: bool) -> Result:
    conditions = {"cores": os.cpu_count(), **{k: round(v, 3) for k, v in worker.cpu.items()}}
    return reap(
        worker.proc, worker.cell, worker.history, worker.outcome, interrupted, conditions,
        started=worker.started, ended=time.time(), design=DESIGN,
    )  # fmt: skip


def _interrupt(worker: Worker) -> None:
    if worker.proc.poll() is None:
        worker.proc.send_signal(signal.SIGINT)


# --- CPU accounting from /proc ---------------------------------------------------------------


def _cpu_now(active: int, waiting: list[int]) -> dict[str, float]:
    """CPU seconds so far: the active worker's, the waiting workers' (summed), the machine's busy
    time and its steal time (all processes), from /proc; {} where /proc cannot be read."""
    busy, steal = _machine_cpu()
    if busy is None:
        return {}
    return {
        "active": _process_cpu(active),
        "waiting": sum(_process_cpu(pid) for pid in waiting),
        "busy": busy,
        "steal": steal or 0.0,
    }


def _cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """What other processes used between two readings, and the active worker's own CPU."""
    if not before or not after:
        return {}
    delta = {k: after[k] - before[k] for k in before}
    foreign = delta["busy"] - delta["active"] - delta["waiting"]
    return {
        "trained_cpu_s": delta["active"],
        "idle_workers_cpu_s": max(0.0, delta["waiting"]),
        "foreign_cpu_s": max(0.0, foreign),
        "steal_s": max(0.0, delta["steal"]),
    }


TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads); 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14, 15)


def _machine_cpu() -> tuple[float | None, float | None]:
    """(busy, steal) CPU seconds of the whole machine since boot, from /proc/stat's cpu line."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            values = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None, None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (values + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / TICK, steal / TICK
