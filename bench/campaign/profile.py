"""Tuned profiles: the speed options ``mlpbench tune`` found fastest, per backend, as TOML.

    # mlpbench tune -b keras -s baseline on MACHINE, DATE: ×SPEEDUP [LOW, HIGH] over shipped
    [keras]
    jit_compile = "true"
    steps_per_execution = "64"

The comment above each table is the measurement that chose it (``mlpbench tune`` writes it).
``mlpbench run --profile FILE`` applies each table's options to its backend (``-O`` still
overrides one) and records those cells as the tuned division; a backend the profile does not name
runs as shipped. A profile naming a backend that is not installed, or an option the backend does
not have, is one ``ConfigError`` line.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from bench import registry
from bench.errors import ConfigError


def load_profile(path: Path) -> dict[str, dict[str, str]]:
    """backend → {option: value as text}, checked against the installed backends' options."""
    try:
        tables = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"profile {path}: {err.strerror or err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"profile {path}: not valid TOML ({err})") from None
    profile: dict[str, dict[str, str]] = {}
    for backend, options in tables.items():
        if backend not in registry.names():
            raise ConfigError(
                f"profile {path}: [{backend}] is not an installed backend "
                f"({', '.join(registry.names())})"
            )
        if not isinstance(options, dict):
            raise ConfigError(f"profile {path}: [{backend}] must be a table of options")
        known = registry.options_of(backend)
        for option, value in options.items():
            if option not in known:
                raise ConfigError(
                    f"profile {path} [{backend}] {option}: {backend} has no such option; its "
                    f"options: {', '.join(known) or 'none'}"
                )
            if not isinstance(value, str | int | bool):
                raise ConfigError(
                    f"profile {path} [{backend}] {option}: takes a string, got {value!r}"
                )
        profile[backend] = {
            k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in options.items()
        }
    return profile


def write_profile(path: Path, backend: str, options: dict[str, str], comment: str) -> Path:
    """Write (or replace) ``backend``'s table in the profile at ``path``, keeping the others."""
    kept = load_profile(path) if path.exists() else {}
    kept[backend] = options
    notes = _comments(path) if path.exists() else {}
    notes[backend] = comment
    lines = []
    for name, opts in kept.items():
        if notes.get(name):
            lines.append(f"# {notes[name]}")
        lines.append(f"[{name}]")
        lines += [f'{k} = "{v}"' for k, v in opts.items()]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _comments(path: Path) -> dict[str, str]:
    """The comment line above each table (the measurement that chose it)."""
    notes, last = {}, ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            last = line[2:]
        elif line.startswith("[") and line.endswith("]"):
            notes[line[1:-1]] = last
            last = ""
    return notes
