"""Make mlpbench runnable from this checkout on a machine with no network and no pip install.

    python scripts/offline_site.py SITE [--wheels DIR]

Writes into the folder SITE (to be put on PYTHONPATH beside the checkout):
- mlpbench's distribution metadata with the entry points declared in pyproject.toml, unless an
  installed mlpbench already declares them: the backends are found through entry points
  (``bench.registry``), which is all ``pip install -e .`` would add for a checkout on PYTHONPATH;
- every wheel in DIR (e.g. Keras and its small dependencies, fetched beforehand by
  ``scripts/fetch-gpu-wheels.sh``) unpacked as pip would install it, unless its distribution is
  installed already at the same or a newer version (SITE comes first on PYTHONPATH, so an
  unpacked wheel takes the place of an older installed one: e.g. a pytest-benchmark that runs
  under the machine's pytest).

Then checks that every package the harness needs is importable and exits 2 with one line naming
the missing ones if not. Prints one line per thing done.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import itertools
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Import names the harness and its test suite need (pyproject's dependencies + test tools).
NEEDED = ("numpy", "pandas", "tabulate", "threadpoolctl", "scipy", "pytest", "pytest_benchmark")


def write_entry_points(site: Path) -> str:
    """mlpbench's dist-info in ``site``, entry points copied from pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    info = site / f"mlpbench-{project['version']}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: mlpbench\nVersion: {project['version']}\n",
        encoding="utf-8",
    )
    lines = [
        f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in eps.items())
        for group, eps in project["entry-points"].items()
    ]
    (info / "entry_points.txt").write_text("\n".join(lines), encoding="utf-8")
    return f"wrote {info.name} (entry points of this checkout's pyproject.toml)"


def installed(distribution: str) -> str | None:
    """The installed version of ``distribution``, or None."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def release(version: str) -> tuple[int, ...]:
    """The leading release numbers of a version ("5.3.1" → (5, 3, 1); "2.11.0+cu130" → (2, 11,
    0)), enough to order the versions of one package."""
    numbers = []
    for part in version.split("+")[0].split("."):
        digits = "".join(itertools.takewhile(str.isdigit, part))
        if not digits:
            break
        numbers.append(int(digits))
    return tuple(numbers)


def unpack_wheels(wheels: Path, site: Path) -> list[str]:
    """Unpack into ``site`` each ``*.whl`` in ``wheels`` whose distribution is not installed, or
    is installed at an older version than the wheel's."""
    done = []
    for wheel in sorted(wheels.glob("*.whl")):
        distribution, version = wheel.name.split("-")[:2]
        have = installed(distribution)
        if have is not None and release(have) >= release(version):
            done.append(f"kept the installed {distribution} {have} ({wheel.name} not needed)")
            continue
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(site)
        done.append(f"unpacked {wheel.name}" + (f" (over the installed {have})" if have else ""))
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="folder to write (put it on PYTHONPATH)")
    parser.add_argument("--wheels", type=Path, help="folder of wheels to unpack when missing")
    args = parser.parse_args(argv)
    args.site.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(args.site))
    if args.wheels is not None and args.wheels.is_dir():
        for line in unpack_wheels(args.wheels, args.site):
            print(f"offline_site: {line}")
    if importlib.metadata.entry_points(group="mlpbench.backends"):
        print("offline_site: mlpbench's backends are declared by an installed distribution")
    else:
        print(f"offline_site: {write_entry_points(args.site)}")
    missing = [name for name in NEEDED if importlib.util.find_spec(name) is None]
    if missing:
        print(
            f"offline_site: missing {', '.join(missing)}: install them (pip install -e '.[test]' "
            "where there is a network), or bring their wheels in --wheels",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
