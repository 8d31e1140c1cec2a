"""Conversion between ``TensorProto`` and numpy arrays.

Numeric tensors take a fast path through ``tensor_content`` (raw bytes);
everything else goes through the public ``tf.make_ndarray`` /
``tf.make_tensor_proto``.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow.core.framework import types_pb2

from serving import errors

_FAST_DTYPES = {
    types_pb2.DT_FLOAT: np.float32,
    types_pb2.DT_DOUBLE: np.float64,
    types_pb2.DT_INT32: np.int32,
    types_pb2.DT_INT64: np.int64,
    types_pb2.DT_UINT8: np.uint8,
    types_pb2.DT_INT8: np.int8,
    types_pb2.DT_INT16: np.int16,
    types_pb2.DT_BOOL: np.bool_,
}
_NUMPY_TO_ENUM = {np.dtype(v): k for k, v in _FAST_DTYPES.items()}


def dtype_name(enum: int) -> str:
    """``DT_FLOAT`` -> ``'float32'`` (or ``'DT_<n>'`` for unknown enums)."""
    try:
        return tf.dtypes.as_dtype(enum).name
    except TypeError:
        return f"DT_{enum}"


def to_ndarray(proto: tensor_pb2.TensorProto, *, name: str = "") -> np.ndarray:
    """Decodes a ``TensorProto``; bad encodings raise INVALID_ARGUMENT.

    Example:
        >>> to_ndarray(from_ndarray(np.ones((2, 3), np.float32))).shape
        (2, 3)
    """
    shape = [d.size for d in proto.tensor_shape.dim]
    if any(d < 0 for d in shape):
        raise errors.invalid_argument(
            f"Input {name!r} has tensor_shape {shape} with a negative dimension; "
            "send the concrete shape of the tensor."
        )
    np_dtype = _FAST_DTYPES.get(proto.dtype)
    if np_dtype is not None and proto.tensor_content:
        expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(np_dtype).itemsize
        if len(proto.tensor_content) != expected:
            raise errors.invalid_argument(
                f"Input {name!r}: tensor_content has {len(proto.tensor_content)} bytes "
                f"but shape {shape} of {dtype_name(proto.dtype)} needs {expected}."
            )
        return np.frombuffer(proto.tensor_content, dtype=np_dtype).reshape(shape)
    try:
        return tf.make_ndarray(proto)
    except (TypeError, ValueError) as e:
        raise errors.invalid_argument(
            f"Input {name!r} is not a valid TensorProto of dtype "
            f"{dtype_name(proto.dtype)} and shape {shape}: {e}"
        ) from e


def from_ndarray(array: np.ndarray) -> tensor_pb2.TensorProto:
    """Encodes a numpy array as a new ``TensorProto``."""
    proto = tensor_pb2.TensorProto()
    write_ndarray(proto, array)
    return proto


def write_ndarray(proto: tensor_pb2.TensorProto, array: np.ndarray) -> None:
    """Encodes ``array`` into the empty ``proto`` in place (no extra message copy).

    Numeric arrays become ``tensor_content`` bytes; other dtypes go through
    ``tf.make_tensor_proto``.

    Example:
        >>> p = tensor_pb2.TensorProto()
        >>> write_ndarray(p, np.zeros((2, 1), np.float32))
        >>> [d.size for d in p.tensor_shape.dim], len(p.tensor_content)
        ([2, 1], 8)
    """
    array = np.asarray(array)
    enum = _NUMPY_TO_ENUM.get(array.dtype)
    if enum is None:
        proto.CopyFrom(tf.make_tensor_proto(array))
        return
    proto.dtype = enum
    dims = proto.tensor_shape.dim
    for size in array.shape:
        dims.add().size = size
    proto.tensor_content = array.tobytes()  # C order, whatever the array's layout.
