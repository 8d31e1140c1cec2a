"""ExampleGen's executor: a Beam pipeline that converts, splits and writes gzip TFRecords.

The driver resolves the span, checks headers and infers undeclared CSV column
kinds (one streaming pass); then Beam reads the files in parallel (one file per
element), converts each row to a tf.Example, routes it to its split or to the
quarantine, and writes ``Split-<name>/data-*.gz`` and ``quarantine/rows.jsonl``.
Every input row is counted (Beam counters): ``rows_in == sum(row_counts) + quarantined``.
In ``bad_rows="fail"`` mode the first bad row stops the pipeline with its DataError.
"""

from __future__ import annotations

import json
import os
from typing import Any

import apache_beam as beam  # executors are imported only when their component runs

from components.base import ComponentError, DataError, ExecutionContext
from components.beam_utils import make_pipeline, runner_name
from components.example_gen.component import ExampleGenParameters
from components.example_gen.expressions import Expression
from components.example_gen.records import (
    choose_split, csv_file_records, csv_kinds, parquet_file_records, parquet_kinds, tfrecord_file_records,
    to_example,
)
from components.example_gen.spans import resolve_span

QUARANTINE_FILE = "quarantine/rows.jsonl"
NAMESPACE = "ExampleGen"
BAD = "bad"


def run(ctx: ExecutionContext) -> None:
    from apache_beam.metrics.metric import MetricsFilter

    p: ExampleGenParameters = ctx.parameters
    span, version, files = resolve_span(p.input_base, p.file_pattern)
    derived = {name: Expression(name, source) for name, source in p.derived_columns.items()}
    ctx.report(f"span {span}: checking {len(files)} file(s)")
    kinds = (csv_kinds(files, p, derived) if p.format == "csv" else
             parquet_kinds(files) if p.format == "parquet" else None)
    out = ctx.outputs["examples"]
    names = list(p.split.names)
    ctx.report(f"Beam ({runner_name(ctx.beam_pipeline_args)}): converting {len(files)} file(s)")
    pipeline = make_pipeline(ctx.beam_pipeline_args)
    converted = (pipeline
                 | "Files" >> beam.Create(files)
                 | "Convert" >> beam.ParDo(ConvertFile(p, kinds)).with_outputs(BAD, main="good"))
    parts = converted.good | "Route" >> beam.Partition(lambda pair, n: pair[0], len(names))
    for index, name in enumerate(names):
        os.makedirs(out.split_uri(name), exist_ok=True)
        _ = (parts[index]
             | f"Serialized[{name}]" >> beam.Map(lambda pair: pair[1])
             | f"Write[{name}]" >> beam.io.WriteToTFRecord(
                 os.path.join(out.split_uri(name), "data"), file_name_suffix=".gz",
                 compression_type=beam.io.filesystem.CompressionTypes.GZIP))
    quarantine = os.path.join(out.uri, QUARANTINE_FILE)
    os.makedirs(os.path.dirname(quarantine), exist_ok=True)
    _ = converted[BAD] | "Quarantine" >> beam.io.WriteToText(quarantine, shard_name_template="")
    try:
        result = pipeline.run()
        result.wait_until_finish()
    except Exception as e:  # Beam wraps executor errors; surface the user-facing one
        cause = e
        while cause is not None and not isinstance(cause, DataError):
            cause = cause.__cause__ or cause.__context__
        if cause is not None:
            raise cause from None
        raise
    counts = {c.key.metric.name: c.committed for c in
              result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]}
    row_counts = {name: int(counts.get(f"rows_{name}", 0)) for name in names}
    quarantined = int(counts.get("quarantined", 0))
    out.properties.update(
        split_names=names, span=span, version=version, files=files, row_counts=row_counts,
        rows_in=int(counts.get("rows_in", 0)), quarantined=quarantined,
        column_kinds={**(kinds or {}), **{n: e.kind for n, e in derived.items()}})
    if quarantined:
        out.properties["quarantine_file"] = QUARANTINE_FILE  # relative: the directory is renamed on publish
    if not sum(row_counts.values()):
        raise ComponentError(
            f"ExampleGen wrote no rows from {files}: all {quarantined} rows were quarantined "
            f"(see {quarantine}). How to fix: correct the data.")


class ConvertFile(beam.DoFn):
    """One file -> (split index, serialized tf.Example) rows, and bad rows tagged ``bad``."""

    def __init__(self, p: ExampleGenParameters, kinds: dict[str, str] | None):
        self._p, self._kinds = p, kinds

    def setup(self) -> None:
        import tensorflow as tf

        self._tf = tf
        self._derived = {n: Expression(n, s) for n, s in self._p.derived_columns.items()}
        self._names = list(self._p.split.names)
        counter = beam.metrics.Metrics.counter
        self._rows_in = counter(NAMESPACE, "rows_in")
        self._quarantined = counter(NAMESPACE, "quarantined")
        self._split_counters = [counter(NAMESPACE, f"rows_{name}") for name in self._names]

    def process(self, path: str) -> Any:
        p = self._p
        reader = (csv_file_records(path, self._kinds) if p.format == "csv" else
                  parquet_file_records(path) if p.format == "parquet" else tfrecord_file_records(path))
        for path_, row, record in reader:
            self._rows_in.inc()
            if not isinstance(record, DataError):
                for name, expression in self._derived.items():
                    record[name] = expression.evaluate(record)
                if p.label is not None and record.get(p.label) is None:
                    record = DataError(path_, row, p.label, "has no label value.",
                                       "drop the row, fill the label, or use bad_rows='quarantine'.")
            split = record if isinstance(record, DataError) else choose_split(p, path_, row, record)
            if isinstance(split, DataError):
                if p.bad_rows == "fail":
                    raise split
                self._quarantined.inc()
                yield beam.pvalue.TaggedOutput(BAD, json.dumps(
                    {"file": split.path, "row": split.row, "column": split.column, "problem": split.problem}))
                continue
            index = self._names.index(split)
            self._split_counters[index].inc()
            yield index, to_example(self._tf, record).SerializeToString()
