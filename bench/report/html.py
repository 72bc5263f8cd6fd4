"""index.html beside results.md: one self-contained page per results folder (the landing page,
results/index.html, is ``bench.report.landing``'s; it shares this module's templates).

Made from the same frames as the markdown (the runs and cells frames, the questions, the ladder,
the scaling rows), never recomputing a statistic of its own. Templating: Jinja2 with autoescape,
so every string from a results file (names, settings, facts, error lines) is text, never markup.
Charts: Bokeh, its JavaScript inlined (the ``bokeh`` component only: the page opens from
``file://`` and asks no network for anything); every point's hover names its backend, scenario,
seed and value. Sorting and filtering: a few lines of script written for the page. Both libraries
come with the ``plots`` extra; without them the page is skipped with one line.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
from pathlib import Path
from typing import Any

import pandas as pd

from bench.report.answer import answer_lines
from bench.report.caveats import caveats
from bench.report.charts import (
    DIVISIONS,
    accuracy_against_time,
    epoch_times,
    forest,
    palette,
    pareto,
    scaling_plot,
)
from bench.report.charts import ladder as ladder_chart
from bench.report.facts import machine_facts_table
from bench.report.formatting import format_seconds, ratio_text
from bench.report.frame import division_of
from bench.report.ladder import ladder_frame
from bench.report.pareto import LEGEND as PARETO_LEGEND
from bench.report.pareto import front_lines, pareto_frame
from bench.report.questions import LEGEND as QUESTIONS_LEGEND
from bench.report.questions import questions_table
from bench.report.scaling import points_frame, scaling_rows
from bench.report.tta import LEGEND as TTA_LEGEND
from bench.results.read import Collection, as_dict
from bench.stats import REFERENCE, REFERENCE_RULE, TUNED_REFERENCE

MISSING = "index.html skipped: jinja2 and bokeh are needed (pip install 'mlpbench[plots]')"
TEMPLATES = Path(__file__).parent / "templates"

#: The per-scenario table's columns: (label, title, text formatter, sort key).
COLUMNS = [
    ("backend", "backend (division)", lambda r: r["backend"], lambda r: r["backend"]),
    ("seeds", "seeds run", lambda r: str(r["n_seeds"]), lambda r: r["n_seeds"]),
    (
        "s/epoch",
        "median warm epoch, mean over seeds ± 95 % interval; ⚠ unstable",
        lambda r: _speed(r),
        lambda r: r["median_s_per_epoch"],
    ),
    (
        "vs numpy",
        REFERENCE_RULE,
        lambda r: _ratio(r),
        lambda r: r["relative_to_numpy"],
    ),
    (
        "to target",
        "time to the scenario's target accuracy (training clock; see the time-to-accuracy legend)",
        lambda r: r["tta_text"],
        lambda r: r["tta_s"],
    ),
    (
        "accuracy %",
        "final test accuracy, mean ± 95 % interval",
        lambda r: _accuracy(r),
        lambda r: r["final_test_accuracy_pct"],
    ),
    (
        "GFLOP/s",
        "achieved, matrix products only",
        lambda r: _num(r["gflops"], "{:.1f}"),
        lambda r: r["gflops"],
    ),
    (
        "% peak",
        "of the GEMM peak of the device it ran on",
        lambda r: _num(r["gemm_peak_pct"], "{:.0f} %"),
        lambda r: r["gemm_peak_pct"],
    ),
    (
        "memory MiB",
        "host peak RSS; GPU where measured (what it measures)",
        lambda r: _memory(r),
        lambda r: r["host_peak_mib"],
    ),
    (
        "epoch 1 s",
        "the cold epoch",
        lambda r: format_seconds(r["epoch1_s"]),
        lambda r: r["epoch1_s"],
    ),
]


class PageUnavailable(Exception):
    """jinja2 or bokeh cannot be imported; the message is the one-line problem to report."""


def write_page(
    collection: Collection,
    runs: pd.DataFrame,
    cells: pd.DataFrame,
    times: pd.DataFrame,
    out_dir: Path,
) -> Path:
    """Write ``out_dir/index.html`` (``times``: ``tta.tta_frame`` of ``runs``);
    PageUnavailable when a library is missing."""
    try:
        import jinja2
        from bokeh.embed import components
        from bokeh.resources import Resources
    except ImportError:
        raise PageUnavailable(MISSING) from None
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    figures = Figures(palette(list(cells["backend"].unique())))
    machines = [
        _machine(m, runs, cells, times, collection.machines, figures)
        for m in cells["machine_id"].unique()
    ]
    script, divs = components(figures.all) if figures.all else ("", [])
    figures.fill(divs)
    facts = machine_facts_table(collection.machines)
    context = {
        "title": ", ".join(cells["machine_id"].unique()),
        "made": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "sources": [_source(s, out_dir) for s in sorted({str(p) for p in _paths(collection)})],
        "machines": machines,
        "scenario_names": list(cells["scenario"].unique()),
        "backend_names": list(cells["backend"].unique()),
        "seed_counts": sorted({int(n) for n in cells["n_seeds"].fillna(0)} | {0}),
        "columns": [{"label": c[0], "title": c[1]} for c in COLUMNS],
        "questions_legend": QUESTIONS_LEGEND,
        "reference_rule": REFERENCE_RULE,
        "tta_legend": TTA_LEGEND,
        "pareto_legend": PARETO_LEGEND,
        "scaling_legend": "Fit of step time = fixed cost + FLOPs / rate per backend; crossover: "
        "where its step time crosses NumPy's (see results.md).",
        "plots_script": script,
        "bokeh_js": Resources(mode="inline", components=["bokeh"]).render_js()
        if figures.all
        else "",
        "caveats": caveats(runs, collection),
        "facts": [
            [fact, *row] for fact, row in zip(facts.index, facts.to_numpy().tolist(), strict=True)
        ],
    }
    html = environment.get_template("page.html.j2").render(context)
    path = Path(out_dir) / "index.html"
    path.write_text(html, encoding="utf-8")
    return path


class Figures:
    """The page's Bokeh figures in the order they are embedded, and the slots of the page
    context that show them (``{"title", "div"}``; ``fill`` puts each figure's div in)."""

    def __init__(self, colour: dict[str, str]) -> None:
        self.colour = colour
        self.all: list[Any] = []
        self._slots: list[dict[str, Any]] = []

    def add(self, title: str, figure: Any) -> dict[str, Any]:
        slot: dict[str, Any] = {"title": title, "div": ""}
        self._slots.append(slot)
        self.all.append(figure)
        return slot

    def fill(self, divs: list[str]) -> None:
        for slot, div in zip(self._slots, divs, strict=True):
            slot["div"] = div


def _paths(collection: Collection) -> list[str]:
    return [c.source for c in collection.cells]


def _source(path: str, out_dir: Path) -> dict[str, str]:
    href = os.path.relpath(Path(path).resolve(), Path(out_dir).resolve())
    return {"name": Path(path).name, "href": href.replace(os.sep, "/")}


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "x"


def _machine(
    machine: str,
    runs: pd.DataFrame,
    cells: pd.DataFrame,
    times: pd.DataFrame,
    facts: dict,
    figures: Figures,
) -> dict[str, Any]:
    """One machine's part of the page: the answer (two forest plots and a line per scenario),
    then per scenario its table beside its charts, the folded verdicts, the sweeps."""
    mine = cells[cells["machine_id"] == machine]
    my_runs = runs[runs["machine_id"] == machine]
    my_times = times[times["machine_id"] == machine]
    ran = my_runs[my_runs["status"] != "skipped"]
    front = pareto_frame(my_runs, mine, my_times)
    answer = _answer(machine, my_runs, mine, my_times, figures)
    scenarios = []
    for scenario, rows in mine.groupby("scenario", sort=False):
        anchor = f"{slug(machine)}-{slug(scenario)}"
        group = ran[ran["scenario"] == scenario]
        points = front[front["scenario"] == scenario]
        charts = []
        if not group.empty:
            charts.append(
                figures.add(
                    "Accuracy against time", accuracy_against_time(group, scenario, figures.colour)
                )
            )
            charts.append(figures.add("Warm epoch times", epoch_times(group, figures.colour)))
        if points["seconds"].notna().sum() >= 2:
            charts.append(
                figures.add("Accuracy against time (Pareto)", pareto(points, figures.colour))
            )
        scenarios.append(
            {
                "name": scenario,
                "anchor": anchor,
                "summary": _summary(rows),
                "rows": [_row(r, anchor, my_times) for _, r in rows.iterrows()],
                "front": front_lines(points)[0] if not points.empty else "",
                "charts": charts,
            }
        )
    ladder = ladder_frame(ran)
    unstable = [
        f"{r.backend} × {r.scenario}: {r.unstable}"
        for r in mine.itertuples()
        if isinstance(r.unstable, str) and r.unstable
    ]
    return {
        "id": machine,
        "slug": slug(machine),
        "answer": answer,
        "verdicts": _verdict_groups(machine, my_runs, list(mine["scenario"].unique())),
        "scenarios": scenarios,
        "ladder": figures.add("The gap ladder", ladder_chart(ladder, figures.colour))
        if not ladder.empty
        else None,
        "unstable": unstable,
        "scaling": _scaling(my_runs, facts, figures),
        "settings": _settings(mine),
    }


#: The answer's two forest plots, side by side in the first screen (pixels).
FOREST_WIDTH, FOREST_HEIGHT = 565, 470


def _answer(
    machine: str, runs: pd.DataFrame, cells: pd.DataFrame, times: pd.DataFrame, figures: Figures
) -> dict[str, Any]:
    """The first screen: speed and time-to-accuracy ratios as forest plots, a line per
    scenario (the fastest, by how much, at what accuracy; whether the accuracies agree)."""
    speed = _forest_rows(cells, "relative_to_numpy", cells)
    tta = _forest_rows(times, "relative_to_numpy", cells)
    compared = list(dict.fromkeys(speed["scenario"]))  # where backends are compared
    unreached = [
        f"{scenario}: no backend reached {group['target_pct'].iloc[0]:g} % "
        f"(best {group['best_pct'].max():.2f} %)"
        for scenario, group in times.groupby("scenario", sort=False)
        if scenario in compared and (group["reached_seeds"] == 0).all()
    ]
    return {
        "speed": figures.add(
            "Speed: NumPy's time / this (> 1: faster)",
            forest(speed, "×, log scale", FOREST_WIDTH, FOREST_HEIGHT),
        )
        if not speed.empty
        else None,
        "tta": figures.add(
            "Time to target accuracy: NumPy's / this (> 1: sooner)",
            forest(tta, "×, log scale", FOREST_WIDTH, FOREST_HEIGHT),
        )
        if not tta.empty
        else None,
        "unreached": unreached,
        "lines": [
            line.removeprefix(f"{machine} × ")
            for line in answer_lines(runs, cells[cells["scenario"].isin(compared)])
        ],
    }


def _forest_rows(frame: pd.DataFrame, column: str, cells: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``frame`` with a ratio to another row (the reference rows left out), as
    ``charts.forest`` takes them; the hover note gives the ratio and the cell's accuracy."""
    accuracy = {
        (r.scenario, r.backend): _accuracy(pd.Series(r._asdict())) for r in cells.itertuples()
    }
    drawn = frame["backend"].map(lambda b: division_of(b) in DIVISIONS)
    shown = frame[
        frame[column].notna() & drawn & ~frame["backend"].isin([REFERENCE, TUNED_REFERENCE])
    ]
    return pd.DataFrame(
        {
            "scenario": shown["scenario"],
            "backend": shown["backend"],
            "value": shown[column],
            "low": shown["ratio_ci95_low"],
            "high": shown["ratio_ci95_high"],
            "note": [
                f"{ratio_text(v, lo, hi)}; accuracy {accuracy.get((s, b), '—')} %"
                for s, b, v, lo, hi in zip(
                    shown["scenario"],
                    shown["backend"],
                    shown[column],
                    shown["ratio_ci95_low"],
                    shown["ratio_ci95_high"],
                    strict=True,
                )
            ],
        }
    )


#: Verdicts that find no difference: the count line's numerator.
NO_DIFFERENCE = ("no difference detected", "no speed difference detected", "identical on all")


def _verdict_groups(machine: str, runs: pd.DataFrame, scenarios: list[str]) -> dict[str, Any]:
    """The questions' verdicts grouped by question, with the count line that opens them."""
    groups: dict[str, list[dict[str, str]]] = {}
    for _, q in questions_table(runs).iterrows():
        scenario = _scenario_of(str(q["question"]), scenarios)
        groups.setdefault(str(q["question"]), []).append(
            {
                **{k: str(q[k]) for k in ("question", "backend", "n", "difference", "verdict")},
                "scenario": scenario or "",
                "anchor": f"{slug(machine)}-{slug(scenario)}-{slug(str(q['backend']))}"
                if scenario
                else f"machine-{slug(machine)}",
            }
        )
    total = sum(len(rows) for rows in groups.values())
    same = sum(v["verdict"].startswith(NO_DIFFERENCE) for rows in groups.values() for v in rows)
    return {
        "count": f"{same} of {total} comparisons: no difference detected" if total else "",
        "groups": [
            {
                "question": question,
                "count": f"{sum(v['verdict'].startswith(NO_DIFFERENCE) for v in rows)} of "
                f"{len(rows)}: no difference detected",
                "scenario": rows[0]["scenario"],
                "rows": rows,
            }
            for question, rows in groups.items()
        ],
    }


def _scenario_of(question: str, names: list[str]) -> str | None:
    """The scenario a question is about: the longest name it mentions."""
    found = [n for n in names if re.search(rf"(?<![\w\[]){re.escape(n)}(?![\w\]])", question)]
    return max(found, key=len) if found else None


def _summary(rows: pd.DataFrame) -> str:
    recipe = as_dict(rows.iloc[0]["recipe"]) if "recipe" in rows else {}
    if not recipe and isinstance(rows.iloc[0].get("histories"), list):
        return ""
    return str(recipe.get("summary", ""))


def _row(r: pd.Series, anchor: str, times: pd.DataFrame) -> dict[str, Any]:
    found = times[(times["scenario"] == r["scenario"]) & (times["backend"] == r["backend"])]
    r = r.copy()
    r["tta_text"] = found["text"].iloc[0] if len(found) else "—"
    r["tta_s"] = found["training_s"].iloc[0] if len(found) else math.nan
    cells = []
    for label, _, text, key in COLUMNS:
        value = key(r)
        sort = "" if value is None or (isinstance(value, float) and math.isnan(value)) else value
        if r["status"] != "skipped" or label in ("backend", "seeds"):
            shown = text(r)
        else:
            shown = f"skipped: {r['reason']}" if label == "s/epoch" else "—"
        cells.append({"text": shown, "sort": sort})
    return {
        "anchor": f"{anchor}-{slug(str(r['backend']))}",
        "backend": r["backend"],
        "seeds": int(r["n_seeds"]) if r["n_seeds"] == r["n_seeds"] else 0,
        "unstable": r["unstable"] if isinstance(r.get("unstable"), str) else "",
        "cells": cells,
    }


def _speed(r: pd.Series) -> str:
    if r["status"] == "skipped":
        return "skipped"
    text = format_seconds(r["median_s_per_epoch"])
    low, high = r["speed_ci95_low"], r["speed_ci95_high"]
    if r["n_seeds"] >= 2 and low == low:
        text += f" ± {format_seconds((high - low) / 2)}"
    return text + (" ⚠" if isinstance(r.get("unstable"), str) and r["unstable"] else "")


def _ratio(r: pd.Series) -> str:
    return ratio_text(
        r["relative_to_numpy"],
        r.get("ratio_ci95_low", math.nan),
        r.get("ratio_ci95_high", math.nan),
    )


def _accuracy(r: pd.Series) -> str:
    text = f"{r['final_test_accuracy_pct']:.2f}"
    if r["n_seeds"] >= 2 and r["ci95_low"] == r["ci95_low"]:
        text += f" ± {(r['ci95_high'] - r['ci95_low']) / 2:.2f}"
    return text


def _memory(r: pd.Series) -> str:
    host = _num(r["host_peak_mib"], "{:,.0f}")
    gpu = r["gpu_peak_mib"]
    return host if gpu != gpu else f"{host}; GPU {gpu:,.0f} ({r.get('gpu_memory_measure')})"


def _num(value: Any, pattern: str) -> str:
    return "—" if value is None or value != value else pattern.format(value)


def _settings(cells: pd.DataFrame) -> list[dict[str, str]]:
    out = []
    for backend, rows in cells.groupby("backend", sort=False):
        settings = next((s for s in rows["settings"] if isinstance(s, dict) and s), {})
        out.append({"backend": backend, "text": json.dumps(settings, sort_keys=True, default=str)})
    return out


def _scaling(runs: pd.DataFrame, machines: dict, figures: Figures) -> list[dict[str, Any]]:
    points = points_frame(runs, machines)
    rows = scaling_rows(points)
    if rows.empty:
        return []
    groups = []
    header = [
        "backend",
        "fixed µs/step",
        "rate GFLOP/s",
        "% peak",
        "max residual",
        "crossover vs numpy",
        "regime",
    ]
    for (origin, key, others), group in rows.groupby(["origin", "key", "others"], sort=False):
        swept = points[
            (points["origin"] == origin) & (points["key"] == key) & (points["others"] == others)
        ]
        groups.append(
            {
                "title": f"{origin}, sweeping {key}" + (f" ({others})" if others else ""),
                "chart": figures.add(
                    f"Seconds per step: {origin}, {key} {others}".strip(),
                    scaling_plot(swept, key, figures.colour),
                ),
                "header": header,
                "rows": [
                    [
                        r.backend,
                        f"{r.fixed_us:,.1f}",
                        f"{r.rate_gflops:,.1f}",
                        _num(r.rate_peak_pct, "{:.0f} %"),
                        f"{r.max_residual_pct:.0f} %",
                        r.crossover_text,
                        r.regime,
                    ]
                    for r in group.itertuples()
                ],
            }
        )
    return groups
