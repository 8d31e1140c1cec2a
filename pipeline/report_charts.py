"""The run report's charts: altair (Vega-Lite) specs rendered to static SVG by vl-convert.

Every chart takes plain rows (lists of dicts) and returns an altair chart; `svg` renders one
to an SVG string ready to inline in an HTML page (no script, no external reference), through
`pipeline.report_svg`.

Example:
    >>> chart = bars([{"label": "train", "value": 2}], x="value", y="label", title="rows")
    >>> svg(chart).startswith("<svg")  # doctest: +SKIP
    True
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Any

import altair as alt

from pipeline import report_svg

STATE_COLORS = {"COMPLETE": "#2e7d32", "CACHED": "#1565c0", "FAILED": "#c62828", "RUNNING": "#ef6c00",
                "ABANDONED": "#8d6e63", "not in this run": "#bdbdbd"}
SPLIT_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b")
PASS_COLORS = {"passed": "#2e7d32", "failed": "#c62828", "skipped": "#9e9e9e"}


@functools.cache
def _vega_lite_version() -> str | None:
    import vl_convert

    major_minor = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    return major_minor if major_minor in vl_convert.get_vegalite_versions() else None


def svg(chart: Any) -> str:
    """The chart as an SVG element for an HTML page, or its placeholder (see `report_svg.rendering`)."""
    spec = chart.to_dict(validate=False)
    spec["datasets"] = {name: _rows.pop(name) for name in _data_names(spec) if name in _rows}
    return report_svg.submit(spec, _vega_lite_version())


# A chart's rows wait here, by name, until `svg` puts them in the spec's top-level "datasets":
# given to altair as inline values, every row would become schema objects, which costs more
# than drawing the chart.
_rows: dict[str, list[dict]] = {}
_names = itertools.count(1)


def _data(rows: list[dict]) -> alt.Data:
    """Named data for the chart's rows; NaN and infinities (an undefined metric) become null."""
    name = f"rows-{next(_names)}"
    _rows[name] = [{k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}
                   for row in rows]
    return alt.Data(name=name)


def _data_names(spec: Any) -> set[str]:
    if isinstance(spec, dict):
        found = {spec["data"]["name"]} if isinstance(spec.get("data"), dict) and "name" in spec["data"] else set()
        return found.union(*(_data_names(v) for k, v in spec.items() if k != "data"))
    if isinstance(spec, list):
        return set().union(*(_data_names(v) for v in spec))
    return set()


def _scale(colors: dict[str, str]) -> alt.Scale:
    return alt.Scale(domain=list(colors), range=list(colors.values()))


def graph(nodes: list[dict], edges: list[dict], *, color: str, colors: dict[str, str], title: str,
          label: str = "label") -> Any:
    """Nodes at (``layer``, ``row``) with a label under each, edges as lines between them.

    ``edges`` rows hold ``x``, ``y``, ``x2``, ``y2`` (layer and row of both ends) and
    ``kind`` (``"run"``, drawn solid, or ``"earlier"``, dashed: an input from another run).
    """
    layers = max((n["layer"] for n in nodes), default=0) + 1
    rows = max((n["row"] for n in nodes), default=0) + 1
    x_scale, y_scale = alt.Scale(domain=[-0.5, layers - 0.5]), alt.Scale(domain=[rows - 0.4, -0.6])
    x, y = alt.X("layer:Q", axis=None, scale=x_scale), alt.Y("row:Q", axis=None, scale=y_scale)
    lines = alt.Chart(_data(edges)).mark_rule(color="#9e9e9e", strokeWidth=1.5).encode(
        x=alt.X("x:Q", scale=x_scale, axis=None), y=alt.Y("y:Q", scale=y_scale, axis=None),
        x2="x2:Q", y2="y2:Q",
        strokeDash=alt.StrokeDash("kind:N", scale=alt.Scale(domain=["run", "earlier"], range=[[1, 0], [4, 3]]),
                                  legend=None))
    points = alt.Chart(_data(nodes)).mark_circle(size=420, opacity=1, stroke="white", strokeWidth=2).encode(
        x=x, y=y, color=alt.Color(f"{color}:N", scale=_scale(colors), title=color,
                                  legend=alt.Legend(orient="bottom", direction="horizontal")),
        tooltip=[alt.Tooltip(f"{label}:N"), alt.Tooltip(f"{color}:N")])
    text = alt.Chart(_data(nodes)).mark_text(dy=20, fontSize=11, baseline="top").encode(
        x=x, y=y, text=f"{label}:N")
    return alt.layer(lines, points, text).properties(
        width=max(300, 125 * layers), height=max(90, 70 * rows), title=title)


def timeline(rows: list[dict]) -> Any:
    """One bar per node from its start to its end (seconds since the run started), by state."""
    return alt.Chart(_data(rows)).mark_bar(height=12).encode(
        x=alt.X("start:Q", title="seconds since the run started"), x2="end:Q",
        y=alt.Y("node:N", sort=None, title=None),
        color=alt.Color("state:N", scale=_scale(STATE_COLORS), title="state"),
        tooltip=["node:N", "state:N", alt.Tooltip("seconds:Q", format=".2f")],
    ).properties(width=560, height=alt.Step(18), title="When each node ran")


def histograms(rows: list[dict], *, title: str) -> Any:
    """Per feature, each split's histogram (``low``..``high``, ``share`` of its examples)."""
    return alt.Chart(_data(rows)).mark_bar(opacity=0.55, binSpacing=0).encode(
        x=alt.X("low:Q", bin="binned", title=None, scale=alt.Scale(zero=False)), x2="high:Q",
        y=alt.Y("share:Q", stack=None, title="share", axis=alt.Axis(format="%")),
        color=alt.Color("split:N", scale=alt.Scale(range=list(SPLIT_COLORS))),
        tooltip=["feature:N", "split:N", "low:Q", "high:Q", alt.Tooltip("share:Q", format=".1%")],
    ).properties(width=190, height=90).facet(
        facet=alt.Facet("feature:N", title=None), columns=4).resolve_scale(x="independent", y="independent").properties(
        title=title)


def top_values(rows: list[dict], *, title: str) -> Any:
    """Per feature, the most frequent values' ``share`` of each split's values."""
    return alt.Chart(_data(rows)).mark_bar().encode(
        y=alt.Y("value:N", sort=alt.EncodingSortField("rank", order="ascending"), title=None,
                axis=alt.Axis(labelLimit=150)),
        yOffset=alt.YOffset("split:N"), x=alt.X("share:Q", title="share", axis=alt.Axis(format="%")),
        color=alt.Color("split:N", scale=alt.Scale(range=list(SPLIT_COLORS))),
        tooltip=["feature:N", "split:N", "value:N", "count:Q", alt.Tooltip("share:Q", format=".1%")],
    ).properties(width=170, height=alt.Step(7)).facet(
        facet=alt.Facet("feature:N", title=None), columns=3).resolve_scale(y="independent", x="independent").properties(
        title=title)


def bars(rows: list[dict], *, x: str, y: str, title: str, color: str | None = None,
         colors: dict[str, str] | None = None, offset: str | None = None, x_title: str | None = None,
         text: str | None = None, width: int = 420, counts: bool = False) -> Any:
    """Horizontal bars: ``y`` categories, ``x`` lengths (whole numbers: ``counts``); optionally colored
    and offset by a field."""
    axis = alt.Axis(tickMinStep=1, format="d") if counts else alt.Axis()
    encoding: dict[str, Any] = {"y": alt.Y(f"{y}:N", sort=None, title=None, axis=alt.Axis(labelLimit=220)),
                                "x": alt.X(f"{x}:Q", title=x_title or x, axis=axis),
                                "tooltip": [f"{y}:N", f"{x}:Q"] + ([f"{color}:N"] if color else [])}
    if color:
        encoding["color"] = alt.Color(f"{color}:N", scale=_scale(colors) if colors else
                                      alt.Scale(range=list(SPLIT_COLORS)), title=color)
    if offset:
        encoding["yOffset"] = alt.YOffset(f"{offset}:N")
    chart = alt.Chart(_data(rows)).mark_bar().encode(**encoding)
    if text:
        chart = chart + alt.Chart(_data(rows)).mark_text(align="left", dx=3, fontSize=10).encode(
            y=encoding["y"], x=encoding["x"], text=f"{text}:N", **({"yOffset": encoding["yOffset"]} if offset else {}))
    return chart.properties(width=width, height=alt.Step(14 if offset else 18), title=title)


def drift(rows: list[dict]) -> Any:
    """Drift per feature against its threshold (a tick); bars over their threshold in red."""
    base = alt.Chart(_data(rows))
    bar = base.mark_bar().encode(
        y=alt.Y("feature:N", sort=None, title=None), x=alt.X("value:Q", title="drift (L-infinity or Jensen-Shannon)"),
        color=alt.Color("status:N", scale=_scale({"within": "#2e7d32", "over threshold": "#c62828"}), title=None),
        tooltip=["feature:N", "measure:N", alt.Tooltip("value:Q", format=".4f"), "threshold:Q"])
    tick = base.mark_tick(color="black", thickness=2).encode(y=alt.Y("feature:N", sort=None), x="threshold:Q")
    return alt.layer(bar, tick).properties(width=420, height=alt.Step(18), title="Drift against the baseline span")


def boundaries(rows: list[dict]) -> Any:
    """Each bucketized feature's boundaries as ticks on its own axis."""
    return alt.Chart(_data(rows)).mark_tick(thickness=2, size=18, color="#6a1b9a").encode(
        x=alt.X("boundary:Q", title=None, scale=alt.Scale(zero=False)),
        tooltip=["feature:N", "bucket:Q", alt.Tooltip("boundary:Q", format=".6g")],
    ).properties(width=520, height=22).facet(
        row=alt.Row("feature:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left"))).resolve_scale(
        x="independent").properties(title="Bucket boundaries")


def lines(rows: list[dict], *, x: str, y: str, color: str, facet: str, title: str, columns: int = 3,
          x_title: str | None = None, order: list[str] | None = None) -> Any:
    """Lines with points, one panel per ``facet`` value (in ``order``), each with its own y scale."""
    return alt.Chart(_data(rows)).mark_line(point=True).encode(
        x=alt.X(f"{x}:Q", title=x_title or x), y=alt.Y(f"{y}:Q", title=None, scale=alt.Scale(zero=False)),
        color=alt.Color(f"{color}:N", scale=alt.Scale(range=list(SPLIT_COLORS)), title=None),
        tooltip=[f"{facet}:N", f"{color}:N", f"{x}:Q", alt.Tooltip(f"{y}:Q", format=".4f")],
    ).properties(width=230, height=120).facet(
        facet=alt.Facet(f"{facet}:N", title=None, sort=order or "ascending"), columns=columns).resolve_scale(
        y="independent").properties(title=title)


def slice_metrics(rows: list[dict]) -> Any:
    """Per metric, its value on each slice (bars), one panel per (metric, slicing column)."""
    return alt.Chart(_data(rows)).mark_bar().encode(
        x=alt.X("value:N", sort=None, title=None), y=alt.Y("metric_value:Q", title=None),
        color=alt.Color("model:N", scale=alt.Scale(range=list(SPLIT_COLORS)), title=None,
                        legend=alt.Legend(orient="top")),
        xOffset=alt.XOffset("model:N"),
        tooltip=["slice:N", "model:N", alt.Tooltip("metric_value:Q", format=".4f"), "examples:Q"],
    ).properties(width=alt.Step(9), height=110).facet(
        facet=alt.Facet("panel:N", title=None), columns=2).resolve_scale(y="independent").properties(
        title="Metrics per slice")


def curves(rows: list[dict]) -> Any:
    """ROC (recall against false positive rate) and PR (precision against recall) per model."""
    base = alt.Chart(_data(rows)).mark_line().encode(
        color=alt.Color("model:N", scale=alt.Scale(range=list(SPLIT_COLORS)), title=None), order="order:Q")
    unit = alt.Scale(domain=[0, 1])
    roc = base.encode(x=alt.X("false_positive_rate:Q", scale=unit, title="false positive rate"),
                      y=alt.Y("recall:Q", scale=unit, title="true positive rate (recall)")).properties(
        width=260, height=260, title="ROC curve")
    pr = base.encode(x=alt.X("recall:Q", scale=unit, title="recall"),
                     y=alt.Y("precision:Q", scale=unit, title="precision")).properties(
        width=260, height=260, title="Precision-recall curve")
    return alt.hconcat(roc, pr)


def thresholds(rows: list[dict]) -> Any:
    """Each threshold: the value judged (a bar) against its bounds (ticks), per panel."""
    base = alt.Chart(_data(rows))
    bar = base.mark_bar(height=14).encode(
        x=alt.X("value:Q", title=None, scale=alt.Scale(zero=False)), y=alt.Y("kind:N", title=None),
        color=alt.Color("status:N", scale=_scale(PASS_COLORS), title=None),
        tooltip=["metric:N", "kind:N", alt.Tooltip("value:Q", format=".4f"), "bounds:N", "status:N"])
    low = base.mark_tick(color="black", thickness=2, size=22).encode(x="lower:Q", y=alt.Y("kind:N"))
    high = base.mark_tick(color="black", thickness=2, size=22).encode(x="upper:Q", y=alt.Y("kind:N"))
    return alt.layer(bar, low, high).properties(width=420, height=alt.Step(26)).facet(
        row=alt.Row("metric:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left"))).resolve_scale(
        x="independent", y="independent").properties(title="Thresholds: value (bar) and bounds (ticks)")
