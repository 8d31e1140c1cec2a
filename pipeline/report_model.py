"""The run report's model sections: training curves, TFMA metrics and curves, the blessing."""

from __future__ import annotations

import glob
import json
import os
import re

from pipeline import report_charts as charts
from pipeline import report_readers as readers
from pipeline.report import Node, RunView, cached_note, nodes_or_note
from pipeline.report_html import Html, chart, esc, heading, join, note, number, table

CURVE_POINTS = 200
FIRST_TAGS = ("loss", "average_loss")  # shown first among the training curves
COUNTS = ("example_count", "weighted_example_count")  # not on the scale of the other metrics


def tfma_name(class_name: str) -> str:
    """TFMA's metric name for a metric class: ``AUC`` -> ``auc``, ``AUCPrecisionRecall`` -> ``auc_precision_recall``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", class_name).lower()


# Training ----------------------------------------------------------------------------------------

def training_rows(model_run_dir: str) -> list[dict]:
    """{metric, step, value, series} for the training events and each evaluation directory's."""
    rows = []
    series = [("train", model_run_dir)] + [(os.path.basename(d), d) for d in
                                           sorted(glob.glob(os.path.join(model_run_dir, "eval*"))) if os.path.isdir(d)]
    for name, directory in series:
        for tag, points in readers.read_scalars(directory).items():
            rows += [{"metric": tag, "series": name, "step": step, "value": value} for step, value in points]
    return rows


def training_section(view: RunView) -> Html:
    nodes, notes = nodes_or_note(view, ("Trainer",), "training curves")
    body = [notes]
    for node in nodes:
        model_run = node.output("model_run")
        if model_run is None:
            body.append(note(f"{node.id} recorded no model_run output.", "warn"))
            continue
        body += [heading(node.id), cached_note(node)]
        model = node.output("model")
        facts = []
        if model is not None:
            props = model.properties
            if props.get("warm_started_from"):
                facts.append(f"warm-started from {props['warm_started_from']}")
        props = model_run.properties
        if props.get("warm_start_skipped"):
            facts.append(f"cold start ({props['warm_start_skipped']})")
        if props.get("resumed_from_step"):
            facts.append(f"resumed from the checkpoint at step {props['resumed_from_step']}")
        if facts:
            body.append(note("; ".join(facts).capitalize() + ".", "info"))
        rows = training_rows(model_run.uri)
        if not rows:
            body.append(note(f"No TensorBoard events in {model_run.uri}.", "warn"))
            continue
        # A panel per tag that changes over steps (the losses always); an evaluation run once
        # (train_and_evaluate's final one) is a single point, left to the table below.
        points: dict[tuple[str, str], int] = {}
        for row in rows:
            points[(row["metric"], row["series"])] = points.get((row["metric"], row["series"]), 0) + 1
        tags = sorted({t for (t, _), n in points.items() if n > 1} | ({r["metric"] for r in rows} & set(FIRST_TAGS)),
                      key=lambda t: (FIRST_TAGS.index(t) if t in FIRST_TAGS else len(FIRST_TAGS), t))
        if tags:
            body.append(chart(charts.svg(charts.lines(
                [r for r in rows if r["metric"] in tags], x="step", y="value", color="series", facet="metric",
                columns=4, x_title="global step", order=tags,
                title="Training loss and evaluation metrics over steps"))))
        last: dict[tuple[str, str], tuple[int, float]] = {}
        for row in rows:
            key = (row["metric"], row["series"])
            if key not in last or row["step"] >= last[key][0]:
                last[key] = (row["step"], row["value"])
        body.append(table(["metric", "series", "last step", "value"],
                          [[m, s, step, value] for (m, s), (step, value) in sorted(last.items())]))
    return join(body)


# Evaluation --------------------------------------------------------------------------------------

def _models(values: dict[tuple[str, str], float]) -> list[str]:
    return [m for m in ("candidate", "baseline", "diff") if any(k[0] == m for k in values)]


def evaluation_section(view: RunView) -> Html:
    nodes, notes = nodes_or_note(view, ("Evaluator",), "evaluation")
    body = [notes]
    for node in nodes:
        evaluation = node.output("evaluation")
        if evaluation is None:
            body.append(note(f"{node.id} recorded no evaluation output.", "warn"))
            continue
        body += [heading(node.id), cached_note(node)]
        slices = readers.read_tfma_metrics(evaluation.uri)
        overall = next((s for s in slices if not s.columns), None)
        if overall is None:
            body.append(note(f"No overall metrics in {evaluation.uri}.", "warn"))
            continue
        models = _models(overall.values)
        names = sorted({name for _, name in overall.values})
        body.append(heading("Overall", 4))
        body.append(table(["metric"] + [{"diff": "change vs baseline"}.get(m, m) for m in models],
                          [[name] + [overall.values.get((m, name), "") for m in models] for name in names]))
        undefined = evaluation.properties.get("undefined_metrics") or {}
        for name, why in sorted(undefined.items()):
            body.append(note(f"{name} is {why}", "warn"))
        sliced = [s for s in slices if s.columns]
        if sliced:
            rows = []
            for s in sliced:
                examples = s.values.get(("candidate", "example_count"))
                for (model, name), value in s.values.items():
                    if model == "diff":
                        continue
                    rows.append({"panel": f"{name} by {', '.join(s.columns)}", "slice": s.slice,
                                 "value": s.slice.split("=", 1)[-1] if len(s.columns) == 1 else s.slice,
                                 "model": model, "metric_value": value, "examples": examples})
            body.append(heading("Per slice", 4))
            body.append(chart(charts.svg(charts.slice_metrics(rows))))
            body.append(table(["slice"] + [f"{name}" for name in names],
                              [[s.slice] + [s.values.get(("candidate", n), "") for n in names] for s in sliced]))
        curves = readers.read_tfma_curves(evaluation.uri)
        body.append(heading("ROC and precision-recall", 4))
        if curves:
            rows = []
            for curve in curves:
                step = max(1, len(curve.thresholds) // CURVE_POINTS)
                for i in list(range(0, len(curve.thresholds), step)) + [len(curve.thresholds) - 1]:
                    rows.append({"model": curve.model, "order": i, "false_positive_rate": curve.false_positive_rate[i],
                                 "recall": curve.recall[i], "precision": curve.precision[i]})
            body.append(chart(charts.svg(charts.curves(rows)), "Overall slice; the curves join the confusion "
                                                               "matrices TFMA computed at its thresholds."))
        else:
            body.append(note("The Evaluator recorded no curves: it computes them when 'ConfusionMatrixPlot' is "
                             "among its metrics (Evaluator(..., metrics=(..., 'ConfusionMatrixPlot'))).", "info"))
    return join(body)


# Blessing -----------------------------------------------------------------------------------------

def _parameters(node: Node) -> dict:
    try:
        return json.loads(node.execution.get("parameters") or "{}")
    except ValueError:
        return {}


def threshold_rows(thresholds: list[dict], metrics: dict[str, float], *, has_baseline: bool
                   ) -> tuple[list[list], list[dict], list[str]]:
    """(table rows, chart rows, row classes): each threshold's bound, value and outcome."""
    table_rows, chart_rows, classes = [], [], []
    for threshold in thresholds:
        name = tfma_name(threshold["metric"])
        lower, upper = threshold.get("lower_bound"), threshold.get("upper_bound")
        checks = []
        if lower is not None or upper is not None:
            value = metrics.get(name)
            bounds = " and ".join(b for b in (f">= {number(lower)}" if lower is not None else "",
                                              f"<= {number(upper)}" if upper is not None else "") if b)
            ok = value is not None and (lower is None or value >= lower) and (upper is None or value <= upper)
            checks.append(("value", value, lower, upper, bounds, "passed" if ok else "failed"))
        if threshold.get("min_change") is not None:
            change = threshold["min_change"]
            diff = metrics.get(f"{name}_diff")
            if threshold.get("higher_is_better", True):
                low, high, bounds = change, None, f"candidate - baseline >= {number(change)}"
                ok = diff is not None and diff >= change
            else:
                low, high, bounds = None, -change, f"baseline - candidate >= {number(change)}"
                ok = diff is not None and diff <= -change
            status = ("passed" if ok else "failed") if has_baseline else "skipped"
            checks.append(("change vs baseline", diff, low, high, bounds, status))
        for kind, value, low, high, bounds, status in checks:
            shown = value if value is not None else ("no baseline" if status == "skipped" else "not computed")
            table_rows.append([threshold["metric"], kind, bounds, shown, status])
            classes.append({"passed": "good", "failed": "bad"}.get(status, "muted"))
            if value is not None:
                chart_rows.append({"metric": threshold["metric"], "kind": kind, "value": value, "lower": low,
                                   "upper": high, "bounds": bounds, "status": status})
    return table_rows, chart_rows, classes


def blessing_section(view: RunView) -> Html:
    nodes, notes = nodes_or_note(view, ("Evaluator",), "blessing")
    body = [notes]
    for node in nodes:
        blessing = node.output("blessing")
        if blessing is None:
            body.append(note(f"{node.id} recorded no blessing output.", "warn"))
            continue
        props = blessing.properties
        blessed = bool(props.get("blessed"))
        body += [heading(node.id), cached_note(node),
                 Html(f'<p><span class="verdict {"ok" if blessed else "bad"}">'
                      f'{esc(props.get("verdict") or ("BLESSED" if blessed else "NOT_BLESSED"))}</span> '
                      f'model #{esc(props.get("model_id"))}: {esc(props.get("reason", ""))}</p>')]
        metrics = props.get("metrics") or {}
        has_baseline = props.get("baseline_model_id") is not None
        thresholds = _parameters(node).get("thresholds") or []
        if thresholds:
            rows, chart_rows, classes = threshold_rows(thresholds, metrics, has_baseline=has_baseline)
            if chart_rows:
                body.append(chart(charts.svg(charts.thresholds(chart_rows))))
            body.append(table(["metric", "threshold on", "bound", "value", "outcome"], rows, row_classes=classes))
        else:
            body.append(note("The Evaluator had no thresholds: every model is blessed.", "info"))
        body.append(heading("Against the baseline model", 4))
        if has_baseline:
            names = sorted(k[:-5] for k in metrics if k.endswith("_diff"))
            rows = [[name, metrics.get(name), metrics[name] - metrics[f"{name}_diff"]
                     if metrics.get(name) is not None else "", metrics[f"{name}_diff"]] for name in names]
            bars = [{"metric": r[0], "model": model, "value": v} for r in rows if r[0] not in COUNTS
                    for model, v in (("candidate", r[1]), ("baseline", r[2])) if isinstance(v, float)]
            if bars:
                body.append(chart(charts.svg(charts.bars(bars, x="value", y="metric", color="model", offset="model",
                                                         title=f"Candidate #{props.get('model_id')} against "
                                                               f"baseline #{props['baseline_model_id']}"))))
            body.append(table(["metric", "candidate", "baseline", "change"], rows))
        else:
            why = props.get("baseline_skipped")
            body.append(note(f"No baseline comparison: {why}." if why else
                             "No baseline model (nothing blessed and pushed before): value thresholds only.", "info"))
    for node in view.of_type("InfraValidator"):
        infra = node.output("blessing") if node.execution else None
        if infra is not None:
            ok = bool(infra.properties.get("blessed"))
            body.append(note(f"{node.id}: {'blessed' if ok else 'NOT blessed'}: {infra.properties.get('reason', '')}",
                             "ok" if ok else "bad"))
    return join(body)
