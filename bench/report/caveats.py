"""Caveats for results.md: lines that say what the tables cannot, generated from the runs frame.

One line each for: several machines, the notes from reading the files (superseded duplicates,
software that changed between runs), settings that differ between backends side by side, an
update whose formula departs from Keras' (a backend records ``optimizer_formula`` only then,
e.g. PyTorch's torch.optim), results trained on a slice of MNIST, and skipped, failed,
incomplete or cold-only runs. ``AGREEMENT`` and
``FIT_OVERHEAD`` are measured paragraphs (each saying where and how it was measured) that end the
section where they apply (``agreement``).
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from bench.mnist import MNIST_TEST, MNIST_TRAIN
from bench.results.read import Collection, cell_name
from bench.stats import has_warm_epochs

#: A measured fact about NumPy vs Keras on a CPU: shown only under tables that hold both
#: backends' results from a machine without GPUs (see ``agreement``).
AGREEMENT = (
    "From identical weights and batches the backends agree closely over a few hundred steps; over "
    "a whole epoch at batch 32 Adam amplifies rounding differences between BLAS libraries on "
    "rarely-lit border pixels (their tiny gradients' sign depends on summation order), so single "
    "runs differ by about as much as two seeds do — compare means over seeds, not single runs. "
    "Measured on a 2-core x86 CPU (seed 0, one baseline epoch, same weights and batches): the "
    "NumPy and Keras test losses differed by 5e-5 relative at batch 600 and by 2.5e-3 at batch 32."
)
#: Measured: a Keras backend's warm epoch under the harness (one ``fit`` call per epoch, in the
#: harness's order) against a plain multi-epoch ``fit`` of the same model, by
#: ``scripts/keras_fit_overhead.py`` (2-vCPU AMD EPYC, baseline at batch 32, 9 warm epochs each,
#: interleaved in one process). Shown for the backends in a table with CPU results.
FIT_OVERHEAD = {
    "keras": "keras: 0.994× (3.128 s vs 3.145 s per warm epoch; one tf.data pipeline per run "
    "fed with the harness's order — handing fit fresh arrays each epoch took 1.246×)",
    "keras-jax": "keras-jax: 1.05× (0.749 s vs 0.712 s; fit is handed the epoch's rows as "
    "fresh arrays, one host gather, ~40 ms, and a fit call's fixed cost each epoch)",
    "keras-torch": "keras-torch: 1.03× (5.779 s vs 5.611 s, 6 warm epochs each; fed as keras-jax)",
}
FIT_OVERHEAD_LEAD = (
    "Keras under the harness against a plain `model.fit(x, y, epochs=4, batch_size=32, "
    "shuffle=True)` of the same model, warm epochs, measured on a 2-vCPU AMD EPYC VM by "
    "`python scripts/keras_fit_overhead.py --backend NAME` (a ratio from one machine; "
    "re-measure on yours): "
)
#: Settings that name a library's version: per-backend by nature, listed under Machines instead.
VERSION_KEYS = frozenset(
    {"numpy", "tensorflow", "tensorflow-cpu", "keras", "cupy", "cuda", "torch", "jax", "jaxlib"}
)
#: What a backend that ran on the CPU means by a setting it does not record: a CPU has no TF32.
#: Nothing else is implied: a setting a backend did not record is left out of the comparison.
IMPLIED_ON_CPU = {"tf32": False}


def caveats(frame: pd.DataFrame, collection: Collection) -> list[str]:
    """Generated caveat lines: machines, superseded files, settings that differ between backends
    side by side, data slices, skipped / incomplete / cold-only runs."""
    machines = list(frame["machine_id"].unique())
    lines = []
    if len(machines) > 1:
        lines.append(
            f"Results from {len(machines)} machines ({', '.join(machines)}): each has "
            "its own tables, and 'vs numpy' compares results from the same machine only."
        )
    ran = frame[frame["status"] != "skipped"]
    return (
        lines
        + collection.notes
        + _setting_caveats(ran)
        + _formula_caveats(ran)
        + _slice_caveats(ran)
        + _cadence_caveats(ran)
        + [line for r in frame.itertuples() for line in _run_caveats(r)]
    )


def _run_caveats(r: Any) -> list[str]:
    """Skipped, incomplete and cold-only lines for one row of the runs frame."""
    where = cell_name(r)
    if r.status == "skipped":
        return [f"{where}: skipped — {r.reason}"]
    lines = []
    if r.status == "failed":
        lines.append(
            f"{where}: failed after {r.epochs_run} of {r.epochs} epochs — {r.reason}; its "
            "accuracy is not final"
        )
    if r.status == "incomplete":
        lines.append(
            f"{where}: incomplete — interrupted after {r.epochs_run} of {r.epochs} epochs; its "
            "accuracy is not final"
        )
    if not has_warm_epochs(r.epochs_run):
        over = r.stats_over if isinstance(r.stats_over, str) else "epoch 1 only"  # NaN if absent
        lines.append(f"{where}: speed is over {over}, so it includes first-call costs")
    return lines


def _setting_caveats(ran: pd.DataFrame) -> list[str]:
    """One line per machine × differing setting, naming the scenarios where it differs."""
    found: dict[tuple[str, str, str], list[str]] = {}
    for (machine, scenario), group in ran.groupby(["machine_id", "scenario"], sort=False):
        for key, shown in differing_settings(group).items():
            found.setdefault((machine, key, shown), []).append(scenario)
    return [
        f"{machine}: backends side by side differ in {key} — {shown} (in {', '.join(names)})"
        for (machine, key, shown), names in found.items()
    ]


def _formula_caveats(ran: pd.DataFrame) -> list[str]:
    """One line per backend × departing formula, naming its scenarios: the same hyperparameters
    under another formula, so accuracy is compared across formulas there."""
    found: dict[tuple[str, str], list[str]] = {}
    for r in ran.itertuples():
        formula = r.settings.get("optimizer_formula") if isinstance(r.settings, dict) else None
        if formula:
            names = found.setdefault((r.backend, str(formula)), [])
            if r.scenario not in names:
                names.append(r.scenario)
    return [
        f"{backend} updates as its framework ships it, not by Keras' formula: {formula} — the "
        f"same hyperparameters, another formula (in {', '.join(names)})"
        for (backend, formula), names in found.items()
    ]


def agreement(frame: pd.DataFrame, machines: dict[str, dict[str, Any]]) -> list[str]:
    """The measured paragraphs that apply to ``frame``'s CPU-only machines: [AGREEMENT] when one
    has both NumPy and Keras results; the FIT_OVERHEAD of the Keras backends tabled there."""
    on_cpu: set[str] = set()
    paragraphs = []
    for machine, rows in frame[frame["status"] != "skipped"].groupby("machine_id"):
        facts = machines.get(machine, {}).get("mlpbench") or {}
        if facts.get("gpus"):
            continue
        if {"numpy", "keras"} <= set(rows["backend"]) and AGREEMENT not in paragraphs:
            paragraphs.append(AGREEMENT)
        on_cpu |= set(rows["backend"])
    overheads = [line for name, line in FIT_OVERHEAD.items() if name in on_cpu]
    if overheads:
        paragraphs.append(FIT_OVERHEAD_LEAD + "; ".join(overheads) + ".")
    return paragraphs


def differing_settings(group: pd.DataFrame) -> dict[str, str]:
    """{setting: 'numpy: a, keras: b'} for the settings that differ between the backends of one
    machine × scenario (see ``comparable_settings``); a backend that lacks a setting is left out
    of that comparison."""
    values = {r.backend: comparable_settings(r) for r in group.itertuples()}
    for v in values.values():
        if v.get("device", "cpu") == "cpu":
            v.update({k: d for k, d in IMPLIED_ON_CPU.items() if k not in v})
    out = {}
    for key in sorted(set().union(*values.values())):
        have = {b: _show(v[key]) for b, v in values.items() if key in v}
        if len(set(have.values())) > 1:
            out[key] = ", ".join(f"{b}: {v}" for b, v in have.items())
    return out


def comparable_settings(run: Any) -> dict[str, Any]:
    """One run's settings as compared: library versions dropped, every thread setting folded
    into one 'threads' summary (each library names its thread knobs differently), plus
    n_train and n_test."""
    settings = {k: v for k, v in run.settings.items() if k not in VERSION_KEYS}
    threads = {k: settings.pop(k) for k in sorted(settings) if "thread" in k}
    if threads:
        notes = "".join(f" ({v})" for k, v in threads.items() if k.endswith("_note"))
        knobs = ", ".join(f"{k}={_show(v)}" for k, v in threads.items() if not k.endswith("_note"))
        settings["threads"] = knobs + notes
    return {**settings, "n_train": run.n_train, "n_test": run.n_test}


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    value = value.item() if hasattr(value, "item") else value  # NumPy / pandas scalars
    return json.dumps(value, sort_keys=True, default=str)


def _slice_caveats(ran: pd.DataFrame) -> list[str]:
    """One line per (n_train, n_test) slice smaller than full MNIST."""
    sliced = ran[(ran["n_train"] < MNIST_TRAIN) | (ran["n_test"] < MNIST_TEST)]
    return [
        f"{len(group)} results trained on a slice of MNIST (n_train {n_train:,} of "
        f"{MNIST_TRAIN:,}, n_test {n_test:,} of {MNIST_TEST:,}): their accuracies are not "
        "comparable with full-data runs"
        for (n_train, n_test), group in sliced.groupby(["n_train", "n_test"])
    ]


def _cadence_caveats(ran: pd.DataFrame) -> list[str]:
    """One line per machine whose cells evaluated inside their epochs (``--eval-every``): their
    epochs were timed in slices, each a call of its own, so their s/epoch carries a per-slice
    cost the speed tables of runs made without it do not."""
    found: dict[str, set[str]] = {}
    for r in ran.itertuples():
        samples = r.settings.get("eval_every_samples") if isinstance(r.settings, dict) else None
        if samples:
            found.setdefault(r.machine_id, set()).add(f"{r.backend} every {samples}")
    return [
        f"{machine}: evaluated inside epochs (--eval-every: {', '.join(sorted(names))} "
        "samples): those epochs were timed slice by slice, so their speed carries a per-slice "
        "cost; compare speeds with runs made without --eval-every"
        for machine, names in found.items()
    ]
