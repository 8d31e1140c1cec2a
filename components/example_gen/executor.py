"""ExampleGen's executor: read, check, convert, split and write gzip TFRecords of tf.Example.

Every input row is counted: ``rows_in == sum(row_counts.values()) + quarantined``.
It streams each file once to infer undeclared CSV column kinds and once to
write, so memory stays bounded whatever the file size.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator
from typing import Any

from components.base import ComponentError, DataError, ExecutionContext
from components.example_gen.component import ExampleGenParameters
from components.example_gen.csv_reader import CsvReader
from components.example_gen.expressions import Expression
from components.example_gen.spans import resolve_span

Record = dict[str, Any]
QUARANTINE_FILE = "quarantine/rows.jsonl"


def run(ctx: ExecutionContext) -> None:
    p: ExampleGenParameters = ctx.parameters
    span, version, files = resolve_span(p.input_base, p.file_pattern)
    ctx.report(f"span {span}: {len(files)} file(s)")
    derived = {name: Expression(name, source) for name, source in p.derived_columns.items()}
    if p.format == "csv":
        kinds = _csv_kinds(files, p, derived)
        records = _csv_records(files, kinds)
    elif p.format == "parquet":
        kinds, records = _parquet_records(files)
    else:
        kinds, records = None, _tfrecord_records(files)
    out = ctx.outputs["examples"]
    sink = _Sink(out.uri, p)
    try:
        for n, (path, row, record) in enumerate(records, start=1):
            if n % 10000 == 0:
                ctx.report(f"{n} rows read")
            if isinstance(record, DataError):
                sink.bad(record)
                continue
            for name, expression in derived.items():
                record[name] = expression.evaluate(record)
            if p.label is not None and record.get(p.label) is None:
                sink.bad(DataError(path, row, p.label, "has no label value.",
                                   "drop the row, fill the label, or use bad_rows='quarantine'."))
                continue
            split = _choose_split(p, path, row, record)
            if isinstance(split, DataError):
                sink.bad(split)
                continue
            sink.write(split, record)
    finally:
        sink.close()
    out.properties.update(
        split_names=list(p.split.names), span=span, version=version, files=files,
        row_counts=sink.counts, rows_in=sink.rows_in, quarantined=sink.quarantined,
        column_kinds={**(kinds or {}), **{n: e.kind for n, e in derived.items()}})
    if sink.quarantined:
        out.properties["quarantine_file"] = QUARANTINE_FILE  # relative: the directory is renamed on publish
    if not sum(sink.counts.values()):
        raise ComponentError(
            f"ExampleGen wrote no rows from {files}: all {sink.rows_in} rows were quarantined "
            f"(see {sink.quarantine_path}). How to fix: correct the data.")


class _Sink:
    """Writes rows to per-split gzip TFRecords and bad rows to quarantine/rows.jsonl."""

    def __init__(self, uri: str, p: ExampleGenParameters):
        import tensorflow as tf

        self._tf, self._p = tf, p
        self._writers = {}
        for name in p.split.names:
            os.makedirs(os.path.join(uri, f"Split-{name}"))
            self._writers[name] = tf.io.TFRecordWriter(
                os.path.join(uri, f"Split-{name}", "data-00000-of-00001.gz"), options="GZIP")
        self.counts = {name: 0 for name in p.split.names}
        self.rows_in = self.quarantined = 0
        self.quarantine_path = os.path.join(uri, QUARANTINE_FILE)
        self._quarantine = None

    def write(self, split: str, record: Record) -> None:
        self.rows_in += 1
        self._writers[split].write(_to_example(self._tf, record).SerializeToString())
        self.counts[split] += 1

    def bad(self, error: DataError) -> None:
        self.rows_in += 1
        if self._p.bad_rows == "fail":
            raise error
        if self._quarantine is None:
            os.makedirs(os.path.dirname(self.quarantine_path), exist_ok=True)
            self._quarantine = open(self.quarantine_path, "w")  # noqa: SIM115
        self._quarantine.write(json.dumps({"file": error.path, "row": error.row, "column": error.column,
                                           "problem": error.problem}) + "\n")
        self.quarantined += 1

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        if self._quarantine is not None:
            self._quarantine.close()


def _to_example(tf: Any, record: Record) -> Any:
    example = tf.train.Example()
    feature = example.features.feature
    for name, value in record.items():
        if value is None:
            continue
        values = value if isinstance(value, list) else [value]
        if not values:
            continue
        first = values[0]
        if isinstance(first, (bytes, str)):
            feature[name].bytes_list.value.extend(v.encode() if isinstance(v, str) else v for v in values)
        elif isinstance(first, float):
            feature[name].float_list.value.extend(values)
        else:
            feature[name].int64_list.value.extend(int(v) for v in values)
    return example


def _choose_split(p: ExampleGenParameters, path: str, row: int, record: Record) -> str | DataError:
    split = p.split
    if split.partition_feature is not None:
        value = record.get(split.partition_feature)
        value = value.decode() if isinstance(value, bytes) else None if value is None else str(value)
        if value not in split.names:
            return DataError(path, row, split.partition_feature,
                             f"has value {value!r}, which is not a split name in {list(split.names)}.",
                             "fix the value or the split names.")
        return value
    if split.hash_key is not None:
        key = repr(record.get(split.hash_key)).encode()
    else:
        key = json.dumps(record, sort_keys=True, default=repr).encode()
    bucket = int.from_bytes(hashlib.md5(key).digest()[:8], "big") % sum(split.ratios)
    for name, ratio in zip(split.names, split.ratios):
        if bucket < ratio:
            return name
        bucket -= ratio
    return split.names[-1]


# CSV -------------------------------------------------------------------------
def _required_columns(p: ExampleGenParameters, derived: dict[str, Expression]) -> list[str]:
    required = list(p.column_types) + [c for e in derived.values() for c in e.columns]
    if p.label is not None and p.label not in derived:
        required.append(p.label)
    required += [c for c in (p.split.hash_key, p.split.partition_feature) if c]
    return list(dict.fromkeys(c for c in required if c not in derived))


def _check_header(path: str, header: list[str], expected: list[str] | None, required: list[str]) -> None:
    if expected is not None:
        for column in expected:
            if column not in header:
                raise DataError(path, 1, column, f"missing column {column!r}; the header has {header}.",
                                "add the column, or fix ExampleGen(columns=...).")
        for column in header:
            if column not in expected:
                raise DataError(path, 1, column, f"extra column {column!r}; expected exactly {expected}.",
                                "drop the column, or add it to ExampleGen(columns=...).")
    for column in required:
        if column not in header:
            raise DataError(path, 1, column,
                            f"missing column {column!r} (declared in column_types, label, split or a "
                            f"derived column); the header has {header}.", "add the column or fix the declaration.")


def _csv_kinds(files: list[str], p: ExampleGenParameters, derived: dict[str, Expression]) -> dict[str, str]:
    """Checks every header and infers undeclared kinds: int, else float, else string."""
    expected = list(p.columns) if p.columns is not None else None
    required = _required_columns(p, derived)
    can: dict[str, set[str]] = {}
    for path in files:
        reader = CsvReader(path)
        _check_header(path, reader.header, expected, required)
        expected = reader.header
        for column in reader.header:
            can.setdefault(column, {"int", "float"})
        undeclared = [(i, c) for i, c in enumerate(reader.header) if c not in p.column_types]
        for _, fields in reader.rows():
            if isinstance(fields, DataError):
                continue
            for i, column in undeclared:
                value = fields[i].strip()
                if not value or not can[column]:
                    continue
                if "int" in can[column] and not _parses(int, value):
                    can[column].discard("int")
                if "float" in can[column] and not _parses(float, value):
                    can[column].discard("float")
    kinds = {}
    for column, possible in can.items():
        kinds[column] = p.column_types.get(column) or (
            "int" if "int" in possible else "float" if "float" in possible else "string")
    return kinds


def _parses(kind: type, value: str) -> bool:
    try:
        kind(value)
    except ValueError:
        return False
    return True


def _csv_records(files: list[str], kinds: dict[str, str]) -> Iterator[tuple[str, int, Record | DataError]]:
    for path in files:
        reader = CsvReader(path)
        header = reader.header
        for row, fields in reader.rows():
            if isinstance(fields, DataError):
                yield path, row, fields
                continue
            record: Record = {}
            error = None
            for column, raw in zip(header, fields):
                value = raw.strip()
                if not value:
                    record[column] = None
                    continue
                kind = kinds[column]
                try:
                    record[column] = _convert(kind, value)
                except ValueError as e:
                    error = DataError(path, row, column, str(e),
                                      "fix the value, declare the column as string, or quarantine bad rows.")
                    break
            yield path, row, error or record


def _convert(kind: str, value: str) -> Any:
    if kind == "string":
        return value
    try:
        number = int(value) if kind == "int" else float(value)
    except ValueError:
        raise ValueError(f"{value!r} is not {'an int' if kind == 'int' else 'a float'}.") from None
    if kind == "float" and not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number (NaN and inf are rejected).")
    return number


# Parquet and TFRecord ---------------------------------------------------------
def _parquet_records(files: list[str]) -> tuple[dict[str, str], Iterator]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    kinds: dict[str, str] = {}
    for path in files:
        for field in pq.read_schema(path):
            t = field.type
            kind = ("int" if pa.types.is_integer(t) or pa.types.is_boolean(t) else
                    "float" if pa.types.is_floating(t) else
                    "string" if pa.types.is_string(t) or pa.types.is_binary(t) or pa.types.is_large_string(t)
                    else None)
            if kind is None:
                raise DataError(path, None, field.name, f"has Parquet type {t}; expected a scalar int, "
                                "float, bool or string column.", "flatten or cast the column.")
            kinds[field.name] = kind

    def records() -> Iterator:
        for path in files:
            row = 0
            for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
                for record in batch.to_pylist():
                    row += 1
                    error = None
                    for column, value in record.items():
                        if isinstance(value, float) and not math.isfinite(value):
                            error = DataError(path, row, column, f"{value!r} is not a finite number.",
                                              "fix the value or quarantine bad rows.")
                            break
                        if isinstance(value, bool):
                            record[column] = int(value)
                    yield path, row, error or record
    return kinds, records()


def _tfrecord_records(files: list[str]) -> Iterator:
    import tensorflow as tf

    for path in files:
        with open(path, "rb") as f:
            compression = "GZIP" if f.read(2) == b"\x1f\x8b" else ""
        for row, serialized in enumerate(tf.data.TFRecordDataset(path, compression_type=compression)
                                         .as_numpy_iterator(), start=1):
            try:
                example = tf.train.Example.FromString(serialized)
            except Exception:  # noqa: BLE001 - protobuf raises DecodeError
                yield path, row, DataError(path, row, None, "is not a serialized tf.Example.",
                                           "write tf.train.Example protos.")
                continue
            record: Record = {}
            for name, feature in example.features.feature.items():
                kind = feature.WhichOneof("kind")
                values = list(getattr(feature, kind).value) if kind else []
                record[name] = values[0] if len(values) == 1 else (values or None)
            yield path, row, record
