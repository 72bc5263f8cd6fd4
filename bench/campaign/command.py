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
from dataclasses import replace
from pathlib import Path

import scenarios
from backends.api import RunOptions
from bench import registry
from bench.campaign import conditions, precision
from bench.campaign.executors import EXECUTORS, Executor
from bench.campaign.fingerprint import code_fingerprint
from bench.campaign.machine import machine_info
from bench.campaign.profile import load_profile
from bench.campaign.resume import Expected, read_resumable, recorded_order_seed
from bench.campaign.rounds import Slot, cell_filter, new_order_seed, plan
from bench.cell.spec import CellSpec
from bench.data import DataCache, load_raw
from bench.errors import EXIT_FAILED, EXIT_INTERRUPTED, BackendUnavailable, ConfigError
from bench.report import write_tables_and_report
from bench.results import write as results
from bench.results.record import EpochRecord, Result
from scenarios import Scenario
from scenarios.files import expand as expand_sweep
from scenarios.files import is_scenario_file, parse_sweeps
from scenarios.files import load as load_scenario_file


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
    probes = registry.probe_all(options, options=options)
    for found in probes.values():
        if found.option_error:
            raise ConfigError(found.option_error)
        if found.reason and not everyone:
            raise BackendUnavailable(f"backend {found.name!r} is unavailable: {found.reason}")
    skipped = [f"{n}: {p.reason}" for n, p in probes.items() if p.reason]
    return [n for n, p in probes.items() if not p.reason], skipped


def chosen_scenarios(requested: list[str] | None) -> list[Scenario]:
    """The catalogue scenarios named (all for 'all' or none) and every scenario of each
    scenario file named (``-s FILE.toml``), in the order given, each once."""
    names = list(scenarios.SCENARIOS) if not requested or "all" in requested else requested
    found: dict[str, Scenario] = {}
    for name in dict.fromkeys(names):
        if is_scenario_file(name):
            for scenario in load_scenario_file(name):
                if scenario.name in found:
                    raise ConfigError(f"{name}: scenario {scenario.name!r} is chosen twice")
                found[scenario.name] = scenario
        elif name != "all":
            found[name] = scenarios.get(name)
    return list(found.values())


def select_rounds(
    requested: list[str] | None, args: argparse.Namespace, sweeps: list | None = None
) -> list[list[Scenario]]:
    """The chosen scenarios with the overrides applied, each expanded into its sweep's points,
    per round: round r trains every scenario with the r-th seed of ``--seed`` (or r, with
    ``--rounds N``); without either, one round at each scenario's own seed."""
    overrides = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "dropout": args.dropout,
    }
    chosen = [
        point
        for s in chosen_scenarios(requested)
        for point in expand_sweep(s.with_overrides(**overrides), sweeps or [])
    ]
    if args.rounds and args.seed:
        raise ConfigError("--rounds N means --seed 0-(N-1): give one of them")
    seeds = list(range(args.rounds)) if args.rounds else list(dict.fromkeys(args.seed or []))
    if not seeds:
        return [chosen]
    return [[s.with_overrides(seed=seed) for s in chosen] for seed in seeds]


def show_epoch(cell: CellSpec, r: EpochRecord) -> None:
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
    profile = load_profile(args.profile) if getattr(args, "profile", None) else {}
    per_backend: dict[str, dict[str, str]] = {name: dict(profile.get(name, {})) for name in names}
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
    return {
        name: RunOptions(tf32=args.tf32, backend=opts, threads=args.threads)
        for name, opts in per_backend.items()
    }


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


def point_options(options: RunOptions, slot: Slot) -> RunOptions:
    """The run options of a sweep point on ``slot``'s backend: its swept options added."""
    swept = slot.scenario.sweep_options.get(slot.backend)
    return replace(options, backend={**options.backend, **swept}) if swept else options


def foreign_point(slot: Slot) -> str | None:
    """Why ``slot``'s backend does not run its sweep point (it sweeps another backend's
    option), or None."""
    others = [b for b in slot.scenario.sweep_options if b != slot.backend]
    if not others:
        return None
    keys = ", ".join(
        k for k, _ in slot.scenario.sweep if k.startswith(tuple(f"{b}." for b in others))
    )
    return f"this point sweeps {keys}, an option {slot.backend} does not have"


def annotate(cell: CellSpec, result: Result, before: dict | None, started: float | None) -> Result:
    """The result with its place in the plan, when it ran, the machine's conditions meanwhile,
    the code fingerprint and the options it was asked for."""
    ended = time.time()
    seen = result.conditions
    if before is not None:
        seen = conditions.during(before, conditions.snapshot(), **result.conditions)
    return replace(
        result,
        round=cell.round,
        position=cell.position,
        started=started,
        ended=ended if started is not None else None,
        conditions=seen,
        code=code_fingerprint(cell.backend),
        options=cell.to_dict()["options"],
        division=cell.division,
    )


def run_all(
    cells: list[CellSpec],
    executor: Executor,
    save: Callable[[list[Result]], None],
    done: list[Result] | None = None,
) -> list[Result]:
    """Train every cell, appending each result to ``done``; ``save(done)`` after each. Stops at
    Ctrl-C (re-raised after saving the interrupted cell's finished epochs); a failed cell is
    saved and the next one runs. An executor with ``run_many`` (a cluster's) gets every cell at
    once and calls back as each one ends, in the order they end; it cancels what is unfinished
    at Ctrl-C and re-raises."""
    done = [] if done is None else done
    run_many = getattr(executor, "run_many", None)
    if run_many is not None:

        def finished(cell: CellSpec, result: Result) -> None:
            done.append(annotate(cell, result, None, None))
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
        where = f" (round {cell.round}, {cell.position + 1})" if cell.round is not None else ""
        print(f"{cell.backend} × {cell.scenario.name}{where}: {cell.scenario.summary}", flush=True)
        before, started = conditions.snapshot(), time.time()
        result = annotate(cell, executor.run(cell, show_epoch), before, started)
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
    requested = requested_backends(args.backend)
    options = backend_options(requested, args)
    sweeps = parse_sweeps(args.sweep, {n: list(registry.options_of(n)) for n in requested})
    rounds = select_rounds(args.scenario, args, sweeps)
    if args.target_ci and len(rounds) < 2:
        raise ConfigError("--target-ci needs rounds to pair: add --rounds N (N ≥ 2) or --seed")
    out = results.check_writable(args.out or args.resume or results.DEFAULT_OUT)  # before training
    names, unavailable = select_backends(args.backend, options)
    if args.executor == "inprocess":
        one_process(names, options)
        if args.threads:
            raise ConfigError(
                "--threads needs --executor process (the default): frameworks size their pools "
                "when they load, before this process could set them"
            )
    if args.executor == "slurm":  # ConfigError here when submitit or sbatch is missing
        from bench.campaign.slurm import Slurm

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
    order_seed = args.order_seed
    if order_seed is None and args.resume is not None:
        order_seed = recorded_order_seed(args.resume)
    if order_seed is None:
        order_seed = new_order_seed()
    try:
        wanted = cell_filter(args.cells, registry.names(), [s.name for s in rounds[0]])
    except ValueError as err:
        raise ConfigError(str(err)) from None
    slots = plan(names, rounds, args.order, order_seed, keep=wanted)
    if not slots:
        raise ConfigError("--cells leaves no backend × scenario to run")
    kept: dict = {}
    if args.resume is not None:
        expected = Expected(
            machine_id=machine["mlpbench"]["machine_id"],
            packages=machine["mlpbench"]["packages"],
            code={n: code_fingerprint(n) for n in names},
            options=lambda slot: CellSpec(
                slot.backend, slot.scenario, point_options(options[slot.backend], slot)
            ).to_dict()["options"],
            n_train=args.n_train or int(raw.x_train.shape[0]),
            n_test=args.n_test or int(raw.x_test.shape[0]),
        )
        resumed = read_resumable(args.resume, slots, expected)
        kept = resumed.kept
        print(resumed.summary(args.resume))
    meta = {"order": {"mode": args.order, "seed": order_seed, "rounds": len(rounds)}}

    saved: list[Result] = []
    written: list[Path] = [out]

    def save(done: list[Result]) -> None:
        if executor.name == "slurm":  # each node's results under its own machine facts
            from bench.campaign.slurm import write_by_machine

            written[:] = write_by_machine(out, done, executor, machine, commit)
        else:
            doc = results.document(done, machine, commit, kept=list(kept.values()), meta=meta)
            doc["benchmarks"].sort(key=listed_order)
            results.write_json_atomic(out, doc)
        saved[:] = done

    # the file lists cells as a sequential run would (scenarios in the catalogue's order, then
    # backends, then rounds), whatever order they ran in: the tables follow it
    listing = {(s.name, b): i for i, (s, b) in enumerate((s, b) for s in rounds[0] for b in names)}

    def listed_order(entry: dict) -> tuple[int, int]:
        params = entry["params"]
        return listing.get((params["scenario"], params["backend"]), len(listing)), int(
            params.get("seed") or 0
        )

    def cells_of(todo: list[Slot]) -> list[CellSpec]:
        return [
            CellSpec(s.backend, s.scenario, point_options(options[s.backend], s), args.data,
                 args.n_train, args.n_test, s.round, s.position, divisions[s.backend])
            for s in todo
            if s.key not in kept and not foreign_point(s)
        ]  # fmt: skip

    profiled = load_profile(args.profile) if args.profile else {}
    divisions = {
        n: "tuned" if n in profiled else "custom" if options[n].backend else "shipped"
        for n in names
    }
    cells = cells_of(slots)
    start = time.perf_counter()
    done: list[Result] = [
        annotate(CellSpec(s.backend, s.scenario, options[s.backend], round=s.round),
                 Result(s.backend, s.scenario, skipped=foreign_point(s)), None, None)
        for s in slots
        if foreign_point(s) and s.key not in kept
    ]  # fmt: skip
    try:
        if cells or not kept:
            run_all(cells, executor, save, done)
        else:
            save(done)  # everything was kept: write it where --out says
        if args.target_ci:
            more_rounds(args, rounds, names, order_seed, start, done, kept, meta, cells_of,
                        lambda c: run_all(c, executor, save, done))  # fmt: skip
            save(done)
    except KeyboardInterrupt:
        where = f"saved to {out} (marked incomplete)" if saved or kept else "none had finished"
        print(f"interrupted: finished epochs {where}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:
        where = f"results so far are in {out}" if saved else "no run had finished"
        failure = f"run failed ({type(err).__name__}: {err})"
        print(f"mlpbench: error: {failure}; {where}", file=sys.stderr)
        return EXIT_FAILED
    files = ", ".join(str(p) for p in written)
    print(
        f"wrote {files} ({len(done)} runs, {len(kept)} kept, {time.perf_counter() - start:.0f} s)"
    )
    if not args.no_tables:
        write_tables_and_report(written, out.parent)
    failed = [f"{r.backend} × {r.scenario.name}: {r.failed}" for r in done if r.failed]
    for line in failed:
        print(f"mlpbench: failed: {line}", file=sys.stderr)
    return EXIT_FAILED if failed else 0


def more_rounds(
    args: argparse.Namespace,
    rounds: list[list[Scenario]],
    names: list[str],
    order_seed: int,
    start: float,
    done: list[Result],
    kept: dict,
    meta: dict,
    cells_of: Callable[[list[Slot]], list[CellSpec]],
    run: Callable[[list[CellSpec]], object],
) -> None:
    """``--target-ci``: rounds of the cells whose interval is still too wide (with their
    references) while the budget allows one more (estimated from the cells' own durations)."""
    target, budget = args.target_ci / 100, 60 * (args.budget or 60.0)
    reference = registry.REFERENCE if registry.REFERENCE in names else names[0]
    # the planned rounds' seeds, and those of rounds an earlier run added (kept by --resume)
    seeds = sorted({r[0].seed for r in rounds} | {key[2] for key in kept})
    budget_ended = False
    while True:
        entries = [*kept.values(), *(results.benchmark_entry(r) for r in done if r.history)]
        medians = precision.round_medians(entries)
        wanted = precision.too_wide(medians, reference, target)
        if not wanted:
            break
        cost = _mean_durations(done, kept)
        estimate = sum(cost.get(cell, max(cost.values(), default=0.0)) for cell in wanted)
        if time.perf_counter() - start + estimate > budget:
            budget_ended = True
            break
        seed = max(seeds) + 1
        seeds.append(seed)
        chosen = {name for _, name in wanted}
        scenarios_now = [s.with_overrides(seed=seed) for s in rounds[0] if s.name in chosen]
        slots = plan(
            names,
            [scenarios_now],
            args.order,
            order_seed,
            len(seeds) - 1,
            keep=lambda backend, scenario, wanted=wanted: (backend, scenario) in wanted,
        )
        print(f"--target-ci {args.target_ci:g} %: round {len(seeds) - 1} for {len(slots)} cells")
        run(cells_of(slots))
    meta["precision"] = {
        "target_pct": args.target_ci,
        "budget_minutes": args.budget or 60.0,
        "cells": precision.report(medians, reference, target, budget_ended),
    }
    for row in meta["precision"]["cells"]:
        if row["status"] != "target met":
            width = "unknown" if row["half_width_pct"] is None else f"±{row['half_width_pct']} %"
            print(f"  {row['backend']} × {row['scenario']}: {width} ({row['status']})")


def _mean_durations(done: list[Result], kept: dict) -> dict[tuple[str, str], float]:
    """Mean wall seconds each (backend, scenario) took per round so far (kept cells too)."""
    spans: dict[tuple[str, str], list[float]] = {}
    for r in done:
        if r.started is not None and r.ended is not None:
            spans.setdefault((r.backend, r.scenario.name), []).append(r.ended - r.started)
    for (backend, scenario, _), entry in kept.items():
        extra = entry.get("extra_info") or {}
        if isinstance(extra.get("started"), float) and isinstance(extra.get("ended"), float):
            spans.setdefault((backend, scenario), []).append(extra["ended"] - extra["started"])
    return {cell: sum(v) / len(v) for cell, v in spans.items()}
