"""Signature metadata read from ``saved_model.pb`` and input validation.

The served function comes from ``tf.saved_model.load(...).signatures[key]``;
its metadata (method name, input/output dtypes and shapes) comes from the
``SignatureDef`` in ``saved_model.pb``, exactly what ``GetModelMetadata``
returns to clients.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow.core.protobuf import saved_model_pb2

from serving import errors
from serving.tensor_codec import dtype_name

INIT_OP_KEY = "__saved_model_init_op"
SERVE_TAG = "serve"


@dataclasses.dataclass(frozen=True)
class TensorSpecInfo:
    """Dtype and shape of one signature input or output.

    Args:
        dtype: The ``tf.DType``.
        shape: Dimensions with ``None`` for unknown; ``None`` for unknown rank.
    """

    dtype: tf.DType
    shape: tuple[int | None, ...] | None

    def describe(self) -> str:
        """E.g. ``'float32 [-1, 3]'``."""
        dims = "unknown rank" if self.shape is None else str(
            [-1 if d is None else d for d in self.shape])
        return f"{self.dtype.name} {dims}"


@dataclasses.dataclass(frozen=True)
class SignatureSpec:
    """One ``SignatureDef``: its key, method name, inputs and outputs."""

    key: str
    method_name: str
    inputs: dict[str, TensorSpecInfo]
    outputs: dict[str, TensorSpecInfo]

    def batchable(self) -> bool:
        """Whether every input and output has a leading (batch) dimension."""
        return all(
            s.shape is not None and len(s.shape) >= 1
            for s in list(self.inputs.values()) + list(self.outputs.values())
        )


def _spec_from_tensor_info(info: meta_graph_pb2.TensorInfo) -> TensorSpecInfo:
    shape = info.tensor_shape
    # No tensor_shape at all (common in TF1 exports) means "unknown", not a scalar.
    dims = None if shape.unknown_rank or not info.HasField("tensor_shape") else tuple(
        None if d.size < 0 else d.size for d in shape.dim)
    return TensorSpecInfo(dtype=tf.dtypes.as_dtype(info.dtype), shape=dims)


def read_meta_graph(export_dir: str, *, tags: tuple[str, ...] = (SERVE_TAG,)
                    ) -> meta_graph_pb2.MetaGraphDef:
    """Reads the MetaGraphDef of ``export_dir/saved_model.pb`` with ``tags`` (``serve``)."""
    path = os.path.join(export_dir, "saved_model.pb")
    saved_model = saved_model_pb2.SavedModel()
    with open(path, "rb") as f:
        saved_model.ParseFromString(f.read())
    for meta_graph in saved_model.meta_graphs:
        if set(tags) <= set(meta_graph.meta_info_def.tags):
            return meta_graph
    if saved_model.meta_graphs:
        return saved_model.meta_graphs[0]
    raise ValueError(f"{path} holds no MetaGraphDef; re-export the SavedModel.")


def signature_defs(meta_graph: meta_graph_pb2.MetaGraphDef) -> dict:
    """The servable ``SignatureDef``s (without the init-op entry)."""
    return {k: v for k, v in meta_graph.signature_def.items() if k != INIT_OP_KEY}


def specs_from_defs(defs: dict, *, dtypes: dict | None = None) -> dict[str, SignatureSpec]:
    """``SignatureSpec`` per key of a ``{key: SignatureDef}`` map.

    ``dtypes`` (``{key: {input: tf.DType}}``) overrides input dtypes where the
    graph that is fed disagrees with what the SignatureDef declares.
    """
    dtypes = dtypes or {}
    specs = {}
    for key, sig in defs.items():
        inputs = {k: _spec_from_tensor_info(v) for k, v in sig.inputs.items()}
        for alias, dtype in dtypes.get(key, {}).items():
            if alias in inputs:
                inputs[alias] = dataclasses.replace(inputs[alias], dtype=dtype)
        specs[key] = SignatureSpec(
            key=key, method_name=sig.method_name, inputs=inputs,
            outputs={k: _spec_from_tensor_info(v) for k, v in sig.outputs.items()})
    return specs


def shape_matches(expected: tuple[int | None, ...] | None, got: tuple[int, ...]) -> bool:
    """Whether ``got`` is a shape the SignatureDef declares (``None`` = any size).

    Example:
        >>> shape_matches((None, 1), (3, 1)), shape_matches((None, 1), (3,))
        (True, False)
    """
    if expected is None:
        return True
    if len(expected) != len(got):
        return False
    return all(e is None or e == g for e, g in zip(expected, got))


def validate_inputs(spec: SignatureSpec, inputs: dict[str, np.ndarray]) -> None:
    """Checks the names and dtypes of ``inputs`` against the signature.

    Shapes are left to the model (see ``Servable.run``): TF Serving feeds
    ``[3]`` to a ``[-1, 1]`` input, and so does the loaded signature.

    Raises:
        ServingError: INVALID_ARGUMENT naming the input, what the signature
            expects and what was sent.
    """
    missing = sorted(set(spec.inputs) - set(inputs))
    extra = sorted(set(inputs) - set(spec.inputs))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing input(s) {missing}")
        if extra:
            parts.append(f"unknown input(s) {extra}")
        raise errors.invalid_argument(
            f"Signature {spec.key!r} got {' and '.join(parts)}; it expects exactly "
            f"{sorted(spec.inputs)} ("
            + ", ".join(f"{k}: {v.describe()}" for k, v in sorted(spec.inputs.items()))
            + ")."
        )
    for key, value in inputs.items():
        expected = spec.inputs[key]
        got_dtype = value.dtype
        if expected.dtype == tf.string:
            ok = got_dtype.kind in ("O", "S", "U")
        else:
            ok = got_dtype == np.dtype(expected.dtype.as_numpy_dtype)
        if not ok:
            raise errors.invalid_argument(
                f"Input {key!r} of signature {spec.key!r} expects dtype "
                f"{expected.dtype.name} but got {_np_dtype_name(got_dtype)}; send a "
                f"{expected.dtype.name} tensor (TensorProto dtype "
                f"DT_{expected.dtype.name.upper()})."
            )


def _np_dtype_name(dtype: np.dtype) -> str:
    if dtype.kind in ("O", "S", "U"):
        return "string"
    try:
        return tf.dtypes.as_dtype(dtype).name
    except TypeError:
        return str(dtype)


__all__ = [
    "SignatureSpec", "TensorSpecInfo", "read_meta_graph", "signature_defs",
    "specs_from_defs", "shape_matches", "validate_inputs", "dtype_name",
]
