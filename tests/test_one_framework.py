"""One framework per process: the parent side of mlpbench imports none, each backend is asked in
its own process, a probe that dies is one line, and the test suite keeps the frameworks apart.

TensorFlow and PyTorch's triton crash in one process (SIGSEGV with PyTorch's default Linux wheel;
CI checks that install, see .ci/run). Here the harness must not even import them where it need
not: the oracle is ``sys.modules`` of a real ``mlpbench`` process after it ran.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import needs_dynamo, run_module, write_distribution

from backends.api import RunOptions
from bench import registry
from bench.campaign.command import one_process
from bench.errors import ConfigError

FRAMEWORKS = ("tensorflow", "torch", "jax", "keras", "cupy")
REPORT = textwrap.dedent(
    """
    import json, sys
    from bench.cli import main
    code = main(sys.argv[1:])
    print(json.dumps({{"code": code, "loaded": [m for m in {frameworks!r} if m in sys.modules]}}))
    """
)


def parent_side(args: list[str], tmp_path: Path) -> dict:
    """Run ``mlpbench ARGS`` in a fresh process and report what it had imported at the end."""
    script = tmp_path / "report.py"
    script.write_text(REPORT.format(frameworks=FRAMEWORKS))
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_mlpbench_list_imports_no_framework(tmp_path):
    report = parent_side(["list"], tmp_path)
    assert report == {"code": 0, "loaded": []}


def test_the_parent_of_a_run_over_every_backend_imports_no_framework(tmp_path):
    out = tmp_path / "r.json"
    args = ["run", "-b", "all", "-s", "baseline", "--epochs", "1", "--n-train", "256"]
    report = parent_side([*args, "--n-test", "100", "--out", str(out)], tmp_path)
    assert report == {"code": 0, "loaded": []}
    ran = {b["params"]["backend"] for b in json.loads(out.read_text())["benchmarks"]}
    available = {n for n in registry.names() if registry.probe(n).reason is None}
    assert ran >= available  # every available backend trained, each in its own process


CRASHER = '''
import os
from backends.numpy_mlp import NumpyMLP


class Crasher(NumpyMLP):
    """Dies as TensorFlow beside triton does, the moment it is made."""

    def __init__(self, options=None):
        os.kill(os.getpid(), {signal})
'''


@pytest.mark.parametrize("sig", [signal.SIGSEGV, signal.SIGKILL])
def test_a_probe_that_dies_is_one_line_and_the_others_carry_on(tmp_path, install_backends, sig):
    (tmp_path / "crasher_pkg.py").write_text(CRASHER.format(signal=int(sig)))
    sys.path.insert(0, str(tmp_path))
    try:
        install_backends({"crasher": "crasher_pkg:Crasher"})
        probes = registry.probe_all(["numpy", "crasher"])
    finally:
        sys.path.remove(str(tmp_path))
    assert probes["numpy"].reason is None and probes["numpy"].device == "cpu"
    reason = probes["crasher"].reason
    assert reason is not None and reason.startswith(f"probe died with {sig.name}")
    assert "\n" not in reason
    assert ("TensorFlow and triton" in reason) == (sig == signal.SIGSEGV)


def test_list_shows_a_crashing_backend_as_unavailable_and_exits_0(tmp_path):
    (tmp_path / "crasher_pkg.py").write_text(CRASHER.format(signal=int(signal.SIGSEGV)))
    write_distribution(tmp_path, "crasher-dist", {"crasher": "crasher_pkg:Crasher"})
    done = run_module("bench", ["list"], tmp_path)
    assert done.returncode == 0, done.stderr
    line = next(ln for ln in done.stdout.splitlines() if ln.strip().startswith("crasher"))
    assert "unavailable: probe died with SIGSEGV" in line
    assert any(
        ln.strip().startswith("numpy") and "available" in ln for ln in done.stdout.splitlines()
    )


def test_a_bad_option_value_is_found_by_the_probe_before_any_training(tmp_path):
    found = registry.probe("torch", options=RunOptions(backend={"compile": "maybe"}))
    if registry.probe("torch").reason is not None:
        pytest.skip(f"torch: {registry.probe('torch').reason}")
    assert found.option_error == "backend 'torch': option compile takes true or false, got 'maybe'"


def test_inprocess_refuses_frameworks_that_crash_together():
    with pytest.raises(ConfigError, match="cannot run keras and keras-torch in one process"):
        one_process(["numpy", "keras", "keras-torch"])
    with pytest.raises(ConfigError, match="cannot run keras and torch"):
        one_process(["keras", "torch"])  # torch.optim's first step imports torch._dynamo
    one_process(["keras", "keras-jax", "jax", "numpy"])  # these share a process


class _Item:
    """What ``needs_dynamo`` reads of a pytest item."""

    def __init__(self, params=None, cls=None, marked=False):
        self.callspec = type("C", (), {"params": params})() if params is not None else None
        self.cls, self._marked = cls, marked

    def get_closest_marker(self, name):
        return self._marked if name == "dynamo" else None


def test_the_dynamo_group_is_recognised_by_name_class_or_mark():
    from backends.keras_mlp import KerasJaxMLP, KerasMLP, KerasTorchMLP

    assert needs_dynamo(_Item({"backend": "keras-torch"}))
    assert needs_dynamo(_Item({"cls": KerasTorchMLP, "dtype": "float32"}))
    assert needs_dynamo(_Item({"case": (KerasTorchMLP, "float32")}))
    assert needs_dynamo(_Item(cls=type("T", (), {"backend": "keras-torch"})))
    assert needs_dynamo(_Item(marked=True))
    assert not needs_dynamo(_Item({"backend": "keras", "cls": KerasMLP}))
    assert not needs_dynamo(_Item({"cls": KerasJaxMLP}))
    assert needs_dynamo(_Item({"backend": "torch"}))  # torch.optim imports torch._dynamo
    assert needs_dynamo(_Item({"backend_name": "torch:exact-formula"}))
    assert not needs_dynamo(_Item({"backend": "jax"}))


def test_this_pytest_process_never_holds_tensorflow_and_torch_dynamo_together():
    """The invariant the split keeps (checked again at the session's end, in conftest)."""
    assert not {"tensorflow", "torch._dynamo"} <= set(sys.modules)
