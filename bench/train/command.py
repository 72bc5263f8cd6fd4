"""``mlpbench run``: pick scenarios × backends, train each cell through an executor (by default
each in a fresh process), show progress, write JSON and tables.

The JSON is rewritten (atomically) after every finished cell, so an interrupt or a crash in a
later cell never loses earlier results. A cell that fails (its process killed, an exception in
its backend) is recorded as failed with a one-line reason; the others still run, and the command
then exits 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import scenarios
from backends.api import RunOptions
from bench import registry
from bench.data import DataCache, load_raw
from bench.errors import EXIT_FAILED, EXIT_INTERRUPTED, BackendUnavailable, ConfigError
from bench.report import write_tables_and_report
from bench.results import write as results
from bench.results.record import EpochRecord, Result
from bench.train.cell import Cell
from bench.train.executors import EXECUTORS, Executor
from bench.train.machine import machine_info
from scenarios import Scenario


def requested_backends(requested: list[str] | None) -> list[str]:
    """The backends named (checked against the registry), or every one for 'all' or none."""
    if not requested or "all" in requested:
        return registry.names()
    return list(dict.fromkeys(registry.check_name(n) for n in requested))


def select_backends(
    requested: list[str] | None, options: dict[str, RunOptions]
) -> tuple[list[str], list[str]]:
    """(backends to run, one line per unavailable backend skipped), each backend asked in its
    own process with its options (``registry.probe``): this parent imports no framework.
    Named backends must be available (BackendUnavailable otherwise); 'all' or nothing means
    every available one. An option a backend rejects is a ConfigError, before any training."""
    everyone = not requested or "all" in requested
    # with their machine facts: the run records them next, from these same (cached) probes
    probes = registry.probe_all(options, facts=True, options=options)
    for found in probes.values():
        if found.option_error:
            raise ConfigError(found.option_error)
        if found.reason and not everyone:
            raise BackendUnavailable(f"backend {found.name!r} is unavailable: {found.reason}")
    skipped = [f"{n}: {p.reason}" for n, p in probes.items() if p.reason]
    return [n for n, p in probes.items() if not p.reason], skipped


def select_scenarios(requested: list[str] | None, args: argparse.Namespace) -> list[Scenario]:
    """The chosen scenarios with the overrides applied, once per ``--seed`` (each scenario's own
    seed when none is given), in catalogue-then-seed order."""
    names = list(scenarios.SCENARIOS) if not requested or "all" in requested else requested
    overrides = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "dropout": args.dropout,
    }
    chosen = [scenarios.get(n).with_overrides(**overrides) for n in dict.fromkeys(names)]
    seeds = list(dict.fromkeys(args.seed or []))
    return [s.with_overrides(seed=seed) for s in chosen for seed in seeds] if seeds else chosen


def show_epoch(cell: Cell, r: EpochRecord) -> None:
    print(
        f"  [{cell.label}] epoch {r.epoch:>2}/{cell.scenario.epochs}  {r.seconds:7.3f} s"
        f"  loss {r.train_loss:.4f}  acc {100 * r.train_accuracy:6.2f}%"
        f"  test {100 * r.test_accuracy:6.2f}%",
        flush=True,
    )


def backend_options(names: list[str], args: argparse.Namespace) -> dict[str, RunOptions]:
    """Each backend's RunOptions: ``--tf32`` for all; ``--option [BACKEND.]NAME=VALUE`` (and the
    shorthands --jit/--no-jit, --steps-per-execution) for each named backend, or, unscoped, for
    every chosen backend that has that option. ConfigError when no chosen backend has it."""
    given = list(args.option or [])
    if args.jit_compile is not None:
        given.append(f"jit_compile={args.jit_compile}")
    if args.steps_per_execution is not None:
        given.append(f"steps_per_execution={args.steps_per_execution}")
    per_backend: dict[str, dict[str, str]] = {name: {} for name in names}
    for text in given:
        key, sep, value = text.partition("=")
        scope, _, option = key.strip().rpartition(".")
        targets = [scope] if scope else [n for n in names if option in registry.options_of(n)]
        if not sep or not option or not targets or targets[0] not in per_backend:
            raise ConfigError(
                f"option {text!r} names no option of the chosen backends "
                f"({_known_options(names)}); write [BACKEND.]NAME=VALUE"
            )
        for name in targets:
            per_backend[name][option] = value.strip()
    return {name: RunOptions(tf32=args.tf32, backend=opts) for name, opts in per_backend.items()}


def _known_options(names: list[str]) -> str:
    known = [f"{n}.{o}" for n in names for o in registry.options_of(n)]
    return ", ".join(known) or "none has options"


def one_process(names: list[str], options: dict[str, RunOptions]) -> None:
    """ConfigError when ``--executor inprocess`` would put two frameworks that crash each other
    in its one process: Keras on TensorFlow beside anything that imports PyTorch's triton (Keras
    on PyTorch imports torch._dynamo, and so does torch's ``compile`` option)."""
    tensorflow = [n for n in names if n == "keras"]
    dynamo = [
        n
        for n in names
        if n == "keras-torch"
        or (n == "torch" and options.get(n, RunOptions()).backend.get("compile", "").lower()
            in ("1", "true", "yes", "on"))
    ]  # fmt: skip
    if tensorflow and dynamo:
        pair = f"{tensorflow[0]} and {dynamo[0]}"
        raise ConfigError(
            f"--executor inprocess cannot run {pair} in one process (TensorFlow and PyTorch's "
            "triton crash together): use --executor process (the default), or run them apart"
        )


def run_all(
    cells: list[Cell], executor: Executor, save: Callable[[list[Result]], None]
) -> list[Result]:
    """Train every cell; ``save(results)`` after each. Stops at Ctrl-C (re-raised after saving
    the interrupted cell's finished epochs); a failed cell is saved and the next one runs. An
    executor with ``run_many`` (a cluster's) gets every cell at once and calls back as each one
    ends, in the order they end; it cancels what is unfinished at Ctrl-C and re-raises."""
    done: list[Result] = []
    run_many = getattr(executor, "run_many", None)
    if run_many is not None:

        def finished(cell: Cell, result: Result) -> None:
            done.append(result)
            save(done)
            if result.skipped or result.failed:
                word = "skipped" if result.skipped else "failed"
                print(f"  [{cell.label}] {word}: {result.skipped or result.failed}", flush=True)
            elif not result.complete:
                kept = len(result.history)
                print(f"  [{cell.label}] interrupted; {kept} finished epochs kept", flush=True)

        for cell in cells:
            print(f"{cell.backend} × {cell.scenario.name}: {cell.scenario.summary}", flush=True)
        run_many(cells, finished, show_epoch)
        return done
    for cell in cells:
        print(f"{cell.backend} × {cell.scenario.name}: {cell.scenario.summary}", flush=True)
        result = executor.run(cell, show_epoch)
        done.append(result)
        save(done)
        if result.skipped:
            print(f"  skipped: {result.skipped}", flush=True)
        elif result.failed:
            print(f"  failed: {result.failed}", flush=True)
        elif not result.complete:
            raise KeyboardInterrupt
    return done


def run_command(args: argparse.Namespace) -> int:
    options = backend_options(requested_backends(args.backend), args)
    chosen = select_scenarios(args.scenario, args)
    out = results.check_writable(args.out)  # fail before any training
    names, unavailable = select_backends(args.backend, options)
    if args.executor == "inprocess":
        one_process(names, options)  # fail before any training
    if args.executor == "slurm":  # ConfigError here when submitit or sbatch is missing
        from bench.train.slurm import Slurm

        executor: Executor = Slurm.from_args(args)
    else:
        executor = EXECUTORS[args.executor]()
    for line in unavailable:
        print(f"not running {line}")
    if not names:
        raise ConfigError("no backend is available to run")
    raw = load_raw(args.data)
    DataCache(raw, args.n_train, args.n_test)  # checks --n-train/--n-test against the data
    print(f"data: {raw.source} ({'verified' if raw.verified else 'not verified'} MNIST)")
    machine, commit = machine_info(), results.commit_info()

    saved: list[Result] = []
    written: list[Path] = [out]

    def save(done: list[Result]) -> None:
        if executor.name == "slurm":  # each node's results under its own machine facts
            from bench.train.slurm import write_by_machine

            written[:] = write_by_machine(out, done, executor, machine, commit)
        else:
            results.write_json_atomic(out, results.document(done, machine, commit))
        saved[:] = done

    cells = [
        Cell(b, s, options[b], args.data, args.n_train, args.n_test) for s in chosen for b in names
    ]
    start = time.perf_counter()
    try:
        done = run_all(cells, executor, save)
    except KeyboardInterrupt:
        where = f"saved to {out} (marked incomplete)" if saved else "none had finished"
        print(f"interrupted: finished epochs {where}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:
        where = f"results so far are in {out}" if saved else "no run had finished"
        failure = f"run failed ({type(err).__name__}: {err})"
        print(f"mlpbench: error: {failure}; {where}", file=sys.stderr)
        return EXIT_FAILED
    files = ", ".join(str(p) for p in written)
    print(f"wrote {files} ({len(cells)} runs, {time.perf_counter() - start:.0f} s)")
    if not args.no_tables:
        write_tables_and_report(written, out.parent)
    failed = [f"{r.backend} × {r.scenario.name}: {r.failed}" for r in done if r.failed]
    for line in failed:
        print(f"mlpbench: failed: {line}", file=sys.stderr)
    return EXIT_FAILED if failed else 0
