"""The run's estimate before it has measured anything: cells timed on the development machine.

``priors.json`` beside this module holds, per backend × catalogue scenario, the mean wall time of
one cell (process start to result, as ``mlpbench run`` records ``started``/``ended``) and its
epochs, from one real run on the development machine, made by::

    python -m bench.campaign.priors RESULTS.json "how it was made"   # rewrites priors.json

``estimate(cells)`` scales each cell's prior by its epochs over the prior's; it gives no estimate
when a cell's backend × scenario was not timed there or the cell trains on a slice of MNIST (its
time is not the full data's). Once epochs finish, the run's own pace replaces it
(``bench.campaign.progress``).
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.cell.spec import CellSpec
from bench.mnist import MNIST_TRAIN

PRIORS = Path(__file__).with_name("priors.json")


def priors_from(doc: dict[str, Any], source: str) -> dict[str, Any]:
    """The priors of one results document: per "backend/scenario", the mean over its complete
    cells of the wall seconds and the epochs; cells on a slice of MNIST are left out."""
    cells: dict[str, list[tuple[float, int]]] = {}
    for entry in doc["benchmarks"]:
        extra = entry["extra_info"]
        sliced = extra.get("n_train") not in (None, MNIST_TRAIN)
        if not extra.get("complete") or sliced or not extra.get("ended"):
            continue
        key = f"{entry['params']['backend']}/{entry['params']['scenario']}"
        wall = float(extra["ended"]) - float(extra["started"])
        cells.setdefault(key, []).append((wall, len(extra["history"])))
    machine = doc["machine_info"]["mlpbench"]["machine_id"]
    return {
        "machine_id": machine,
        "source": source,
        "cells": {
            key: {
                "seconds": round(statistics.fmean(w for w, _ in runs), 2),
                "epochs": runs[0][1],
            }
            for key, runs in sorted(cells.items())
        },
    }


def load_priors(path: Path = PRIORS) -> dict[str, Any]:
    """The shipped priors ({} when the file is missing or unreadable: no estimate, no error)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def estimate(cells: Sequence[CellSpec], priors: dict[str, Any] | None = None) -> float | None:
    """Wall seconds ``cells`` took on the priors' machine, or None where one cannot say."""
    priors = load_priors() if priors is None else priors
    known = priors.get("cells", {})
    total = 0.0
    for cell in cells:
        prior = known.get(f"{cell.backend}/{cell.scenario.name}")
        if prior is None or cell.n_train is not None or cell.data is not None:
            return None
        total += prior["seconds"] * cell.scenario.epochs / prior["epochs"]
    return total


def per_epoch(priors: dict[str, Any]) -> dict[tuple[str, str], float]:
    """(backend, scenario) → the prior's wall seconds per epoch (start-up spread over them)."""
    out = {}
    for key, prior in priors.get("cells", {}).items():
        backend, _, scenario = key.partition("/")
        out[(backend, scenario)] = prior["seconds"] / prior["epochs"]
    return out


def main(argv: list[str]) -> int:
    path, source = argv
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    PRIORS.write_text(json.dumps(priors_from(doc, source), indent=1) + "\n")
    print(f"wrote {PRIORS}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
