"""Per-file record readers (CSV, Parquet, TFRecord), kind inference, conversion and splitting.

Readers yield ``(path, row, record)`` where record is a dict of python values
(None = missing) or the ``DataError`` that makes the row bad.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from typing import Any

from components.base import DataError
from components.example_gen.component import ExampleGenParameters
from components.example_gen.csv_reader import CsvReader
from components.example_gen.expressions import Expression

Record = dict[str, Any]


def to_example(tf: Any, record: Record) -> Any:
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


def choose_split(p: ExampleGenParameters, path: str, row: int, record: Record) -> str | DataError:
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


def csv_kinds(files: list[str], p: ExampleGenParameters, derived: dict[str, Expression]) -> dict[str, str]:
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


def csv_file_records(path: str, kinds: dict[str, str]) -> Iterator[tuple[str, int, Record | DataError]]:
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
            try:
                record[column] = _convert(kinds[column], value)
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
def parquet_kinds(files: list[str]) -> dict[str, str]:
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
    return kinds


def parquet_file_records(path: str) -> Iterator[tuple[str, int, Record | DataError]]:
    import pyarrow.parquet as pq

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


def tfrecord_file_records(path: str) -> Iterator[tuple[str, int, Record | DataError]]:
    import tensorflow as tf

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
