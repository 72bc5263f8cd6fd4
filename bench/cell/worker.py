"""``python -m bench.cell.worker``: train one cell in this (fresh) process, for the process
executor.

Protocol: the cell arrives as one JSON line on stdin. Progress and the outcome go to stdout as
lines starting with ``MARK``: ``data {n_train, n_test, n_features}`` once the data is loaded,
``epoch {EpochRecord}`` after each finished epoch (the first with ``settings`` beside it), then
exactly one of ``result {Result}`` or ``failed {"reason": one line}``. Anything else on stdout (a
framework's chatter) is not protocol; the parent passes it on to its stderr. Ctrl-C (SIGINT) ends
the run after the finished epochs, which the result then holds, marked incomplete.

In lockstep (the cell's JSON has ``"lockstep": true``; ``bench.campaign.lockstep``), the worker
loads, builds and then sends ``ready {}`` and waits: each ``epoch`` line on stdin trains one epoch
(answered by its ``epoch`` line), ``stop`` (or the end of stdin) ends it with its ``result``. A
backend that refuses the scenario answers ``result`` (skipped) instead of ``ready``. While it
waits it blocks on stdin, so it uses no CPU of its own (its framework's pools may still spin for
a moment; the parent measures what they use).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from typing import Any

MARK = "@@mlpbench "


def send(kind: str, payload: dict[str, Any]) -> None:
    """One message to the parent; a parent that is gone (its pipe closed) ends this process
    quietly: there is nobody left to tell."""
    try:
        print(f"{MARK}{kind} {json.dumps(payload)}", flush=True)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        raise SystemExit(1) from None


def report_epoch(session: Any, record: Any) -> None:
    first = {"settings": session.settings()} if record.epoch == 1 else {}
    send("epoch", {**asdict(record), **first})


def train_reporting(cell: Any) -> Any:
    """Load the cell's data and train it in this process, sending ``data`` and ``epoch`` lines as
    it goes (the first epoch's line carries the settings, so a cell killed later keeps them)."""
    from bench.cell.session import run
    from bench.data import DataCache, load_raw

    data = DataCache(load_raw(cell.data), cell.n_train, cell.n_test).get(cell.scenario.dtype)
    send("data", {"n_train": data.n_train, "n_test": data.n_test, "n_features": data.n_features})
    return run(cell.backend, cell.scenario, data, report_epoch, cell.options, cell.eval_every)


def train_on_command(cell: Any) -> Any:
    """Load and build, say ``ready``, then train an epoch per ``epoch`` line until ``stop``."""
    from backends.api import RecipeUnsupported
    from bench.cell.session import Session
    from bench.data import DataCache, load_raw
    from bench.results.record import Result

    data = DataCache(load_raw(cell.data), cell.n_train, cell.n_test).get(cell.scenario.dtype)
    send("data", {"n_train": data.n_train, "n_test": data.n_test, "n_features": data.n_features})
    session = Session(
        cell.backend, cell.scenario, data, report_epoch, cell.options, cell.eval_every
    )
    try:
        session.build()
    except RecipeUnsupported as err:
        return Result(cell.backend, cell.scenario, skipped=str(err) or "not supported",
                      n_train=data.n_train, n_test=data.n_test)  # fmt: skip
    send("ready", {})
    try:
        while sys.stdin.readline().strip() == "epoch":
            session.run_epoch()
    except KeyboardInterrupt:
        return session.result(complete=False)
    return session.result(complete=len(session.history) >= cell.scenario.epochs)


def main() -> int:
    try:
        line = sys.stdin.readline()
        if not line:  # the parent died before sending the cell
            return 1
        cell = json.loads(line)
        lockstep = bool(cell.pop("lockstep", False))
        threads = cell["options"].get("threads")
        if threads:  # before anything loads a framework (it sizes its pools as it loads)
            from bench.cell.threads import apply

            apply(threads)
        from bench.cell.spec import CellSpec  # only now: it loads NumPy, which sizes its BLAS pool

        spec = CellSpec.from_dict(cell)
        result = train_on_command(spec) if lockstep else train_reporting(spec)
    except KeyboardInterrupt:  # before the first epoch: nothing finished
        send("failed", {"reason": "interrupted before its first epoch finished"})
        return 130
    except BaseException as err:  # one line for the parent, never a traceback
        text = str(err).strip().splitlines()
        send("failed", {"reason": f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")})
        return 1
    from dataclasses import replace

    from bench.cell.threads import process_threads

    send("result", replace(result, conditions={"threads": process_threads()}).to_dict())
    return 0


if __name__ == "__main__":
    sys.exit(main())
