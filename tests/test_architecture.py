"""The house's rules, checked by import-linter: the contracts in pyproject.toml
(``[tool.importlinter]``) hold for the code, and each breaks when an arrow against the flow is
planted in a copy of the tree — among them every arrow that once ran against it (training
importing the report, results importing training, the conformance kit in ``backends`` importing
the cell, the report importing the data loader)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).with_name("lint-imports")
TREE = ("bench", "backends", "scenarios", "pyproject.toml")

pytestmark = pytest.mark.skipif(
    not LINT.exists(), reason="import-linter is not installed (pip install -e '.[test]')"
)


def lint(where: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` over the tree in ``where`` (its own copy of the packages first on the
    path, so an installed checkout elsewhere is not what gets read)."""
    return subprocess.run(
        [str(LINT), "--no-cache", "--config", str(where / "pyproject.toml")],
        cwd=where,
        env={"PATH": str(LINT.parent), "PYTHONPATH": str(where)},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pristine copy of the packages and the contracts; each planting test restores it."""
    where = tmp_path_factory.mktemp("house")
    for name in TREE:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, where / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, where / name)
    return where


def test_the_contracts_hold_for_the_code() -> None:
    done = lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_the_contracts_cover_every_layer() -> None:
    """Every package and top-level module of the three roots is in the layers contract."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    layers = next(c for c in config["tool"]["importlinter"]["contracts"] if c["id"] == "layers")
    named = {m.strip() for layer in layers["layers"] for m in layer.split("|")}
    present = {
        f"bench.{p.stem}"
        for p in (ROOT / "bench").iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()
    } | {"backends", "scenarios"}
    assert present - named == set()


#: (file, line planted at its end, contract that must break)
PLANTED = [
    ("bench/campaign/precision.py", "from bench.report import summary", "Layers"),
    ("bench/campaign/command.py", "from bench.report import outputs", "Layers"),
    ("bench/results/write.py", "from bench.campaign import peaks", "Layers"),
    ("backends/api.py", "from bench.cell import session", "Layers"),
    ("bench/stats.py", "import bench.cli", "Layers"),
    ("bench/report/caveats.py", "from bench.data import files", "JSON only"),
    ("bench/report/plots.py", "import torch", "JSON only"),
    ("bench/report/formatting.py", "from bench.report import tables", "No cycles"),
]


@pytest.mark.parametrize(("path", "line", "contract"), PLANTED, ids=[p[1] for p in PLANTED])
def test_a_planted_arrow_against_the_flow_breaks_a_contract(
    copy: Path, path: str, line: str, contract: str
) -> None:
    target = copy / path
    original = target.read_text(encoding="utf-8")
    target.write_text(f"{original}\n{line}  # planted\n", encoding="utf-8")
    try:
        done = lint(copy)
    finally:
        target.write_text(original, encoding="utf-8")
    assert done.returncode == 1, done.stdout + done.stderr
    broken = [ln for ln in done.stdout.splitlines() if ln.rstrip().endswith("BROKEN")]
    assert any(contract.lower() in ln.lower() for ln in broken), done.stdout
