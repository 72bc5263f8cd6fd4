"""The child side of a backend probe: ``python -m bench.cell.probe NAME [--facts]``.

Run by ``bench.registry.probe`` in a fresh process, so that the parent (``mlpbench list``, the
parent of ``mlpbench run``, the machine facts) never imports a framework: two frameworks in one
process can crash it (TensorFlow beside PyTorch's triton: a segmentation fault). This process
imports only backend NAME's framework: it asks the backend whether it can run here, makes an
instance to learn its device (some frameworks only know it once loaded) and, with ``--facts``,
its ``machine_facts()``.

Options: ``--tf32`` and ``-O NAME=VALUE`` make the instance as a run would (a bad option is
``option_error``). Prints one JSON line on stdout, last: ``{"reason": str | null, "device": str |
null, "option_error": str | null, "facts": {...}}``. Anything a framework prints goes to stderr.
Exit 0 whatever the answer; a crash is the parent's to name.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import Any

from backends.api import RunOptions
from bench import registry
from bench.errors import ConfigError


def answer(name: str, facts: bool, options: RunOptions) -> dict[str, Any]:
    """What backend ``name`` (made with ``options``) says of this machine, asked here."""
    reason = registry.unavailable_reason(name)
    device = option_error = None
    if reason is None:
        try:
            device = registry.create(name, options).device
        except ConfigError as err:  # an option it does not have, or a bad value
            option_error = str(err)
        except Exception as err:  # a backend that cannot even start is unavailable here
            reason = f"it failed to start ({registry.one_line(err)})"
    given: dict[str, Any] = {}
    if facts and reason is None:
        cls = registry.backend_class(name)
        if hasattr(cls, "machine_facts"):
            try:
                given = cls.machine_facts()
            except Exception as err:  # a broken driver must not stop a CPU benchmark
                given = {f"{name}_error": registry.one_line(err)}
    from bench.cell.threads import process_threads

    return {
        "reason": reason,
        "device": device,
        "option_error": option_error,
        "facts": given,
        "threads": process_threads(),  # this process's threads once the framework loaded
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("--facts", action="store_true", help="also the backend's machine facts")
    parser.add_argument("--tf32", action="store_true", help="RunOptions.tf32")
    parser.add_argument("-O", dest="option", action="append", default=[], help="NAME=VALUE")
    args = parser.parse_args(argv)
    options = RunOptions(args.tf32, dict(o.split("=", 1) for o in args.option))
    with contextlib.redirect_stdout(sys.stderr):  # a framework's chatter must not hide the line
        result = answer(args.name, args.facts, options)
    print(json.dumps(result, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
