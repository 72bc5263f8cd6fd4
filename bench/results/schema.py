"""The results JSON's schema: its version and the type of every field the reports read.

Schema history (``mlpbench.schema`` in each document; the pytest-benchmark suite writes it too):
1 — first version.

A reader checks a document with ``document_flaw`` (machine facts, version) and each entry with
``entry_flaw`` before using it: a field of the wrong type makes one line naming the field, what it
holds and what was expected — never a traceback further down.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

SCHEMA_VERSION = 1

Check = tuple[Callable[[Any], bool], str]  # (predicate, what was expected)


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _positive(v: Any) -> bool:
    return _number(v) and v > 0


def _positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


NUMBER: Check = (_number, "a finite number")
POSITIVE: Check = (_positive, "a positive number")
POSITIVE_INT: Check = (_positive_int, "a positive integer")
NON_NEGATIVE_INT: Check = (
    lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
    "a non-negative integer",
)


def _evaluations(v: Any) -> bool:
    """An epoch's evaluations inside it (``--eval-every``): a list of objects with a fraction in
    (0, 1], non-negative seconds and a numeric test accuracy."""
    return isinstance(v, list) and all(
        isinstance(e, dict)
        and _number(e.get("fraction"))
        and 0 < e["fraction"] <= 1
        and _number(e.get("seconds"))
        and e["seconds"] >= 0
        and _number(e.get("test_accuracy"))
        for e in v
    )


TEXT: Check = (lambda v: isinstance(v, str), "text")
BOOL: Check = (lambda v: isinstance(v, bool), "true or false")
OBJECT: Check = (lambda v: isinstance(v, dict), "an object")
OBJECTS: Check = (
    lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v),
    "a list of objects",
)
POSITIVES: Check = (lambda v: isinstance(v, list) and all(map(_positive, v)), "positive numbers")
HISTORY: Check = (
    lambda v: (
        isinstance(v, list)
        and len(v) > 0
        and all(
            isinstance(h, dict)
            and _positive(h.get("seconds"))
            and _number(h.get("test_accuracy"))
            and _positive_int(h.get("epoch", 1))
            and all(_number(h[k]) for k in ("train_loss", "train_accuracy", "test_loss") if k in h)
            and _evaluations(h.get("evaluations", []))
            for h in v
        )
    ),
    "epochs with positive seconds, whole epoch numbers and numeric losses and accuracies "
    "(evaluations inside an epoch: each with a fraction in (0, 1], seconds ≥ 0 and a test "
    "accuracy)",
)
OBJECTS_OR_PAIRS: Check = (
    lambda v: isinstance(v, list) and all(isinstance(p, list) and len(p) == 2 for p in v),
    "a list of [name, value] pairs",
)
NUMBERS_BY_NAME: Check = (
    lambda v: isinstance(v, dict) and all(map(_positive, v.values())),
    "an object of positive numbers",
)

#: Entry fields: (path, check, required). Optional fields may be absent or null.
ENTRY: list[tuple[tuple[str, ...], Check, bool]] = [
    (("params",), OBJECT, True),
    (("params", "backend"), TEXT, True),
    (("params", "scenario"), TEXT, True),
    (
        ("params", "seed"),
        (
            lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
            "a non-negative integer",
        ),
        False,
    ),
    (("extra_info",), OBJECT, True),
    (("extra_info", "history"), HISTORY, True),
    (("extra_info", "n_train"), POSITIVE_INT, True),
    (("extra_info", "n_test"), POSITIVE_INT, False),
    (("extra_info", "build_seconds"), NUMBER, False),
    (("extra_info", "epoch_gflop"), POSITIVE, False),
    (("extra_info", "complete"), BOOL, False),
    (("extra_info", "stats_over"), TEXT, False),
    (("extra_info", "settings"), OBJECT, False),
    (("extra_info", "scenario"), OBJECT, False),
    (("extra_info", "scenario", "epochs"), POSITIVE_INT, False),
    (("extra_info", "scenario", "base"), TEXT, False),
    (("extra_info", "scenario", "ladder"), NON_NEGATIVE_INT, False),
    (("extra_info", "failed"), TEXT, False),
    (("extra_info", "pid"), POSITIVE_INT, False),
    (("extra_info", "peak_rss_bytes"), POSITIVE_INT, False),
    (("extra_info", "settings", "epochs"), POSITIVE_INT, False),
    (("extra_info", "settings", "dtype"), TEXT, False),
    (("extra_info", "round"), NON_NEGATIVE_INT, False),
    (("extra_info", "position"), NON_NEGATIVE_INT, False),
    (("extra_info", "design"), TEXT, False),
    (("extra_info", "division"), TEXT, False),
    (("extra_info", "conditions"), OBJECT, False),
    (("extra_info", "scenario", "sweep"), OBJECTS_OR_PAIRS, False),
    (("stats",), OBJECT, True),
    (("stats", "data"), POSITIVES, False),
    (("stats", "median"), POSITIVE, False),
]
#: Document fields read for the Machines table and the GEMM peak.
DOCUMENT: list[tuple[tuple[str, ...], Check, bool]] = [
    (("machine_info",), OBJECT, False),
    (("machine_info", "cpu"), OBJECT, False),
    (("machine_info", "mlpbench"), OBJECT, False),
    (("machine_info", "mlpbench", "machine_id"), TEXT, False),
    (("machine_info", "mlpbench", "cpu_model"), TEXT, False),
    (("machine_info", "mlpbench", "blas"), OBJECTS, False),
    (("machine_info", "mlpbench", "packages"), OBJECT, False),
    (("machine_info", "mlpbench", "env"), OBJECT, False),
    (("machine_info", "mlpbench", "gpus"), OBJECTS, False),
    (("machine_info", "mlpbench", "gemm_peak_gflops"), NUMBERS_BY_NAME, False),
    (("mlpbench",), OBJECT, False),
    (("mlpbench", "schema"), POSITIVE_INT, False),
    (("mlpbench", "skipped"), OBJECTS, False),
]


def _lookup(doc: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def _flaw(doc: Any, fields: list[tuple[tuple[str, ...], Check, bool]], where: str) -> str | None:
    for path, (ok, expected), required in fields:
        value = _lookup(doc, path)
        if value is None and not required:
            continue
        if not ok(value):
            shown = "missing" if value is None else f"{type(value).__name__} {_short(value)}"
            return f"{where}{'.'.join(path)} is {shown}, expected {expected}"
    return None


def entry_flaw(entry: Any, index: int) -> str | None:
    """Why ``benchmarks[index]`` cannot be tabulated (one line), or None."""
    if not isinstance(entry, dict):
        return f"benchmarks[{index}] is not an object"
    flaw = _flaw(entry, ENTRY, f"benchmarks[{index}].")
    if flaw is None and not entry["stats"].get("data") and entry["stats"].get("median") is None:
        return f"benchmarks[{index}].stats has neither data nor median"
    return flaw


def document_flaw(doc: dict[str, Any]) -> str | None:
    """Why the document as a whole cannot be read (one line): a newer schema, or machine facts of
    the wrong type; None when it is fine."""
    flaw = _flaw(doc, DOCUMENT, "")
    if flaw:
        return flaw
    schema = _lookup(doc, ("mlpbench", "schema"))
    if schema is not None and schema > SCHEMA_VERSION:
        return (
            f"written with results schema {schema}, newer than this mlpbench reads "
            f"(≤ {SCHEMA_VERSION}); upgrade mlpbench"
        )
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
