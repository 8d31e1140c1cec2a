"""Reading example rows for the CLI from CSV, JSON Lines or TFRecord files."""

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


def _read_csv(path: str) -> list[Row]:
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        for line, record in enumerate(csv.DictReader(f), start=2):
            try:
                # An empty cell is a missing value: the feature is left out of the
                # example (as CSV ExampleGen does), not sent as an empty string.
                rows.append({k: _cell(v) for k, v in record.items()
                             if v is not None and v.strip() != ""})
            except (json.JSONDecodeError, AttributeError) as e:
                raise ValueError(f"{path}, row {line}: cannot read a cell: {e}") from e
    return rows


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


def read_rows(path: str) -> list[Row]:
    """Rows (feature name -> value or list) from ``.csv``, ``.jsonl`` or ``.tfrecord``.

    Example:
        >>> read_rows("rows.jsonl")  # doctest: +SKIP
        [{'x': [1.0, 2.0, 3.0]}]
    """
    extension = os.path.splitext(path)[1].lower()
    reader = _READERS.get(extension)
    if reader is None:
        raise ValueError(
            f"Cannot read examples from {path!r}: expected a .csv, .jsonl or .tfrecord file.")
    rows = reader(path)
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
