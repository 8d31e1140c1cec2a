"""Serving ``model.tflite`` files (TF Serving's ``--prefer_tflite_model``).

A version directory holding ``model.tflite`` is served through the TF Lite
interpreter when the server runs with ``--prefer_tflite_model=true``. The
interpreter is LiteRT's (``ai_edge_litert``) when that package is installed,
else TensorFlow's own ``tf.lite.Interpreter``.

Signatures, in TF Serving's order of preference:

1. SignatureDefs stored in the model's ``signature_defs_metadata`` entry (a
   FlexBuffer map of key -> serialized ``SignatureDef``, written by TF Lite's
   signature tool); tensor names such as ``x:0`` are matched to the model's
   tensors without the ``:0`` suffix.
2. The converter's own signatures (``Interpreter.get_signature_list()``),
   each run through its signature runner (its own subgraph).
3. Otherwise one ``serving_default`` Predict signature whose inputs and
   outputs are the model's input and output tensors, keyed by tensor name.

Each request resizes the input tensors to the request's shapes (so a model
converted with batch 1 takes any batch, where its ops allow it) and runs on
an interpreter taken from a small pool; an interpreter is never shared by two
requests at once.
"""

from __future__ import annotations

import logging
import os
import queue

import flatbuffers
import flatbuffers.flexbuffers
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2

from serving import errors

_log = logging.getLogger(__name__)
TFLITE_FILE = "model.tflite"
SIGNATURE_DEFS_METADATA = "signature_defs_metadata"
PREDICT = tf.saved_model.PREDICT_METHOD_NAME
DEFAULT_KEY = tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY

# Field slots of the TF Lite schema (tensorflow/lite/schema/schema.fbs): a
# table's field i lives at vtable offset 4 + 2 * i.
_MODEL_BUFFERS = 4 + 2 * 4
_MODEL_METADATA = 4 + 2 * 6
_METADATA_NAME = 4 + 2 * 0
_METADATA_BUFFER = 4 + 2 * 1
_BUFFER_DATA = 4 + 2 * 0
_BUFFER_OFFSET = 4 + 2 * 1
_BUFFER_SIZE = 4 + 2 * 2


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415 - optional package.
        return Interpreter
    except ImportError:
        return tf.lite.Interpreter


def read_metadata(model: bytes) -> dict[str, bytes]:
    """The model's metadata entries (name -> buffer bytes), read from the flatbuffer.

    Example:
        >>> read_metadata(open("model.tflite", "rb").read())  # doctest: +SKIP
        {'min_runtime_version': b'1.5.0...', 'signature_defs_metadata': b'...'}
    """
    buf = bytearray(model)
    root = flatbuffers.encode.Get(flatbuffers.packer.uoffset, buf, 0)
    model_table = flatbuffers.table.Table(buf, root)
    result = {}
    metadata_off = model_table.Offset(_MODEL_METADATA)
    buffers_off = model_table.Offset(_MODEL_BUFFERS)
    if not metadata_off or not buffers_off:
        return result
    metadata_vec = model_table.Vector(metadata_off)
    buffers_vec = model_table.Vector(buffers_off)
    n_buffers = model_table.VectorLen(buffers_off)
    for i in range(model_table.VectorLen(metadata_off)):
        entry = flatbuffers.table.Table(buf, model_table.Indirect(metadata_vec + 4 * i))
        name_off = entry.Offset(_METADATA_NAME)
        name = entry.String(name_off + entry.Pos).decode("utf-8") if name_off else ""
        index_off = entry.Offset(_METADATA_BUFFER)
        index = entry.Get(flatbuffers.number_types.Uint32Flags, index_off + entry.Pos) if index_off else 0
        if index >= n_buffers:
            continue
        buffer = flatbuffers.table.Table(buf, model_table.Indirect(buffers_vec + 4 * index))
        data_off = buffer.Offset(_BUFFER_DATA)
        if data_off:
            start = buffer.Vector(data_off)
            result[name] = bytes(buf[start:start + buffer.VectorLen(data_off)])
            continue
        offset_off, size_off = buffer.Offset(_BUFFER_OFFSET), buffer.Offset(_BUFFER_SIZE)
        if offset_off and size_off:  # Large models keep buffers after the flatbuffer.
            offset = buffer.Get(flatbuffers.number_types.Uint64Flags, offset_off + buffer.Pos)
            size = buffer.Get(flatbuffers.number_types.Uint64Flags, size_off + buffer.Pos)
            result[name] = bytes(buf[offset:offset + size])
    return result


def _stored_signature_defs(model: bytes) -> dict[str, meta_graph_pb2.SignatureDef]:
    raw = read_metadata(model).get(SIGNATURE_DEFS_METADATA)
    if not raw:
        return {}
    try:
        entries = flatbuffers.flexbuffers.Loads(raw)
    except Exception as e:  # noqa: BLE001 - a corrupt entry fails the load with its cause.
        raise ValueError(f"Invalid SignatureDefs found in TfLite model: {e}") from e
    defs = {}
    for key, value in entries.items():
        sig = meta_graph_pb2.SignatureDef()
        sig.ParseFromString(bytes(value) if not isinstance(value, str) else value.encode("latin-1"))
        defs[key] = sig
    return defs


def _tensor_info(detail: dict, name: str | None = None) -> meta_graph_pb2.TensorInfo:
    info = meta_graph_pb2.TensorInfo(name=name or detail["name"])
    info.dtype = tf.dtypes.as_dtype(detail["dtype"]).as_datatype_enum
    for size in detail.get("shape_signature", detail["shape"]):
        info.tensor_shape.dim.add(size=int(size))
    return info


def _strip_index(name: str) -> str:
    return name[:-2] if name.endswith(":0") else name


class TFLiteRuntime:
    """Runs the signatures of one ``model.tflite``.

    Args:
        export_dir: The version directory holding ``model.tflite``.
        num_interpreters: Interpreters in the pool (requests in parallel).
    """

    platform = "tensorflow_lite"

    def __init__(self, export_dir: str, *, num_interpreters: int = 1):
        path = os.path.join(export_dir, TFLITE_FILE)
        with open(path, "rb") as f:
            self._model = f.read()
        self._interpreter_class = _interpreter_class()
        self._pool: queue.Queue = queue.Queue()
        for _ in range(max(1, num_interpreters)):
            interpreter = self._interpreter_class(model_content=self._model)
            interpreter.allocate_tensors()
            self._pool.put(interpreter)
        probe = self._pool.get()
        try:
            self._inputs = {d["name"]: d for d in probe.get_input_details()}
            self._outputs = {d["name"]: d for d in probe.get_output_details()}
            self._runner_keys: set[str] = set()
            self.signature_defs = self._signature_defs(probe)
        finally:
            self._pool.put(probe)

    def _signature_defs(self, interpreter) -> dict[str, meta_graph_pb2.SignatureDef]:
        stored = _stored_signature_defs(self._model)
        if stored:
            for key, sig in stored.items():
                for kind, tensors in (("input", sig.inputs), ("output", sig.outputs)):
                    known = self._inputs if kind == "input" else self._outputs
                    for alias, info in tensors.items():
                        name = info.name if info.name in known else _strip_index(info.name)
                        if name not in known:
                            raise ValueError(
                                f"Signature {key!r} {kind} {alias!r} references an unknown "
                                f"tensor {info.name!r}; the model's {kind}s are {sorted(known)}.")
                        info.name = name
            return stored
        defs = {}
        for key in interpreter.get_signature_list():
            runner = interpreter.get_signature_runner(key)
            sig = defs.setdefault(key, meta_graph_pb2.SignatureDef(method_name=PREDICT))
            for alias, detail in runner.get_input_details().items():
                sig.inputs[alias].CopyFrom(_tensor_info(detail))
            for alias, detail in runner.get_output_details().items():
                sig.outputs[alias].CopyFrom(_tensor_info(detail))
        if defs:
            self._runner_keys = set(defs)
            return defs
        _log.warning("No signature def found in the TF Lite model; serving its tensors as %r",
                     DEFAULT_KEY)
        sig = meta_graph_pb2.SignatureDef(method_name=PREDICT)
        for name, detail in self._inputs.items():
            sig.inputs[_strip_index(name)].CopyFrom(_tensor_info(detail))
        for name, detail in self._outputs.items():
            sig.outputs[_strip_index(name)].CopyFrom(_tensor_info(detail))
        return {DEFAULT_KEY: sig}

    def call(self, key: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs signature ``key`` on an interpreter of the pool.

        The converter's own signatures run through their signature runner
        (each has its own subgraph, and the runner resizes the inputs); stored
        SignatureDefs and the generated ``serving_default`` run the main
        subgraph with its inputs resized to the request's shapes. An
        interpreter goes back to the pool at the model's own shapes, or is
        replaced by a fresh one if that fails.
        """
        sig = self.signature_defs[key]
        interpreter = self._pool.get()
        try:
            if key in self._runner_keys:
                runner = interpreter.get_signature_runner(key)
                outputs = runner(**{alias: self._cast(value, runner.get_input_details()[alias])
                                    for alias, value in inputs.items()})
                return {alias: np.array(value) for alias, value in outputs.items()}
            return self._invoke_main(interpreter, sig, inputs)
        except (ValueError, RuntimeError, KeyError) as e:
            raise errors.invalid_argument(
                f"The TF Lite model rejected the request for signature {key!r}: {e}") from e
        finally:
            self._pool.put(self._reset(interpreter))

    @staticmethod
    def _cast(value: np.ndarray, detail: dict) -> np.ndarray:
        want = detail["dtype"]
        return np.ascontiguousarray(value if want is np.object_ else value.astype(want, copy=False))

    def _invoke_main(self, interpreter, sig, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        resized = False
        for alias, value in inputs.items():
            detail = self._inputs[sig.inputs[alias].name]
            if tuple(detail["shape"]) != value.shape:
                interpreter.resize_tensor_input(detail["index"], list(value.shape), strict=False)
                resized = True
        if resized:
            interpreter.allocate_tensors()
        for alias, value in inputs.items():
            detail = self._inputs[sig.inputs[alias].name]
            interpreter.set_tensor(detail["index"], self._cast(value, detail))
        interpreter.invoke()
        return {alias: np.array(interpreter.get_tensor(self._outputs[info.name]["index"]))
                for alias, info in sig.outputs.items()}

    def _reset(self, interpreter):
        """The interpreter at the model's own input shapes, or a new one."""
        try:
            current = {d["index"]: tuple(d["shape"]) for d in interpreter.get_input_details()}
            if any(current.get(d["index"]) != tuple(d["shape"]) for d in self._inputs.values()):
                for detail in self._inputs.values():
                    interpreter.resize_tensor_input(detail["index"], list(detail["shape"]))
                interpreter.allocate_tensors()
            return interpreter
        except (ValueError, RuntimeError):
            _log.warning("Replacing a TF Lite interpreter that could not be reset")
            fresh = self._interpreter_class(model_content=self._model)
            fresh.allocate_tensors()
            return fresh
