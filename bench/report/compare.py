"""``mlpbench compare BASE.json NEW.json``: did NEW get slower (or faster) than BASE, cell by cell?

Contract:
- Cells are matched by (backend, scenario, batch size) — the batch size is
  ``extra_info.settings.batch_size``; each side's results for a cell are its rounds (one per
  seed; the newest result per seed is kept). The machine is not part of the key, so files from
  two machines are compared (with one warning line on stderr naming the facts that differ: CPU
  model, GPU names, package versions, BLAS).
- Speed: the ratio NEW/BASE of the rounds' median warm-epoch times, paired by seed where both
  sides have at least two seeds in common, else unpaired, with its interval at confidence
  1 − ``alpha`` (``bench.stats.ratio``; the rule is ``bench.stats.gate_verdict``). A cell counts
  as *slower* (a regression) only when the whole interval lies above ``factor`` (default 1.05),
  *faster* when it lies below 1/``factor``; otherwise "no change detected". Where the rounds give
  no interval — the same ratio in every round, or one round per side — the gate judges the two
  sides' warm epochs instead (Welch on their logs) and says so in the row's "judged on" column.
  With one round per side the spread between processes was not measured (warm epochs of one
  process are not independent runs), so it calls a change only beyond
  ``stats.unmeasured_factor`` (×1.25): a consistent 1.5× slowdown still exits 1, a 2 % one does
  not; ``mlpbench run --rounds N`` on both sides measures that spread.
- Each row says "x % ± y % slower/faster" and the gate's power to catch a 10 % slowdown at that
  row's sample size and spread. ``mlpbench compare --self-test`` measures the false-alarm rate
  and that power on this machine, from real runs (``bench.campaign.selftest``).
- Accuracy: final test accuracy NEW − BASE in percentage points, paired by seed, with its t
  interval (``bench.stats.paired_difference``); unpaired means where no seed is on both sides.
- Output: a markdown table on stdout, then one line per regressed cell, the cells only in one
  file, and notes. Exit 1 when a cell regressed, else 0; a file that cannot be read or holds no
  results, or no cell in common, raises ``MlpbenchError`` (one line, exit 2 from the CLI).
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.errors import EXIT_FAILED, EXIT_OK, MlpbenchError
from bench.report.formatting import format_seconds, to_markdown
from bench.report.tta import TimeToAccuracy, evaluates_inside, target_of, time_to_accuracy
from bench.results.read import OLDEST, Cell, Collection, as_dict, collect, warm_median
from bench.stats import (
    FASTER,
    GATE_ALPHA,
    GATE_FACTOR,
    SAME,
    SLOWER,
    Estimate,
    Ratio,
    gate_verdict,
    paired_difference,
    power,
    ratio,
    round_median,
    unmeasured_factor,
    unpaired_ratio,
)

DEFAULT_ALPHA = GATE_ALPHA
DEFAULT_FACTOR = GATE_FACTOR

#: ``--metric``: what a cell's rounds are judged on.
SPEED, TIME_TO_ACCURACY = "speed", "time-to-accuracy"

#: (backend, scenario, batch size): a cell, over its rounds
MatchKey = tuple[str, str, int | None]


@dataclass(frozen=True)
class Side:
    """One file's usable results: key → {seed: cell} (newest per seed)."""

    label: str  # "BASE" or "NEW"
    path: Path
    collection: Collection
    cells: dict[MatchKey, dict[int, Cell]]
    notes: list[str]


@dataclass(frozen=True)
class Row:
    """One matched cell: mean round medians, the ratio NEW/BASE, the verdict, the power."""

    key: MatchKey
    base_median: float
    new_median: float
    ratio: Ratio
    verdict: str
    power: float
    accuracy_delta_pt: Estimate
    rounds: tuple[int, int]
    basis: str = "rounds"

    @property
    def regressed(self) -> bool:
        return self.verdict == SLOWER


@dataclass
class Comparison:
    rows: list[Row]
    only_base: list[MatchKey]
    only_new: list[MatchKey]
    warnings: list[str] = field(default_factory=list)  # stderr lines
    notes: list[str] = field(default_factory=list)  # stdout lines below the table
    metric: str = SPEED  # or TIME_TO_ACCURACY

    @property
    def regressed(self) -> list[Row]:
        return [r for r in self.rows if r.regressed]


def run_compare(
    base: Path,
    new: Path,
    *,
    alpha: float = DEFAULT_ALPHA,
    factor: float = DEFAULT_FACTOR,
    metric: str = SPEED,
    target: float | None = None,
) -> int:
    """The ``compare`` command: print the comparison; 1 when a cell regressed, else 0."""
    result = compare_files(base, new, alpha=alpha, factor=factor, metric=metric, target=target)
    for line in result.warnings:
        print(f"mlpbench: warning: {line}", file=sys.stderr)
    print(comparison_markdown(result, base, new, alpha=alpha, factor=factor))
    return EXIT_FAILED if result.regressed else EXIT_OK


def compare_files(
    base: Path,
    new: Path,
    *,
    alpha: float = DEFAULT_ALPHA,
    factor: float = DEFAULT_FACTOR,
    metric: str = SPEED,
    target: float | None = None,
) -> Comparison:
    """Match the cells of ``base`` and ``new`` and test each pair on ``metric`` (``SPEED``, or
    ``TIME_TO_ACCURACY`` to ``target``, a fraction; None: each scenario's own); MlpbenchError on
    bad input."""
    sides = [read_side("BASE", base), read_side("NEW", new)]
    a, b = sides
    common = sorted(set(a.cells) & set(b.cells), key=_sort_key)
    if not common:
        raise MlpbenchError(
            f"no cells in common between {base} and {new} (cells are matched by backend, "
            "scenario and batch size)"
        )
    if metric == TIME_TO_ACCURACY:
        rows = [
            compare_cell_tta(k, a.cells[k], b.cells[k], alpha=alpha, factor=factor, target=target)
            for k in common
        ]
    else:
        rows = [compare_cell(k, a.cells[k], b.cells[k], alpha=alpha, factor=factor) for k in common]
    result = Comparison(
        rows,
        only_base=sorted(set(a.cells) - set(b.cells), key=_sort_key),
        only_new=sorted(set(b.cells) - set(a.cells), key=_sort_key),
        metric=metric,
    )
    for side in sides:
        result.warnings += side.collection.problems  # entries ignored in a read file
        result.notes += side.notes
    result.notes += _setting_notes(common, a, b)
    warning, note = machine_difference(a, b)
    result.warnings += [warning] if warning else []
    result.notes += [note] if note else []
    return result


def read_side(label: str, path: Path) -> Side:
    """The file's cells that ran, newest per key; MlpbenchError when it has none."""
    collection = collect([path])
    if not collection.cells:
        problem = collection.problems[0] if collection.problems else f"{path}: holds no results"
        raise MlpbenchError(f"cannot compare {label} {problem.removesuffix('; skipped')}")
    ran = [c for c in collection.cells if c.entry is not None]
    if not ran:
        raise MlpbenchError(
            f"cannot compare {label} {path}: every cell in it was skipped (no results)"
        )
    groups: dict[tuple[MatchKey, int], list[Cell]] = {}
    for cell in ran:
        groups.setdefault((key_of(cell), -1 if cell.seed is None else cell.seed), []).append(cell)
    cells: dict[MatchKey, dict[int, Cell]] = {}
    notes = list(collection.notes)
    for (key, seed), group in groups.items():
        group = sorted(group, key=lambda c: c.when)  # stable: the later of equal times wins
        cells.setdefault(key, {})[seed] = group[-1]
        if len(group) > 1:
            dropped = ", ".join(sorted({c.machine_id for c in group[:-1]}))
            notes.append(
                f"{label} holds {len(group)} results for {cell_label(key)} (seed {seed}); kept "
                f"the newest ({group[-1].machine_id}, {_stamp(group[-1])}), not {dropped}"
            )
    skipped = sorted({_short_name(c) for c in collection.cells if c.entry is None})
    if skipped:
        notes.append(f"skipped in {label} (no result, not compared): {', '.join(skipped)}")
    return Side(label, path, collection, cells, notes)


def key_of(cell: Cell) -> MatchKey:
    batch = as_dict(as_dict(as_dict(cell.entry).get("extra_info")).get("settings")).get(
        "batch_size"
    )
    batch = batch if isinstance(batch, int) and not isinstance(batch, bool) else None
    return (cell.backend, cell.scenario, batch)


def cell_label(key: MatchKey) -> str:
    """'numpy × baseline (batch 32)'."""
    backend, scenario, batch = key
    return f"{backend} × {scenario}" + (f" (batch {batch})" if batch is not None else "")


def median_of(entry: dict[str, Any]) -> float:
    """The entry's median epoch seconds over its timed sample (warm or cold), for display."""
    data = entry["stats"].get("data")
    return round_median(data) if data else float(entry["stats"]["median"])


def compare_cell(
    key: MatchKey,
    base: dict[int, Cell],
    new: dict[int, Cell],
    *,
    alpha: float = DEFAULT_ALPHA,
    factor: float = DEFAULT_FACTOR,
) -> Row:
    """The ratio NEW/BASE of one cell, its verdict and the gate's power: over its rounds, or
    over its warm epochs where the rounds give no interval (``basis`` says which) — the same
    ratio in every round (a tie), or one round per side, whose process-to-process spread was not
    measured and is judged against the wider ``stats.unmeasured_factor(factor)``."""
    medians = [
        {seed: m for seed, c in side.items() if (m := warm_median(c.entry)) is not None}
        for side in (base, new)
    ]
    means = [
        statistics.fmean(m.values())
        if m
        else statistics.fmean(median_of(c.entry) for c in s.values())
        for m, s in zip(medians, (base, new), strict=True)
    ]
    basis = "rounds"
    if all(medians):
        estimate = ratio(medians[1], medians[0], 1 - alpha)
        threshold = factor
        if not estimate.testable and gate_verdict(estimate, factor) != SAME:
            one_process = min(len(m) for m in medians) < 2
            threshold = unmeasured_factor(factor) if one_process else factor
            estimate = _warm_epochs_ratio(base, new, alpha)
            basis = WARM_BASIS if one_process else TIED_BASIS
            basis += f"; slower beyond ×{threshold:g}"
        verdict = gate_verdict(estimate, threshold)
        if basis != "rounds" and not estimate.testable:
            verdict = "not testable (too few warm epochs to judge without rounds)"
    else:
        estimate = Ratio(means[1] / means[0], math.nan, math.nan, 0, math.nan, False)
        verdict = "not testable (cold epoch or median only)"
    return _row(key, means, estimate, verdict, basis, (base, new), factor, alpha)


def _row(
    key: MatchKey,
    means: list[float],
    estimate: Ratio,
    verdict: str,
    basis: str,
    sides: tuple[dict[int, Cell], dict[int, Cell]],
    factor: float,
    alpha: float,
) -> Row:
    """A compared cell's row: the gate's power only where it judged over rounds."""
    base, new = sides
    return Row(
        key,
        means[0],
        means[1],
        estimate,
        verdict,
        power(estimate, factor, 1 - alpha) if basis == "rounds" else math.nan,
        accuracy_change(base, new),
        (len(base), len(new)),
        basis,
    )


#: The "judged on" of a cell with one round per side: its spread between processes is unknown.
WARM_BASIS = "warm epochs (spread between processes not measured)"
#: The "judged on" of a cell whose rounds all give the same ratio (no interval over rounds).
TIED_BASIS = "warm epochs (the same ratio in every round)"


def compare_cell_tta(
    key: MatchKey,
    base: dict[int, Cell],
    new: dict[int, Cell],
    *,
    alpha: float = DEFAULT_ALPHA,
    factor: float = DEFAULT_FACTOR,
    target: float | None = None,
) -> Row:
    """NEW/BASE of one cell's time to its target accuracy (``tta.time_to_accuracy``, training
    clock; ``target``: a fraction, None: each side's scenario target), paired by seed over the
    seeds both reached it. A seed BASE reached and NEW did not is a regression (slower); NEW
    reaching where BASE never did is faster. With one seed in common the spread between
    processes is unknown: the point ratio is judged against ``stats.unmeasured_factor``."""
    inside = all(evaluates_inside(_history(c)) for side in (base, new) for c in side.values())
    times = [
        {seed: _time_to_target(c, target, inside) for seed, c in side.items()}
        for side in (base, new)
    ]
    reached = [{s: t.training_s for s, t in side.items() if t.reached} for side in times]
    goal = 100 * next(iter(times[0].values())).target
    lost = sorted(s for s in reached[0] if s in times[1] and s not in reached[1])
    means = [statistics.fmean(r.values()) if r else math.nan for r in reached]
    estimate = ratio(reached[1], reached[0], 1 - alpha) if all(reached) else _no_ratio()
    basis = "rounds"
    if lost:
        verdict, basis = SLOWER, f"NEW did not reach {goal:g} % in seed(s) {lost}"
    elif reached[0] and not reached[1]:
        verdict, basis = SLOWER, f"only BASE reached {goal:g} %"
    elif not reached[0] and reached[1]:
        verdict, basis = FASTER, f"only NEW reached {goal:g} %"
    elif not any(reached):
        verdict = f"not testable (neither side reached {goal:g} %)"
    elif not estimate.testable and min(len(r) for r in reached) < 2:
        threshold = unmeasured_factor(factor)
        basis = f"one round per side; slower beyond ×{threshold:g}"
        verdict = (
            SLOWER
            if estimate.value > threshold
            else FASTER
            if estimate.value < 1 / threshold
            else SAME
        )
    else:
        verdict = gate_verdict(estimate, factor)
    return _row(key, means, estimate, verdict, basis, (base, new), factor, alpha)


def _history(cell: Cell) -> list:
    return as_dict(as_dict(cell.entry).get("extra_info")).get("history") or []


def _time_to_target(cell: Cell, target: float | None, inside: bool) -> TimeToAccuracy:
    """The cell's time to its target; evaluations inside epochs count when ``inside`` (both
    sides have them: one cadence on both sides)."""
    extra = as_dict(as_dict(cell.entry).get("extra_info"))
    goal = target_of(as_dict(extra.get("scenario")), target)
    return time_to_accuracy(_history(cell), goal, extra.get("build_seconds"), inside)


def _no_ratio() -> Ratio:
    return Ratio(math.nan, math.nan, math.nan, 0, math.nan, False)


def _warm_epochs_ratio(base: dict[int, Cell], new: dict[int, Cell], alpha: float) -> Ratio:
    """NEW/BASE of all warm epochs of each side, unpaired (Welch on the logs)."""
    samples = [
        [
            float(x)
            for c in side.values()
            if warm_median(c.entry) is not None
            for x in c.entry["stats"]["data"]
        ]
        for side in (new, base)
    ]
    return unpaired_ratio(samples[0], samples[1], 1 - alpha)


def accuracy_change(base: dict[int, Cell], new: dict[int, Cell]) -> Estimate:
    """Final test accuracy NEW − BASE (percentage points), paired by seed where the sides share
    seeds; otherwise the difference of the means, without an interval."""
    a = {seed: 100 * _final_accuracy(c.entry) for seed, c in base.items()}
    b = {seed: 100 * _final_accuracy(c.entry) for seed, c in new.items()}
    if set(a) & set(b):
        return paired_difference(a, b)
    mean = statistics.fmean(b.values()) - statistics.fmean(a.values())
    return Estimate(mean, math.nan, math.nan, min(len(a), len(b)))


def machine_difference(a: Side, b: Side) -> tuple[str | None, str | None]:
    """(stderr warning when the files come from different machines, stdout note when the same
    machine's recorded software changed); each names the facts that differ."""
    machines = [
        sorted({c.machine_id for g in s.cells.values() for c in g.values()}) for s in (a, b)
    ]
    facts = [
        [compared_facts(s.collection.machines.get(m, {})) for m in ms]
        for s, ms in zip((a, b), machines, strict=True)
    ]
    if len(facts[0]) == 1 and len(facts[1]) == 1:
        changed = _fact_changes(facts[0][0], facts[1][0])
    else:
        changed = [] if facts[0] == facts[1] else ["facts of several machines"]
    if machines[0] != machines[1]:
        what = (
            "; ".join(changed)
            if changed
            else "with the same recorded CPU model, GPUs, packages and BLAS"
        )
        return (
            f"BASE and NEW come from different machines ({', '.join(machines[0])} vs "
            f"{', '.join(machines[1])}): {what}; compared anyway",
            None,
        )
    if changed:
        return None, f"same machine ({', '.join(machines[0])}); changed: {'; '.join(changed)}"
    return None, None


def compared_facts(info: dict[str, Any]) -> dict[str, Any]:
    """The facts compared between the files: CPU model, GPU names, package versions, BLAS."""
    facts = as_dict(as_dict(info).get("mlpbench"))
    blas = [
        f"{p.get('internal_api')} {p.get('version')} ({p.get('architecture')}, "
        f"{p.get('num_threads')} threads)"
        for p in facts.get("blas") or []
        if isinstance(p, dict)
    ]
    return {
        "cpu_model": facts.get("cpu_model"),
        "gpus": [str(g.get("name", "GPU")) for g in facts.get("gpus") or [] if isinstance(g, dict)],
        "packages": {str(k): str(v) for k, v in as_dict(facts.get("packages")).items()},
        "blas": blas,
    }


def comparison_markdown(
    result: Comparison,
    base: Path,
    new: Path,
    *,
    alpha: float = DEFAULT_ALPHA,
    factor: float = DEFAULT_FACTOR,
) -> str:
    """The table, then the regressed cells, cells only in one file, and notes."""
    unit = "s/epoch" if result.metric == SPEED else "s to target"
    table = pd.DataFrame(
        [
            {
                "cell": cell_label(r.key),
                "rounds": f"{r.rounds[0]} / {r.rounds[1]}" + (" paired" * r.ratio.paired),
                f"base {unit}": format_seconds(r.base_median),
                f"new {unit}": format_seconds(r.new_median),
                "NEW/BASE": _interval(r.ratio),
                "change": change_text(r.ratio),
                "verdict": r.verdict,
                "judged on": r.basis,
                "power (10 %)": "—" if math.isnan(r.power) else f"{100 * r.power:.0f} %",
                "Δ accuracy pt": _points(r.accuracy_delta_pt),
            }
            for r in result.rows
        ]
    ).set_index("cell")
    counts = {v: sum(r.verdict == v for r in result.rows) for v in (SLOWER, FASTER, SAME)}
    untested = len(result.rows) - sum(counts.values())
    confidence = f"{100 * (1 - alpha):g} %"
    measured = (
        "the mean of each round's median warm-epoch seconds"
        if result.metric == SPEED
        else "the mean time to each scenario's target accuracy (training clock, as in the "
        "time-to-accuracy table; a seed BASE reached and NEW did not is a regression)"
    )
    lines = [
        f"BASE `{base}` vs NEW `{new}`: {measured}; "
        f"NEW/BASE over the rounds with its {confidence} interval (paired by seed where both "
        f"sides have the seeds). A cell is slower when the whole interval lies above {factor:g}, "
        f"faster when it lies below {1 / factor:.3g}; power (10 %): the chance this gate calls "
        "a true 10 % slowdown at the row's rounds and spread. Judged on warm epochs: the spread "
        "between processes was not measured (one round per side, or the same ratio in every "
        "round), so the two sides' warm epochs are compared instead (Welch on their logs); "
        "run both sides with --rounds N to measure it." + _measured_rates(),
        "",
        to_markdown(table),
        "",
        f"{len(result.rows)} cell(s) compared: {counts[SLOWER]} slower, {counts[FASTER]} faster, "
        f"{counts[SAME]} no change detected, {untested} not testable.",
    ]
    lines += [f"regressed: {cell_label(r.key)}: {change_text(r.ratio)}" for r in result.regressed]
    if result.only_base:
        lines.append(f"only in BASE: {', '.join(map(cell_label, result.only_base))}")
    if result.only_new:
        lines.append(f"only in NEW: {', '.join(map(cell_label, result.only_new))}")
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)


#: The gates' self-tests as measured on the development machine (``mlpbench compare --self-test
#: --self-test-out``, ``mlpbench ab --self-test --out``), shipped with the package.
SELF_TESTS = Path(__file__).with_name("selftests")


def _measured_rates() -> str:
    """A sentence on this gate's error rates across separate runs, from its shipped self-test
    (empty when the file is absent)."""
    path = SELF_TESTS / "compare.json"
    if not path.exists():
        return ""
    doc = json.loads(path.read_text(encoding="utf-8"))
    size = doc["default_size"]
    overlapping, independent = doc["rates"][str(size)]
    runs = len(doc["runs"])
    return (
        f" Across separate runs this gate measured, on {doc['machine_id']} ({doc['date']}: "
        f"{runs} runs of {doc['backend']} × {doc['scenario']}, {size} rounds each, "
        f"{doc['gap_s']:g} s apart; mlpbench compare --self-test), false alarms in "
        f"{overlapping['false_alarms']} of {overlapping['draws']} pairs of runs and a 10 % "
        f"slowdown caught in {overlapping['detections']} of {overlapping['draws']} "
        f"({independent['detections']} of {independent['draws']} disjoint pairs), at factor "
        f"{doc['factor']:g}, alpha {doc['alpha']:g}: the drift between two runs is as large as "
        "the change it looks for. To measure both sides seconds apart, use mlpbench ab."
    )


def _interval(r: Ratio) -> str:
    return f"{r.value:.3f}" + (f" [{r.low:.3f}, {r.high:.3f}]" if r.testable else "")


def change_text(r: Ratio) -> str:
    """'12.3 % ± 2.1 % slower' / '4.0 % ± 3.3 % faster' (± the interval's half-width)."""
    change = 100 * (r.value - 1)
    word = "slower" if change >= 0 else "faster"
    if r.testable:
        return f"{abs(change):.1f} % ± {100 * r.half_width:.1f} % {word}"
    return f"{abs(change):.1f} % {word}"


def _points(d: Estimate) -> str:
    """'+0.02 [-0.05, +0.09]' (points, paired by seed), '+0.02' without an interval."""
    if d.spread_known:
        return f"{d.mean:+.2f} [{d.low:+.2f}, {d.high:+.2f}]"
    return f"{d.mean:+.2f}"


def format_p(p: float) -> str:
    """'0.034', '0.0002' → '2.0e-04' below 0.001."""
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


# --- helpers -------------------------------------------------------------------------------------


def _final_accuracy(entry: dict[str, Any]) -> float:
    return float(entry["extra_info"]["history"][-1]["test_accuracy"])


def _sort_key(key: MatchKey) -> tuple[str, str, int]:
    backend, scenario, batch = key
    return (backend, scenario, -1 if batch is None else batch)


def _short_name(cell: Cell) -> str:
    return f"{cell.backend} × {cell.scenario}" + (
        f" (seed {cell.seed})" if cell.seed is not None else ""
    )


def _stamp(cell: Cell) -> str:
    return cell.when.strftime("%Y-%m-%d %H:%M UTC") if cell.when != OLDEST else "no datetime"


def _fact_changes(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    changed = []
    if a["cpu_model"] != b["cpu_model"]:
        changed.append(f"cpu_model {a['cpu_model']!r} vs {b['cpu_model']!r}")
    if a["gpus"] != b["gpus"]:
        changed.append(f"gpus {', '.join(a['gpus']) or 'none'} vs {', '.join(b['gpus']) or 'none'}")
    packages = [
        f"{k} {a['packages'].get(k, 'absent')} → {b['packages'].get(k, 'absent')}"
        for k in sorted(set(a["packages"]) | set(b["packages"]))
        if a["packages"].get(k) != b["packages"].get(k)
    ]
    if packages:
        changed.append(f"packages {', '.join(packages)}")
    if a["blas"] != b["blas"]:
        changed.append(f"blas {'; '.join(a['blas']) or 'none'} vs {'; '.join(b['blas']) or 'none'}")
    return changed


def _setting_notes(keys: list[MatchKey], a: Side, b: Side) -> list[str]:
    """A note per matched cell whose runs differ in what makes epoch times incomparable."""
    notes = []
    for key in keys:
        xa = [c.entry["extra_info"] for c in a.cells[key].values() if c.entry]
        xb = [c.entry["extra_info"] for c in b.cells[key].values() if c.entry]
        differ = [
            f"{name} {sorted(va, key=str)} vs {sorted(vb, key=str)}"
            for name, va, vb in [
                (name, {get(x) for x in xa}, {get(x) for x in xb})
                for name, get in [
                    ("n_train", lambda x: x.get("n_train")),
                    ("dtype", lambda x: as_dict(x.get("settings")).get("dtype")),
                    ("device", lambda x: as_dict(x.get("settings")).get("device")),
                ]
            ]
            if va != vb
        ]
        if differ:
            notes.append(
                f"{cell_label(key)}: the runs differ in {', '.join(differ)}; its times "
                "measure different work"
            )
        for side, extras in ((a, xa), (b, xb)):
            unfinished = [x for x in extras if x.get("failed") or x.get("complete") is False]
            if unfinished:
                notes.append(
                    f"{cell_label(key)}: {len(unfinished)} {side.label} round(s) did not finish; "
                    "compared on their finished epochs"
                )
    return notes
