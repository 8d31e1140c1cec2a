"""The run report's data sections: statistics per split, anomalies, the Transform's analyzers."""

from __future__ import annotations

import os
from typing import Any

from pipeline import report_charts as charts
from pipeline import report_readers as readers
from pipeline.report import RunView, cached_note, nodes_or_note
from pipeline.report_html import Html, chart, heading, join, note, table

TOP_VALUES = 8
VOCABULARY_TOP = 10
STANDARD = 0  # statistics_pb2.Histogram.STANDARD: equal-width buckets


def _feature_name(feature: Any) -> str:
    return ".".join(feature.path.step) if feature.path.step else feature.name


def load_statistics(statistics: Any) -> dict[str, Any]:
    """split -> its DatasetFeatureStatistics (the first dataset of the split's list)."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    loaded = {}
    for split in statistics.split_names:
        with open(statistics.stats_path(split), "rb") as f:
            datasets = statistics_pb2.DatasetFeatureStatisticsList.FromString(f.read()).datasets
        if datasets:
            loaded[split] = datasets[0]
    return loaded


def _common(feature: Any) -> Any:
    kind = feature.WhichOneof("stats")
    return getattr(feature, kind).common_stats if kind in ("num_stats", "string_stats", "bytes_stats") else None


def statistics_rows(by_split: dict[str, Any]) -> tuple[list, list, list, list]:
    """(table rows, histogram rows, top-value rows, missing rows) for every feature and split."""
    table_rows, histogram_rows, top_rows, missing_rows = [], [], [], []
    order: dict[str, dict[str, int]] = {}  # feature -> value -> rank in the first split
    for split, dataset in by_split.items():
        for feature in dataset.features:
            name, kind = _feature_name(feature), feature.WhichOneof("stats")
            common = _common(feature)
            missing = int(common.num_missing) if common else 0
            present = int(common.num_non_missing) if common else 0
            missing_rows.append({"feature": name, "split": split, "missing": missing,
                                 "label": f"{missing} ({missing / max(1, missing + present):.1%})"})
            if kind == "num_stats":
                stats = feature.num_stats
                table_rows.append([name, "number", split, present, missing, stats.mean, stats.std_dev, stats.min,
                                   stats.median, stats.max, int(stats.num_zeros), "", ""])
                standard = [h for h in stats.histograms if h.type == STANDARD]
                buckets = standard[0].buckets if standard else []
                total = sum(b.sample_count for b in buckets) or 1.0
                histogram_rows += [{"feature": name, "split": split, "low": b.low_value, "high": b.high_value,
                                    "share": b.sample_count / total} for b in buckets]
            elif kind == "string_stats":
                stats = feature.string_stats
                top = stats.top_values[0] if stats.top_values else None
                table_rows.append([name, "string", split, present, missing, "", "", "", "", "", "",
                                   int(stats.unique), f"{top.value} ({int(top.frequency)})" if top else ""])
                ranks = order.setdefault(name, {})
                for value in stats.top_values:
                    if len(ranks) < TOP_VALUES and value.value not in ranks:
                        ranks[value.value] = len(ranks)
                    if value.value in ranks:
                        top_rows.append({"feature": name, "split": split, "value": value.value[:40],
                                         "rank": ranks[value.value], "count": int(value.frequency),
                                         "share": value.frequency / max(1, present)})
            else:
                table_rows.append([name, kind or "", split, present, missing] + [""] * 8)
    table_rows.sort(key=lambda r: (r[0], list(by_split).index(r[2])))
    missing_rows.sort(key=lambda r: (r["feature"], list(by_split).index(r["split"])))
    return table_rows, histogram_rows, top_rows, missing_rows


def statistics_section(view: RunView) -> Html:
    nodes, notes = nodes_or_note(view, ("StatisticsGen",), "statistics")
    body = [notes]
    for node in nodes:
        statistics = node.output("statistics")
        if statistics is None:
            body.append(note(f"{node.id} recorded no statistics output.", "warn"))
            continue
        body += [heading(node.id), cached_note(node)]
        by_split = load_statistics(statistics)
        sizes = ", ".join(f"{split}: {int(d.num_examples)} examples" for split, d in by_split.items())
        body.append(note(f"Splits: {sizes}.", "info"))
        table_rows, histogram_rows, top_rows, missing_rows = statistics_rows(by_split)
        if histogram_rows:
            body.append(chart(charts.svg(charts.histograms(
                histogram_rows, title="Numeric features: equal-width histograms, share of each split"))))
        if top_rows:
            body.append(chart(charts.svg(charts.top_values(
                top_rows, title=f"String features: the {TOP_VALUES} most frequent values, share of each split"))))
        incomplete = {r["feature"] for r in missing_rows if r["missing"]}
        if incomplete:
            body.append(chart(charts.svg(charts.bars(
                [r for r in missing_rows if r["feature"] in incomplete], x="missing", y="feature", color="split",
                offset="split", text="label", x_title="examples without a value", counts=True,
                title="Missing values per feature and split (features with any)"))))
        complete = sorted({r["feature"] for r in missing_rows} - incomplete)
        if complete:
            body.append(note(f"No missing values in {', '.join(complete)}.", "ok"))
        body.append(table(["feature", "type", "split", "present", "missing", "mean", "std", "min", "median", "max",
                           "zeros", "unique", "top value"], table_rows))
    return join(body)


# Anomalies -------------------------------------------------------------------------------------

def load_anomalies(anomalies: Any) -> dict[str, Any]:
    """split -> its Anomalies proto."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    loaded = {}
    for split in anomalies.split_names:
        path = os.path.join(anomalies.split_uri(split), "anomalies.pbtxt")
        with open(path, encoding="utf-8") as f:
            loaded[split] = text_format.Parse(f.read(), anomalies_pb2.Anomalies())
    return loaded


_MEASURES = {1: "L-infinity", 2: "Jensen-Shannon", 3: "normalized absolute difference"}
_SEVERITY = {0: "UNKNOWN", 1: "WARNING", 2: "ERROR"}


def anomalies_section(view: RunView) -> Html:
    nodes, notes = nodes_or_note(view, ("ExampleValidator",), "anomalies")
    body = [notes]
    for node in nodes:
        anomalies = node.output("anomalies")
        if anomalies is None:
            body.append(note(f"{node.id} recorded no anomalies output.", "warn"))
            continue
        body += [heading(node.id), cached_note(node)]
        by_split = load_anomalies(anomalies)
        rows, counts, drift_rows = [], [], []
        for split, proto in by_split.items():
            infos = [("(dataset)", proto.dataset_anomaly_info)] if proto.HasField("dataset_anomaly_info") else []
            infos += sorted(proto.anomaly_info.items())
            counts.append({"split": split, "anomalies": len(infos), "status": "anomalies" if infos else "none"})
            for feature, info in infos:
                reasons = "; ".join(sorted({r.short_description for r in info.reason})) or info.short_description
                rows.append([split, feature, _SEVERITY.get(info.severity, str(info.severity)), reasons,
                             info.description])
            for drift in proto.drift_skew_info:
                for measure in drift.drift_measurements:
                    drift_rows.append({"feature": ".".join(drift.path.step), "measure": _MEASURES.get(
                        measure.type, str(measure.type)), "value": measure.value, "threshold": measure.threshold,
                        "status": "over threshold" if measure.value > measure.threshold else "within"})
        total = len(rows)
        body.append(note(f"{total} anomal{'y' if total == 1 else 'ies'} found." if total else
                         "No anomalies: the statistics match the schema.", "bad" if total else "ok"))
        body.append(chart(charts.svg(charts.bars(
            counts, x="anomalies", y="split", color="status",
            colors={"none": charts.PASS_COLORS["passed"], "anomalies": charts.PASS_COLORS["failed"]},
            title="Anomalies per split", width=300, counts=True))))
        if rows:
            body.append(table(["split", "feature", "severity", "what", "description"], rows,
                              row_classes=["bad"] * len(rows)))
        baseline = anomalies.properties.get("baseline_span")
        if drift_rows:
            body.append(chart(charts.svg(charts.drift(drift_rows)),
                              f"Compared with span {baseline}." if baseline is not None else ""))
        else:
            body.append(note("No drift measured (no baseline span: the first span, or no baseline_statistics).",
                             "info"))
    return join(body)


# Transform -----------------------------------------------------------------------------------

def transform_section(view: RunView) -> Html:
    nodes, notes = nodes_or_note(view, ("Transform",), "transform output")
    body = [notes]
    for node in nodes:
        graph = node.output("transform_graph")
        if graph is None:
            body.append(note(f"{node.id} recorded no transform_graph output.", "warn"))
            continue
        body += [heading(node.id), cached_note(node)]
        props = graph.properties
        if props.get("analyzed_datasets") is not None:
            cached = props.get("cached_datasets") or []
            body.append(note(f"Analyzed {', '.join(props['analyzed_datasets']) or 'nothing'}"
                             f"{'; from the analyzer cache: ' + ', '.join(cached) if cached else ''}.", "info"))
        vocabularies = readers.read_vocabularies(graph.uri, top=VOCABULARY_TOP)
        if vocabularies:
            body.append(chart(charts.svg(charts.bars(
                [{"vocabulary": name, "size": size, "label": str(size)} for name, (size, _) in vocabularies.items()],
                x="size", y="vocabulary", text="label", x_title="entries", title="Vocabulary sizes", width=360,
                counts=True))))
            body.append(table(["vocabulary", "size", f"top {VOCABULARY_TOP} entries (most frequent first)"],
                              [[name, size, ", ".join(entries)] for name, (size, entries) in vocabularies.items()]))
        else:
            body.append(note("No vocabularies in this transform graph.", "info"))
        try:
            boundaries = readers.bucket_boundaries(graph.uri)
        except (OSError, ValueError) as e:
            body.append(note(f"Bucket boundaries could not be read from the transform graph: {e}", "warn"))
            boundaries = {}
        if boundaries:
            rows = [{"feature": f, "bucket": i + 1, "boundary": b} for f, bs in boundaries.items()
                    for i, b in enumerate(bs)]
            body.append(chart(charts.svg(charts.boundaries(rows))))
            body.append(table(["feature", "buckets", "boundaries"],
                              [[f, len(bs) + 1, ", ".join(f"{b:.6g}" for b in bs)] for f, bs in boundaries.items()]))
        else:
            body.append(note("No bucketized features (no tft.bucketize in the preprocessing_fn).", "info"))
    return join(body)
