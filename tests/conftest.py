"""Shared fixtures and the pytest-benchmark machine-info hook."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from bench import registry
from bench.data import DataCache, RawMNIST, load_raw

QUICK_TRAIN, QUICK_TEST, QUICK_EPOCHS = 1024, 500, 2


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mlpbench")
    group.addoption(
        "--bench-full",
        action="store_true",
        help="benchmark suite: full MNIST and each scenario's own epochs "
        f"(default: a quick variant, {QUICK_TRAIN} training rows, {QUICK_EPOCHS} epochs)",
    )
    group.addoption(
        "--bench-seeds",
        metavar="SEEDS",
        type=_seeds,
        default=None,
        help="benchmark suite: run each backend × scenario once per seed, as mlpbench run's "
        "--seed (3, 0-4 or 0,2,5-6; default: each scenario's own seed)",
    )
    group.addoption(
        "--bench-scenarios",
        metavar="FILE.toml",
        default=None,
        help="benchmark suite: also every scenario of this scenario file (mlpbench run -s "
        "FILE.toml's format)",
    )
    group.addoption(
        "--bench-backends",
        metavar="NAMES",
        type=_backends,
        default=None,
        help="benchmark suite: only these backends, comma-separated exact names (default: every "
        "installed backend; -k cannot tell keras from keras-jax)",
    )


def bench_scenarios(config: pytest.Config) -> dict:
    """The suite's scenarios: the catalogue, and those of ``--bench-scenarios FILE.toml``
    (UsageError, one line, for a bad file)."""
    import scenarios
    from bench.errors import ConfigError
    from scenarios.files import load

    found = dict(scenarios.SCENARIOS)
    path = config.getoption("--bench-scenarios")
    if path:
        try:
            found.update({s.name: s for s in load(path)})
        except ConfigError as err:
            raise pytest.UsageError(f"--bench-scenarios: {err}") from None
    return found


def _seeds(text: str) -> list[int]:
    """``--bench-seeds`` parsed by ``mlpbench run``'s own ``--seed`` parser (one syntax)."""
    import argparse

    from bench.cli import seeds

    try:
        return seeds(text)
    except argparse.ArgumentTypeError as err:
        raise pytest.UsageError(f"--bench-seeds {err}") from None


def _backends(text: str) -> list[str]:
    """``--bench-backends``: installed backend names, checked (one line naming the choices)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in registry.names()]
    if unknown or not names:
        raise pytest.UsageError(
            f"--bench-backends: unknown backend {unknown[0] if unknown else text!r}; "
            f"choose from {', '.join(registry.names())}"
        )
    return names


# --- one framework per process -----------------------------------------------------------------
#: The environment variable that makes a pytest process run only the tests of one group.
GROUP_ENV = "MLPBENCH_TEST_GROUP"
#: Backends whose framework imports PyTorch's compiler stack (torch._dynamo, which loads triton):
#: in one process with TensorFlow loaded first, that import dies with SIGSEGV (PyTorch's default
#: Linux wheel; its CPU build has no triton). Keras on PyTorch imports it, and so does
#: torch.optim's first step (the torch backend as shipped). Tests of these, and tests marked
#: ``dynamo`` (torch.compile), run in a pytest process of their own: ``pytest_sessionfinish``
#: starts it. A parameter "NAME:variant" counts as backend NAME.
DYNAMO_BACKENDS = frozenset({"keras-torch", "torch"})


def needs_dynamo(item: pytest.Item) -> bool:
    """Whether ``item`` imports torch._dynamo: marked ``dynamo``, or parametrized with (or a
    conformance class of) a backend in DYNAMO_BACKENDS, by name or by its Keras class."""
    if item.get_closest_marker("dynamo"):
        return True
    callspec = getattr(item, "callspec", None)
    values = list(callspec.params.values()) if callspec else []
    values += [getattr(getattr(item, "cls", None), "backend", None)]
    flat = [v for value in values for v in (value if isinstance(value, tuple) else (value,))]
    return any(
        (isinstance(v, str) and v.partition(":")[0] in DYNAMO_BACKENDS)
        or getattr(v, "KERAS_BACKEND", None) == "torch"
        for v in flat
    )


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected what they do
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Split the selected tests by framework group: in a child started by this process (GROUP_ENV
    set), only its group runs; otherwise the dynamo group is taken out, to run in a child process
    at the end (unless it is all there is)."""
    group = os.environ.get(GROUP_ENV)
    dynamo = [item for item in items if needs_dynamo(item)]
    if group == "dynamo":
        keep, apart = dynamo, [item for item in items if not needs_dynamo(item)]
    elif dynamo and len(dynamo) < len(items):
        keep, apart = [item for item in items if not needs_dynamo(item)], dynamo
        config.stash[DYNAMO_CHILD] = len(dynamo)
    else:
        return
    items[:] = keep
    if group == "dynamo":
        config.hook.pytest_deselected(items=apart)


DYNAMO_CHILD = pytest.StashKey[int]()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Run the dynamo group in a fresh pytest process (the same arguments, GROUP_ENV set; its
    benchmark JSON, if any, beside this one's as NAME-dynamo.json) and fold its outcome into
    this run's exit status; then check that this process kept its frameworks apart."""
    count = session.config.stash.get(DYNAMO_CHILD, 0)
    stopped = session.shouldstop or session.shouldfail  # -x, --maxfail: stop here
    if count and not stopped and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.ensure_newline()
            reporter.write_sep(
                "=", f"{count} tests that import torch._dynamo, in their own process"
            )
        args = _dynamo_args(list(session.config.invocation_params.args))
        child = subprocess.run(
            [sys.executable, "-m", "pytest", *args],
            cwd=session.config.invocation_params.dir,
            env={**os.environ, GROUP_ENV: "dynamo"},
            check=False,
        )
        if child.returncode not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = child.returncode
    together = {"tensorflow", "torch._dynamo"} <= set(sys.modules)
    if together and session.exitstatus == pytest.ExitCode.OK:
        print(
            "\nconftest: this pytest process imported TensorFlow and torch._dynamo together "
            "(a segmentation fault with PyTorch's default wheel): mark the test that imports "
            "torch._dynamo with @pytest.mark.dynamo",
            file=sys.stderr,
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


#: Options whose file the dynamo child must not overwrite: it writes NAME-dynamo.SUFFIX instead.
OUTPUT_OPTIONS = ("--benchmark-json", "--junitxml", "--junit-xml")


def _dynamo_args(args: list[str]) -> list[str]:
    """The parent's arguments for the dynamo child, each output file renamed (``--opt=PATH``
    and ``--opt PATH`` alike)."""
    out = []
    rename = False
    for arg in args:
        option, eq, value = arg.partition("=")
        if rename:
            out.append(_renamed(arg))
        elif option in OUTPUT_OPTIONS and eq:
            out.append(f"{option}={_renamed(value)}")
        else:
            out.append(arg)
        rename = arg in OUTPUT_OPTIONS
    return out


def _renamed(path: str) -> str:
    p = Path(path)
    return str(p.with_name(f"{p.stem}-dynamo{p.suffix}"))


def pytest_configure(config: pytest.Config) -> None:
    """SIGTERM (``timeout``'s, a scheduler's) ends the run as Ctrl-C does: the test in progress
    stops and pytest-benchmark still writes the cells already done to ``--benchmark-json``.
    Installed explicitly because a shell's background job starts with SIGINT ignored, and
    Python would keep ignoring it."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def pytest_collection_finish(session: pytest.Session) -> None:
    """A benchmark run that writes JSON measures the machine facts before its first cell (or
    reads them from ``$MLPBENCH_FACTS``): stopped at a deadline, it then writes its finished
    cells at once, however long the facts take to measure."""
    wants_json = session.config.getoption("benchmark_json", None) is not None
    if wants_json and any("benchmark" in getattr(i, "fixturenames", ()) for i in session.items):
        from bench.campaign.machine import mlpbench_facts

        mlpbench_facts()


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """Add what pytest-benchmark does not record: BLAS and threads, versions, speed env, GPUs
    (measured once per process, before the first cell: see ``pytest_collection_finish``)."""
    from bench.campaign.machine import mlpbench_facts

    machine_info["mlpbench"] = mlpbench_facts()


def pytest_benchmark_update_json(
    config: pytest.Config, benchmarks: list, output_json: dict
) -> None:
    """The suite's JSON carries the results schema's version, as ``mlpbench run``'s does."""
    import bench
    from bench.results.schema import SCHEMA_VERSION

    output_json["mlpbench"] = {"schema": SCHEMA_VERSION, "version": bench.__version__}


class BenchData(DataCache):
    """The benchmark suite's data: full MNIST, or the quick slice; converted once per dtype."""

    def __init__(self, raw: RawMNIST, full: bool) -> None:
        super().__init__(raw, *((None, None) if full else (QUICK_TRAIN, QUICK_TEST)))
        self.full = full

    def epochs(self, scenario_epochs: int) -> int:
        return scenario_epochs if self.full else QUICK_EPOCHS


def array_modules() -> list:
    """The ``xp`` fixture's parameters: NumPy always; CuPy where it can run (a CUDA device), else
    skipped with the registry's one-line reason."""
    reason = registry.unavailable_reason("cupy")
    skip = [] if reason is None else [pytest.mark.skip(reason=f"cupy: {reason}")]
    return [pytest.param("numpy", id="numpy"), pytest.param("cupy", marks=[pytest.mark.gpu, *skip])]


@pytest.fixture(params=array_modules())
def xp(request: pytest.FixtureRequest) -> ModuleType:
    """Each array module present, for the engine's math tests: one test body on every module
    (the tests' oracles stay float64 NumPy; ``reference.to_numpy`` brings results back)."""
    return importlib.import_module(request.param)


@pytest.fixture(scope="session")
def raw_mnist() -> RawMNIST:
    return load_raw()


@pytest.fixture(scope="session")
def bench_data(request: pytest.FixtureRequest, raw_mnist: RawMNIST) -> BenchData:
    return BenchData(raw_mnist, full=request.config.getoption("--bench-full"))


def run_mlpbench(args: list[str], *paths: Path) -> subprocess.CompletedProcess[str]:
    """``python -m bench ARGS`` in a fresh process (see ``run_module``)."""
    return run_module("bench", args, *paths)


def run_module(module: str, args: list[str], *paths: Path) -> subprocess.CompletedProcess[str]:
    """``python -m MODULE ARGS`` in a fresh process, from the repository root, with ``paths``
    (plug-in folders) ahead of it on PYTHONPATH; output captured as text."""
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, paths), str(root)])}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=300,
    )


def write_distribution(folder: Path, dist: str, backends: dict[str, str]) -> Path:
    """A real installed distribution, as pip leaves one: ``folder/<dist>-1.0.dist-info`` with
    METADATA and an entry_points.txt declaring ``backends`` (name → "module:Class") in the
    ``mlpbench.backends`` group. Put ``folder`` on sys.path and importlib.metadata finds it."""
    info = folder / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "".join(f"{name} = {target}\n" for name, target in backends.items())
    (info / "entry_points.txt").write_text(f"[{registry.GROUP}]\n{lines}")
    return info


@pytest.fixture
def install_backends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., list[str]]]:
    """``install_backends({name: "module:Class"}, dist="…")`` installs a distribution declaring
    those backends (entry points only, nothing else) for this test; gone afterwards."""

    def install(backends: dict[str, str], dist: str | None = None) -> list[str]:
        dist = dist or f"mlpbench-test-plugin-{len(list(tmp_path.iterdir()))}"
        write_distribution(tmp_path / dist, dist, backends)
        monkeypatch.syspath_prepend(str(tmp_path / dist))
        registry.refresh()
        return list(backends)

    yield install
    registry.refresh()  # monkeypatch restores sys.path after this; the next lookup re-reads
