"""The fidelity table: each backend's harness warm epoch beside its framework's plain script.

Reads the JSON ``mlpbench fidelity`` writes (``bench.campaign.fidelity``) and nothing else; the
ratio, its interval and the verdict come from the file as measured.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pandas as pd

from bench.report.formatting import format_seconds, ratio_text, to_markdown

TITLE = "# Fidelity: the harness against each framework's own idiom"


def fidelity_frame(doc: dict[str, Any]) -> pd.DataFrame:
    """One row per backend: both sides' mean round speed (median warm epoch), harness / plain
    with its interval, rounds, both sides' final test accuracy, the verdict."""
    rows = {}
    for entry in doc["backends"]:
        rounds = entry["rounds"]

        def mean(side: str, key: str, rounds: list = rounds) -> float:
            return statistics.fmean(r[side][key] for r in rounds)

        r = entry["ratio"]
        options = ", ".join(entry.get("harness_options", ()))
        rows[entry["backend"] + (f" ({options})" if options else "")] = {
            "harness s/epoch": format_seconds(mean("harness", "median")),
            "plain s/epoch": format_seconds(mean("plain", "median")),
            "harness / plain": ratio_text(r["value"], r["low"], r["high"]),
            "rounds": str(len(rounds)),
            "accuracy harness / plain": f"{100 * mean('harness', 'accuracy'):.2f} / "
            f"{100 * mean('plain', 'accuracy'):.2f} %",
            "verdict": entry["verdict"],
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def fidelity_markdown(doc: dict[str, Any]) -> str:
    """The table with what it measured and how, for ``fidelity.md``."""
    entries = doc["backends"]
    first = entries[0] if entries else {}
    confidence = 100 * first.get("confidence", 0.95)
    band = 100 * first.get("band", 0.05)
    scripts = "; ".join(
        dict.fromkeys(
            f"{e['backend']}: `python -m {e['rounds'][0]['plain']['settings']['script']}`"
            for e in entries
        )
    )
    return "\n".join(
        [
            TITLE,
            "",
            f"Machine `{doc.get('machine_id', '?')}`, {doc.get('date', '?')}; "
            f"scenario `{first.get('scenario', 'baseline')}`, {first.get('epochs', '?')} epochs "
            f"per process (the first one cold, not compared).",
            "",
            _design(first, confidence, band),
            "",
            to_markdown(fidelity_frame(doc), align="left") if entries else "(no backend checked)",
            "",
            f"Plain scripts: {scripts}.",
            "",
        ]
    )


def write_fidelity(json_path: Path) -> Path:
    """``fidelity.md`` beside the fidelity JSON; its path."""
    doc = json.loads(Path(json_path).read_text(encoding="utf-8"))
    out = Path(json_path).with_suffix(".md")
    out.write_text(fidelity_markdown(doc), encoding="utf-8")
    return out


def _design(entry: dict[str, Any], confidence: float, band: float) -> str:
    """How the file's rounds were measured, in words (files made before the lockstep design
    ran each side as a whole process, the order alternating round by round)."""
    if entry.get("design") == "lockstep":
        how = (
            "Per round, the backend's cell as `mlpbench run` trains it (a harness worker) and "
            "its plain script (the same recipe as the framework's users write it, run with "
            "`--lockstep`) start side by side in fresh processes, then train their epochs in "
            "turn, a fresh random order each epoch, seconds apart. harness / plain: each "
            "round's Hodges–Lehmann location of its per-epoch log ratios, the geometric mean "
            f"over rounds with its {confidence:.0f} % interval (the round a random effect)"
        )
    else:
        how = (
            "Per round, the backend's cell as `mlpbench run` trains it and its plain script (the "
            "same recipe as the framework's users write it) each run in a fresh process, their "
            "order alternating round by round. harness / plain is the ratio of their median "
            f"warm epochs, paired by round, with its {confidence:.0f} % interval"
        )
    return (
        f"{how}; below 1 the harness is cheaper than users' code. The check is two-sided: "
        f"±{band:.0f} %."
    )
