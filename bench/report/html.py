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

from bench.report.caveats import caveats
from bench.report.facts import machine_facts_table
from bench.report.formatting import format_seconds, ratio_text
from bench.report.ladder import ladder_frame
from bench.report.questions import LEGEND as QUESTIONS_LEGEND
from bench.report.questions import questions_table
from bench.report.scaling import points_frame, scaling_rows
from bench.results.read import Collection, as_dict

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
        "numpy's time / this one, paired by seed, [95 % interval]; tuned rows: numpy (tuned)'s",
        lambda r: _ratio(r),
        lambda r: r["relative_to_numpy"],
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
    collection: Collection, runs: pd.DataFrame, cells: pd.DataFrame, out_dir: Path
) -> Path:
    """Write ``out_dir/index.html``; PageUnavailable when a library is missing."""
    try:
        import jinja2
        from bokeh.embed import components
        from bokeh.resources import Resources
    except ImportError:
        raise PageUnavailable(MISSING) from None
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    plots = _plots(runs, cells, collection.machines)
    script, divs = components([p for _, p in plots]) if plots else ("", [])
    machines = [_machine(m, runs, cells, collection.machines) for m in cells["machine_id"].unique()]
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
        "scaling_legend": "Fit of step time = fixed cost + FLOPs / rate per backend; crossover: "
        "where its step time crosses NumPy's (see results.md).",
        "plots": [{"title": t, "div": d} for (t, _), d in zip(plots, divs, strict=True)],
        "plots_script": script,
        "bokeh_js": Resources(mode="inline", components=["bokeh"]).render_js() if plots else "",
        "caveats": caveats(runs, collection),
        "facts": [
            [fact, *row] for fact, row in zip(facts.index, facts.to_numpy().tolist(), strict=True)
        ],
    }
    html = environment.get_template("page.html.j2").render(context)
    path = Path(out_dir) / "index.html"
    path.write_text(html, encoding="utf-8")
    return path


def _paths(collection: Collection) -> list[str]:
    return [c.source for c in collection.cells]


def _source(path: str, out_dir: Path) -> dict[str, str]:
    href = os.path.relpath(Path(path).resolve(), Path(out_dir).resolve())
    return {"name": Path(path).name, "href": href.replace(os.sep, "/")}


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "x"


def _machine(machine: str, runs: pd.DataFrame, cells: pd.DataFrame, facts: dict) -> dict[str, Any]:
    mine = cells[cells["machine_id"] == machine]
    my_runs = runs[runs["machine_id"] == machine]
    scenarios = []
    for scenario, rows in mine.groupby("scenario", sort=False):
        anchor = f"{slug(machine)}-{slug(scenario)}"
        scenarios.append(
            {
                "name": scenario,
                "anchor": anchor,
                "summary": _summary(rows),
                "rows": [_row(r, anchor) for _, r in rows.iterrows()],
            }
        )
    verdicts = []
    for _, q in questions_table(my_runs).iterrows():
        scenario = _scenario_of(str(q["question"]), list(mine["scenario"].unique()))
        verdicts.append(
            {
                **{k: str(q[k]) for k in ("question", "backend", "n", "difference", "verdict")},
                "scenario": scenario or "",
                "anchor": f"{slug(machine)}-{slug(scenario)}-{slug(str(q['backend']))}"
                if scenario
                else f"machine-{slug(machine)}",
            }
        )
    unstable = [
        f"{r.backend} × {r.scenario}: {r.unstable}"
        for r in mine.itertuples()
        if isinstance(r.unstable, str) and r.unstable
    ]
    return {
        "id": machine,
        "slug": slug(machine),
        "verdicts": verdicts,
        "scenarios": scenarios,
        "unstable": unstable,
        "scaling": _scaling(my_runs, facts),
        "settings": _settings(mine),
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


def _row(r: pd.Series, anchor: str) -> dict[str, Any]:
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


def _scaling(runs: pd.DataFrame, machines: dict) -> list[dict[str, Any]]:
    rows = scaling_rows(points_frame(runs, machines))
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
        groups.append(
            {
                "title": f"{origin}, sweeping {key}" + (f" ({others})" if others else ""),
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


# --- the plots -----------------------------------------------------------------------------------


def _plots(runs: pd.DataFrame, cells: pd.DataFrame, machines: dict) -> list[tuple[str, Any]]:
    """(title, Bokeh figure) for: accuracy against time and epoch times per machine ×
    scenario, the gap ladder, and the scaling curves where present."""
    from bokeh.palettes import Category10_10

    plots = []
    ran = runs[runs["status"] != "skipped"]
    backends = list(cells["backend"].unique())
    colour = {b: Category10_10[i % 10] for i, b in enumerate(backends)}
    for (machine, scenario), group in ran.groupby(["machine_id", "scenario"], sort=False):
        fig = _accuracy_against_time(group, scenario, colour)
        plots.append((f"Accuracy against time: {scenario} on {machine}", fig))
        plots.append((f"Warm epoch times: {scenario} on {machine}", _epoch_times(group, colour)))
    for machine, group in ran.groupby("machine_id", sort=False):
        ladder = ladder_frame(group)
        if not ladder.empty:
            plots.append((f"The gap ladder on {machine}", _ladder(ladder, colour)))
    points = points_frame(runs, machines)
    for (machine, origin, key, others), group in (
        points.groupby(["machine_id", "origin", "key", "others"], sort=False)
        if not points.empty
        else []
    ):
        plots.append(
            (
                f"Seconds per step: {origin}, {key} {others} on {machine}".strip(),
                _scaling_plot(group, key, colour),
            )
        )
    return plots


def _accuracy_against_time(group: pd.DataFrame, scenario: str, colour: dict) -> Any:
    """One machine × scenario: every epoch's test accuracy at its cumulative training seconds,
    a point per epoch and seed, coloured by backend, with a hover naming the point."""
    from bokeh.models import ColumnDataSource
    from bokeh.plotting import figure

    fig = figure(
        height=260,
        sizing_mode="stretch_width",
        x_axis_label="training seconds",
        y_axis_label="test accuracy %",
        tools="pan,wheel_zoom,reset,save",
    )
    for backend, rows in group.groupby("backend", sort=False):
        data = {k: [] for k in ("t", "acc", "backend", "scenario", "seed", "epoch")}
        for r in rows.itertuples():
            elapsed = 0.0
            for h in r.history:
                elapsed += float(h.get("seconds", 0))
                data["t"].append(elapsed)
                data["acc"].append(100 * float(h.get("test_accuracy", math.nan)))
                data["backend"].append(str(backend))
                data["scenario"].append(str(scenario))
                data["seed"].append(str(r.seed))
                data["epoch"].append(int(h.get("epoch", 0)))
        fig.scatter(
            "t",
            "acc",
            source=ColumnDataSource(data),
            color=colour[backend],
            legend_label=str(backend),
            size=6,
        )
    fig.add_tools(
        _hover(("epoch", "@epoch"), ("seconds", "@t{0.000}"), ("accuracy %", "@acc{0.00}"))
    )
    fig.legend.location = "bottom_right"
    return fig


def _hover(*rest: tuple[str, str]) -> Any:
    """A hover naming a point's backend, scenario and seed, then ``rest`` (label, field)."""
    from bokeh.models import HoverTool

    return HoverTool(
        tooltips=[("backend", "@backend"), ("scenario", "@scenario"), ("seed", "@seed"), *rest]
    )


def _epoch_times(group: pd.DataFrame, colour: dict) -> Any:
    from bokeh.models import ColumnDataSource
    from bokeh.plotting import figure

    names = [str(b) for b in group["backend"].unique()]
    fig = figure(
        height=220,
        sizing_mode="stretch_width",
        x_range=names,
        y_axis_label="seconds per warm epoch",
        tools="pan,wheel_zoom,reset,save",
    )
    for backend, rows in group.groupby("backend", sort=False):
        data = {"backend": [], "seconds": [], "seed": [], "scenario": []}
        for r in rows.itertuples():
            for s in r.warm_seconds or []:
                data["backend"].append(str(backend))
                data["seconds"].append(float(s))
                data["seed"].append(str(r.seed))
                data["scenario"].append(str(r.scenario))
        fig.scatter(
            "backend",
            "seconds",
            source=ColumnDataSource(data),
            color=colour[backend],
            size=6,
            alpha=0.7,
        )
    fig.add_tools(_hover(("seconds", "@seconds{0.0000}")))
    return fig


def _ladder(ladder: pd.DataFrame, colour: dict) -> Any:
    from bokeh.models import ColumnDataSource
    from bokeh.plotting import figure

    fig = figure(
        height=260,
        sizing_mode="stretch_width",
        x_axis_label="rung",
        y_axis_label="test accuracy %",
        tools="pan,wheel_zoom,reset,save",
    )
    for backend, rows in ladder.groupby("backend", sort=False):
        data = {
            "rung": [int(v) for v in rows["rung"]],
            "acc": [float(v) for v in rows["accuracy_pct"]],
            "backend": [str(backend)] * len(rows),
            "scenario": [str(v) for v in rows["scenario"]],
            "seed": ["mean over seeds"] * len(rows),
        }
        source = ColumnDataSource(data)
        fig.line(
            "rung",
            "acc",
            source=source,
            color=colour.get(backend, "black"),
            legend_label=str(backend),
        )
        fig.scatter("rung", "acc", source=source, color=colour.get(backend, "black"), size=7)
    fig.add_tools(_hover(("accuracy %", "@acc{0.00}")))
    fig.legend.location = "bottom_right"
    return fig


def _scaling_plot(group: pd.DataFrame, key: str, colour: dict) -> Any:
    from bokeh.models import ColumnDataSource
    from bokeh.plotting import figure

    fig = figure(
        height=260,
        sizing_mode="stretch_width",
        x_axis_type="log",
        y_axis_type="log",
        x_axis_label=key,
        y_axis_label="µs per step",
        tools="pan,wheel_zoom,reset,save",
    )
    for backend, rows in group.groupby("backend", sort=False):
        data = {
            "x": [float(v) for v in rows["x"]],
            "us": [1e6 * float(v) for v in rows["step_s"]],
            "backend": [str(backend)] * len(rows),
            "scenario": [str(v) for v in rows["origin"]],
            "seed": [str(v) for v in rows["seed"]],
        }
        fig.scatter(
            "x",
            "us",
            source=ColumnDataSource(data),
            color=colour.get(backend, "black"),
            legend_label=str(backend),
            size=6,
        )
    fig.add_tools(_hover((key, "@x"), ("µs per step", "@us{0.0}")))
    fig.legend.location = "top_left"
    return fig
