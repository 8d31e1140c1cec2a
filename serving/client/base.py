"""Types shared by the gRPC and REST clients."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.example import example_pb2
from tensorflow.core.example import feature_pb2

Classification = list[tuple[str, float]]
"""(label, score) pairs of one example."""


class ServingClientError(Exception):
    """The server answered with an error.

    Args:
        code: Canonical status name, e.g. ``"INVALID_ARGUMENT"`` (REST: the HTTP
            status as text when no name is known).
        message: The server's message.
    """

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclasses.dataclass(frozen=True)
class ModelTarget:
    """Which server and model a client talks to.

    Args:
        server: ``host:port`` (gRPC port for gRPC, REST port for REST).
        model: Model name.
        version: Pin a version, or
        label: pin a version label; neither means the latest version.
    """

    server: str
    model: str
    version: int | None = None
    label: str | None = None

    def __post_init__(self):
        if self.version is not None and self.label is not None:
            raise ValueError(
                f"ModelTarget got version={self.version!r} and label={self.label!r}; "
                "give at most one of them."
            )
        if ":" not in self.server:
            raise ValueError(
                f"ModelTarget got server={self.server!r}; expected host:port, e.g. "
                "localhost:8500."
            )


def to_example(row: Mapping[str, Any]) -> example_pb2.Example:
    """Builds a tf.Example: ints -> int64_list, numbers -> float_list, str/bytes -> bytes_list."""
    if isinstance(row, example_pb2.Example):
        return row
    example = example_pb2.Example()
    for name, value in row.items():
        values = list(np.ravel(value)) if isinstance(value, (list, tuple, np.ndarray)) else [value]
        feature = example.features.feature[name]
        if all(isinstance(v, (bytes, str, np.bytes_, np.str_)) for v in values):
            feature.bytes_list.CopyFrom(feature_pb2.BytesList(
                value=[v.encode() if isinstance(v, str) else bytes(v) for v in values]))
        elif all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
            feature.int64_list.CopyFrom(feature_pb2.Int64List(value=[int(v) for v in values]))
        else:
            try:
                feature.float_list.CopyFrom(feature_pb2.FloatList(value=[float(v) for v in values]))
            except (TypeError, ValueError) as e:
                raise ValueError(
                    f"Feature {name!r} has values {values!r}; use only numbers or only "
                    "strings per feature."
                ) from e
    return example


def cast_inputs(inputs: Mapping[str, Any], dtypes: Mapping[str, tf.DType]) -> dict[str, np.ndarray]:
    """Converts each input to the signature's dtype (float lists -> float32...)."""
    arrays = {}
    for name, value in inputs.items():
        dtype = dtypes.get(name)
        if dtype is None or dtype == tf.string:
            array = np.asarray(value, dtype=object if dtype == tf.string else None)
            if dtype == tf.string:
                array = np.vectorize(lambda v: v.encode() if isinstance(v, str) else v,
                                     otypes=[object])(array) if array.size else array
            arrays[name] = array
        else:
            arrays[name] = np.asarray(value, dtype=dtype.as_numpy_dtype)
    return arrays
