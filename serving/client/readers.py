"""Reading example rows for the CLI from CSV, JSON Lines or TFRecord files.

Without a schema, each CSV cell's type is guessed (``360`` is an int, ``5.85`` a
float). A model's parse spec is strict about dtypes, so pass the pipeline's
tensorflow_metadata Schema (``schema.pbtxt``, as TFX's taxi client did) to type
every feature as the model expects: INT -> int64, FLOAT -> float, BYTES -> bytes.
"""

from __future__ import annotations

import csv
import json
import os
from typing import Any

import tensorflow as tf
from tensorflow.core.example import example_pb2

Row = dict[str, Any]


def _cell(text: str) -> Any:
    text = text.strip()
    if text.startswith("["):
        return json.loads(text)
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _read_csv(path: str, types: dict[str, str] | None = None) -> list[Row]:
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        for line, record in enumerate(csv.DictReader(f), start=2):
            row = {}
            for key, text in record.items():
                # An empty cell is a missing value: the feature is left out of the
                # example (as CSV ExampleGen does), not sent as an empty string.
                if text is None or text.strip() == "":
                    continue
                try:
                    row[key] = _typed(text.strip(), types[key]) if types and key in types else _cell(text)
                except (json.JSONDecodeError, AttributeError, ValueError) as e:
                    raise ValueError(f"{path}, row {line}, column {key!r}: cannot read {text!r}: {e}") from e
            rows.append(row)
    return rows


def _typed(value: Any, kind: str) -> Any:
    """One value (or list) converted to the schema type INT, FLOAT or BYTES."""
    if isinstance(value, list):
        return [_typed(v, kind) for v in value]
    if isinstance(value, str) and value.startswith("[") and kind != "BYTES":
        return _typed(json.loads(value), kind)
    if kind == "BYTES":
        return value if isinstance(value, (str, bytes)) else str(value)
    if kind == "FLOAT":
        return float(value)
    number = float(value)
    if not number.is_integer():
        raise ValueError(f"the schema says INT; got {value!r}. How to fix: give a whole number")
    return int(number)


def schema_types(path: str) -> dict[str, str]:
    """Feature name -> ``INT``/``FLOAT``/``BYTES`` from a tensorflow_metadata Schema text file."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = schema_pb2.Schema()
    try:
        with open(path, encoding="utf-8") as f:
            text_format.Parse(f.read(), schema)
    except OSError as e:
        raise ValueError(f"Cannot read the schema {path!r}: {e.strerror}.") from e
    except text_format.ParseError as e:
        raise ValueError(f"{path} is not a Schema in text format: {e}. How to fix: pass the "
                         "schema.pbtxt written by the pipeline's SchemaGen.") from e
    return {f.name: schema_pb2.FeatureType.Name(f.type) for f in schema.feature
            if f.type in (schema_pb2.INT, schema_pb2.FLOAT, schema_pb2.BYTES)}


def _read_jsonl(path: str) -> list[Row]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for line, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}, line {line}: invalid JSON: {e.msg}.") from e
            if not isinstance(row, dict):
                raise ValueError(f"{path}, line {line}: expected a JSON object per line.")
            rows.append(row)
    return rows


def _example_row(example: example_pb2.Example) -> Row:
    row = {}
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        values = list(getattr(feature, kind).value) if kind else []
        row[name] = values[0] if len(values) == 1 else values
    return row


def _read_tfrecord(path: str) -> list[Row]:
    rows = []
    for i, record in enumerate(tf.data.TFRecordDataset(path)):
        example = example_pb2.Example()
        try:
            example.ParseFromString(record.numpy())
        except Exception as e:  # noqa: BLE001 - protobuf raises DecodeError.
            raise ValueError(f"{path}, record {i}: not a serialized tf.Example: {e}") from e
        rows.append(_example_row(example))
    return rows


_READERS = {".csv": _read_csv, ".jsonl": _read_jsonl, ".json": _read_jsonl,
            ".tfrecord": _read_tfrecord, ".tfrecords": _read_tfrecord}


def read_rows(path: str, schema: str | None = None) -> list[Row]:
    """Rows (feature name -> value or list) from ``.csv``, ``.jsonl`` or ``.tfrecord``.

    Args:
        path: The rows file.
        schema: Optional ``schema.pbtxt``; its features get the schema's types
            (others keep the guessed type).

    Example:
        >>> read_rows("rows.jsonl")  # doctest: +SKIP
        [{'x': [1.0, 2.0, 3.0]}]
    """
    extension = os.path.splitext(path)[1].lower()
    reader = _READERS.get(extension)
    if reader is None:
        raise ValueError(
            f"Cannot read examples from {path!r}: expected a .csv, .jsonl or .tfrecord file.")
    types = schema_types(schema) if schema else None
    if reader is _read_csv:
        rows = _read_csv(path, types)
    else:
        rows = reader(path)
        if types:
            for i, row in enumerate(rows):
                for key in row.keys() & types.keys():
                    try:
                        row[key] = _typed(row[key], types[key])
                    except (TypeError, ValueError) as e:
                        raise ValueError(f"{path}, example {i}, feature {key!r}: {e}") from e
    if not rows:
        raise ValueError(f"{path} holds no examples.")
    return rows


def columns(rows: list[Row]) -> dict[str, list]:
    """Row dicts -> one list per key (for Predict); rows must share keys."""
    keys = list(rows[0])
    for i, row in enumerate(rows):
        if list(row) != keys and set(row) != set(keys):
            raise ValueError(f"Row {i} has keys {sorted(row)}; expected {sorted(keys)}.")
    return {k: [row[k] for row in rows] for k in keys}
