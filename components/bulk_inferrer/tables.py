"""The CSV/Parquet tables of predictions: which columns, and one Arrow RecordBatch per model call.

Columns are the key columns (raw tf.Example features, in the order asked for), then the
prediction columns, named after the signature's outputs:

* classify: ``score_<label>`` per class (``score_<i>`` without a ``classes`` output) and
  ``predicted_class``, the label of the highest score (``class_<i>`` per class without scores);
* regress: ``prediction``;
* predict: ``<output>`` for an output with one value per example, ``<output>_<i>`` for each
  value of a longer one (flattened in row-major order).

The layout is learned from the model's answer to the first examples (`PredictionLayout.from_outputs`);
every later batch must answer with the same classes and sizes, or the table would be mislabeled.

Example:
    >>> import numpy as np
    >>> layout = PredictionLayout.from_outputs("classify", {
    ...     "classes": np.array([[b"0", b"1"]], dtype=object), "scores": np.array([[0.25, 0.75]], np.float32)}, 1)
    >>> [c.name for c in layout.columns]
    ['score_0', 'score_1', 'predicted_class']
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from components.bulk_inferrer.signature import CLASSIFY, REGRESS

INT, FLOAT, DOUBLE, STRING, BOOL = "int", "float", "double", "string", "bool"
# ExampleGen's column_kinds (and a tf.Example's value lists) -> column kind.
EXAMPLE_KINDS = {"int": INT, "float": FLOAT, "string": STRING}
FEATURE_LIST_KINDS = {"int64_list": INT, "float_list": FLOAT, "bytes_list": STRING}


@dataclasses.dataclass(frozen=True)
class Column:
    """One table column: its name, its kind (INT, FLOAT, DOUBLE, STRING, BOOL), and for a
    prediction column the output it comes from and the index in that output's flattened row."""

    name: str
    kind: str
    output: str = ""
    index: int = 0


def _kind_of(array: np.ndarray) -> str:
    if array.dtype == object or array.dtype.kind in "SU":
        return STRING
    if array.dtype.kind == "b":
        return BOOL
    if array.dtype.kind in "iu":
        return INT
    if array.dtype.kind == "f":
        return FLOAT if array.dtype.itemsize <= 4 else DOUBLE
    raise TypeError(f"an output of dtype {array.dtype} cannot go into a table")


def as_text(value: Any) -> str:
    """Bytes as UTF-8 text (undecodable bytes replaced), anything else through str()."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _as_rows(array: np.ndarray, n: int, name: str) -> np.ndarray:
    """``array`` as [n, values per example]; a scalar per example becomes one column."""
    if array.ndim == 0 or array.shape[0] != n:
        raise ValueError(f"output {name!r} has shape {list(array.shape)}; expected [{n}, ...] for {n} examples "
                         "(one entry per example)")
    return array.reshape(n, -1)


@dataclasses.dataclass(frozen=True)
class PredictionLayout:
    """The prediction columns of one signature, and the class labels a classify signature answered."""

    method: str
    columns: tuple[Column, ...]
    labels: tuple[str, ...] = ()

    @classmethod
    def from_outputs(cls, method: str, outputs: Mapping[str, np.ndarray], n: int) -> PredictionLayout:
        """The layout of the signature's answer ``outputs`` (numpy, batch first) to ``n`` examples.

        Raises:
            ValueError: an output without one entry per example, or classes and scores that disagree.
            TypeError: an output of a dtype no table column can hold.
        """
        if method == CLASSIFY:
            scores, classes = outputs.get("scores"), outputs.get("classes")
            labels = tuple(as_text(v) for v in _as_rows(classes, n, "classes")[0]) if classes is not None else ()
            if scores is not None:
                width = _as_rows(scores, n, "scores").shape[1]
                if labels and len(labels) != width:
                    raise ValueError(f"'classes' has {len(labels)} entries per example but 'scores' {width}")
                names = labels or tuple(str(j) for j in range(width))
                columns = [Column(f"score_{names[j]}", _kind_of(scores), "scores", j) for j in range(width)]
                return cls(method, (*columns, Column("predicted_class", STRING)), labels)
            return cls(method, tuple(Column(f"class_{j}", STRING, "classes", j) for j in range(len(labels))),
                       labels)
        if method == REGRESS:
            values = _as_rows(outputs["outputs"], n, "outputs")
            if values.shape[1] != 1:
                raise ValueError(f"'outputs' has {values.shape[1]} values per example; expected 1")
            return cls(method, (Column("prediction", _kind_of(values), "outputs"),))
        columns = []
        for name in sorted(outputs):
            rows = _as_rows(outputs[name], n, name)
            kind = _kind_of(rows)
            if rows.shape[1] == 1:
                columns.append(Column(name, kind, name))
            else:
                columns.extend(Column(f"{name}_{j}", kind, name, j) for j in range(rows.shape[1]))
        names = [c.name for c in columns]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"the outputs give columns {repeated} twice (an output named like another's "
                             "flattened values)")
        return cls(method, tuple(columns))

    def _width(self, output: str) -> int:
        return sum(1 for c in self.columns if c.output == output)

    def values(self, outputs: Mapping[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
        """Column name -> n values, for the answer ``outputs`` to n examples.

        Raises:
            ValueError: when the answer does not fit the layout (other class labels, another
                number of values per example): the message says what differs.
        """
        rows = {name: _as_rows(array, n, name) for name, array in outputs.items()}
        if self.method == CLASSIFY and "classes" in rows and self.labels:
            for row in set(map(tuple, rows["classes"].tolist())):  # distinct label rows: usually one
                if tuple(as_text(v) for v in row) != self.labels:
                    raise ValueError(
                        f"the model answered classes {[as_text(v) for v in row]} for some examples and "
                        f"{list(self.labels)} for the first ones; the table's columns name one class each")
        result: dict[str, np.ndarray] = {}
        for column in self.columns:
            if column.name == "predicted_class":
                best = np.argmax(rows["scores"], axis=1)
                if "classes" in rows:
                    result[column.name] = np.array([as_text(v) for v in rows["classes"][np.arange(n), best]], object)
                else:
                    result[column.name] = best.astype(str).astype(object)
                continue
            source = rows[column.output]
            if source.shape[1] != self._width(column.output):
                raise ValueError(f"output {column.output!r} has {source.shape[1]} values per example here and "
                                 f"{self._width(column.output)} for the first examples")
            values = source[:, column.index]
            if column.kind == STRING:
                values = np.array([as_text(v) for v in values], object)
            result[column.name] = values
        return result


def arrow_type(kind: str) -> Any:
    import pyarrow as pa

    return {INT: pa.int64(), FLOAT: pa.float32(), DOUBLE: pa.float64(), STRING: pa.string(),
            BOOL: pa.bool_()}[kind]


def arrow_schema(columns: Sequence[Column]) -> Any:
    import pyarrow as pa

    return pa.schema([pa.field(c.name, arrow_type(c.kind)) for c in columns])


def record_batch(columns: Sequence[Column], values: Mapping[str, Sequence[Any]]) -> Any:
    """One Arrow RecordBatch of ``values`` (column name -> values; None is null) typed by ``columns``."""
    import pyarrow as pa

    arrays = [pa.array(values[c.name], type=arrow_type(c.kind), from_pandas=False) for c in columns]
    return pa.RecordBatch.from_arrays(arrays, schema=arrow_schema(columns))


def csv_text(batch: Any, *, header: bool = False) -> str:
    """The batch as CSV lines (quoted only where needed), without the final newline."""
    import pyarrow.csv as pa_csv

    buffer = io.BytesIO()
    pa_csv.write_csv(batch, buffer, pa_csv.WriteOptions(include_header=header, quoting_style="needed"))
    return buffer.getvalue().decode("utf-8").rstrip("\n")


def csv_header(columns: Sequence[Column]) -> str:
    """The CSV header line for ``columns`` (written by the same writer as the rows)."""
    return csv_text(record_batch(columns, {c.name: [] for c in columns}), header=True)


def key_values(examples: Sequence[Any], columns: Sequence[Column]) -> dict[str, list[Any]]:
    """Column name -> the value of that feature in each parsed tf.Example (None where it is absent).

    Raises:
        ValueError: when an example holds several values for a key column, or values of
            another kind than the column's.
    """
    result: dict[str, list[Any]] = {c.name: [] for c in columns}
    for example in examples:
        features = example.features.feature
        for column in columns:
            feature = features.get(column.name)
            kind = feature.WhichOneof("kind") if feature is not None else None
            values = getattr(feature, kind).value if kind else ()
            if not values:
                result[column.name].append(None)
                continue
            if len(values) > 1:
                raise ValueError(f"key column {column.name!r} holds {len(values)} values in one example "
                                 f"({list(values)[:5]}); a key column holds one value per example")
            if FEATURE_LIST_KINDS[kind] != column.kind:
                raise ValueError(f"key column {column.name!r} holds a {FEATURE_LIST_KINDS[kind]} in one example "
                                 f"but {column.kind}s elsewhere")
            value = values[0]
            result[column.name].append(value.decode("utf-8", "replace") if kind == "bytes_list" else value)
    return result
