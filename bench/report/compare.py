"""``mlpbench compare BASE.json NEW.json``: did NEW get slower (or faster) than BASE, cell by cell?

Contract:
- Cells are matched by (backend, scenario, seed, batch size) — the batch size is
  ``extra_info.settings.batch_size``; the machine is not part of the key, so files from two
  machines are compared (with one warning line on stderr naming the facts that differ: CPU model,
  GPU names, package versions, BLAS). Within one side, several results for the same key (e.g. two
  machines) keep the newest, as ``bench.results.read.collect`` does, with a note.
- Speed: the ratio NEW/BASE of the medians of the warm-epoch times (``stats.data``), and a
  two-sided Mann–Whitney U test on those samples (``scipy.stats.mannwhitneyu``, as asv does;
  its exact distribution when no value repeats, else the tie-corrected normal approximation). A
  cell counts as *slower* (a regression) or *faster* only when both p < ``alpha`` (default 0.05)
  and the ratio of medians lies beyond ``factor`` (asv's default 1.1) — above it, or below
  1/``factor``; otherwise "no change detected".
- Minimum samples: without ties the smallest two-sided p Mann–Whitney U can give for samples of
  n and m values is 2 / C(n + m, n) (completely separated samples, exact distribution). At
  alpha 0.05 that is 0.1 for 3 vs 3 and 0.029 for 4 vs 4, so n = m = 4 warm epochs per side is the
  smallest equal-sized case that can be significant (3 vs 5 and 2 vs 8 can too). A cell whose
  sizes cannot reach p < alpha gets "not testable (n = k)" and never counts as a regression; so
  does a cell with only ``stats.median`` (no samples) or only a cold epoch.
- Accuracy: final test accuracy NEW − BASE in percentage points (last ``extra_info.history``
  epoch).
- Output: a markdown table on stdout, then one line per regressed cell, the cells only in one
  file, and notes. Exit 1 when a cell regressed, else 0; a file that cannot be read or holds no
  results, or no cell in common, raises ``MlpbenchError`` (one line, exit 2 from the CLI).
"""

from __future__ import annotations

import math
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.errors import EXIT_FAILED, EXIT_OK, MlpbenchError
from bench.report.formatting import format_seconds, to_markdown
from bench.results.read import OLDEST, Cell, Collection, as_dict, collect

DEFAULT_ALPHA = 0.05
DEFAULT_FACTOR = 1.1
SLOWER, FASTER, SAME = "slower", "faster", "no change detected"
#: The exact distribution of U up to this many values in all (fast enough), else the normal
#: approximation; ties always use the normal approximation with the tie correction.
EXACT_UP_TO = 200

#: (backend, scenario, seed, batch size)
Key = tuple[str, str, int | None, int | None]


@dataclass(frozen=True)
class Side:
    """One file's usable results, newest per key."""

    label: str  # "BASE" or "NEW"
    path: Path
    collection: Collection
    cells: dict[Key, Cell]
    notes: list[str]


@dataclass(frozen=True)
class Row:
    """One matched cell: medians, ratio NEW/BASE, p (None: not testable) and the verdict."""

    key: Key
    base_median: float
    new_median: float
    p: float | None
    verdict: str
    accuracy_delta_pt: float

    @property
    def ratio(self) -> float:
        return self.new_median / self.base_median

    @property
    def regressed(self) -> bool:
        return self.verdict == SLOWER


@dataclass
class Comparison:
    rows: list[Row]
    only_base: list[Key]
    only_new: list[Key]
    warnings: list[str] = field(default_factory=list)  # stderr lines
    notes: list[str] = field(default_factory=list)  # stdout lines below the table

    @property
    def regressed(self) -> list[Row]:
        return [r for r in self.rows if r.regressed]


def run_compare(
    base: Path, new: Path, *, alpha: float = DEFAULT_ALPHA, factor: float = DEFAULT_FACTOR
) -> int:
    """The ``compare`` command: print the comparison; 1 when a cell regressed, else 0."""
    result = compare_files(base, new, alpha=alpha, factor=factor)
    for line in result.warnings:
        print(f"mlpbench: warning: {line}", file=sys.stderr)
    print(comparison_markdown(result, base, new, alpha=alpha, factor=factor))
    return EXIT_FAILED if result.regressed else EXIT_OK


def compare_files(
    base: Path, new: Path, *, alpha: float = DEFAULT_ALPHA, factor: float = DEFAULT_FACTOR
) -> Comparison:
    """Match the cells of ``base`` and ``new`` and test each pair; MlpbenchError on bad input."""
    sides = [read_side("BASE", base), read_side("NEW", new)]
    a, b = sides
    common = sorted(set(a.cells) & set(b.cells), key=_sort_key)
    if not common:
        raise MlpbenchError(
            f"no cells in common between {base} and {new} (cells are matched by backend, "
            "scenario, seed and batch size)"
        )
    rows = [compare_cell(k, a.cells[k], b.cells[k], alpha=alpha, factor=factor) for k in common]
    result = Comparison(
        rows,
        only_base=sorted(set(a.cells) - set(b.cells), key=_sort_key),
        only_new=sorted(set(b.cells) - set(a.cells), key=_sort_key),
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
    groups: dict[Key, list[Cell]] = {}
    for cell in ran:
        groups.setdefault(key_of(cell), []).append(cell)
    cells, notes = {}, list(collection.notes)
    for key, group in groups.items():
        group = sorted(group, key=lambda c: c.when)  # stable: the later of equal times wins
        cells[key] = group[-1]
        if len(group) > 1:
            dropped = ", ".join(sorted({c.machine_id for c in group[:-1]}))
            notes.append(
                f"{label} holds {len(group)} results for {cell_label(key)}; kept the newest "
                f"({group[-1].machine_id}, {_stamp(group[-1])}), not {dropped}"
            )
    skipped = sorted({_short_name(c) for c in collection.cells if c.entry is None})
    if skipped:
        notes.append(f"skipped in {label} (no result, not compared): {', '.join(skipped)}")
    return Side(label, path, collection, cells, notes)


def key_of(cell: Cell) -> Key:
    batch = as_dict(as_dict(as_dict(cell.entry).get("extra_info")).get("settings")).get(
        "batch_size"
    )
    batch = batch if isinstance(batch, int) and not isinstance(batch, bool) else None
    return (cell.backend, cell.scenario, cell.seed, batch)


def cell_label(key: Key) -> str:
    """'numpy × baseline (seed 0, batch 32)'."""
    backend, scenario, seed, batch = key
    parts = [f"seed {seed}"] * (seed is not None) + [f"batch {batch}"] * (batch is not None)
    return f"{backend} × {scenario}" + (f" ({', '.join(parts)})" if parts else "")


def warm_samples(entry: dict[str, Any]) -> list[float] | None:
    """The warm-epoch seconds, or None when the entry has only a median or only a cold epoch."""
    data = entry["stats"].get("data")
    if not data or str(entry["extra_info"].get("stats_over", "")).startswith("epoch 1 only"):
        return None
    return [float(x) for x in data]


def median_of(entry: dict[str, Any]) -> float:
    data = entry["stats"].get("data")
    return float(statistics.median(data)) if data else float(entry["stats"]["median"])


def min_p(n: int, m: int) -> float:
    """The smallest two-sided p Mann–Whitney U can reach with n and m values (exact, no ties)."""
    return 1.0 if n == 0 or m == 0 else min(1.0, 2 / math.comb(n + m, n))


def compare_cell(
    key: Key,
    base: Cell,
    new: Cell,
    *,
    alpha: float = DEFAULT_ALPHA,
    factor: float = DEFAULT_FACTOR,
) -> Row:
    from scipy.stats import mannwhitneyu

    assert base.entry is not None and new.entry is not None
    base_median, new_median = median_of(base.entry), median_of(new.entry)
    accuracy = 100 * (_final_accuracy(new.entry) - _final_accuracy(base.entry))
    x, y = warm_samples(base.entry), warm_samples(new.entry)
    if x is None or y is None:
        median_only = not base.entry["stats"].get("data") or not new.entry["stats"].get("data")
        why = "median only" if median_only else "cold epoch only"
        return Row(key, base_median, new_median, None, f"not testable ({why})", accuracy)
    if min_p(len(x), len(y)) >= alpha:
        sizes = f"{len(x)}" if len(x) == len(y) else f"{len(x)} vs {len(y)}"
        return Row(key, base_median, new_median, None, f"not testable (n = {sizes})", accuracy)
    ties = len(set(x) | set(y)) < len(x) + len(y)
    method = "asymptotic" if ties or len(x) + len(y) > EXACT_UP_TO else "exact"
    p = float(mannwhitneyu(x, y, alternative="two-sided", method=method).pvalue)
    p = 1.0 if math.isnan(p) else p  # every value equal: no evidence of a difference
    ratio = new_median / base_median
    verdict = SAME
    if p < alpha and ratio > factor:
        verdict = SLOWER
    elif p < alpha and ratio < 1 / factor:
        verdict = FASTER
    return Row(key, base_median, new_median, p, verdict, accuracy)


def machine_difference(a: Side, b: Side) -> tuple[str | None, str | None]:
    """(stderr warning when the files come from different machines, stdout note when the same
    machine's recorded software changed); each names the facts that differ."""
    machines = [sorted({c.machine_id for c in s.cells.values()}) for s in (a, b)]
    facts = [
        [machine_facts(s.collection.machines.get(m, {})) for m in ms]
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


def machine_facts(info: dict[str, Any]) -> dict[str, Any]:
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
    table = pd.DataFrame(
        [
            {
                "cell": cell_label(r.key),
                "base s/epoch": format_seconds(r.base_median),
                "new s/epoch": format_seconds(r.new_median),
                "ratio": f"{r.ratio:.2f}",
                "p": "—" if r.p is None else format_p(r.p),
                "verdict": r.verdict,
                "Δ accuracy pt": f"{r.accuracy_delta_pt:+.2f}",
            }
            for r in result.rows
        ]
    ).set_index("cell")
    counts = {v: sum(r.verdict == v for r in result.rows) for v in (SLOWER, FASTER, SAME)}
    untested = len(result.rows) - sum(counts.values())
    lines = [
        f"BASE `{base}` vs NEW `{new}`: median warm-epoch seconds, ratio NEW/BASE; a cell is "
        f"slower or faster only when Mann–Whitney U (two-sided) gives p < {alpha:g} and the "
        f"ratio is beyond {factor:g}× either way.",
        "",
        to_markdown(table),
        "",
        f"{len(result.rows)} cell(s) compared: {counts[SLOWER]} slower, {counts[FASTER]} faster, "
        f"{counts[SAME]} no change detected, {untested} not testable.",
    ]
    lines += [
        f"regressed: {cell_label(r.key)}: {r.ratio:.2f}× slower (p = {format_p(r.p or 0)})"
        for r in result.regressed
    ]
    if result.only_base:
        lines.append(f"only in BASE: {', '.join(map(cell_label, result.only_base))}")
    if result.only_new:
        lines.append(f"only in NEW: {', '.join(map(cell_label, result.only_new))}")
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)


def format_p(p: float) -> str:
    """'0.034', '0.0002' → '2.0e-04' below 0.001."""
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


# --- helpers -------------------------------------------------------------------------------------


def _final_accuracy(entry: dict[str, Any]) -> float:
    return float(entry["extra_info"]["history"][-1]["test_accuracy"])


def _sort_key(key: Key) -> tuple[str, str, int, int]:
    backend, scenario, seed, batch = key
    return (backend, scenario, -1 if seed is None else seed, -1 if batch is None else batch)


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


def _setting_notes(keys: list[Key], a: Side, b: Side) -> list[str]:
    """A note per matched cell whose runs differ in what makes epoch times incomparable."""
    notes = []
    for key in keys:
        ea, eb = a.cells[key].entry or {}, b.cells[key].entry or {}
        xa, xb = ea["extra_info"], eb["extra_info"]
        sa, sb = as_dict(xa.get("settings")), as_dict(xb.get("settings"))
        differ = [
            f"{name} {va} vs {vb}"
            for name, va, vb in [
                ("n_train", xa.get("n_train"), xb.get("n_train")),
                ("dtype", sa.get("dtype"), sb.get("dtype")),
                ("device", sa.get("device"), sb.get("device")),
            ]
            if va != vb
        ]
        if differ:
            notes.append(
                f"{cell_label(key)}: the runs differ in {', '.join(differ)}; its times "
                "measure different work"
            )
        for side, x in ((a, xa), (b, xb)):
            if x.get("failed") or x.get("complete") is False:
                notes.append(
                    f"{cell_label(key)}: the {side.label} run did not finish; compared on "
                    f"its {len(x['history'])} finished epoch(s)"
                )
    return notes
