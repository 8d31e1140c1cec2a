"""ExampleGen's executor: a Beam pipeline that converts, splits and writes gzip TFRecords.

The driver resolves the span, checks headers and infers undeclared CSV column
kinds (one streaming pass); then Beam reads the files in parallel (one file per
element), converts each row to a tf.Example, routes it to its split or to the
quarantine, and writes ``Split-<name>/data-*.gz`` and ``quarantine/rows.jsonl``.
Every input row is counted (Beam counters): ``rows_in == sum(row_counts) + quarantined``;
for CSV the physical lines too: ``lines_in`` (lines of data rows, header and blank lines
excluded) and ``lines_quarantined`` (lines the quarantined rows spanned, e.g. every line
an unterminated quote swallowed). In ``bad_rows="fail"`` mode the first bad row stops the
pipeline with its DataError (Beam's own log of it, with traceback, goes to DEBUG). In
``quarantine`` mode the run fails when the quarantined share of rows or of lines exceeds
``max_quarantined_fraction``.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import apache_beam as beam  # executors are imported only when their component runs

from components.base import ComponentError, DataError, ExecutionContext
from components.beam_utils import make_pipeline, quiet_component_error_tracebacks, runner_name
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
_LOG = logging.getLogger(__name__)


def run(ctx: ExecutionContext) -> None:
    from apache_beam.metrics.metric import MetricsFilter

    p: ExampleGenParameters = ctx.parameters
    span, version, files = resolve_span(p.input_base, p.file_pattern)
    derived = {name: Expression(name, source) for name, source in p.derived_columns.items()}
    ctx.report(f"span {span}: checking {len(files)} file(s)")
    inference = csv_kinds(files, p, derived) if p.format == "csv" else None
    for warning in inference.warnings if inference else ():
        _LOG.warning("ExampleGen: %s", warning)
        ctx.report(f"warning: {warning}")
    kinds = (inference.kinds if inference else parquet_kinds(files) if p.format == "parquet" else None)
    out = ctx.outputs["examples"]
    names = list(p.split.names)
    ctx.report(f"Beam ({runner_name(ctx.beam_pipeline_args)}): converting {len(files)} file(s)")
    pipeline = make_pipeline(ctx.beam_pipeline_args)
    converted = (pipeline
                 | "Files" >> beam.Create(files)
                 | "Convert" >> beam.ParDo(ConvertFile(p, kinds, inference.inferred if inference else frozenset()))
                 .with_outputs(BAD, main="good"))
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
        with quiet_component_error_tracebacks():
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
    rows_in, quarantined = int(counts.get("rows_in", 0)), int(counts.get("quarantined", 0))
    out.properties.update(
        split_names=names, span=span, version=version, files=files, row_counts=row_counts,
        rows_in=rows_in, quarantined=quarantined,
        column_kinds={**(kinds or {}), **{n: e.kind for n, e in derived.items()}})
    lines_note = ""
    if p.format == "csv":
        lines_in, lines_quarantined = int(counts.get("lines_in", 0)), int(counts.get("lines_quarantined", 0))
        out.properties.update(lines_in=lines_in, lines_quarantined=lines_quarantined)
        lines_note = f", {lines_quarantined} of {lines_in} lines"
    if inference and inference.warnings:
        out.properties["inference_warnings"] = inference.warnings
    if quarantined:
        out.properties["quarantine_file"] = QUARANTINE_FILE  # relative: the directory is renamed on publish
        ctx.report(f"quarantined {quarantined} of {rows_in} rows{lines_note}: {quarantine}")
    if not sum(row_counts.values()):
        raise ComponentError(
            f"ExampleGen wrote no rows from {files}: all {quarantined} rows were quarantined "
            f"(see {quarantine}). How to fix: correct the data.")
    _check_quarantined_share(p, out.properties, quarantine)


def _check_quarantined_share(p: ExampleGenParameters, props: dict[str, Any],
                             quarantine: str) -> None:
    """Fails when quarantined rows, or the physical lines they span, exceed ``max_quarantined_fraction``."""
    rows_in, quarantined = props["rows_in"], props["quarantined"]
    lines_in, lines_quarantined = props.get("lines_in", rows_in), props.get("lines_quarantined", quarantined)
    share = max(quarantined / max(rows_in, 1), lines_quarantined / max(lines_in, 1))
    if not quarantined or share <= p.max_quarantined_fraction:
        return
    largest = _largest_quarantined(quarantine)
    where = ""
    if largest:
        spans = largest.get("lines", 1)
        column = f" column {largest['column']!r}" if largest.get("column") is not None else ""
        where = (f"; {'the largest is' if spans > 1 else 'e.g.'} {largest['file']} row {largest['row']}{column}"
                 f"{f' ({spans} lines)' if spans > 1 else ''}: {largest['problem'].rstrip('.')}")
    lines = f", spanning {lines_quarantined} of {lines_in} lines ({lines_quarantined / max(lines_in, 1):.1%})" \
        if "lines_in" in props else ""
    raise ComponentError(
        f"ExampleGen quarantined {quarantined} of {rows_in} rows ({quarantined / max(rows_in, 1):.1%}){lines}, "
        f"more than max_quarantined_fraction={p.max_quarantined_fraction:g}{where}. Quarantined rows: "
        f"{quarantine}. How to fix: fix the data (see the quarantined rows), or raise "
        "max_quarantined_fraction (1.0 accepts any share).")


def _largest_quarantined(quarantine: str) -> dict[str, Any] | None:
    largest = None
    try:
        with open(quarantine, encoding="utf-8") as f:
            for line in f:
                entry = json.loads(line)
                if largest is None or entry.get("lines", 1) > largest.get("lines", 1):
                    largest = entry
    except (OSError, ValueError):
        return None
    return largest


class ConvertFile(beam.DoFn):
    """One file -> (split index, serialized tf.Example) rows, and bad rows tagged ``bad``."""

    def __init__(self, p: ExampleGenParameters, kinds: dict[str, str] | None,
                 inferred: frozenset[str] = frozenset()):
        self._p, self._kinds, self._inferred = p, kinds, inferred

    def setup(self) -> None:
        import tensorflow as tf

        self._tf = tf
        self._derived = {n: Expression(n, s) for n, s in self._p.derived_columns.items()}
        self._names = list(self._p.split.names)
        counter = beam.metrics.Metrics.counter
        self._rows_in = counter(NAMESPACE, "rows_in")
        self._quarantined = counter(NAMESPACE, "quarantined")
        self._lines_in = counter(NAMESPACE, "lines_in")
        self._lines_quarantined = counter(NAMESPACE, "lines_quarantined")
        self._split_counters = [counter(NAMESPACE, f"rows_{name}") for name in self._names]

    def _records(self, path: str) -> Any:
        p = self._p
        if p.format == "csv":
            return csv_file_records(path, self._kinds, self._inferred)
        reader = parquet_file_records(path) if p.format == "parquet" else tfrecord_file_records(path)
        return ((path_, row, record, 1) for path_, row, record in reader)

    def process(self, path: str) -> Any:
        p = self._p
        for path_, row, record, lines in self._records(path):
            self._rows_in.inc()
            self._lines_in.inc(lines)
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
                self._lines_quarantined.inc(lines)
                yield beam.pvalue.TaggedOutput(BAD, json.dumps(
                    {"file": split.path, "row": split.row, "column": split.column, "problem": split.problem,
                     "lines": lines}))
                continue
            index = self._names.index(split)
            self._split_counters[index].inc()
            yield index, to_example(self._tf, record).SerializeToString()
