"""ExampleValidator's executor: writes Split-<name>/anomalies.pbtxt, fails or warns."""

from __future__ import annotations

import os

from components.base import ComponentError, ExecutionContext
from components.example_validator.checks import drift, validate


def run(ctx: ExecutionContext) -> None:
    from google.protobuf import text_format

    from components.schema_gen.executor import load_schema
    from components.statistics_gen.executor import load_statistics

    params = ctx.parameters
    statistics = ctx.input("statistics")
    schema = load_schema(ctx.input("schema").schema_path)
    baselines = ctx.inputs.get("baseline_statistics") or []
    out = ctx.outputs["anomalies"]
    counts, report, drift_measures = {}, [], {}
    for split in statistics.split_names:
        dataset = load_statistics(statistics.stats_path(split)).datasets[0]
        anomalies = validate(dataset, schema, params)
        if baselines and split == params.drift_split and split in baselines[0].split_names:
            base = load_statistics(baselines[0].stats_path(split)).datasets[0]
            drift_measures = drift(dataset, base, params, anomalies)
        os.makedirs(out.split_uri(split), exist_ok=True)
        path = os.path.join(out.split_uri(split), "anomalies.pbtxt")
        with open(path, "w") as f:
            f.write(text_format.MessageToString(anomalies))
        counts[split] = len(anomalies.anomaly_info)
        for name in sorted(anomalies.anomaly_info):
            report.append(f"  [{split}] {name}: {anomalies.anomaly_info[name].description}")
    out.properties.update(
        split_names=statistics.split_names, span=statistics.span, anomaly_counts=counts,
        drift=drift_measures, baseline_span=baselines[0].span if baselines else None)
    if report:
        summary = (f"ExampleValidator found {len(report)} anomal{'y' if len(report) == 1 else 'ies'} "
                   f"in span {statistics.span}:\n" + "\n".join(report))
        ctx.report(summary.splitlines()[0])
        if params.on_anomaly == "fail":
            raise ComponentError(
                summary + f"\nReport: {out.uri}. How to fix: correct the data, update the schema "
                "(ImportSchemaGen), or set on_anomaly='warn' to record anomalies and go on.")
