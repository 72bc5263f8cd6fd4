"""Your own workloads: scenarios from a TOML file, and sweeps over scenario fields and options.

A scenario file holds one table per scenario, named by its table key::

    [deep_rmsprop]                       # two hidden layers, dropout after each
    base = "baseline"                    # a catalogue scenario or another table of this file
    hidden = [512, 512]
    dropout = 0.2
    optimizer = "rmsprop"
    batch_size = 128
    summary = "a public recipe: 512-512, dropout 0.2, RMSprop, batch 128"

Keys are the ``Scenario`` fields in ``KEYS``; ``batch_size = "full"`` means full batch. A table
starts from its ``base`` (the catalogue's baseline without one) and changes only what it writes;
``changes`` lists them, so the questions in results.md compare it with its base. Every problem is
one ``ConfigError`` line naming the file, the table and the key.

A sweep (``--sweep KEY=V1,V2,…``, repeatable: the cartesian product) turns each chosen scenario
into one scenario per point, named by what changed (``baseline[batch_size=256]``) and carrying the
point in ``sweep``. Keys are the same fields (``hidden=128,512x512``: widths joined by ``x``) or a
backend option (``keras.steps_per_execution=1,16,64``), which only that backend runs.
"""

from __future__ import annotations

import itertools
import math
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.errors import ConfigError
from scenarios import SCENARIOS, Scenario

#: Field → (what it takes, parser of a TOML value). Parsers raise ValueError with what they need.
KEYS = (
    "hidden",
    "init",
    "optimizer",
    "learning_rate",
    "beta_1",
    "beta_2",
    "rho",
    "epsilon",
    "batch_size",
    "epochs",
    "dropout",
    "dtype",
    "shuffle",
    "seed",
    "target_accuracy",
    "summary",
)


def _int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"takes an integer, got {v!r}")
    return v


def _number(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ValueError(f"takes a number, got {v!r}")
    return float(v)


def _text(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"takes a string, got {v!r}")
    return v


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"takes true or false, got {v!r}")
    return v


def _hidden(v: Any) -> tuple[int, ...]:
    if isinstance(v, int) and not isinstance(v, bool):
        v = [v]
    if not isinstance(v, list) or not v or not all(_is_pos_int(w) for w in v):
        raise ValueError(f"takes a list of positive widths like [512, 512], got {v!r}")
    return tuple(v)


def _batch(v: Any) -> int | None:
    if v == "full":
        return None
    if not _is_pos_int(v):
        raise ValueError(f'takes a positive integer or "full", got {v!r}')
    return v


def _is_pos_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


PARSERS = {
    "hidden": _hidden,
    "init": _text,
    "optimizer": _text,
    "learning_rate": _number,
    "beta_1": _number,
    "beta_2": _number,
    "rho": _number,
    "epsilon": _number,
    "batch_size": _batch,
    "epochs": _int,
    "dropout": _number,
    "dtype": _text,
    "shuffle": _bool,
    "seed": _int,
    "target_accuracy": _number,
    "summary": _text,
}

#: Keys that change no training: a sweep over them would train the same cells again.
NOT_SWEPT = ("summary", "target_accuracy")


def is_scenario_file(name: str) -> bool:
    """Whether a ``-s`` value names a scenario file rather than a catalogue scenario."""
    return name.endswith(".toml")


def load(path: str | Path) -> list[Scenario]:
    """The scenarios of a TOML file, in the file's order (see the module's docstring)."""
    path = Path(path)
    try:
        tables = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"scenario file {path}: {err.strerror or err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"scenario file {path}: not valid TOML ({err})") from None
    if not tables:
        raise ConfigError(f"scenario file {path}: holds no [scenario] table")
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {name!r} is not a [table] (write [{name}] above its keys)")
        if name in SCENARIOS:
            raise ConfigError(
                f"{path} [{name}]: the catalogue has a scenario of that name; name yours otherwise"
            )
    built: dict[str, Scenario] = {}
    for name in tables:
        _build(path, name, tables, built, ())
    return [built[name] for name in tables]


def _build(
    path: Path, name: str, tables: dict, built: dict[str, Scenario], chain: tuple[str, ...]
) -> Scenario:
    if name in built:
        return built[name]
    table = tables[name]
    where = f"{path} [{name}]"
    base_name = table.get("base", "baseline")
    if not isinstance(base_name, str):
        raise ConfigError(f"{where} base: takes a scenario name, got {base_name!r}")
    if base_name in chain or base_name == name:
        raise ConfigError(f"{where} base: {' → '.join([*chain, name, base_name])} is a cycle")
    if base_name in tables:
        base = _build(path, base_name, tables, built, (*chain, name))
    elif base_name in SCENARIOS:
        base = SCENARIOS[base_name]
    else:
        raise ConfigError(
            f"{where} base: {base_name!r} is neither a catalogue scenario "
            f"({', '.join(SCENARIOS)}) nor a table of this file"
        )
    changes: dict[str, Any] = {}
    for key, value in table.items():
        if key == "base":
            continue
        if key not in PARSERS:
            raise ConfigError(f"{where} {key}: unknown key; the keys are base, {', '.join(KEYS)}")
        try:
            changes[key] = PARSERS[key](value)
        except ValueError as err:
            raise ConfigError(f"{where} {key}: {err}") from None
    summary = changes.pop("summary", None)
    described = [f"{k}: {_shown(getattr(base, k))} → {_shown(v)}" for k, v in changes.items()]
    try:
        scenario = replace(
            base,
            name=name,
            summary=summary or f"{base_name} with {', '.join(described) or 'no change'}",
            changes=tuple(described),
            base=base_name,
            ladder=None,
            **changes,
        )
    except ConfigError as err:
        raise ConfigError(f"{where}: {str(err).split(': ', 1)[-1]}") from None
    built[name] = scenario
    return scenario


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    return "full" if value is None else str(value)


# --- sweeps --------------------------------------------------------------------------------------


def parse_sweeps(
    texts: list[str] | None, option_names: dict[str, list[str]]
) -> list[tuple[str, list]]:
    """``--sweep KEY=V1,V2`` texts → [(key, values)], values parsed as their field takes them
    (option values stay text). ``option_names``: backend → its options, for ``BACKEND.OPTION``
    keys. ConfigError (one line) for an empty or malformed sweep or an unknown key."""
    sweeps: list[tuple[str, list]] = []
    for text in texts or []:
        key, sep, values = text.partition("=")
        key = key.strip()
        items = [v.strip() for v in values.split(",")] if sep else []
        if not key or not sep or not items or any(not v for v in items):
            raise ConfigError(f"--sweep {text!r}: write KEY=V1,V2,… (e.g. batch_size=32,128,512)")
        if key in NOT_SWEPT:
            raise ConfigError(f"--sweep {key}: it changes no training; there is nothing to sweep")
        if key in PARSERS and key not in NOT_SWEPT:
            try:
                sweeps.append((key, [PARSERS[key](_value(key, v)) for v in items]))
            except ValueError as err:
                raise ConfigError(f"--sweep {key}: {err}") from None
            continue
        backend, _, option = key.rpartition(".")
        if backend in option_names and option in option_names[backend]:
            sweeps.append((key, items))
            continue
        known = [f"{b}.{o}" for b, opts in option_names.items() for o in opts]
        raise ConfigError(
            f"--sweep {key}: no chosen backend has this option, and no scenario field is called "
            f"so; sweep a field ({', '.join(k for k in KEYS if k not in NOT_SWEPT)}) or an option "
            f"({', '.join(known) or 'the chosen backends have none'})"
        )
    if len({k for k, _ in sweeps}) != len(sweeps):
        raise ConfigError("--sweep: each key once (give all its values in one --sweep)")
    return sweeps


def _value(key: str, text: str) -> Any:
    """A sweep value's text as its field's TOML value would be."""
    if key == "hidden":
        try:
            return [int(w) for w in text.split("x")]
        except ValueError:
            raise ValueError(f"takes widths like 512 or 512x512, got {text!r}") from None
    if key == "batch_size" and text == "full":
        return "full"
    if key in ("init", "optimizer", "dtype"):
        return text
    if key == "shuffle":
        if text.lower() not in ("true", "false"):
            raise ValueError(f"takes true or false, got {text!r}")
        return text.lower() == "true"
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"takes a number, got {text!r}") from None
    return int(number) if number.is_integer() and key not in PARSERS_FLOAT else number


PARSERS_FLOAT = ("learning_rate", "beta_1", "beta_2", "rho", "epsilon", "dropout")


def expand(scenario: Scenario, sweeps: list[tuple[str, list]]) -> list[Scenario]:
    """One scenario per point of the sweeps' product (the scenario itself without sweeps)."""
    if not sweeps:
        return [scenario]
    points = []
    for values in itertools.product(*(v for _, v in sweeps)):
        point = list(zip((k for k, _ in sweeps), values, strict=True))
        fields = {k: v for k, v in point if "." not in k}
        label = ",".join(f"{k}={_shown(v)}" for k, v in point)
        try:
            points.append(
                replace(
                    scenario,
                    name=f"{scenario.name}[{label}]",
                    summary=f"{scenario.summary}; {label}",
                    sweep=tuple((k, _shown(v)) for k, v in point),
                    **fields,
                )
            )
        except ConfigError as err:
            raise ConfigError(f"--sweep {label}: {str(err).split(': ', 1)[-1]}") from None
    return points
