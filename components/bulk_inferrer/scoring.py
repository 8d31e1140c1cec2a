"""Scoring in Beam: read each split's TFRecords, batch them, call the signature, write the outputs.

One ``ScoreExamples`` DoFn scores every split (the split travels with each record), so a
worker loads the SavedModel once, in ``setup``, not once per split; in the executor's own
process it reuses the model the probe loaded (`load_signature`). Per split it writes
``prediction_logs-*.gz`` and, when asked, ``predictions.csv`` / ``predictions.parquet``.

A model error on a batch (an example the signature cannot parse, say) is traced to its
example by scoring that batch's examples one by one, and reported as a `DataError` naming
the Examples artifact, the split, the file and the example's key columns.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import apache_beam as beam
import numpy as np

from components.base import ComponentError, DataError
from components.beam_utils import component_error_in, quiet_component_error_tracebacks
from components.bulk_inferrer.component import CSV, PARQUET
from components.bulk_inferrer.prediction_logs import prediction_logs
from components.bulk_inferrer.signature import ScoringSignature
from components.bulk_inferrer.tables import (
    Column, PredictionLayout, arrow_schema, csv_header, csv_text, key_values, record_batch)

NAMESPACE = "BulkInferrer"
LOGS_FILE, TABLE_FILE = "prediction_logs", "predictions"
_LOG = logging.getLogger(__name__)
_REMOTE_ERROR = re.compile(r"components\.base\.(?:DataError|ComponentError): (.+?)(?: \[while running '.*)?$",
                           re.MULTILINE)
FIX = ("score Examples that carry the raw features the model was trained on (the columns of the "
       "ExampleGen that fed its Transform), or pick the model trained for this data")


@dataclasses.dataclass(frozen=True)
class Scoring:
    """What every worker needs to score: the model, the signature, and the table's columns.

    Attributes:
        model_path: The serving SavedModel directory.
        signature: The checked signature to call.
        splits: The split names, by the index that travels with each record.
        examples_label: How errors name the Examples artifact, e.g. ``Examples 3 (/runs/...)``.
        key_columns: The key columns of the tables (empty without tables).
        layout: The prediction columns, or None when no table is written.
    """

    model_path: str
    signature: ScoringSignature
    splits: tuple[str, ...]
    examples_label: str
    key_columns: tuple[Column, ...] = ()
    layout: PredictionLayout | None = None

    @property
    def columns(self) -> tuple[Column, ...]:
        return (*self.key_columns, *(self.layout.columns if self.layout else ()))


class LoadedSignature:
    """A SavedModel loaded by ``tf.saved_model.load``, and its signature ``name`` (``function``),
    which works only while the model is alive."""

    def __init__(self, model_path: str, name: str):
        import tensorflow as tf

        self.model = tf.saved_model.load(model_path)
        self.function = self.model.signatures[name]


_LOADED: weakref.WeakValueDictionary[tuple[str, str], LoadedSignature] = weakref.WeakValueDictionary()
_LOADED_LOCK = threading.Lock()


def load_signature(model_path: str, name: str) -> LoadedSignature:
    """The signature, loaded at most once per process while anyone holds it.

    The executor's probe holds it while its pipeline runs, so the DoFn of an in-process
    runner (the DirectRunner's default) reuses that load instead of paying it (2-3 s for the
    taxi model) again; a worker in another process loads its own, once, in ``setup``.
    """
    with _LOADED_LOCK:
        loaded = _LOADED.get((model_path, name))
        if loaded is None:
            loaded = _LOADED[(model_path, name)] = LoadedSignature(model_path, name)
        return loaded


def call(function: Any, input_key: str, serialized: Sequence[bytes]) -> dict[str, np.ndarray]:
    """The signature's outputs, as numpy arrays, for a batch of serialized tf.Examples."""
    import tensorflow as tf

    outputs = function(**{input_key: tf.constant(list(serialized), dtype=tf.string)})
    return {key: value.numpy() for key, value in outputs.items()}


_TF_NOISE = ("Graph execution error:", "Detected at node", "<stack traces unavailable>", "[[")


def tf_error_line(error: BaseException) -> str:
    """The line of a TensorFlow error that says what is wrong (not "Graph execution error:" or a node trace).

    Example:
        >>> tf_error_line(ValueError("Graph execution error:\\n\\nName: <unknown>, Feature: fare is required"))
        'Feature: fare is required'
    """
    text = getattr(error, "message", None) or str(error)
    lines = [line.strip() for line in text.splitlines()]
    meaningful = [line for line in lines if line and not line.startswith(_TF_NOISE)]
    line = (meaningful or lines or [type(error).__name__])[0]
    return line.removeprefix("Name: <unknown>, ")


def _example_keys(record: bytes, key_columns: Sequence[Column]) -> str:
    """`` (key columns: a=1, b='x')`` for an error message; empty without key columns."""
    if not key_columns:
        return ""
    import tensorflow as tf

    try:
        values = key_values([tf.train.Example.FromString(record)], key_columns)
    except Exception:  # noqa: BLE001 - the message then goes without the keys
        return ""
    return " (key columns: " + ", ".join(f"{k}={v[0]!r}" for k, v in values.items()) + ")"


def score_batch(function: Any, scoring: Scoring, batch: Sequence[tuple[int, str, bytes]]) -> dict[str, np.ndarray]:
    """Calls the signature on ``batch`` ((split index, file, record) triples).

    Raises:
        DataError: the model failed on the batch; names the first example it fails on alone.
    """
    import tensorflow as tf

    serialized = [record for _, _, record in batch]
    try:
        return call(function, scoring.signature.input_key, serialized)
    except tf.errors.OpError as batch_error:
        culprit, error = batch[0], batch_error
        for item in batch:
            try:
                call(function, scoring.signature.input_key, [item[2]])
            except tf.errors.OpError as e:
                culprit, error = item, e
                break
        split, path, record = scoring.splits[culprit[0]], culprit[1], culprit[2]
        raise DataError(
            path, None, None,
            f"split {split!r} of {scoring.examples_label}: signature {scoring.signature.name!r} of the model "
            f"failed on an example{_example_keys(record, scoring.key_columns)}: {tf_error_line(error)}",
            FIX + ".") from None


class ScoreExamples(beam.DoFn):
    """Batches of (split index, file, serialized tf.Example) -> per split: PredictionLogs
    (tagged ``logs<i>``) and, with tables, one Arrow RecordBatch per batch (``table<i>``)."""

    def __init__(self, scoring: Scoring):
        self._scoring = scoring
        self._loaded = self._rows = None

    def setup(self) -> None:
        self._loaded = load_signature(self._scoring.model_path, self._scoring.signature.name)
        self._rows = {name: beam.metrics.Metrics.counter(NAMESPACE, f"rows_{name}") for name in self._scoring.splits}

    def process(self, batch: list[tuple[int, str, bytes]]) -> Iterator[Any]:
        scoring = self._scoring
        outputs = score_batch(self._loaded.function, scoring, batch)
        serialized = [record for _, _, record in batch]
        logs = prediction_logs(scoring.signature, serialized, outputs)
        table = self._table(batch, outputs) if scoring.layout is not None else None
        indices = np.array([split for split, _, _ in batch])
        for split in np.unique(indices).tolist():
            rows = np.flatnonzero(indices == split)
            self._rows[scoring.splits[split]].inc(len(rows))
            for row in rows.tolist():
                yield beam.pvalue.TaggedOutput(f"logs{split}", logs[row])
            if table is not None:
                yield beam.pvalue.TaggedOutput(f"table{split}", record_batch(
                    scoring.columns, {name: values[rows] for name, values in table.items()}))

    def teardown(self) -> None:
        self._loaded = None

    def _table(self, batch: list[tuple[int, str, bytes]], outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        import tensorflow as tf

        scoring = self._scoring
        split, path = scoring.splits[batch[0][0]], batch[0][1]
        try:
            values = scoring.layout.values(outputs, len(batch))
        except ValueError as e:
            raise DataError(path, None, None, f"split {split!r} of {scoring.examples_label}: {e}",
                            "score with a signature whose outputs have the same shape for every example.") from None
        if scoring.key_columns:
            examples = [tf.train.Example.FromString(record) for _, _, record in batch]
            try:
                keys = key_values(examples, scoring.key_columns)
            except ValueError:  # name the file of the example at fault
                for (split_index, path, record), example in zip(batch, examples):
                    try:
                        key_values([example], scoring.key_columns)
                    except ValueError as e:
                        raise DataError(path, None, None, f"split {scoring.splits[split_index]!r} of "
                                        f"{scoring.examples_label}: {e}",
                                        "pick key columns that hold one value of one type per example.") from None
                raise
            for name, column in keys.items():
                array = np.empty(len(column), object)
                array[:] = column
                values[name] = array
        return values


def write_outputs(pipeline: Any, scoring: Scoring, files: Mapping[str, Sequence[str]], split_uris: Mapping[str, str],
                  *, output_formats: Sequence[str], batch_size: int) -> None:
    """Adds the read -> batch -> score -> write steps of every split to ``pipeline``."""
    reads = []
    for index, split in enumerate(scoring.splits):
        reads.append(
            pipeline
            | f"Files[{split}]" >> beam.Create(list(files[split]))
            | f"Read[{split}]" >> beam.io.ReadAllFromTFRecord(with_filename=True)
            | f"Tag[{split}]" >> beam.Map(lambda pair, index=index: (index, pair[0], pair[1])))
    tags = [f"{kind}{i}" for i in range(len(scoring.splits)) for kind in ("logs", "table")]
    scored = (reads
              | "Flatten" >> beam.Flatten(pipeline=pipeline)
              | "Batch" >> beam.BatchElements(min_batch_size=batch_size, max_batch_size=batch_size)
              | "Score" >> beam.ParDo(ScoreExamples(scoring)).with_outputs(*tags))
    gzip = beam.io.filesystem.CompressionTypes.GZIP
    for index, split in enumerate(scoring.splits):
        directory = split_uris[split]
        os.makedirs(directory, exist_ok=True)
        _ = scored[f"logs{index}"] | f"WriteLogs[{split}]" >> beam.io.WriteToTFRecord(
            os.path.join(directory, LOGS_FILE), file_name_suffix=".gz", compression_type=gzip)
        table = scored[f"table{index}"]
        if CSV in output_formats:
            _ = (table
                 | f"Csv[{split}]" >> beam.Map(csv_text)
                 | f"WriteCsv[{split}]" >> beam.io.WriteToText(
                     os.path.join(directory, TABLE_FILE), file_name_suffix=".csv", shard_name_template="",
                     header=csv_header(scoring.columns)))
        if PARQUET in output_formats:
            _ = (table
                 | f"Arrow[{split}]" >> beam.Map(_arrow_table)
                 | f"WriteParquet[{split}]" >> beam.io.WriteToParquetBatched(
                     os.path.join(directory, TABLE_FILE), schema=arrow_schema(scoring.columns),
                     file_name_suffix=".parquet", shard_name_template=""))


def _arrow_table(batch: Any) -> Any:
    import pyarrow as pa

    return pa.Table.from_batches([batch])


@contextlib.contextmanager
def component_errors_surface() -> Iterator[None]:
    """Runs a Beam pipeline so that a ComponentError raised in a DoFn reaches the caller as itself.

    Beam re-raises a DoFn's exception wrapped (a RuntimeError naming the step); the
    ComponentError stays in the chain and is raised again, alone.
    """
    try:
        with quiet_component_error_tracebacks():
            yield
    except Exception as e:  # noqa: BLE001 - re-raised below, as the user-facing error when there is one
        cause = component_error_in(e)
        if cause is not None:
            raise cause from None
        # A worker in another process (--direct_running_mode=multi_processing, a remote runner)
        # sends its exception back as text: the ComponentError's line is in it.
        match = _REMOTE_ERROR.search(str(e))
        if match:
            raise ComponentError(match.group(1).strip()) from e
        raise
