"""Reading results never ends in a traceback: every field the reports read, given a value of the
wrong type, makes one problem line naming the field (a file from a newer schema too), and the
tables are still written from what is left."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.report import outputs as report_outputs
from bench.report.outputs import write_tables
from bench.results.schema import SCHEMA_VERSION

PUBLISHED = Path(__file__).resolve().parent.parent / "results" / "amd-epyc-2cpu"
WRONG = [None, "x", 7, [], {"a": 1}, True, -1.5]


@pytest.fixture(scope="module")
def small_doc() -> dict[str, Any]:
    """The published CPU results cut to two entries of three epochs (real data, quick tables)."""
    doc = json.loads((PUBLISHED / "run.json").read_text())
    entries = doc["benchmarks"]
    numpy = next(e for e in entries if e["params"]["backend"] == "numpy")
    other = next(e for e in reversed(entries) if e["params"]["backend"] != "numpy")
    doc["benchmarks"] = [numpy, other]
    for entry in doc["benchmarks"]:
        entry["extra_info"]["history"] = entry["extra_info"]["history"][:3]
        entry["stats"]["data"] = entry["stats"]["data"][:2]
    return doc


def paths(value: Any, path: tuple = ()) -> Iterator[tuple]:
    """Every field's path (lists: their first item only)."""
    if path:
        yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*path, key))
    elif isinstance(value, list) and value:
        yield from paths(value[0], (*path, 0))


def mutated(doc: dict, path: tuple, pick: int) -> dict:
    """A copy of ``doc`` whose field at ``path`` holds a value of another type."""
    doc = copy.deepcopy(doc)
    node = doc
    for key in path[:-1]:
        node = node[key]
    others = [w for w in WRONG if type(w) is not type(node[path[-1]])]
    node[path[-1]] = others[pick % len(others)]
    return doc


def tables_of(doc: dict, tmp_path: Path) -> list[str]:
    source = tmp_path / "r.json"
    source.write_text(json.dumps(doc))
    return write_tables([source], tmp_path / "out").problems


def test_every_field_of_the_wrong_type_is_at_most_one_line(
    small_doc: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # without plots (they take ~0.3 s a file); the next test draws them for a sample of fields
    monkeypatch.setattr(report_outputs, "_plots", lambda *args: [])
    fields = list(paths(small_doc))
    assert len(fields) > 100
    for i, path in enumerate(fields):
        problems = tables_of(mutated(small_doc, path, i), tmp_path)  # must not raise
        assert len(problems) <= 1 and all("\n" not in p for p in problems), (path, problems)


@pytest.mark.parametrize(
    ("path", "named"),
    [
        (
            ("benchmarks", 0, "extra_info", "history", 0, "seconds"),
            "benchmarks[0].extra_info.history",
        ),
        (("benchmarks", 0, "stats", "data", 0), "benchmarks[0].stats.data"),
        (("benchmarks", 0, "extra_info", "n_train"), "benchmarks[0].extra_info.n_train"),
        (("machine_info", "mlpbench", "gemm_peak_gflops", "float32"), "gemm_peak_gflops"),
        (("machine_info", "mlpbench", "blas"), "machine_info.mlpbench.blas"),
    ],
)
def test_a_bad_field_is_named_and_plots_survive(
    small_doc: dict, tmp_path: Path, path: tuple, named: str
) -> None:
    problems = tables_of(mutated(small_doc, path, 1), tmp_path)  # plots drawn: matplotlib is in
    assert len(problems) == 1 and named in problems[0], problems


def test_newer_schema_is_refused_in_one_line(small_doc: dict, tmp_path: Path) -> None:
    doc = copy.deepcopy(small_doc)
    doc["mlpbench"] = {"schema": SCHEMA_VERSION + 1}
    problems = tables_of(doc, tmp_path)
    assert len(problems) == 1
    assert f"results schema {SCHEMA_VERSION + 1}, newer than this mlpbench reads" in problems[0]
