"""The answer a run was made for, in a few lines for the end of ``mlpbench run`` and
``mlpbench table``: per machine and scenario, the fastest backend and its lead over the next
(or a tie, or that one seed cannot tell — the summary table's rule, ``tables.fastest_text``)
and its final test accuracy,
whether the backends' final accuracies agree with their reference rows (the questions' paired
verdicts), how many rounds it rests on; then the unstable speeds as one count and the page to
open. Read from the same frames as the tables, so the lines and the files agree.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.report.questions import questions_table
from bench.report.tables import fastest_text

#: Verdicts of "same accuracy as …?" that say the accuracies agree.
AGREE = ("no difference detected", "identical on all", "one seed", "the same difference")


def answer_lines(runs: pd.DataFrame, cells: pd.DataFrame) -> list[str]:
    """One line per machine × scenario (see the module's docstring)."""
    lines = []
    for machine, group in cells.groupby("machine_id", sort=False):
        machine_runs = runs[runs["machine_id"] == machine]
        questions = questions_table(machine_runs)
        for scenario, rows in group.groupby("scenario", sort=False):
            ran = rows[(rows["status"] != "skipped") & rows["median_s_per_epoch"].notna()]
            if ran.empty:
                continue
            rounds = int(ran["n_seeds"].max())
            fastest = fastest_text(ran)
            fastest = (
                f"tie for fastest: {fastest.removeprefix('tie: ')}"
                if fastest.startswith("tie: ")
                else f"fastest: {fastest}"
            )
            accuracy = ran.loc[ran["median_s_per_epoch"].idxmin(), "final_test_accuracy_pct"]
            lines.append(
                f"{machine} × {scenario} ({rounds} round{'s' * (rounds != 1)}): "
                f"{fastest}, final accuracy {accuracy:.2f} %; {_accuracies(questions, scenario)}"
            )
    return lines


def _accuracies(questions: pd.DataFrame, scenario: str) -> str:
    """'accuracies agree' or 'accuracies differ: keras (lower by 0.20 ± 0.10 pt)'."""
    if questions.empty:
        return "accuracies: nothing to pair"
    asked = questions[
        questions["question"].str.startswith("same accuracy as")
        & questions["question"].str.endswith(f" on {scenario}?")
    ]
    differ = [
        f"{r.backend} ({r.verdict})" for r in asked.itertuples() if not r.verdict.startswith(AGREE)
    ]
    if asked.empty:
        return "accuracies: one backend, nothing to compare"
    return f"accuracies differ: {', '.join(differ)}" if differ else "accuracies agree"


def closing_lines(answer: list[str], unstable: list[str], page: Path | None) -> list[str]:
    """The answer, then the unstable speeds as one line, then the page's path."""
    lines = [f"mlpbench: {line}" for line in answer]
    if unstable:
        lines.append(
            f"mlpbench: {len(unstable)} unstable speed{'s' * (len(unstable) != 1)} (⚠): why, per "
            'cell, under "Unstable speeds" in results.md'
        )
    if page is not None:
        lines.append(f"mlpbench: open {page}")
    return lines
