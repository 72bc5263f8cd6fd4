"""Command line: ``mlpbench list | doctor | run | tune | fidelity | table | compare | ab`` (also
``python -m bench``).

argparse lives here only: each ``cmd_*`` turns its flags into values (a ``RunRequest``, a
``TuneRequest``, plain arguments) and calls the library with them. ``run`` calls the campaign,
which writes the results JSON, and then the report, which writes the tables beside it.

Every user error ends with one line on stderr, ``mlpbench: error: …``, exit code 2, no traceback.
``run`` writes its JSON after every finished run (atomically), so Ctrl-C or a crash in a later run
never loses earlier results; Ctrl-C inside a run keeps its finished epochs, marked incomplete.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bench
import scenarios
from bench import registry
from bench.campaign.tune import TOLERANCE_PT
from bench.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, MlpbenchError
from bench.results.write import DEFAULT_OUT
from bench.stats import GATE_ALPHA, GATE_FACTOR

if TYPE_CHECKING:
    from bench.campaign.command import RunRequest


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def seeds(text: str) -> list[int]:
    """'3' → [3]; '0-4' → [0, 1, 2, 3, 4]; '0,2,5-6' → [0, 2, 5, 6]."""
    found: list[int] = []
    for part in text.split(","):
        low, dash, high = part.strip().partition("-")
        if not low.isdigit() or (dash and not high.isdigit()) or (dash and int(high) < int(low)):
            raise argparse.ArgumentTypeError(
                f"must be seeds like 3, 0-4 or 0,2,5-6 (ranges low-high), got {text!r}"
            )
        found += range(int(low), int(high if dash else low) + 1)
    return found


def percent(text: str) -> float:
    value = _float(text)
    if not 0 < value < 100:
        raise argparse.ArgumentTypeError(f"must be a percentage between 0 and 100, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = _float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def learning_rate(text: str) -> float:
    value = _float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def dropout_rate(text: str) -> float:
    value = _float(text)
    if not (math.isfinite(value) and 0 <= value < 1):
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text!r}")
    return value


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None


def significance_level(text: str) -> float:
    value = _float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1), got {text!r}")
    return value


def target_accuracy(text: str) -> float:
    """A percentage in (0, 100] → a fraction."""
    value = _float(text)
    if not (math.isfinite(value) and 0 < value <= 100):
        raise argparse.ArgumentTypeError(f"must be a percentage in (0, 100], got {text!r}")
    return value / 100


def non_negative_float(text: str) -> float:
    value = _float(text)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def change_factor(text: str) -> float:
    value = _float(text)
    if not (math.isfinite(value) and value >= 1):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 1, got {text!r}")
    return value


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``mlpbench run: error: …``) and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``mlpbench`` parser: one sub-command per ``COMMANDS`` entry, each from its own
    ``_add_*_parser``; usage errors are one line (``OneLineParser``)."""
    parser = OneLineParser(
        prog="mlpbench",
        description="Benchmark one MNIST MLP across backends: same weights, batches and math.",
    )
    parser.add_argument("--version", action="version", version=f"mlpbench {bench.__version__}")
    sub = parser.add_subparsers(
        dest="command",
        metavar="{list,run,tune,fidelity,table,compare,ab,doctor}",
        parser_class=OneLineParser,
    )
    sub.add_parser("list", help="backends (with availability) and scenarios")
    sub.add_parser("doctor", help="is this machine ready for a benchmark run? what to change")
    _add_run_parser(sub)
    _add_tune_parser(sub)
    _add_fidelity_parser(sub)
    _add_table_parser(sub)
    _add_compare_parser(sub)
    _add_ab_parser(sub)
    return parser


def _add_run_parser(sub: argparse._SubParsersAction) -> None:
    """``run``: which cells, their rounds and settings, where they train."""
    run = sub.add_parser("run", help="train scenarios on backends; write JSON (and tables)")
    _add_run_selection(run)
    _add_run_rounds(run)
    _add_run_settings(run)
    _add_run_backend_options(run)
    _add_run_executor(run)
    run.add_argument(
        "--no-tables", action="store_true", help="do not write tables and plots next to the JSON"
    )
    run.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="print only errors and the answer at the end (no epoch lines, no progress)",
    )


def _add_run_selection(run: argparse.ArgumentParser) -> None:
    """``run``: the backends, scenarios, seeds, sweeps and cells to train."""
    run.add_argument(
        "--backend",
        "-b",
        action="append",
        metavar="B",
        help="a backend from 'mlpbench list', or 'all' (repeatable; "
        "default: every available backend)",
    )
    run.add_argument(
        "--scenario",
        "-s",
        action="append",
        metavar="S",
        help=f"one of {', '.join(scenarios.SCENARIOS)} or 'all' (repeatable; default: all)",
    )
    run.add_argument("--epochs", type=positive_int, help="override every scenario's epochs")
    run.add_argument("--batch-size", type=positive_int, help="override the batch size")
    run.add_argument(
        "--seed",
        type=seeds,
        action="extend",
        metavar="SEEDS",
        help="run each scenario once per seed (weights, batch order, dropout masks): 3, 0-4 or "
        "0,2,5-6; repeatable (default: each scenario's own seed)",
    )
    run.add_argument(
        "--sweep",
        action="append",
        metavar="KEY=V1,V2,…",
        help="one cell per point: a scenario field (batch_size=32,128,512; hidden=128,512x512) "
        "or a backend option (keras.steps_per_execution=1,16,64), repeatable (the product)",
    )
    run.add_argument(
        "--cells",
        action="append",
        metavar="BACKENDS:SCENARIOS",
        help="only these backend × scenario pairs of the chosen ones: comma-separated names or "
        "shell patterns on each side, e.g. 'numpy:gap_*' or 'keras-torch:baseline' "
        "(repeatable: the union)",
    )


def _add_run_rounds(run: argparse.ArgumentParser) -> None:
    """``run``: rounds and their order, ``--resume``, ``--target-ci`` and its budget."""
    run.add_argument(
        "--rounds",
        type=positive_int,
        metavar="N",
        help="N rounds, round r training with seed r (the same as --seed 0-(N-1))",
    )
    run.add_argument(
        "--order",
        choices=["interleaved", "sequential"],
        default="interleaved",
        help="interleaved (default): each round runs every backend × scenario once, in a fresh "
        "random order; sequential: scenario by scenario, seed by seed, backend by backend",
    )
    run.add_argument(
        "--order-seed",
        type=int,
        metavar="N",
        help="the seed of the interleaved order (default: a fresh one, recorded in the JSON)",
    )
    run.add_argument(
        "--resume",
        metavar="FILE",
        type=Path,
        help="keep the finished cells of FILE that nothing they depend on has changed for "
        "(recipe, options, data, code, software, machine), train the rest; writes FILE unless "
        "--out is given",
    )
    run.add_argument(
        "--target-ci",
        type=percent,
        metavar="PCT",
        help="after the rounds, add rounds for the cells whose speed interval (the reference "
        "backend's) or ratio interval (the others') is wider than ±PCT %%, each with its "
        "reference, until all are inside it or --budget ends",
    )
    run.add_argument(
        "--budget",
        type=positive_float,
        metavar="MINUTES",
        help="with --target-ci: the whole run's wall-time budget (default 60)",
    )


def _add_run_settings(run: argparse.ArgumentParser) -> None:
    """``run``: a profile, threads, the recipe's overrides, the data, the output."""
    run.add_argument(
        "--profile",
        metavar="FILE",
        type=Path,
        help="a tuned profile (mlpbench tune): its options for the backends it names, whose "
        "cells are then the tuned division (-O still overrides one)",
    )
    run.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        help="one thread budget for every framework's pools (BLAS, PyTorch intra/inter-op, "
        "TensorFlow intra/inter-op and tf.data; XLA:CPU only with N = 1), recorded in settings "
        "(default: each framework's own sizes, as its users get them)",
    )
    run.add_argument("--learning-rate", type=learning_rate, help="override the learning rate")
    run.add_argument("--dropout", type=dropout_rate, help="override the dropout rate")
    run.add_argument(
        "--data",
        metavar="PATH",
        help="MNIST as a Keras .npz, a folder with mnist_train.csv/mnist_test.csv, "
        "or a folder of IDX files (default: the shipped copy)",
    )
    run.add_argument("--n-train", type=positive_int, help="use only the first N training rows")
    run.add_argument("--n-test", type=positive_int, help="use only the first N test rows")
    run.add_argument(
        "--eval-every",
        type=positive_int,
        metavar="SAMPLES",
        help="evaluate on the test set every SAMPLES training samples (rounded up to whole "
        "batches), untimed, for a finer time to accuracy; backends that can only evaluate "
        "between epochs (Keras, JAX) keep the epoch and their settings say so (default: after "
        "each epoch)",
    )
    run.add_argument(
        "--out",
        metavar="FILE",
        type=Path,
        default=None,
        help=f"results JSON (default: the --resume FILE, else {DEFAULT_OUT})",
    )


def _add_run_backend_options(run: argparse.ArgumentParser) -> None:
    """``run``: TF32, Keras' shorthands and any backend's own options (``-O``)."""
    run.add_argument(
        "--tf32",
        action="store_true",
        help="allow TF32 matmuls on GPUs (off by default on every backend)",
    )
    jit = run.add_mutually_exclusive_group()
    jit.add_argument(
        "--jit",
        dest="jit_compile",
        action="store_true",
        default=None,
        help="Keras: jit_compile=True (XLA)",
    )
    jit.add_argument(
        "--no-jit", dest="jit_compile", action="store_false", help="Keras: jit_compile=False"
    )
    run.add_argument(
        "--steps-per-execution",
        type=positive_int,
        metavar="N",
        help="Keras: optimizer steps per compiled call (default 1, Keras' own default)",
    )
    run.add_argument(
        "--option",
        "-O",
        action="append",
        metavar="[BACKEND.]NAME=VALUE",
        help="a backend's own option (see 'mlpbench list'); unscoped, it goes to every chosen "
        "backend that has it (repeatable)",
    )


def _add_run_executor(run: argparse.ArgumentParser) -> None:
    """``run``: where each cell trains (``--executor``) and the ``--slurm-*`` options."""
    run.add_argument(
        "--executor",
        choices=["lockstep", "process", "inprocess", "slurm"],
        default="lockstep",
        help="lockstep (default): the backends of a scenario and round each in a fresh process, "
        "training their epochs in turn, in a fresh random order per epoch, so ratios pair "
        "epochs seconds apart; process: each cell in a fresh Python process, start to end, one "
        "after another; inprocess: all in "
        "this one (for debugging: a backend's exception stops the run with its traceback); "
        "slurm: each cell a Slurm job, all submitted at once (the slurm extra; see --slurm-*)",
    )
    slurm = run.add_argument_group("with --executor slurm (each job has its node alone)")
    slurm.add_argument("--slurm-partition", metavar="NAME", help="sbatch --partition")
    slurm.add_argument("--slurm-account", metavar="NAME", help="sbatch --account")
    slurm.add_argument(
        "--slurm-gpus", type=positive_int, metavar="N", help="GPUs per node (default: none)"
    )
    slurm.add_argument("--slurm-cpus", type=positive_int, metavar="N", help="CPUs per job")
    slurm.add_argument(
        "--slurm-timeout-min",
        type=positive_int,
        metavar="MIN",
        help="each job's time limit in minutes (default 60)",
    )
    slurm.add_argument(
        "--slurm-option",
        action="append",
        metavar="KEY=VALUE",
        help="any other sbatch option, e.g. qos=high or constraint=a100 (repeatable)",
    )


def _add_tune_parser(sub: argparse._SubParsersAction) -> None:
    """``tune``: the backend and scenario to search on, and the profile to write."""
    tune = sub.add_parser(
        "tune",
        help="search a backend's speed options on this machine; write the fastest to a profile",
    )
    tune.add_argument("--backend", "-b", required=True, metavar="B", help="the backend to tune")
    tune.add_argument(
        "--scenario",
        "-s",
        default="baseline",
        metavar="S",
        help="the scenario to tune on (default baseline)",
    )
    tune.add_argument(
        "--rounds",
        type=positive_int,
        default=3,
        metavar="N",
        help="interleaved rounds of every candidate (default 3)",
    )
    tune.add_argument("--epochs", type=positive_int, help="override the scenario's epochs")
    tune.add_argument("--n-train", type=positive_int, help="use only the first N training rows")
    tune.add_argument("--n-test", type=positive_int, help="use only the first N test rows")
    tune.add_argument(
        "--tolerance",
        type=positive_float,
        default=TOLERANCE_PT,
        metavar="PT",
        help="accuracy points a candidate may differ from shipped before it counts "
        f"as changing the math (default {TOLERANCE_PT:g})",
    )
    tune.add_argument(
        "--out",
        type=Path,
        default=Path("profile.toml"),
        metavar="FILE",
        help="the profile to write (its other backends are kept; default profile.toml)",
    )
    tune.add_argument("--keep", type=Path, metavar="FILE", help="also keep the search's JSON")


def _add_fidelity_parser(sub: argparse._SubParsersAction) -> None:
    """``fidelity``: the backends to check against their plain scripts, rounds, the output."""
    fidelity = sub.add_parser(
        "fidelity",
        help="a backend's warm epoch in the harness against its framework's plain script",
    )
    fidelity.add_argument(
        "--backend", "-b", required=True, action="append", metavar="B", help="repeatable"
    )
    fidelity.add_argument(
        "--rounds", type=positive_int, default=4, metavar="N", help="rounds (default 4)"
    )
    fidelity.add_argument(
        "--epochs", type=positive_int, default=6, metavar="N", help="epochs per side (default 6)"
    )
    fidelity.add_argument("--n-train", type=positive_int, help="use only the first N training rows")
    fidelity.add_argument("--n-test", type=positive_int, help="use only the first N test rows")
    fidelity.add_argument(
        "--option",
        "-O",
        action="append",
        default=[],
        metavar="B.KEY=VALUE",
        help="a backend option for the harness side, as mlpbench run takes it (repeatable)",
    )
    fidelity.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT.parent / "fidelity.json",
        metavar="FILE",
        help="the fidelity JSON to write or update (default "
        f"{DEFAULT_OUT.parent / 'fidelity.json'}); fidelity.md is written beside it",
    )


def _add_table_parser(sub: argparse._SubParsersAction) -> None:
    """``table``: result JSON files and the output folder."""
    table = sub.add_parser("table", help="tables and plots from result JSON files")
    table.add_argument("files", nargs="+", type=Path, metavar="FILE")
    table.add_argument(
        "--target-accuracy",
        type=target_accuracy,
        default=None,
        metavar="PCT",
        help="the test accuracy (percent) every cell's time to accuracy is measured to "
        "(default: each scenario's target_accuracy; the catalogue's is 97)",
    )
    table.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="output folder (default: the first file's folder)",
    )


def _add_compare_parser(sub: argparse._SubParsersAction) -> None:
    """``compare``: BASE and NEW, the gate's alpha and factor, and the self-test."""
    compare = sub.add_parser(
        "compare",
        help="speed and accuracy of NEW against BASE, cell by cell; exit 1 if a cell got slower",
    )
    compare.add_argument("base", type=Path, metavar="BASE.json", nargs="?")
    compare.add_argument("new", type=Path, metavar="NEW.json", nargs="?")
    compare.add_argument(
        "--alpha",
        type=significance_level,
        default=GATE_ALPHA,
        help=f"the ratio's interval has confidence 1 - alpha (default {GATE_ALPHA:g})",
    )
    compare.add_argument(
        "--factor",
        type=change_factor,
        default=GATE_FACTOR,
        help="a cell is slower only when the whole interval of NEW/BASE lies above this, "
        f"faster when below its inverse (default {GATE_FACTOR:g})",
    )
    compare.add_argument(
        "--metric",
        choices=["speed", "time-to-accuracy"],
        default="speed",
        help="judge each cell on its warm epochs' speed (default) or on its time to the "
        "scenario's target accuracy (training clock; a seed that no longer reaches it regresses)",
    )
    compare.add_argument(
        "--target-accuracy",
        type=target_accuracy,
        default=None,
        metavar="PCT",
        help="with --metric time-to-accuracy: the target for every cell (default: each "
        "scenario's own, 97 %% in the catalogue)",
    )
    compare.add_argument(
        "--self-test",
        action="store_true",
        help="measure this gate's false-alarm rate and its power for a 10 %% slowdown on this "
        "machine: separate runs of one cheap cell, minutes apart, compared pairwise as files "
        "(no files needed)",
    )
    compare.add_argument(
        "--self-test-runs",
        type=positive_int,
        default=6,
        metavar="N",
        help="separate runs the self-test makes (default 6)",
    )
    compare.add_argument(
        "--self-test-rounds",
        type=positive_int,
        default=5,
        metavar="N",
        help="rounds per run (default 5)",
    )
    compare.add_argument(
        "--self-test-gap",
        type=non_negative_float,
        default=60.0,
        metavar="SECONDS",
        help="pause between runs (default 60)",
    )
    compare.add_argument(
        "--self-test-out",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the self-test's runs and rates as JSON here",
    )
    compare.add_argument(
        "--self-test-data",
        choices=["slice", "full"],
        default="slice",
        help="the self-test's cell: numpy × baseline on 8192 rows, 4 epochs (slice, default) "
        "or on the full data, 5 epochs, as published (full)",
    )


def _add_ab_parser(sub: argparse._SubParsersAction) -> None:
    """``ab``: one backend, two option sets or two interpreters, measured in lockstep."""
    ab = sub.add_parser(
        "ab",
        help="is NEW slower than BASE? one backend under two option sets or two environments, "
        "both measured here seconds apart; exit 1 if slower",
    )
    ab.add_argument("--backend", "-b", required=True, metavar="B")
    ab.add_argument("--scenario", "-s", default="baseline", metavar="S", help="default baseline")
    for side in ("base", "new"):
        ab.add_argument(
            f"--{side}-option",
            action="append",
            default=[],
            metavar="[B.]KEY=VALUE",
            help=f"a backend option of the {side} side, as mlpbench run -O takes it (repeatable)",
        )
        ab.add_argument(
            f"--{side}-python",
            default=None,
            metavar="PY",
            help=f"the {side} side's Python (another venv with mlpbench installed; default this "
            "one)",
        )
    from bench.campaign.ab import DEFAULT_EPOCHS, DEFAULT_N_TRAIN, DEFAULT_ROUNDS

    ab.add_argument(
        "--rounds",
        type=positive_int,
        default=DEFAULT_ROUNDS,
        metavar="N",
        help=f"rounds, each a fresh pair of processes (default {DEFAULT_ROUNDS})",
    )
    ab.add_argument(
        "--epochs",
        type=positive_int,
        default=DEFAULT_EPOCHS,
        metavar="N",
        help=f"epochs per side and round (default {DEFAULT_EPOCHS}: many short epochs)",
    )
    data = ab.add_mutually_exclusive_group()
    data.add_argument(
        "--n-train",
        type=positive_int,
        default=DEFAULT_N_TRAIN,
        help=f"train on the first N rows (default {DEFAULT_N_TRAIN}: the scenario's steps, "
        "fewer per epoch)",
    )
    data.add_argument(
        "--full-data",
        dest="n_train",
        action="store_const",
        const=None,
        help="train on every training row",
    )
    ab.add_argument("--n-test", type=positive_int, help="use only the first N test rows")
    ab.add_argument(
        "--alpha",
        type=significance_level,
        default=GATE_ALPHA,
        help=f"1 - confidence (default {GATE_ALPHA:g})",
    )
    ab.add_argument(
        "--factor",
        type=change_factor,
        default=GATE_FACTOR,
        help=f"slower only when the whole interval of NEW/BASE lies above this (default "
        f"{GATE_FACTOR:g})",
    )
    ab.add_argument("--out", type=Path, default=None, metavar="FILE", help="write JSON here")
    ab.add_argument(
        "--self-test",
        action="store_true",
        help="an A/A in lockstep: this gate's false alarms and power for a 10 %% slowdown on "
        "this machine, at its default --rounds",
    )
    ab.add_argument(
        "--self-test-rounds",
        type=positive_int,
        default=40,
        metavar="N",
        help="A/A rounds the self-test measures (default 40)",
    )


#: Frameworks' C++ logs below this level (TensorFlow: 0 info, 1 warning, 2 error) stay quiet
#: unless the user sets TF_CPP_MIN_LOG_LEVEL; the worker processes inherit it.
QUIET_TF_LOG_LEVEL = "2"


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", QUIET_TF_LOG_LEVEL)
    args = build_parser().parse_args(argv)
    if args.command is None:
        build_parser().print_help()
        return EXIT_USAGE
    try:
        return COMMANDS[args.command](args)
    except MlpbenchError as err:
        print(f"mlpbench: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("mlpbench: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def cmd_list(args: argparse.Namespace) -> int:
    """Backends with the device an instance would train on (each asked in its own process, as
    an instance there: a framework may only know its device once loaded, and two frameworks in
    one process can crash it), their options, and the scenarios."""
    print("backends:")
    for name, found in registry.probe_all(registry.names()).items():
        reason = found.reason
        state = "available" if reason is None else f"unavailable: {reason}"
        print(f"  {name:<11} {found.device or '-':<4} {state}", flush=True)
        for option, text in registry.options_of(name).items() if reason is None else ():
            print(f"  {'':<11} {'':<4} -O {name}.{option}=…  {text}")
    print("\nscenarios:")
    for s in scenarios.SCENARIOS.values():
        print(f"  {s.name:<14} {s.summary}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """The campaign trains and writes the results JSON; then, when it ran to its end and
    without ``--no-tables``, the report writes tables and plots beside it; then one stderr line
    per failed cell. The campaign's exit code."""
    from bench.campaign.command import run_command

    with contextlib.redirect_stdout(io.StringIO()) if args.quiet else contextlib.nullcontext():
        outcome = run_command(run_request(args))
    if outcome.finished and not args.no_tables:
        from bench.report import write_tables_and_report

        write_tables_and_report(list(outcome.written), outcome.out.parent, quiet=args.quiet)
    for line in outcome.failed:
        print(f"mlpbench: failed: {line}", file=sys.stderr)
    return outcome.exit_code


def run_request(args: argparse.Namespace) -> RunRequest:
    """``run``'s flags as values. ``--jit``/``--no-jit`` and ``--steps-per-execution`` become
    the ``-O`` options they stand for, after the ones given; no ``--budget`` is the default."""
    from bench.campaign.command import DEFAULT_BUDGET_MINUTES, RunRequest

    options = list(args.option or [])
    if args.jit_compile is not None:
        options.append(f"jit_compile={args.jit_compile}")
    if args.steps_per_execution is not None:
        options.append(f"steps_per_execution={args.steps_per_execution}")
    return RunRequest(
        backends=tuple(args.backend or ()),
        scenarios=tuple(args.scenario or ()),
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        dropout=args.dropout,
        seeds=tuple(args.seed or ()),
        rounds=args.rounds,
        sweeps=tuple(args.sweep or ()),
        cells=tuple(args.cells or ()),
        order=args.order,
        order_seed=args.order_seed,
        resume=args.resume,
        target_ci=args.target_ci,
        budget_minutes=args.budget or DEFAULT_BUDGET_MINUTES,
        profile=args.profile,
        threads=args.threads,
        data=args.data,
        n_train=args.n_train,
        n_test=args.n_test,
        eval_every=args.eval_every,
        out=args.out,
        tf32=args.tf32,
        options=tuple(options),
        executor=args.executor,
        slurm_partition=args.slurm_partition,
        slurm_account=args.slurm_account,
        slurm_gpus=args.slurm_gpus,
        slurm_cpus=args.slurm_cpus,
        slurm_timeout_min=args.slurm_timeout_min,
        slurm_option=tuple(args.slurm_option or ()),
        quiet=args.quiet,
    )


def cmd_table(args: argparse.Namespace) -> int:
    from bench.report import write_tables_and_report

    report = write_tables_and_report(
        args.files, args.out or args.files[0].parent, target=args.target_accuracy
    )
    if not report.written:
        print("mlpbench: error: no readable results; nothing written", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_FAILED if report.problems else 0


def cmd_compare(args: argparse.Namespace) -> int:
    if args.self_test:
        from bench.campaign.selftest import run_file_self_test

        full = args.self_test_data == "full"
        run_file_self_test(
            runs=args.self_test_runs,
            rounds=args.self_test_rounds,
            gap_s=args.self_test_gap,
            n_train=None if full else 8192,
            epochs=5 if full else 4,
            factor=args.factor,
            alpha=args.alpha,
            out=args.self_test_out,
        )
        return 0
    if args.base is None or args.new is None:
        raise MlpbenchError("compare needs BASE.json and NEW.json (or --self-test)")
    from bench.report.compare import run_compare

    return run_compare(
        args.base,
        args.new,
        alpha=args.alpha,
        factor=args.factor,
        metric=args.metric,
        target=args.target_accuracy,
    )


def cmd_ab(args: argparse.Namespace) -> int:
    from bench.campaign.ab import ABRequest, run_ab

    if args.self_test:
        from bench.campaign.selftest import run_ab_self_test

        given = [
            flag
            for flag, value in (
                ("--base-option", args.base_option),
                ("--new-option", args.new_option),
                ("--base-python", args.base_python),
                ("--new-python", args.new_python),
                ("--n-test", args.n_test),
            )
            if value
        ]
        if given:
            raise MlpbenchError(
                f"ab --self-test runs an A/A of the backend's defaults here: leave out "
                f"{', '.join(given)}"
            )

        run_ab_self_test(
            backend=args.backend,
            scenario=args.scenario,
            rounds=args.self_test_rounds,
            size=args.rounds,
            n_train=args.n_train,
            epochs=args.epochs,
            factor=args.factor,
            alpha=args.alpha,
            out=args.out,
        )
        return 0
    request = ABRequest(
        backend=args.backend,
        scenario=args.scenario,
        base_options=tuple(args.base_option),
        new_options=tuple(args.new_option),
        base_python=args.base_python,
        new_python=args.new_python,
        rounds=args.rounds,
        epochs=args.epochs,
        n_train=args.n_train,
        n_test=args.n_test,
        factor=args.factor,
        alpha=args.alpha,
        out=args.out,
    )
    return run_ab(request)


def cmd_tune(args: argparse.Namespace) -> int:
    from bench.campaign.tune import TuneRequest, run_tune

    request = TuneRequest(
        backend=args.backend,
        scenario=args.scenario,
        rounds=args.rounds,
        epochs=args.epochs,
        n_train=args.n_train,
        n_test=args.n_test,
        tolerance=args.tolerance,
        out=args.out,
        keep=args.keep,
    )
    return run_tune(request)


def cmd_fidelity(args: argparse.Namespace) -> int:
    from bench.campaign.fidelity import FidelityRequest, run_fidelity
    from bench.report.fidelity import write_fidelity
    from bench.stats import COLD_EPOCHS, has_warm_epochs

    if not has_warm_epochs(args.epochs):
        raise MlpbenchError(
            f"fidelity compares warm epochs: --epochs must be {COLD_EPOCHS + 1} or more"
        )
    request = FidelityRequest(
        backends=tuple(dict.fromkeys(args.backend)),
        rounds=args.rounds,
        epochs=args.epochs,
        n_train=args.n_train,
        n_test=args.n_test,
        out=args.out,
        options=tuple(args.option),
    )
    path = run_fidelity(request)
    table = write_fidelity(path)
    print(table.read_text(encoding="utf-8"))
    print(f"wrote {path} and {table}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from bench.doctor import run_doctor

    return run_doctor()


COMMANDS: dict[str, Any] = {
    "list": cmd_list,
    "doctor": cmd_doctor,
    "tune": cmd_tune,
    "fidelity": cmd_fidelity,
    "run": cmd_run,
    "table": cmd_table,
    "compare": cmd_compare,
    "ab": cmd_ab,
}


if __name__ == "__main__":
    sys.exit(main())
