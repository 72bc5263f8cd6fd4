"""Backends from other distributions: declared by an entry point only, in a real installed
distribution (a ``*.dist-info`` folder on the path, as pip leaves one), found, listed, run and
tabled under their entry-point name; broken ones are unavailable, never fatal; and the
conformance kit catches a backend that breaks the contract."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from conftest import run_mlpbench, run_module, write_distribution

from backends.api import RunOptions
from backends.numpy_mlp import NumpyMLP
from bench import registry
from bench.conformance import BackendConformance
from bench.errors import ConfigError

PLUGIN_MODULE = '''
"""A plug-in backend: a separate module, known to mlpbench only through its entry point."""
from backends.api import OptionError, RecipeUnsupported
from backends.numpy_mlp import NumpyMLP


class TinyMLP(NumpyMLP):
    OPTIONS = {"flavour": "a plug-in's own option (plain or salted)"}

    def __init__(self, options=None):
        super().__init__(options)
        self.flavour = self.options.backend.get("flavour", "plain")
        if self.flavour not in ("plain", "salted"):
            raise OptionError(f"option flavour takes plain or salted, got {self.flavour!r}")

    def settings(self):
        return {**super().settings(), "flavour": self.flavour}


class Refuser(NumpyMLP):
    """Refuses every recipe, as the contract says a backend may."""

    def build(self, recipe, data, init_weights):
        raise RecipeUnsupported("refuses everything on purpose")


class Buggy(NumpyMLP):
    """A programming error that happens to be a NotImplementedError: a failure, not a skip."""

    def build(self, recipe, data, init_weights):
        raise NotImplementedError("build was never written")


class Incomplete:
    """Lacks most of the contract."""

    @staticmethod
    def unavailable_reason():
        return None
'''


@pytest.fixture
def plugin_path(tmp_path: Path) -> Path:
    """A folder holding the plug-in's module and its distribution's metadata."""
    (tmp_path / "tiny_plugin.py").write_text(PLUGIN_MODULE)
    write_distribution(
        tmp_path,
        "tiny-plugin",
        {
            "tiny": "tiny_plugin:TinyMLP",
            "refuser": "tiny_plugin:Refuser",
            "buggy": "tiny_plugin:Buggy",
            "half-done": "tiny_plugin:Incomplete",
            "gone": "no_such_module_anywhere:Missing",
        },
    )
    return tmp_path


@pytest.fixture
def plugin_installed(plugin_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The plug-in's folder on this process's path (as if pip-installed here)."""
    monkeypatch.syspath_prepend(str(plugin_path))
    registry.refresh()
    yield plugin_path
    registry.refresh()


def test_installed_plugin_is_listed_run_and_tabled(plugin_path: Path, tmp_path: Path) -> None:
    listed = run_mlpbench(["list"], plugin_path)
    assert listed.returncode == 0, listed.stderr
    lines = {line.split()[0]: line for line in listed.stdout.splitlines() if line.startswith("  ")}
    assert "available" in lines["tiny"] and "-O tiny.flavour" in listed.stdout
    assert "tiny_plugin:Incomplete from tiny-plugin lacks build, train_epoch" in lines["half-done"]
    assert "failed to import: ModuleNotFoundError" in lines["gone"]
    assert "available" in lines["numpy"]  # the others are untouched

    out = tmp_path / "out" / "run.json"
    args = ["run", "-b", "tiny", "-b", "numpy", "-s", "baseline", "--epochs", "2"]
    args += ["-O", "tiny.flavour=salted", "--n-train", "512", "--n-test", "200"]
    ran = run_mlpbench([*args, "--out", str(out)], plugin_path)
    assert ran.returncode == 0, ran.stderr
    doc = json.loads(out.read_text())
    entries = {e["params"]["backend"]: e for e in doc["benchmarks"]}
    assert set(entries) == {"tiny", "numpy"}
    assert entries["tiny"]["extra_info"]["settings"]["flavour"] == "salted"
    history = [e["extra_info"]["history"] for e in (entries["tiny"], entries["numpy"])]
    assert [h["test_loss"] for h in history[0]] == [h["test_loss"] for h in history[1]]
    results_md = (out.parent / "results.md").read_text()
    per_scenario = results_md.split("#### baseline")[1].split("###")[0]
    rows = {
        cells[0]: cells
        for ln in per_scenario.splitlines()
        if ln.startswith("| ") and (cells := [c.strip() for c in ln.strip("|").split("|")])
    }
    final = rows["backend"].index("final %")
    assert rows["tiny (custom)"][final] == rows["numpy"][final]  # tabled, marked as a plug-in


def test_benchmark_suite_runs_a_plugin_per_seed_and_fails_a_bug_it_does_not_skip(
    plugin_path: Path, tmp_path: Path
) -> None:
    """The pytest-benchmark suite, in a fresh process with the plug-in installed: ``tiny`` runs
    once per ``--bench-seeds`` seed (params.seed in the JSON), a RecipeUnsupported refusal is a
    skip with its reason, and a NotImplementedError from build is a failure."""
    out = tmp_path / "suite.json"
    args = ["tests/test_benchmarks.py", "-k", "baseline and (tiny or refuser or buggy)", "-rsf"]
    args += ["--bench-seeds", "1-2", f"--benchmark-json={out}", "-p", "no:cacheprovider"]
    ran = run_module("pytest", args, plugin_path)
    assert "2 failed, 2 passed, 2 skipped" in ran.stdout, ran.stdout[-2000:]
    assert "SKIPPED [2]" in ran.stdout and "refuses everything on purpose" in ran.stdout
    assert "FAILED" in ran.stdout and "build was never written" in ran.stdout
    entries = json.loads(out.read_text())["benchmarks"]
    assert sorted((e["params"]["backend"], e["params"]["seed"]) for e in entries) == [
        ("tiny", 1),
        ("tiny", 2),
    ]
    assert [e["extra_info"]["scenario"]["seed"] for e in entries] == [1, 2]


def test_a_broken_plugin_never_stops_other_backends(plugin_path: Path) -> None:
    refused = run_mlpbench(["run", "-b", "gone", "-s", "baseline"], plugin_path)
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "backend 'gone' is unavailable" in refused.stderr
    bad_option = run_mlpbench(["run", "-b", "tiny", "-O", "tiny.flavour=sour"], plugin_path)
    assert bad_option.returncode == 2
    assert bad_option.stderr.strip() == (
        "mlpbench: error: backend 'tiny': option flavour takes plain or salted, got 'sour'"
    )


def test_two_distributions_declaring_one_name_is_one_clear_error(install_backends) -> None:
    install_backends({"numpy": "tiny_plugin:TinyMLP"}, dist="numpy-impostor")
    with pytest.raises(ConfigError) as err:
        registry.names()
    message = str(err.value)
    assert "numpy-impostor (tiny_plugin:TinyMLP)" in message
    assert "mlpbench (backends.numpy_mlp:NumpyMLP)" in message
    assert "\n" not in message


def test_unknown_option_names_the_backends_options(plugin_installed: Path) -> None:
    with pytest.raises(ConfigError, match="has no option 'spice'; its options: flavour"):
        registry.create("tiny", RunOptions(backend={"spice": "1"}))


# --- the conformance kit fails backends that break the contract ----------------------------------
class IgnoresOrder(NumpyMLP):
    """Trains on the rows in sorted order instead of the order handed in."""

    def train_epoch(self, order):
        return super().train_epoch(np.sort(order))


class UnrecordedOption(NumpyMLP):
    OPTIONS: ClassVar[dict[str, str]] = {"turbo": "an option settings() forgets to record"}


class SwapsEpsilon(NumpyMLP):
    """Optimizer math other than the recipe's: ε ten times the recipe's (the size of error that
    torch.optim's ε placement makes against Keras' at ε = 1e-3)."""

    def build(self, recipe, data, init_weights):
        from dataclasses import replace

        super().build(replace(recipe, epsilon=recipe.epsilon * 10), data, init_weights)


@pytest.mark.parametrize(
    ("broken", "check"),
    [
        (IgnoresOrder, "test_batch_order_is_honoured"),
        (UnrecordedOption, "test_settings_are_json_and_complete"),
    ],
)
def test_kit_fails_a_backend_that_breaks_the_contract(broken: type, check: str) -> None:
    kit = BackendConformance()
    with pytest.raises(AssertionError):
        getattr(kit, check)(broken)
    getattr(kit, check)(NumpyMLP)  # and the real one passes the same check


def test_kit_fails_a_shipped_departure_that_is_not_declared() -> None:
    kit = BackendConformance()
    with pytest.raises(AssertionError):
        kit.test_shipped_update_is_keras_formula_or_declared(SwapsEpsilon, "rmsprop")
    kit.test_shipped_update_is_keras_formula_or_declared(NumpyMLP, "rmsprop")
    declared = {"FORMULA_DEPARTURES": {"rmsprop": "ε ten times the recipe's"}}
    with pytest.raises(AssertionError, match="needs EXACT_FORMULAS"):
        kit.test_shipped_update_is_keras_formula_or_declared(
            type("Declared", (SwapsEpsilon,), declared), "rmsprop"
        )


def test_kit_fails_a_backend_without_a_plain_script() -> None:
    kit = BackendConformance()
    with pytest.raises(AssertionError, match="declare PLAIN_SCRIPT"):
        kit.test_plain_script_trains(type("NoScript", (NumpyMLP,), {"PLAIN_SCRIPT": None}))


def test_kit_fails_a_backend_with_other_optimizer_math() -> None:
    kit = BackendConformance()
    with pytest.raises(AssertionError):
        kit.test_epoch_agrees_with_the_float64_reference(SwapsEpsilon, "adam_eps1e-3")
    kit.test_epoch_agrees_with_the_float64_reference(NumpyMLP, "adam_eps1e-3")
