"""Conversion between ``TensorProto`` and numpy arrays.

Decoding: numeric ``tensor_content`` takes a zero-copy fast path; typed value
fields (``float_val``...) are read directly, with TF's rule that a field
holding one value fills the whole shape; everything else goes through the
public ``tf.make_ndarray``. The declared shape is checked against the payload
*before* anything is expanded.

Encoding follows TF Serving's ``--enable_serialization_as_tensor_content``:
by default outputs are written into the typed fields (``float_val``,
``int64_val``, ``string_val``...), which clients such as TF Serving's
``mnist_client.py`` read; with the flag they are packed into
``tensor_content`` (numeric dtypes only, as in TF Serving).
"""

from __future__ import annotations

import math

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
# A request is at most --max_request_bytes, but a declared shape costs nothing to send:
# a tensor may not have more elements than this, and one value may not fill more bytes.
MAX_ELEMENTS = 1 << 31
MAX_FILL_BYTES = 64 << 20
_NUMPY_TO_ENUM.update({
    np.dtype(np.uint16): types_pb2.DT_UINT16,
    np.dtype(np.uint32): types_pb2.DT_UINT32,
    np.dtype(np.uint64): types_pb2.DT_UINT64,
    np.dtype(np.float16): types_pb2.DT_HALF,
    np.dtype(np.complex64): types_pb2.DT_COMPLEX64,
    np.dtype(np.complex128): types_pb2.DT_COMPLEX128,
})
# The typed TensorProto field each numpy dtype is written to (TF's AsProtoField).
_TYPED_FIELD = {
    np.dtype(np.float32): "float_val",
    np.dtype(np.float64): "double_val",
    np.dtype(np.int32): "int_val",
    np.dtype(np.int16): "int_val",
    np.dtype(np.int8): "int_val",
    np.dtype(np.uint8): "int_val",
    np.dtype(np.uint16): "int_val",
    np.dtype(np.int64): "int64_val",
    np.dtype(np.uint32): "uint32_val",
    np.dtype(np.uint64): "uint64_val",
    np.dtype(np.bool_): "bool_val",
}
# Typed fields read directly when decoding (enum -> (field, numpy dtype)).
_READ_FIELD = {enum: (_TYPED_FIELD[np.dtype(np_type)], np_type)
               for enum, np_type in _FAST_DTYPES.items()}


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
    size = math.prod(shape)  # Python ints: no int64 wrap-around on huge shapes.
    if size > MAX_ELEMENTS:
        raise errors.invalid_argument(
            f"Input {name!r} declares tensor_shape {shape}: {size} elements, more than "
            f"the {MAX_ELEMENTS} one tensor may have here; send fewer rows per request."
        )
    np_dtype = _FAST_DTYPES.get(proto.dtype)
    if np_dtype is not None and proto.tensor_content:
        expected = size * np.dtype(np_dtype).itemsize
        if len(proto.tensor_content) != expected:
            raise errors.invalid_argument(
                f"Input {name!r}: tensor_content has {len(proto.tensor_content)} bytes "
                f"but shape {shape} of {dtype_name(proto.dtype)} needs {expected}."
            )
        return np.frombuffer(proto.tensor_content, dtype=np_dtype).reshape(shape)
    field = _READ_FIELD.get(proto.dtype)
    if field is not None and not proto.tensor_content:
        values = getattr(proto, field[0])
        n = len(values)
        if n == size or (n == 1 and size > 0) or (n == 0 and size == 0):
            _check_fill(name, shape, n, size, np.dtype(field[1]).itemsize)
            try:
                array = np.asarray(values, dtype=field[1])
            except (OverflowError, ValueError) as e:
                raise errors.invalid_argument(
                    f"Input {name!r}: a value of {field[0]} does not fit "
                    f"{dtype_name(proto.dtype)} ({e}).") from e
            return (array.reshape(shape) if n == size
                    else np.full(shape, array[0], dtype=field[1]))
        raise errors.invalid_argument(_count_message(name, proto, n, shape, size))
    if proto.dtype == types_pb2.DT_STRING and not proto.tensor_content:
        n = len(proto.string_val)
        if n != size and not (n == 1 and size > 0):
            raise errors.invalid_argument(_count_message(name, proto, n, shape, size))
        _check_fill(name, shape, n, size, 8)
        array = np.empty(size, dtype=object)
        array[:] = list(proto.string_val) if n == size else [proto.string_val[0]] * size
        return array.reshape(shape)
    try:
        return tf.make_ndarray(proto)
    except (TypeError, ValueError) as e:
        raise errors.invalid_argument(
            f"Input {name!r} is not a valid TensorProto of dtype "
            f"{dtype_name(proto.dtype)} and shape {shape}: {e}"
        ) from e


def _check_fill(name: str, shape: list[int], n: int, size: int, itemsize: int) -> None:
    """TF lets one value fill a whole shape; refuse fills past MAX_FILL_BYTES."""
    if n != size and size * itemsize > MAX_FILL_BYTES:
        raise errors.invalid_argument(
            f"Input {name!r} sends 1 value to fill tensor_shape {shape} ({size} elements, "
            f"{size * itemsize} bytes), more than the {MAX_FILL_BYTES} bytes a single value "
            "may fill here; send the values themselves.")


def _count_message(name, proto, n, shape, size) -> str:
    return (
        f"Input {name!r}: tensor_shape {shape} of {dtype_name(proto.dtype)} needs {size} "
        f"values but the TensorProto holds {n}; send one value per element (or a single "
        "value to fill the whole shape)."
    )


def from_ndarray(array: np.ndarray, *, as_tensor_content: bool = False) -> tensor_pb2.TensorProto:
    """Encodes a numpy array as a new ``TensorProto``."""
    proto = tensor_pb2.TensorProto()
    write_ndarray(proto, array, as_tensor_content=as_tensor_content)
    return proto


def write_ndarray(proto: tensor_pb2.TensorProto, array: np.ndarray, *,
                  as_tensor_content: bool = False) -> None:
    """Encodes ``array`` into the empty ``proto`` in place (no extra message copy).

    By default values go into the typed field of their dtype (``float_val``,
    ``int64_val``, ``string_val``...), as TF Serving answers by default. With
    ``as_tensor_content`` numeric arrays are packed into ``tensor_content``
    (TF Serving's ``--enable_serialization_as_tensor_content``); strings always
    use ``string_val``.

    Example:
        >>> p = tensor_pb2.TensorProto()
        >>> write_ndarray(p, np.array([[3.0], [3.5]], np.float32))
        >>> [d.size for d in p.tensor_shape.dim], list(p.float_val)
        ([2, 1], [3.0, 3.5])
        >>> q = tensor_pb2.TensorProto()
        >>> write_ndarray(q, np.zeros((2, 1), np.float32), as_tensor_content=True)
        >>> len(q.tensor_content), list(q.float_val)
        (8, [])
    """
    array = np.asarray(array)
    enum = _NUMPY_TO_ENUM.get(array.dtype)
    if enum is None or array.dtype in (np.dtype(np.float16), np.dtype(np.complex64),
                                       np.dtype(np.complex128)) and not as_tensor_content:
        # Strings, half and complex: TF's own encoder writes their typed fields.
        proto.CopyFrom(tf.make_tensor_proto(array))
        if proto.tensor_content and not as_tensor_content:
            _unpack_to_typed_fields(proto, array)
        return
    proto.dtype = enum
    dims = proto.tensor_shape.dim
    for size in array.shape:
        dims.add().size = size
    if as_tensor_content:
        proto.tensor_content = array.tobytes()  # C order, whatever the array's layout.
        return
    getattr(proto, _TYPED_FIELD[array.dtype]).extend(array.ravel().tolist())


def _unpack_to_typed_fields(proto: tensor_pb2.TensorProto, array: np.ndarray) -> None:
    """Moves values ``tf.make_tensor_proto`` packed into tensor_content to typed fields."""
    proto.tensor_content = b""
    flat = array.ravel()
    if array.dtype == np.float16:
        proto.half_val.extend(flat.view(np.uint16).tolist())
    elif array.dtype == np.complex64:
        proto.scomplex_val.extend(np.stack([flat.real, flat.imag], 1).ravel().tolist())
    elif array.dtype == np.complex128:
        proto.dcomplex_val.extend(np.stack([flat.real, flat.imag], 1).ravel().tolist())
