"""Reads what the run report shows from artifact files, without importing TensorFlow.

The report must be written in a few seconds, and importing TensorFlow (or TFMA, or
tf.Transform) alone takes longer on a small machine. Everything here reads the files
themselves with protobuf classes that load quickly:

* TFRecord files (TensorBoard event files, TFMA's outputs) by their framing: an 8-byte
  little-endian length, a 4-byte CRC of it, the record, a 4-byte CRC of the record. A record
  cut short at the end (a file still being written) ends the file.
* TensorBoard events with the ``event_pb2`` that TensorBoard ships (the same message as
  ``tensorflow.core.util.event_pb2``).
* TFMA's ``MetricsForSlice`` and ``PlotsForSlice`` with the generated module that TFMA ships,
  loaded from its file when TFMA itself is not imported yet (importing the package would
  import all of TFMA); it depends only on protobuf's own ``wrappers.proto``.
* tf.Transform's vocabularies from the transform graph's ``assets/``, and its bucket
  boundaries from the constants the transform function's bucketizing op reads
  (`bucket_boundaries`).

Example:
    >>> list(read_records("/nonexistent"))
    Traceback (most recent call last):
    ...
    FileNotFoundError: [Errno 2] No such file or directory: '/nonexistent'
"""

from __future__ import annotations

import dataclasses
import glob
import importlib
import importlib.util
import json
import os
import struct
import sys
from collections.abc import Iterator
from typing import Any

_HEADER = struct.Struct("<Q")


def read_records(path: str) -> Iterator[bytes]:
    """The records of an uncompressed TFRecord file, in order."""
    with open(path, "rb") as f:
        while True:
            header = f.read(12)
            if len(header) < 12:
                return
            (length,) = _HEADER.unpack_from(header)
            record = f.read(length)
            if len(record) < length or len(f.read(4)) < 4:
                return
            yield record


# TensorBoard events -------------------------------------------------------------------

def read_scalars(directory: str) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] from the event files directly in ``directory`` (not below it)."""
    from tensorboard.compat.proto import event_pb2

    scalars: dict[str, dict[int, float]] = {}
    for path in sorted(glob.glob(os.path.join(directory, "events.out.tfevents.*"))):
        for record in read_records(path):
            event = event_pb2.Event.FromString(record)
            if not event.HasField("summary"):
                continue
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    number = float(value.simple_value)
                elif value.HasField("tensor"):
                    number = _scalar(value.tensor)
                    if number is None:
                        continue
                else:
                    continue
                scalars.setdefault(value.tag, {})[int(event.step)] = number
    return {tag: sorted(points.items()) for tag, points in sorted(scalars.items())}


_DTYPES = {1: ("float_val", "<f"), 2: ("double_val", "<d"), 3: ("int_val", "<i"), 9: ("int64_val", "<q")}


def _scalar(tensor: Any) -> float | None:
    """A one-element TensorProto's value (float, double, int32, int64), else None."""
    field, fmt = _DTYPES.get(tensor.dtype, (None, None))
    if field is None:
        return None
    if tensor.tensor_content:
        values = struct.unpack(f"<{len(tensor.tensor_content) // struct.calcsize(fmt)}{fmt[1]}",
                               tensor.tensor_content)
    else:
        values = getattr(tensor, field)
    return float(values[0]) if len(values) == 1 else None


# TFMA ------------------------------------------------------------------------------------

def _tfma_protos() -> Any:
    """TFMA's metrics_for_slice_pb2 module, without importing TFMA when it is not imported yet."""
    name = "tensorflow_model_analysis.proto.metrics_for_slice_pb2"
    if "tensorflow_model_analysis" in sys.modules:
        return importlib.import_module(name)
    loaded = sys.modules.get("_report_tfma_metrics_for_slice_pb2")
    if loaded is not None:
        return loaded
    spec = importlib.util.find_spec("tensorflow_model_analysis")  # finds it, runs nothing
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("tensorflow_model_analysis is not installed")
    path = os.path.join(spec.submodule_search_locations[0], "proto", "metrics_for_slice_pb2.py")
    from google.protobuf import wrappers_pb2  # noqa: F401  (its only dependency, loaded first)

    module_spec = importlib.util.spec_from_file_location("_report_tfma_metrics_for_slice_pb2", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    sys.modules[module_spec.name] = module
    return module


def _slice_name(slice_key: Any) -> str:
    parts = []
    for key in slice_key.single_slice_keys:
        kind = key.WhichOneof("kind")
        value = getattr(key, kind) if kind else ""
        parts.append(f"{key.column}={value.decode() if isinstance(value, bytes) else value}")
    return ", ".join(parts) or "overall"


@dataclasses.dataclass
class SliceMetrics:
    """One slice's scalar metrics: (model, metric name) -> value.

    ``model`` is ``"candidate"`` (or ``""`` with a single model), ``"baseline"``, or
    ``"diff"`` for the candidate's change against the baseline.
    """

    slice: str
    columns: tuple[str, ...]
    values: dict[tuple[str, str], float]


def read_tfma_metrics(output_dir: str) -> list[SliceMetrics]:
    """The scalar metrics of every slice in a TFMA output directory (overall first)."""
    protos = _tfma_protos()
    slices = []
    for path in sorted(glob.glob(os.path.join(output_dir, "metrics-*"))):
        for record in read_records(path):
            message = protos.MetricsForSlice.FromString(record)
            values = {}
            for entry in message.metric_keys_and_values:
                if not entry.value.HasField("double_value"):
                    continue
                model = "diff" if entry.key.is_diff else (entry.key.model_name or "candidate")
                values[(model, entry.key.name)] = float(entry.value.double_value.value)
            columns = tuple(k.column for k in message.slice_key.single_slice_keys)
            slices.append(SliceMetrics(_slice_name(message.slice_key), columns, values))
    slices.sort(key=lambda s: (bool(s.columns), s.columns, _natural(s.slice)))
    return slices


def _natural(text: str) -> tuple:
    """Sorts ``hour=10`` after ``hour=9``."""
    head, _, tail = text.rpartition("=")
    try:
        return (head, 0, float(tail), "")
    except ValueError:
        return (head, 1, 0.0, tail)


@dataclasses.dataclass
class Curve:
    """A model's confusion matrices at thresholds, on the overall slice."""

    model: str
    thresholds: list[float]
    false_positive_rate: list[float]
    recall: list[float]
    precision: list[float]


def read_tfma_curves(output_dir: str) -> list[Curve]:
    """ROC/PR points of the overall slice, per model, from TFMA's confusion-matrix plots.

    Empty when the Evaluator computed no ``ConfusionMatrixPlot`` (TFMA writes a plots file
    anyway).
    """
    protos = _tfma_protos()
    curves = []
    for path in sorted(glob.glob(os.path.join(output_dir, "plots-*"))):
        for record in read_records(path):
            message = protos.PlotsForSlice.FromString(record)
            if message.slice_key.single_slice_keys:
                continue
            for entry in message.plot_keys_and_values:
                if not entry.value.HasField("confusion_matrix_at_thresholds"):
                    continue
                matrices = entry.value.confusion_matrix_at_thresholds.matrices
                curves.append(Curve(entry.key.model_name or "candidate", [m.threshold for m in matrices],
                                    [m.false_positive_rate for m in matrices], [m.recall for m in matrices],
                                    [m.precision for m in matrices]))
    return curves


# tf.Transform -------------------------------------------------------------------------------

def read_vocabularies(transform_graph_dir: str, *, top: int = 10) -> dict[str, tuple[int, list[str]]]:
    """vocabulary name -> (size, its first ``top`` entries, most frequent first)."""
    assets = os.path.join(transform_graph_dir, "transform_fn", "assets")
    try:
        with open(os.path.join(transform_graph_dir, "transformed_metadata", "asset_map"), encoding="utf-8") as f:
            names = json.load(f)
    except FileNotFoundError:
        names = {name: name for name in (os.listdir(assets) if os.path.isdir(assets) else [])}
    vocabularies = {}
    for name, file_name in sorted(names.items()):
        size, entries = 0, []
        with open(os.path.join(assets, file_name), "rb") as f:
            for line in f:
                if size < top:
                    entries.append(line.rstrip(b"\n").decode("utf-8", errors="replace"))
                size += 1
        vocabularies[name] = (size, entries)
    return vocabularies


def bucket_boundaries(transform_graph_dir: str) -> dict[str, list[float]]:
    """transformed feature -> the boundaries its bucketizing op (``tft.bucketize``) applies.

    tf.Transform bakes the analyzers' results into the transform function as constants. For
    each output of the serving signature this follows the dataflow backwards, through the
    function calls, to the nearest ``UpperBound`` (how ``tft.apply_buckets`` assigns
    buckets) and from its sorted input to the constant holding the boundaries.
    """
    from tensorboard.compat.proto import meta_graph_pb2

    with open(os.path.join(transform_graph_dir, "transform_fn", "saved_model.pb"), "rb") as f:
        meta_graphs = [meta_graph_pb2.MetaGraphDef.FromString(b) for b in _fields(f.read(), 2)]
    if not meta_graphs:
        return {}
    graph = _Graph(meta_graphs[0])
    found = {}
    for signature in meta_graphs[0].signature_def.values():
        for feature, tensor in signature.outputs.items():
            boundaries = graph.boundaries_of(tensor.name)
            if boundaries is not None:
                found[feature] = boundaries
        if found:
            break
    return dict(sorted(found.items()))


def _fields(data: bytes, number: int) -> Iterator[bytes]:
    """The length-delimited fields ``number`` of a serialized message (a SavedModel's meta graphs)."""
    pos = 0
    while pos < len(data):
        tag, pos = _varint(data, pos)
        kind = tag & 7
        if kind == 0:
            _, pos = _varint(data, pos)
        elif kind == 1:
            pos += 8
        elif kind == 5:
            pos += 4
        elif kind == 2:
            length, pos = _varint(data, pos)
            if tag >> 3 == number:
                yield data[pos:pos + length]
            pos += length
        else:
            raise ValueError(f"saved_model.pb: unexpected wire type {kind} at byte {pos}")


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


_CALLS = ("StatefulPartitionedCall", "PartitionedCall")
_PASS_THROUGH = ("Identity", "Reshape", "ExpandDims", "Squeeze", "Cast")
_MAX_VISITS = 5000


class _Graph:
    """Follows tensors backwards through a meta graph's nodes and function calls.

    A position is (frames, reference): frames is the chain of (function, call node) entered
    from the top-level graph; reference is ``node:index`` at the top level and ``node:out:index``
    or an argument name inside a function.
    """

    def __init__(self, meta_graph: Any):
        self.top = {n.name: n for n in meta_graph.graph_def.node}
        self.functions = {}
        for function in meta_graph.graph_def.library.function:
            self.functions[function.signature.name] = (
                function, {n.name: n for n in function.node_def},
                {a.name: i for i, a in enumerate(function.signature.input_arg)})

    def _producer(self, frames: tuple, reference: str) -> tuple[tuple, Any, int] | None:
        """(frames, node, output index) of the op producing ``reference``; calls and arguments are crossed."""
        for _ in range(64):
            if not frames:
                name, _, index = reference.partition(":")
                node = self.top.get(name)
                index = int(index or 0)
            else:
                function, nodes, args = self.functions[frames[-1][0]]
                if reference in args:  # an argument: the caller's matching input
                    call = frames[-1][1]
                    frames, reference = frames[:-1], self._inputs(call)[args[reference]]
                    continue
                parts = reference.split(":")
                node = nodes.get(parts[0])
                index = int(parts[2]) if len(parts) == 3 else 0
            if node is None:
                return None
            if node.op in _CALLS and node.attr["f"].func.name in self.functions:
                callee = node.attr["f"].func.name
                function = self.functions[callee][0]
                output = function.signature.output_arg[index].name
                frames, reference = frames + ((callee, node),), function.ret[output]
                continue
            return frames, node, index
        return None

    @staticmethod
    def _inputs(node: Any) -> list[str]:
        """The data inputs (control inputs, ``^name``, carry no value)."""
        return [i for i in node.input if not i.startswith("^")]

    def boundaries_of(self, tensor_name: str) -> list[float] | None:
        start = self._producer((), tensor_name)
        queue, seen = [start], set()
        while queue and len(seen) < _MAX_VISITS:
            position = queue.pop(0)
            if position is None:
                continue
            frames, node, _ = position
            key = (tuple(f[0] for f in frames), node.name)
            if key in seen:
                continue
            seen.add(key)
            if node.op == "UpperBound":
                return self._constant(frames, self._inputs(node)[0])
            queue.extend(self._producer(frames, i) for i in self._inputs(node))
        return None

    def _constant(self, frames: tuple, reference: str) -> list[float] | None:
        for _ in range(32):
            position = self._producer(frames, reference)
            if position is None:
                return None
            frames, node, _ = position
            if node.op == "Const":
                return _tensor_values(node.attr["value"].tensor)
            if node.op not in _PASS_THROUGH:
                return None
            reference = self._inputs(node)[0]
        return None


def _tensor_values(tensor: Any) -> list[float] | None:
    field, fmt = _DTYPES.get(tensor.dtype, (None, None))
    if field is None:
        return None
    if tensor.tensor_content:
        count = len(tensor.tensor_content) // struct.calcsize(fmt)
        return [float(v) for v in struct.unpack(f"<{count}{fmt[1]}", tensor.tensor_content)]
    return [float(v) for v in getattr(tensor, field)]
