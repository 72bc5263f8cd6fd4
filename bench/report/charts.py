"""The page's charts: Bokeh figures drawn from the frames the tables use, never a statistic of
their own. Every point's hover names its backend, scenario, seed (or what it is over) and value.
Bokeh comes with the ``plots`` extra; the caller (``bench.report.html``) checks it is there.

- ``forest``: ratios to the reference row with their intervals on a log axis, a row per scenario
  and backend, shipped and tuned divisions side by side (circle / diamond): the page's answer.
- ``pareto``: one scenario's final accuracy against time, both intervals, the front named.
- ``accuracy_against_time``, ``epoch_times``, ``ladder``, ``scaling_plot``: a scenario's, the
  gap ladder's and a sweep's detail, beside the tables they summarise.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from bench.report.frame import base_of, division_of

#: How each division is drawn in a forest plot: (offset within its row, marker, colour).
DIVISIONS = {"shipped": (-0.18, "circle", "#1f5fa8"), "tuned": (0.18, "diamond", "#c2410c")}


def palette(backends: list[str]) -> dict[str, str]:
    """backend → its colour, the same on every chart of a page; a tuned row (``jax (tuned)``)
    shares its backend's colour (the divisions differ by marker)."""
    from bokeh.palettes import Category10_10

    bases = list(dict.fromkeys(base_of(b) for b in backends))
    colour = {b: Category10_10[i % 10] for i, b in enumerate(bases)}
    return {**colour, **{str(b): colour[base_of(b)] for b in backends}}


def detail_figure(**axes: Any) -> Any:
    """A detail chart's figure, the same frame for every one: 260 px tall unless ``height`` is
    given, the page's width, pan / zoom / reset / save; ``axes``: its axis labels, types, ranges."""
    from bokeh.plotting import figure

    return figure(
        **{"height": 260, **axes},
        sizing_mode="stretch_width",
        tools="pan,wheel_zoom,reset,save",
    )


def forest(rows: pd.DataFrame, x_label: str, width: int, height: int) -> Any:
    """``rows``: scenario, backend (a tuned one named ``backend (tuned)``), value, low, high,
    note (hover text). One factor per scenario × base backend, top to bottom in ``rows``' order;
    a vertical line at ×1."""
    from bokeh.models import ColumnDataSource, FactorRange, HoverTool, Span
    from bokeh.plotting import figure
    from bokeh.transform import dodge

    rows = rows[[division_of(b) in DIVISIONS for b in rows["backend"]]]
    base = [base_of(b) for b in rows["backend"]]
    factors = list(dict.fromkeys(zip(rows["scenario"].astype(str), base, strict=True)))
    fig = figure(
        y_range=FactorRange(*reversed(factors)),
        x_axis_type="log",
        x_axis_label=x_label,
        width=width,
        height=height,
        tools="save",
        toolbar_location=None,
    )
    for division, (offset, marker, colour) in DIVISIONS.items():
        mine = rows[[division_of(b) == division for b in rows["backend"]]]
        if mine.empty:
            continue
        source = ColumnDataSource(
            {
                "y": [
                    (str(s), base_of(b))
                    for s, b in zip(mine["scenario"], mine["backend"], strict=True)
                ],
                "value": [float(v) for v in mine["value"]],
                "low": [float(v) for v in mine["low"]],
                "high": [float(v) for v in mine["high"]],
                "backend": [str(b) for b in mine["backend"]],
                "scenario": [str(s) for s in mine["scenario"]],
                "seed": ["over rounds"] * len(mine),
                "note": [str(n) for n in mine["note"]],
            }
        )
        y = dodge("y", offset, range=fig.y_range)
        fig.segment(x0="low", y0=y, x1="high", y1=y, source=source, color=colour, line_width=2)
        fig.scatter(
            x="value",
            y=y,
            source=source,
            marker=marker,
            size=8,
            color=colour,
            legend_label=division,
        )
    fig.add_layout(Span(location=1, dimension="height", line_dash="dashed", line_color="#555"))
    fig.add_tools(
        HoverTool(tooltips=[("backend", "@backend"), ("scenario", "@scenario"), ("", "@note")])
    )
    if fig.legend:  # none when no row had a value to draw
        fig.legend.orientation = "horizontal"
        fig.legend.label_text_font_size = "11px"
        fig.add_layout(fig.legend[0], "above")
    fig.yaxis.major_label_text_font_size = "11px"
    fig.yaxis.group_text_font_size = "11px"
    fig.yaxis.group_label_orientation = "horizontal"  # a short group's name stays legible
    return fig


def pareto(group: pd.DataFrame, colour: dict[str, str]) -> Any:
    """One scenario of ``pareto.pareto_frame``: accuracy against time with both intervals;
    points on the front drawn larger and named."""
    from bokeh.models import ColumnDataSource, HoverTool, LabelSet

    fig = detail_figure(
        x_axis_label=f"{group['clock'].iloc[0]}, s",
        y_axis_label="final test accuracy %",
    )
    shown = group[group["seconds"].notna()]
    data = {
        "t": [float(v) for v in shown["seconds"]],
        "t_low": [float(v) for v in shown["seconds_low"]],
        "t_high": [float(v) for v in shown["seconds_high"]],
        "acc": [float(v) for v in shown["accuracy_pct"]],
        "acc_low": [float(v) for v in shown["accuracy_low"]],
        "acc_high": [float(v) for v in shown["accuracy_high"]],
        "backend": [str(b) for b in shown["backend"]],
        "scenario": [str(s) for s in shown["scenario"]],
        "seed": ["mean over seeds"] * len(shown),
        "colour": [colour.get(base_of(b), "black") for b in shown["backend"]],
        "size": [11 if f else 7 for f in shown["front"]],
        "label": [
            str(b) if f else "" for b, f in zip(shown["backend"], shown["front"], strict=True)
        ],
    }
    source = ColumnDataSource(data)
    fig.segment(x0="t_low", y0="acc", x1="t_high", y1="acc", source=source, color="colour")
    fig.segment(x0="t", y0="acc_low", x1="t", y1="acc_high", source=source, color="colour")
    fig.scatter("t", "acc", source=source, color="colour", size="size")
    fig.add_layout(
        LabelSet(
            x="t",
            y="acc",
            text="label",
            source=source,
            x_offset=6,
            y_offset=4,
            text_font_size="11px",
        )
    )
    fig.add_tools(
        HoverTool(
            tooltips=[
                ("backend", "@backend"),
                ("scenario", "@scenario"),
                ("seconds", "@t{0.00}"),
                ("accuracy %", "@acc{0.00}"),
            ]
        )
    )
    return fig


def accuracy_against_time(group: pd.DataFrame, scenario: str, colour: dict) -> Any:
    """One machine × scenario: every epoch's test accuracy at its cumulative training seconds,
    a point per epoch and seed, coloured by backend, with a hover naming the point."""
    from bokeh.models import ColumnDataSource

    fig = detail_figure(
        x_axis_label="training seconds",
        y_axis_label="test accuracy %",
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
        hover(("epoch", "@epoch"), ("seconds", "@t{0.000}"), ("accuracy %", "@acc{0.00}"))
    )
    fig.legend.location = "bottom_right"
    return fig


def hover(*rest: tuple[str, str]) -> Any:
    """A hover naming a point's backend, scenario and seed, then ``rest`` (label, field)."""
    from bokeh.models import HoverTool

    return HoverTool(
        tooltips=[("backend", "@backend"), ("scenario", "@scenario"), ("seed", "@seed"), *rest]
    )


def epoch_times(group: pd.DataFrame, colour: dict) -> Any:
    from bokeh.models import ColumnDataSource

    names = [str(b) for b in group["backend"].unique()]
    fig = detail_figure(
        height=220,
        x_range=names,
        y_axis_label="seconds per warm epoch",
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
    fig.add_tools(hover(("seconds", "@seconds{0.0000}")))
    return fig


def ladder(ladder: pd.DataFrame, colour: dict) -> Any:
    from bokeh.models import ColumnDataSource

    fig = detail_figure(
        x_axis_label="rung",
        y_axis_label="test accuracy %",
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
    fig.add_tools(hover(("accuracy %", "@acc{0.00}")))
    fig.legend.location = "bottom_right"
    return fig


def scaling_plot(group: pd.DataFrame, key: str, colour: dict) -> Any:
    from bokeh.models import ColumnDataSource

    fig = detail_figure(
        x_axis_type="log",
        y_axis_type="log",
        x_axis_label=key,
        y_axis_label="µs per step",
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
    fig.add_tools(hover((key, "@x"), ("µs per step", "@us{0.0}")))
    fig.legend.location = "top_left"
    return fig
