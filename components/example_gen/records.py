"""Per-file record readers (CSV, Parquet, TFRecord), kind inference, conversion and splitting.

Readers yield ``(path, row, record)`` where record is a dict of python values
(None = missing) or the ``DataError`` that makes the row bad; the CSV reader adds
the physical lines the row spanned.

CSV kind inference (columns not in ``column_types``), over every non-empty value:
``int`` if all numbers are integers, else ``float``; NaN/inf never decide the kind
(they are bad values in any numeric column). A column stays numeric when at most
``ODD_VALUE_SHARE`` (1%) of its values are not numbers (one ``noon`` among ints):
those values make their rows bad rows. Past that share the column is ``string``.
Every such decision that is not clear-cut is returned as a warning.
"""

from __future__ import annotations

import dataclasses
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
SHOWN_CHARS = 60


def show(value: Any) -> str:
    """``repr(value)``, cut to about SHOWN_CHARS characters so a 10 MB field never lands in a message."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]}... ({len(str(value)):,} characters)"


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
                             f"has value {show(value)}, which is not a split name in {list(split.names)}.",
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
    names = set(header)
    if expected is not None:
        expected_names = set(expected)
        for column in expected:
            if column not in names:
                raise DataError(path, 1, column, f"missing column {column!r}; the header has {header}.",
                                "add the column, or fix ExampleGen(columns=...).")
        for column in header:
            if column not in expected_names:
                raise DataError(path, 1, column, f"extra column {column!r}; expected exactly {expected}.",
                                "drop the column, or add it to ExampleGen(columns=...).")
    for column in required:
        if column not in names:
            raise DataError(path, 1, column,
                            f"missing column {column!r} (declared in column_types, label, split or a "
                            f"derived column); the header has {header}.", "add the column or fix the declaration.")


ODD_VALUE_SHARE = 0.01
"""A column whose non-empty values are numbers except for at most this share keeps the numeric kind."""
_NOT_NUMBER_START = frozenset("0123456789+-.iInN")  # int()/float() accept nothing else first (after strip)


@dataclasses.dataclass
class _Votes:
    """What one column's non-empty values parse as, with the first odd value of each sort."""

    ints: int = 0
    floats: int = 0
    non_finite: int = 0
    others: int = 0
    first_other: tuple[str, int, str] | None = None
    first_non_finite: tuple[str, int, str] | None = None

    def add(self, path: str, row: int, value: str) -> None:
        if value[0] in _NOT_NUMBER_START:
            try:
                int(value)
                self.ints += 1
                return
            except ValueError:
                pass
            try:
                number = float(value)
            except ValueError:
                pass
            else:
                if math.isfinite(number):
                    self.floats += 1
                else:
                    self.non_finite += 1
                    self.first_non_finite = self.first_non_finite or (path, row, value)
                return
        self.others += 1
        self.first_other = self.first_other or (path, row, value)

    def kind(self) -> str:
        numbers = self.ints + self.floats
        total = numbers + self.non_finite + self.others
        if self.others > ODD_VALUE_SHARE * total or (not numbers and self.others):
            return "string"
        return "float" if self.floats or (self.non_finite and not self.ints) else "int"


@dataclasses.dataclass
class CsvInference:
    """Kinds of every CSV column (declared or inferred), the inferred ones, and warnings to show."""

    kinds: dict[str, str]
    inferred: frozenset[str]
    warnings: list[str]


def _inference_warning(column: str, kind: str, votes: _Votes) -> str | None:
    numbers = votes.ints + votes.floats
    total = numbers + votes.non_finite + votes.others
    if kind != "string" and votes.others:
        path, row, value = votes.first_other
        return (f"column {column!r}: inferred {kind} although {votes.others} of {total} values are not numbers "
                f"(first: {show(value)} at {path} row {row}); those rows are bad rows (bad_rows decides). "
                f"To read the column as text, declare column_types={{{column!r}: 'string'}}.")
    if kind != "string" and votes.non_finite:
        path, row, value = votes.first_non_finite
        return (f"column {column!r}: inferred {kind}; its {votes.non_finite} NaN/inf value(s) (first: {show(value)} "
                f"at {path} row {row}) are bad rows and do not change the kind.")
    if kind == "string" and numbers >= votes.others:
        path, row, value = votes.first_other
        return (f"column {column!r}: inferred string although {numbers} of {total} values are numbers: "
                f"{votes.others} are not (first: {show(value)} at {path} row {row}), more than the "
                f"{ODD_VALUE_SHARE:.0%} a numeric column may have. Declare column_types={{{column!r}: 'int'}} "
                f"(or 'float') to make the others bad rows, or {{{column!r}: 'string'}} to silence this.")
    return None


def csv_kinds(files: list[str], p: ExampleGenParameters, derived: dict[str, Expression]) -> CsvInference:
    """Checks every header and infers undeclared kinds (see ``ExampleGen``'s inference rule)."""
    expected = list(p.columns) if p.columns is not None else None
    required = _required_columns(p, derived)
    votes: dict[str, _Votes] = {}
    for path in files:
        reader = CsvReader(path)
        _check_header(path, reader.header, expected, required)
        expected = reader.header
        undeclared = [(i, votes.setdefault(c, _Votes())) for i, c in enumerate(reader.header)
                      if c not in p.column_types]
        for row, fields in reader.rows():
            if isinstance(fields, DataError):
                continue
            for i, column_votes in undeclared:
                value = fields[i].strip()
                if value:
                    column_votes.add(path, row, value)
    kinds = {column: p.column_types[column] for column in expected or () if column in p.column_types}
    warnings = []
    for column, column_votes in votes.items():
        kinds[column] = column_votes.kind()
        warning = _inference_warning(column, kinds[column], column_votes)
        if warning:
            warnings.append(warning)
    return CsvInference({c: kinds[c] for c in expected or kinds}, frozenset(votes), warnings)


def csv_file_records(path: str, kinds: dict[str, str], inferred: frozenset[str] = frozenset()
                     ) -> Iterator[tuple[str, int, Record | DataError, int]]:
    """(path, row, record or DataError, physical lines of the row) per data row."""
    reader = CsvReader(path)
    header = reader.header
    for row, fields in reader.rows():
        if isinstance(fields, DataError):
            yield path, row, fields, reader.lines
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
                problem = str(e)
                if column in inferred:
                    problem = problem.rstrip(".") + f" (the column was inferred {kinds[column]} from its other values)."
                error = DataError(path, row, column, problem,
                                  "fix the value, declare the column as string, or quarantine bad rows.")
                break
        yield path, row, error or record, reader.lines


def _convert(kind: str, value: str) -> Any:
    if kind == "string":
        return value
    try:
        number = int(value) if kind == "int" else float(value)
    except ValueError:
        try:
            finite = math.isfinite(float(value))
        except ValueError:
            finite = True
        if not finite:
            raise ValueError(f"{show(value)} is not a finite number (NaN and inf are rejected).") from None
        raise ValueError(f"{show(value)} is not {'an int' if kind == 'int' else 'a float'}.") from None
    if kind == "float" and not math.isfinite(number):
        raise ValueError(f"{show(value)} is not a finite number (NaN and inf are rejected).")
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
