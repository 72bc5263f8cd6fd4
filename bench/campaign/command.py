"""``mlpbench run``: pick scenarios × backends, train each cell through an executor (by default
``lockstep``: each cell in a fresh process, the backends of a scenario and round taking turns
epoch by epoch), show progress, write the results JSON.

The CLI builds a ``RunRequest`` from its flags and calls ``run_command``, which returns a
``RunOutcome``; the tables come after, from the report, called by the CLI: nothing here imports
the report or the CLI.

The JSON is rewritten (atomically) after every finished cell, so an interrupt or a crash in a
later cell never loses earlier results. A cell that fails (its process killed, an exception in
its backend) is recorded as failed with a one-line reason; the others still run, and the outcome
then has exit code 1.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import scenarios
from backends.api import RunOptions
from bench import registry
from bench.campaign import conditions, precision
from bench.campaign.executors import EXECUTORS, Executor
from bench.campaign.fingerprint import code_fingerprint
from bench.campaign.lockstep import Lockstep
from bench.campaign.machine import machine_info
from bench.campaign.profile import load_profile
from bench.campaign.progress import Progress
from bench.campaign.resume import Expected, read_resumable, recorded_order_seed
from bench.campaign.rounds import Slot, cell_filter, new_order_seed, plan
from bench.cell.spec import CellSpec
from bench.data import DataCache, RawMNIST, load_raw
from bench.errors import EXIT_FAILED, EXIT_INTERRUPTED, BackendUnavailable, ConfigError
from bench.results import write as results
from bench.results.record import EpochRecord, Result
from scenarios import Scenario
from scenarios.files import expand as expand_sweep
from scenarios.files import is_scenario_file, parse_sweeps
from scenarios.files import load as load_scenario_file

#: ``--target-ci``'s wall-time budget for the whole run when ``--budget`` is not given, minutes.
DEFAULT_BUDGET_MINUTES = 60.0


@dataclass(frozen=True)
class RunRequest:
    """What ``mlpbench run`` was asked for, as values (the CLI builds it from its flags). An
    empty tuple or None is a flag not given: every available backend, every catalogue scenario,
    each scenario's own epochs, batch size, learning rate, dropout and seed."""

    backends: tuple[str, ...] = ()  # registry names, or 'all'
    scenarios: tuple[str, ...] = ()  # catalogue names, scenario files (.toml), or 'all'
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    dropout: float | None = None
    seeds: tuple[int, ...] = ()  # one round per seed, in this order
    rounds: int | None = None  # N rounds, round r with seed r (excludes ``seeds``)
    sweeps: tuple[str, ...] = ()  # 'KEY=V1,V2' texts: one cell per point of their product
    cells: tuple[str, ...] = ()  # 'BACKENDS:SCENARIOS' specs: only these pairs (their union)
    order: str = "interleaved"  # or 'sequential' (``bench.campaign.rounds.ORDERS``)
    order_seed: int | None = None  # None: the --resume file's, else a fresh one
    resume: Path | None = None  # a results file whose still-valid cells are kept
    target_ci: float | None = None  # percent: add rounds until each interval is inside ±it
    budget_minutes: float = DEFAULT_BUDGET_MINUTES  # the whole run's wall time, with target_ci
    profile: Path | None = None  # a tuned profile (``bench.campaign.profile``)
    threads: int | None = None  # one thread budget for every framework's pools
    data: str | None = None  # MNIST's path; None: the shipped copy
    n_train: int | None = None  # the first N training rows only
    n_test: int | None = None  # the first N test rows only
    eval_every: int | None = None  # evaluate every N training samples (None: after each epoch)
    out: Path | None = None  # the results JSON; None: ``resume``, else ``results.DEFAULT_OUT``
    tf32: bool = False
    options: tuple[str, ...] = ()  # '[BACKEND.]NAME=VALUE' texts, in the order given
    executor: str = "lockstep"  # 'lockstep', a key of ``EXECUTORS`` or 'slurm'
    slurm_partition: str | None = None  # the slurm_* fields: ``Slurm.from_args`` reads them
    slurm_account: str | None = None
    slurm_gpus: int | None = None
    slurm_cpus: int | None = None
    slurm_timeout_min: int | None = None
    slurm_option: tuple[str, ...] = ()  # 'KEY=VALUE' sbatch options
    quiet: bool = False  # no progress line (the caller silences the run's own lines)


@dataclass(frozen=True)
class RunOutcome:
    """What ``run_command`` left. ``exit_code``: 0; EXIT_FAILED when a cell failed or the run
    stopped on an error; EXIT_INTERRUPTED at Ctrl-C. ``finished``: the run reached its end (the
    files hold every cell; tables may follow). ``out``: the results JSON asked for; ``written``:
    the results files, ``out`` first (under Slurm, one more beside it per other machine).
    ``failed``: one line per failed cell, ``backend × scenario: reason``."""

    exit_code: int
    finished: bool
    out: Path
    written: tuple[Path, ...] = ()
    failed: tuple[str, ...] = ()


def requested_backends(requested: Sequence[str]) -> list[str]:
    """The backends named (checked against the registry), or every one for 'all' or none."""
    if not requested or "all" in requested:
        return registry.names()
    return list(dict.fromkeys(registry.check_name(n) for n in requested))


def select_backends(
    requested: Sequence[str], options: dict[str, RunOptions]
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


def chosen_scenarios(requested: Sequence[str]) -> list[Scenario]:
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


def select_rounds(request: RunRequest, sweeps: list | None = None) -> list[list[Scenario]]:
    """The chosen scenarios with the request's overrides applied, each expanded into its sweep's
    points, per round: round r trains every scenario with the r-th of ``request.seeds`` (or r,
    with ``request.rounds``); with neither, one round at each scenario's own seed."""
    overrides = {
        "epochs": request.epochs,
        "batch_size": request.batch_size,
        "learning_rate": request.learning_rate,
        "dropout": request.dropout,
    }
    chosen = [
        point
        for s in chosen_scenarios(request.scenarios)
        for point in expand_sweep(s.with_overrides(**overrides), sweeps or [])
    ]
    if request.rounds and request.seeds:
        raise ConfigError("--rounds N means --seed 0-(N-1): give one of them")
    seeds = list(range(request.rounds)) if request.rounds else list(dict.fromkeys(request.seeds))
    if not seeds:
        return [chosen]
    return [[s.with_overrides(seed=seed) for s in chosen] for seed in seeds]


def epoch_line(cell: CellSpec, r: EpochRecord) -> str:
    return (
        f"  [{cell.label}] epoch {r.epoch:>2}/{cell.scenario.epochs}  {r.seconds:7.3f} s"
        f"  loss {r.train_loss:.4f}  acc {100 * r.train_accuracy:6.2f}%"
        f"  test {100 * r.test_accuracy:6.2f}%"
    )


def backend_options(
    names: list[str],
    given: Sequence[str],
    profile: dict[str, dict[str, str]],
    *,
    tf32: bool = False,
    threads: int | None = None,
) -> dict[str, RunOptions]:
    """Each of ``names``' RunOptions: ``tf32`` and ``threads`` for all; a backend's options from
    ``profile`` (a tuned profile, ``bench.campaign.profile``), then each ``[BACKEND.]NAME=VALUE``
    of ``given`` in order (a later one wins) for the backend it names, or, unscoped, for every
    backend of ``names`` that has that option. ConfigError when no backend of ``names`` has it."""
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
        name: RunOptions(tf32=tf32, backend=opts, threads=threads)
        for name, opts in per_backend.items()
    }


def _known_options(names: list[str]) -> str:
    known = [f"{n}.{o}" for n in names for o in registry.options_of(n)]
    return ", ".join(known) or "none has options"


def one_process(names: list[str]) -> None:
    """ConfigError when ``--executor inprocess`` would put two frameworks that crash each other
    in its one process: Keras on TensorFlow beside anything that imports PyTorch's triton (Keras
    on PyTorch and the torch backend import torch._dynamo: torch.optim at its first step)."""
    tensorflow = [n for n in names if n == "keras"]
    dynamo = [n for n in names if n in ("keras-torch", "torch")]
    if tensorflow and dynamo:
        pair = f"{tensorflow[0]} and {dynamo[0]}"
        raise ConfigError(
            f"--executor inprocess cannot run {pair} in one process (TensorFlow and PyTorch's "
            "triton crash together): use --executor lockstep (the default) or process, each a "
            "process per cell, or run them apart"
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
    """The result with its place in the plan, when it ran (as ``started``, else as the executor
    recorded it), the machine's conditions meanwhile, the code fingerprint and the options it
    was asked for."""
    ended = time.time()
    seen = result.conditions
    if before is not None:
        seen = conditions.during(before, conditions.snapshot(), **result.conditions)
    return replace(
        result,
        round=cell.round,
        position=cell.position,
        started=started if started is not None else result.started,
        ended=ended if started is not None else result.ended,
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
    quiet: bool = False,
) -> list[Result]:
    """Train every cell, appending each result to ``done``; ``save(done)`` after each. Stops at
    Ctrl-C (re-raised after saving the interrupted cell's finished epochs); a failed cell is
    saved and the next one runs. An executor with ``run_many`` (a cluster's) gets every cell at
    once and calls back as each one ends, in the order they end; it cancels what is unfinished
    at Ctrl-C and re-raises. One progress line (``bench.campaign.progress``) follows the whole
    call: cells and epochs done, elapsed, the estimate of what is left (none with ``quiet``)."""
    done = [] if done is None else done
    progress = Progress(cells, quiet=quiet)

    def on_epoch(cell: CellSpec, r: EpochRecord) -> None:
        progress.write(epoch_line(cell, r))
        progress.epoch(cell, r.seconds)

    try:
        _run_cells(cells, executor, save, done, progress, on_epoch)
    finally:
        progress.close()
    return done


def _run_cells(
    cells: list[CellSpec],
    executor: Executor,
    save: Callable[[list[Result]], None],
    done: list[Result],
    progress: Progress,
    on_epoch: Callable[[CellSpec, EpochRecord], None],
) -> None:
    """``run_all``'s loop, its lines and the cells' ends reported to ``progress``."""
    run_many = getattr(executor, "run_many", None)
    if run_many is not None:

        def finished(cell: CellSpec, result: Result) -> None:
            done.append(annotate(cell, result, None, None))
            save(done)
            if result.skipped or result.failed:
                word = "skipped" if result.skipped else "failed"
                progress.write(f"  [{cell.label}] {word}: {result.skipped or result.failed}")
            elif not result.complete:
                kept = len(result.history)
                progress.write(f"  [{cell.label}] interrupted; {kept} finished epochs kept")
            progress.cell_done(cell)

        for cell in cells:
            progress.write(_announce(cell))
        run_many(cells, finished, on_epoch)
        return
    for cell in cells:
        progress.write(_announce(cell))
        before, started = conditions.snapshot(), time.time()
        result = annotate(cell, executor.run(cell, on_epoch), before, started)
        done.append(result)
        save(done)
        progress.cell_done(cell)
        if result.skipped:
            progress.write(f"  skipped: {result.skipped}")
        elif result.failed:
            progress.write(f"  failed: {result.failed}")
        elif not result.complete:
            raise KeyboardInterrupt


def _announce(cell: CellSpec) -> str:
    """The line naming a cell: backend × scenario (round, place in it): what it trains."""
    where = f" (round {cell.round}, {cell.position + 1})" if cell.round is not None else ""
    return f"{cell.backend} × {cell.scenario.name}{where}: {cell.scenario.summary}"


@dataclass
class PreparedRun:
    """A run checked and planned, before its first cell trains. ``names``: the backends that
    run; ``rounds``: each round's scenarios (with that round's seed); ``slots``: the planned
    cells in order; ``kept``: the cells ``--resume`` keeps, (backend, scenario, seed) → their
    benchmark entry; ``meta``: the results document's extra facts (the order; the precision
    report once ``more_rounds`` ends). ``written`` and ``saved``: what the last ``save`` wrote."""

    request: RunRequest
    names: list[str]
    rounds: list[list[Scenario]]
    options: dict[str, RunOptions]
    divisions: dict[str, str]  # backend → "tuned" (in the profile), "custom" or "shipped"
    executor: Executor
    out: Path
    machine: dict
    commit: dict | None
    order_seed: int
    slots: list[Slot]
    kept: dict
    meta: dict
    written: list[Path] = field(init=False)
    saved: list[Result] = field(init=False)
    listing: dict[tuple[str, str], int] = field(init=False)

    def __post_init__(self) -> None:
        self.written, self.saved = [self.out], []
        # the file lists cells as a sequential run would (scenarios in the catalogue's order,
        # then backends, then rounds), whatever order they ran in: the tables follow it
        pairs = [(s.name, b) for s in self.rounds[0] for b in self.names]
        self.listing = {pair: i for i, pair in enumerate(pairs)}

    def cells(self, todo: list[Slot]) -> list[CellSpec]:
        """The cells of ``todo`` that train: neither kept nor another backend's sweep point."""
        r = self.request
        return [
            CellSpec(s.backend, s.scenario, point_options(self.options[s.backend], s), r.data,
                     r.n_train, r.n_test, s.round, s.position, self.divisions[s.backend],
                     r.eval_every)
            for s in todo
            if s.key not in self.kept and not foreign_point(s)
        ]  # fmt: skip

    def skipped_points(self) -> list[Result]:
        """A skipped result for each planned sweep point (not kept) its backend cannot run."""
        return [
            annotate(CellSpec(s.backend, s.scenario, self.options[s.backend], round=s.round),
                     Result(s.backend, s.scenario, skipped=foreign_point(s)), None, None)
            for s in self.slots
            if foreign_point(s) and s.key not in self.kept
        ]  # fmt: skip

    def train(self, cells: list[CellSpec], done: list[Result]) -> None:
        """``run_all`` on this run's executor, saving after each cell."""
        run_all(cells, self.executor, self.save, done, quiet=self.request.quiet)

    def save(self, done: list[Result]) -> None:
        """Write ``done`` and the kept entries to ``out`` (atomically), in the listed order;
        under Slurm, one file per machine that trained (``write_by_machine``)."""
        if self.executor.name == "slurm":  # each node's results under its own machine facts
            from bench.campaign.slurm import write_by_machine

            self.written[:] = write_by_machine(
                self.out, done, self.executor, self.machine, self.commit
            )
        else:
            kept = list(self.kept.values())
            doc = results.document(done, self.machine, self.commit, kept=kept, meta=self.meta)
            doc["benchmarks"].sort(key=self._listed_order)
            results.write_json_atomic(self.out, doc)
        self.saved[:] = done

    def _listed_order(self, entry: dict) -> tuple[int, int]:
        params = entry["params"]
        place = self.listing.get((params["scenario"], params["backend"]), len(self.listing))
        return place, int(params.get("seed") or 0)


def prepare_run(request: RunRequest) -> PreparedRun:
    """Check everything that can fail before a cell trains (names, options, profile, sweeps,
    rounds, the output file, backends' availability, the executor, the data, ``--cells``,
    ``--resume``), raising ConfigError (or another MlpbenchError) with one line; print the
    backends skipped, the data's source and what ``--resume`` keeps; plan the cells."""
    requested = requested_backends(request.backends)
    profile = load_profile(request.profile) if request.profile else {}
    options = backend_options(
        requested, request.options, profile, tf32=request.tf32, threads=request.threads
    )
    sweeps = parse_sweeps(
        list(request.sweeps), {n: list(registry.options_of(n)) for n in requested}
    )
    rounds = select_rounds(request, sweeps)
    if request.target_ci and len(rounds) < 2:
        raise ConfigError("--target-ci needs rounds to pair: add --rounds N (N ≥ 2) or --seed")
    out = results.check_writable(request.out or request.resume or results.DEFAULT_OUT)
    names, unavailable = select_backends(request.backends, options)
    order_seed = chosen_order_seed(request)
    executor = make_executor(request, names, options, out, order_seed)
    for line in unavailable:
        print(f"not running {line}")
    if not names:
        raise ConfigError("no backend is available to run")
    raw = load_raw(request.data)
    DataCache(raw, request.n_train, request.n_test)  # checks n_train/n_test against the data
    print(f"data: {raw.source} ({'verified' if raw.verified else 'not verified'} MNIST)")
    machine, commit = machine_info(), results.commit_info()
    slots = planned_slots(request, names, rounds, order_seed)
    kept = resumed_cells(request, slots, names, options, machine, raw)
    divisions = {
        n: "tuned" if n in profile else "custom" if options[n].backend else "shipped" for n in names
    }
    meta = {"order": {"mode": request.order, "seed": order_seed, "rounds": len(rounds)}}
    return PreparedRun(
        request, names, rounds, options, divisions, executor, out, machine, commit,
        order_seed, slots, kept, meta,
    )  # fmt: skip


def make_executor(
    request: RunRequest,
    names: list[str],
    options: dict[str, RunOptions],
    out: Path,
    order_seed: int = 0,
) -> Executor:
    """The executor ``request.executor`` names. ConfigError when ``inprocess`` cannot hold these
    backends together (``one_process``) or is given threads, or when Slurm's tools are missing.
    A Slurm executor keeps its job files beside ``out``; lockstep draws its epoch orders from
    ``order_seed``."""
    if request.executor == "inprocess":
        one_process(names)
        if request.threads:
            raise ConfigError(
                "--threads needs a process per cell (--executor lockstep, the default, or "
                "process): frameworks size their pools when they load, before this process could "
                "set them"
            )
    if request.executor == "slurm":  # ConfigError here when submitit or sbatch is missing
        from bench.campaign.slurm import Slurm

        return Slurm.from_args(replace(request, out=out))
    if request.executor == "lockstep":  # its epoch orders are drawn from the run's order seed
        return Lockstep(order_seed)
    return EXECUTORS[request.executor]()


def chosen_order_seed(request: RunRequest) -> int:
    """``request.order_seed``, else the one the ``--resume`` file recorded, else a fresh one."""
    order_seed = request.order_seed
    if order_seed is None and request.resume is not None:
        order_seed = recorded_order_seed(request.resume)
    return new_order_seed() if order_seed is None else order_seed


def planned_slots(
    request: RunRequest, names: list[str], rounds: list[list[Scenario]], order_seed: int
) -> list[Slot]:
    """Every round's backend × scenario that ``request.cells`` allows, in the request's order;
    ConfigError for a malformed ``--cells`` spec or when it leaves nothing."""
    try:
        wanted = cell_filter(list(request.cells), registry.names(), [s.name for s in rounds[0]])
    except ValueError as err:
        raise ConfigError(str(err)) from None
    slots = plan(names, rounds, request.order, order_seed, keep=wanted)
    if not slots:
        raise ConfigError("--cells leaves no backend × scenario to run")
    return slots


def resumed_cells(
    request: RunRequest,
    slots: list[Slot],
    names: list[str],
    options: dict[str, RunOptions],
    machine: dict,
    raw: RawMNIST,
) -> dict:
    """The cells of the ``--resume`` file this run keeps, (backend, scenario, seed) → entry:
    those whose machine, software, code, options and data slice match this run's, in lockstep
    only whole rounds ({} without ``request.resume``). Prints what was kept and why the others
    were not."""
    if request.resume is None:
        return {}
    expected = Expected(
        machine_id=machine["mlpbench"]["machine_id"],
        packages=machine["mlpbench"]["packages"],
        code={n: code_fingerprint(n) for n in names},
        options=lambda slot: CellSpec(
            slot.backend, slot.scenario, point_options(options[slot.backend], slot)
        ).to_dict()["options"],
        n_train=request.n_train or int(raw.x_train.shape[0]),
        n_test=request.n_test or int(raw.x_test.shape[0]),
        eval_every=request.eval_every,
    )
    lockstep = request.executor == "lockstep"
    resumed = read_resumable(request.resume, slots, expected, lockstep)
    print(resumed.summary(request.resume))
    return resumed.kept


def run_command(request: RunRequest) -> RunOutcome:
    """``mlpbench run`` without its tables: check and plan (``prepare_run``; its errors raise),
    train every planned cell, then with ``target_ci`` more rounds (``more_rounds``), writing the
    results JSON after every cell. Ctrl-C and an error while training do not raise: they end the
    run with one line on stderr and an outcome that is not ``finished``. Prints one line for the
    files written when the run finishes; the failed cells' lines are the caller's to print."""
    run = prepare_run(request)
    cells = run.cells(run.slots)
    start = time.perf_counter()
    done = run.skipped_points()
    try:
        if cells or not run.kept:
            run.train(cells, done)
        else:
            run.save(done)  # everything was kept: write it where --out says
        if request.target_ci:
            more_rounds(run, start, done)
            run.save(done)
    except KeyboardInterrupt:
        kept_any = run.saved or run.kept
        where = f"saved to {run.out} (marked incomplete)" if kept_any else "none had finished"
        print(f"interrupted: finished epochs {where}", file=sys.stderr)
        return RunOutcome(EXIT_INTERRUPTED, False, run.out, tuple(run.written))
    except Exception as err:
        where = f"results so far are in {run.out}" if run.saved else "no run had finished"
        failure = f"run failed ({type(err).__name__}: {err})"
        print(f"mlpbench: error: {failure}; {where}", file=sys.stderr)
        return RunOutcome(EXIT_FAILED, False, run.out, tuple(run.written))
    files = ", ".join(str(p) for p in run.written)
    took = time.perf_counter() - start
    print(f"wrote {files} ({len(done)} runs, {len(run.kept)} kept, {took:.0f} s)")
    failed = tuple(f"{r.backend} × {r.scenario.name}: {r.failed}" for r in done if r.failed)
    return RunOutcome(EXIT_FAILED if failed else 0, True, run.out, tuple(run.written), failed)


def more_rounds(run: PreparedRun, start: float, done: list[Result]) -> None:
    """``--target-ci`` (``run.request.target_ci`` is set): rounds of the cells whose interval is
    still wider than the target (with their references) while the budget allows one more,
    estimated from what the cells' rounds cost so far (``precision.round_costs``); then the
    precision report into ``run.meta`` and one line per cell that missed the target.
    ``start``: the run's ``time.perf_counter()`` when it began; the budget counts from it.
    ``done``: the run's results so far; the new rounds' are appended."""
    request = run.request
    target, budget = request.target_ci / 100, 60 * request.budget_minutes
    reference = registry.REFERENCE if registry.REFERENCE in run.names else run.names[0]
    # the planned rounds' seeds, and those of rounds an earlier run added (kept by --resume)
    seeds = sorted({r[0].seed for r in run.rounds} | {key[2] for key in run.kept})
    budget_ended = False
    while True:
        entries = [*run.kept.values(), *(results.benchmark_entry(r) for r in done if r.history)]
        rounds, lockstep = precision.round_epochs(entries), precision.in_lockstep(entries)
        wanted = precision.too_wide(rounds, reference, target, lockstep)
        if not wanted:
            break
        cost = precision.round_costs(entries)
        estimate = sum(cost.get(cell, max(cost.values(), default=0.0)) for cell in wanted)
        if time.perf_counter() - start + estimate > budget:
            budget_ended = True
            break
        seeds.append(max(seeds) + 1)
        slots = _extra_round(run, wanted, seed=seeds[-1], number=len(seeds) - 1)
        print(f"--target-ci {request.target_ci:g} %: round {len(seeds) - 1} for {len(slots)} cells")
        run.train(run.cells(slots), done)
    run.meta["precision"] = {
        "target_pct": request.target_ci,
        "budget_minutes": request.budget_minutes,
        "cells": precision.report(rounds, reference, target, budget_ended, lockstep),
    }
    for row in run.meta["precision"]["cells"]:
        if row["status"] != "target met":
            width = "unknown" if row["half_width_pct"] is None else f"±{row['half_width_pct']} %"
            print(f"  {row['backend']} × {row['scenario']}: {width} ({row['status']})")


def _extra_round(
    run: PreparedRun, wanted: set[tuple[str, str]], seed: int, number: int
) -> list[Slot]:
    """Round ``number``, at ``seed``, of the (backend, scenario) pairs in ``wanted``, in the
    run's order."""
    chosen = {name for _, name in wanted}
    scenarios_now = [s.with_overrides(seed=seed) for s in run.rounds[0] if s.name in chosen]
    return plan(
        run.names,
        [scenarios_now],
        run.request.order,
        run.order_seed,
        number,
        keep=lambda backend, scenario: (backend, scenario) in wanted,
    )
