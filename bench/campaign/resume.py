"""``mlpbench run --resume FILE``: which finished cells of an earlier run can stand.

A cell of FILE is kept when it is one this run would train (same backend, scenario and seed), it
finished (complete, not failed), and nothing it depends on changed: its recipe, the backend
options asked for, the data slice, the code it ran (``bench.campaign.fingerprint``), the software
versions and the machine. In lockstep (``lockstep=True``) a scenario's round is one measurement
(``bench.campaign.lockstep.group_key``: a sweep's points with their scenario): its cells' epochs
are paired with each other, seconds apart, so a cell is kept only if it was trained in lockstep
and every other cell of its group is kept too; when one of them trains again, they all do, side
by side. Everything else is trained again. Read from
the JSON only.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.campaign.lockstep import group_key
from bench.campaign.rounds import Slot
from bench.errors import ConfigError
from scenarios.files import NOT_SWEPT

#: (backend, scenario, seed): one round of a cell
SeededCell = tuple[str, str, int]


@dataclass(frozen=True)
class Expected:
    """What a kept cell must match: the machine, its software, each backend's code and options
    as this run would use them, and the data slice."""

    machine_id: str
    packages: dict[str, str]
    code: dict[str, str]  # backend → fingerprint
    options: Callable[[Slot], dict[str, Any]]  # a slot → {"tf32": ..., "backend": {...}}
    n_train: int
    n_test: int
    eval_every: int | None = None  # the evaluation cadence asked for (None: per epoch)


@dataclass
class Resumed:
    """The entries kept (key → benchmark entry, as in FILE) and how many others were not, by
    reason; ``missing``: FILE did not exist yet (a first run)."""

    kept: dict[SeededCell, dict[str, Any]] = field(default_factory=dict)
    dropped: Counter = field(default_factory=Counter)
    missing: bool = False

    def summary(self, path: Path) -> str:
        if self.missing:
            return f"resume: no {path} yet: training every cell"
        why = ", ".join(f"{n} {reason}" for reason, n in self.dropped.most_common())
        return f"resume: kept {len(self.kept)} finished cells of {path}" + (
            f"; training again {why}" if why else ""
        )


def recorded_order_seed(path: Path) -> int | None:
    """The interleaved order's seed an earlier run recorded in ``path`` (None if none): a
    resumed run draws the same order again, so its plan is the one that was interrupted."""
    try:
        seed = json.loads(path.read_text(encoding="utf-8"))["mlpbench"]["order"]["seed"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return seed if isinstance(seed, int) else None


def read_resumable(
    path: Path, slots: list[Slot], expected: Expected, lockstep: bool = False
) -> Resumed:
    """The cells of ``path`` that this run's ``slots`` can keep (a missing file keeps none);
    ``lockstep``: this run trains in lockstep rounds (see the module's docstring)."""
    resumed = Resumed()
    if not path.exists():
        resumed.missing = True
        return resumed
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        entries = doc["benchmarks"]
        facts = doc["machine_info"]["mlpbench"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(
            f"--resume {path}: not a results file mlpbench wrote ({type(err).__name__}); "
            "name another file or drop --resume"
        ) from None
    wanted = {slot.key: slot for slot in slots}
    cells = {(slot.backend, slot.scenario.name): slot for slot in slots}
    considered = set(wanted)  # every cell this run would keep or train
    for entry in entries:
        key = _key(entry)
        if key is None:
            continue
        slot = wanted.get(key)
        if slot is None and key[:2] in cells:  # a round --target-ci added beyond the plan
            first = cells[key[:2]]
            slot = Slot(first.backend, first.scenario.with_overrides(seed=key[2]), -1, -1)
        if slot is None:
            continue
        considered.add(key)
        problem = _problem(entry, slot, facts, expected)
        if not problem and lockstep and (entry.get("extra_info") or {}).get("design") != "lockstep":
            problem = "trained in another design than lockstep"
        if problem:
            resumed.dropped[problem] += 1
        else:
            resumed.kept[key] = entry
    if lockstep:
        _keep_whole_rounds(resumed, considered)
    return resumed


def _keep_whole_rounds(resumed: Resumed, considered: set[SeededCell]) -> None:
    """Drop the kept cells of every lockstep group of which some cell in ``considered`` is not
    kept: that group trains again as a whole."""
    rounds: dict[tuple[str, int], set[SeededCell]] = {}
    for key in considered:
        rounds.setdefault(group_key(key[1], key[2]), set()).add(key)
    for members in rounds.values():
        if members <= resumed.kept.keys():
            continue
        for key in members & resumed.kept.keys():
            del resumed.kept[key]
            resumed.dropped["of a lockstep round that trains again"] += 1


def _key(entry: Any) -> SeededCell | None:
    try:
        params = entry["params"]
        return params["backend"], params["scenario"], int(params["seed"])
    except (KeyError, TypeError, ValueError):
        return None


def _problem(entry: dict, slot: Slot, facts: dict, expected: Expected) -> str | None:
    """Why ``entry`` cannot stand for ``slot`` (a short plural phrase), or None."""
    extra = entry.get("extra_info") or {}
    if not extra.get("complete") or extra.get("failed"):
        return "failed or incomplete"
    if facts.get("machine_id") != expected.machine_id:
        return "from another machine"
    if facts.get("packages") != expected.packages:
        return "with other software versions"
    if _training(extra.get("scenario")) != _training(slot.scenario.to_dict()):
        return "whose recipe changed"
    if extra.get("code") != expected.code.get(slot.backend):
        return f"whose code changed ({slot.backend})"
    if extra.get("options") != expected.options(slot):
        return "with other options"
    if (extra.get("n_train"), extra.get("n_test")) != (expected.n_train, expected.n_test):
        return "on another data slice"
    if not _same_cadence((extra.get("settings") or {}).get("eval_every"), expected.eval_every):
        return "at another evaluation cadence"
    return None


def _same_cadence(recorded: object, asked: int | None) -> bool:
    """A cell's recorded ``eval_every`` setting against the cadence asked: a number must be the
    one asked; a backend that said it evaluates per epoch only matches any cadence asked."""
    if asked is None:
        return recorded is None
    return recorded == asked or isinstance(recorded, str)


def _training(recipe: object) -> object:
    """A recipe without the keys that change no training (its summary, its target accuracy):
    a cell stays valid when only those changed."""
    if not isinstance(recipe, dict):
        return recipe
    return {k: v for k, v in recipe.items() if k not in NOT_SWEPT}
