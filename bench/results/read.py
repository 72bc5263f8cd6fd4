"""Result JSON files → the cells to tabulate: reading, validating, keeping the newest duplicate.

Contract:
- Input: pytest-benchmark JSON documents as ``bench.results.write`` writes them (``mlpbench run``
  or the pytest-benchmark suite); entries are found by ``params.backend`` / ``params.scenario``,
  never by test name. A file that cannot be read, is not JSON, is not pytest-benchmark-shaped,
  holds machine facts of the wrong type or a newer schema (``bench.results.schema``) adds ONE line
  to ``Collection.problems`` and is skipped; an entry with a field of the wrong type is ignored with
  a line naming the field; the other files and entries are still read.
- A cell is one machine × scenario × backend. When several files hold the same cell (repeated
  runs), the result from the newest document (its ``datetime``; later files break ties) is kept and
  a note names the file kept and those dropped. Results are never averaged.
- Each machine's facts come from its newest file; a note says when its files disagree.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.results.schema import document_flaw, entry_flaw
from bench.stats import has_warm_epochs, is_warm_sample, round_median

OLDEST = dt.datetime.min.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Cell:
    """One machine × scenario × backend × seed outcome read from ``source``: ``entry`` is its
    ``benchmarks[]`` entry, or None when the backend skipped the scenario (``reason`` says why).
    ``seed`` is ``params.seed`` (older files: the recorded scenario's seed; None if neither)."""

    machine_id: str
    scenario: str
    backend: str
    source: str
    when: dt.datetime
    entry: dict[str, Any] | None = None
    reason: str | None = None
    seed: int | None = None


@dataclass(frozen=True)
class Collection:
    """Everything usable in a set of files: the kept cells, each machine's facts (from its newest
    file), one line per file read (``sources``), caveats about the files (``notes``) and one
    problem line per unusable file."""

    cells: list[Cell]
    machines: dict[str, dict[str, Any]]
    sources: list[str]
    notes: list[str]
    problems: list[str]


def warm_median(entry: dict[str, Any] | None) -> float | None:
    """A result entry's round speed (``bench.stats.round_median`` of its timed sample), or None
    when it has no warm epoch — it stopped (failed, interrupted) before epoch 2 or ran one epoch
    (its sample is then the cold epoch, labelled so in ``extra_info.stats_over``; files without
    the label are judged by their history's length) — or has no per-epoch data."""
    if not entry:
        return None
    extra = entry.get("extra_info") or {}
    data = (entry.get("stats") or {}).get("data") or []
    label = extra.get("stats_over")
    if label is None:
        warm = has_warm_epochs(len(extra.get("history") or []))
    else:
        warm = is_warm_sample(label)
    if not data or not warm:
        return None
    return round_median(data)


class _Unusable(Exception):
    """A file that cannot be tabulated; the message says why."""


def collect(paths: Sequence[Path]) -> Collection:
    """Read every file in ``paths`` (duplicates once); keep the newest result per cell."""
    cells: list[Cell] = []
    docs: list[tuple[dt.datetime, str, dict[str, Any]]] = []
    sources, problems = [], []
    for path in dict.fromkeys(str(p) for p in paths):
        try:
            doc = _read_document(Path(path))
            found, problem = _document_cells(doc, path)
        except _Unusable as err:
            problems.append(f"{path}: {err}; skipped")
            continue
        problems += [f"{path}: {problem}"] if problem else []
        cells += found
        docs.append((_when(doc), path, doc))
        sources.append(_source_line(path, doc, found))
    kept, notes = _newest_cells(cells)
    machines, machine_notes = _machine_facts(docs)
    return Collection(kept, machines, sources, notes + machine_notes, problems)


def cell_name(cell: Any) -> str:
    """'backend × scenario (seed N) on machine' for a Cell or a row of the runs frame."""
    seed = getattr(cell, "seed", None)
    seeded = f" (seed {int(seed)})" if isinstance(seed, int | float) and seed == seed else ""
    return f"{cell.backend} × {cell.scenario}{seeded} on {cell.machine_id}"


def _seed(entry: dict[str, Any]) -> int | None:
    """The entry's seed: params.seed, else the seed of the scenario it recorded."""
    for seed in (
        entry["params"].get("seed"),
        as_dict(entry["extra_info"].get("scenario")).get("seed"),
    ):
        if isinstance(seed, int) and not isinstance(seed, bool):
            return seed
    return None


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` when it is a dict, else {} (JSON read from files may hold anything)."""
    return value if isinstance(value, dict) else {}


def machine_id_of(info: Any) -> str:
    """``machine_info["mlpbench"]["machine_id"]``; without those facts the machine cannot be
    identified, so it is named after pytest-benchmark's ``node`` and never merged with others."""
    info = as_dict(info)
    facts = as_dict(info.get("mlpbench"))
    return str(facts.get("machine_id") or f"unidentified ({info.get('node', '?')})")


# --- one file ------------------------------------------------------------------------------------


def _read_document(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _Unusable("no such file") from None
    except UnicodeDecodeError:
        raise _Unusable("not JSON (not UTF-8 text)") from None
    except OSError as err:
        raise _Unusable(f"cannot read ({err.strerror or err})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise _Unusable(f"not JSON ({err.msg} at line {err.lineno} column {err.colno})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), list):
        raise _Unusable("not a pytest-benchmark JSON (no 'benchmarks' list)")
    flaw = document_flaw(doc)
    if flaw:
        raise _Unusable(flaw)
    return doc


#: Divisions, as results record them (``extra_info.division``): a backend as its framework ships
#: it, tuned by ``mlpbench tune`` (``--profile``), or run with options chosen by hand.
DIVISIONS = ("shipped", "tuned", "custom")


def division_label(backend: str, division: Any) -> str:
    """How tables name a backend's cells: its name for the shipped division (and results from
    before divisions were recorded), 'keras (tuned)' for the others."""
    return backend if division in (None, "shipped") else f"{backend} ({division})"


def _document_cells(doc: dict[str, Any], source: str) -> tuple[list[Cell], str | None]:
    """The document's cells and a problem line when some entries were ignored."""
    machine, when = machine_id_of(doc.get("machine_info")), _when(doc)
    cells, bad = [], []
    for index, entry in enumerate(doc["benchmarks"]):
        flaw = entry_flaw(entry, index)
        if flaw:
            bad.append(flaw)
            continue
        backend, scenario = entry["params"]["backend"], entry["params"]["scenario"]
        backend = division_label(backend, as_dict(entry.get("extra_info")).get("division"))
        cells.append(Cell(machine, scenario, backend, source, when, entry, seed=_seed(entry)))
    cells += [
        Cell(
            machine,
            s["scenario"],
            s["backend"],
            source,
            when,
            reason=str(s.get("reason")),
            seed=s.get("seed") if isinstance(s.get("seed"), int) else None,
        )
        for s in _skipped_list(doc)
    ]
    if not cells:
        raise _Unusable(f"no mlpbench results ({bad[0]})" if bad else "holds no results")
    problem = f"ignored {len(bad)} of {len(doc['benchmarks'])} entries ({bad[0]})" if bad else None
    return cells, problem


def _skipped_list(doc: dict[str, Any]) -> list[dict[str, Any]]:
    skipped = (doc.get("mlpbench") or {}).get("skipped") or []
    return [
        s
        for s in skipped
        if isinstance(s, dict)
        and isinstance(s.get("backend"), str)
        and isinstance(s.get("scenario"), str)
    ]


def _when(doc: dict[str, Any]) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(str(doc.get("datetime")))
    except ValueError:
        return OLDEST
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _source_line(path: str, doc: dict[str, Any], cells: list[Cell]) -> str:
    when = _when(doc)
    stamp = when.strftime("%Y-%m-%d %H:%M UTC") if when != OLDEST else "no datetime"
    ran = sum(c.entry is not None for c in cells)
    machine = machine_id_of(doc.get("machine_info"))
    return f"`{path}` ({stamp}, {machine}): {ran} run(s), {len(cells) - ran} skipped"


# --- across files --------------------------------------------------------------------------------


def _newest_cells(cells: list[Cell]) -> tuple[list[Cell], list[str]]:
    groups: dict[tuple[str, str, str], list[Cell]] = {}
    for cell in cells:
        key = (cell.machine_id, cell.scenario, cell.backend, cell.seed)
        groups.setdefault(key, []).append(cell)
    kept, notes = [], []
    for group in groups.values():
        group = sorted(group, key=lambda c: c.when)  # stable: later files win ties
        kept.append(group[-1])
        if len(group) > 1:
            older = ", ".join(f"`{c.source}`" for c in group[:-1])
            notes.append(
                f"{cell_name(group[-1])}: {len(group)} results; kept the newest "
                f"(`{group[-1].source}`), not {older}"
            )
    return kept, notes


def _machine_facts(docs: list[tuple[dt.datetime, str, dict]]) -> tuple[dict, list[str]]:
    """Each machine's machine_info from its newest file, and a note when files disagree."""
    by_machine: dict[str, list[tuple[dt.datetime, str, dict]]] = {}
    for when, path, doc in sorted(docs, key=lambda d: d[0]):
        info = as_dict(doc.get("machine_info"))
        by_machine.setdefault(machine_id_of(info), []).append((when, path, info))
    machines, notes = {}, []
    for machine, seen in by_machine.items():
        machines[machine] = seen[-1][2]
        keys = ("blas", "packages", "env", "gpus")
        facts = [{k: (i.get("mlpbench") or {}).get(k) for k in keys} for _, _, i in seen]
        differ = [k for k in keys if any(f[k] != facts[-1][k] for f in facts)]
        if differ == ["blas"] and not _blas_versions_differ([f["blas"] for f in facts]):
            notes.append(
                f"{machine}: the files list different BLAS/OpenMP thread pools, with the same "
                "versions of every library they share: only which pools a run had loaded "
                "differs (each framework loads its own), not the software; Machines shows the "
                f"newest, `{seen[-1][1]}`"
            )
        elif differ:
            notes.append(
                f"{machine}: the files disagree on {', '.join(differ)} (software changed "
                f"between runs); Machines shows the newest, `{seen[-1][1]}`"
            )
    return machines, notes


def _blas_versions_differ(pool_lists: list[Any]) -> bool:
    """Whether some library (internal_api) appears with two versions across the files."""
    versions: dict[str, set] = {}
    for pools in pool_lists:
        for pool in pools if isinstance(pools, list) else []:
            if isinstance(pool, dict):
                versions.setdefault(str(pool.get("internal_api")), set()).add(pool.get("version"))
    return any(len(v) > 1 for v in versions.values())
