"""`numeric_column`: real-valued features."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np
import tensorflow as tf

from trainer.feature_column import inputs
from trainer.feature_column.base import DenseColumn, FeatureCache
from trainer.feature_column.dtypes import as_dtype

__all__ = ["NumericColumn", "numeric_column"]


@dataclasses.dataclass(frozen=True)
class NumericColumn(DenseColumn):
    """Real-valued feature; see `numeric_column`.

    Attributes:
        key: The raw feature key.
        shape: Shape of one example's value, a tuple of positive ints.
        default_value: Nested tuple of ``shape`` used when the value is missing
            at parse time (or when a sparse/ragged input is short), or None.
        dtype: Dtype of the raw feature (float or integer); output is float32.
        normalizer_fn: Optional function applied to the dense tensor before the
            cast to float32. Not part of `to_config` (functions do not serialize).
    """

    key: str
    shape: tuple[int, ...] = (1,)
    default_value: Any = None
    dtype: tf.DType = tf.float32
    normalizer_fn: Callable[[tf.Tensor], tf.Tensor] | None = None

    def __post_init__(self) -> None:
        _check_key(self.key, "numeric_column")
        object.__setattr__(self, "shape", _check_shape(self.shape, self.key))
        dtype = as_dtype(self.dtype, "numeric_column", "dtype")
        if not (dtype.is_floating or dtype.is_integer):
            raise ValueError(
                f"numeric_column got dtype={dtype.name}; expected a float or integer dtype "
                f"for key {self.key!r}. How to fix: use tf.float32 (the default) or tf.int64."
            )
        object.__setattr__(self, "dtype", dtype)
        object.__setattr__(
            self, "default_value", _check_default(self.default_value, self.shape, dtype, self.key))
        if self.normalizer_fn is not None and not callable(self.normalizer_fn):
            raise TypeError(
                f"numeric_column got normalizer_fn={self.normalizer_fn!r}; expected a "
                "callable taking and returning a tensor, or None."
            )

    @property
    def name(self) -> str:
        return self.key

    @property
    def parse_example_spec(self) -> dict[str, Any]:
        return {self.key: tf.io.FixedLenFeature(self.shape, self.dtype, self.default_value)}

    @property
    def variable_shape(self) -> tuple[int, ...]:
        return self.shape

    def transform_feature(self, cache: FeatureCache, state) -> tf.Tensor:
        value = inputs.dense_numeric_input(
            cache.get(self.key, state), key=self.key, shape=self.shape,
            default_value=self.default_value)
        if self.normalizer_fn is not None:
            value = self.normalizer_fn(value)
        return tf.cast(value, tf.float32)


def numeric_column(key: str, shape=(1,), default_value=None, dtype=tf.float32,
                   normalizer_fn=None) -> NumericColumn:
    """Represents a real-valued feature.

    Args:
        key: The raw feature key (also the column name).
        shape: An int or tuple of positive ints; the shape of one example's value.
        default_value: A number or a nested sequence matching ``shape``, used at
            parse time when the feature is missing. None makes it required.
        dtype: The raw feature's dtype, float or integer. Output is float32.
        normalizer_fn: Optional function applied to the raw tensor, e.g.
            ``lambda x: (x - 3.0) / 4.2``. Not serialized by `to_config`.

    Returns:
        A `NumericColumn`.

    Example:
        >>> from trainer.feature_column import DenseFeatures
        >>> price = numeric_column("price", normalizer_fn=lambda x: x / 10.0)
        >>> DenseFeatures([price])({"price": tf.constant([[5.0], [20.0]])}).numpy().tolist()
        [[0.5], [2.0]]
    """
    return NumericColumn(key=key, shape=shape, default_value=default_value, dtype=dtype,
                         normalizer_fn=normalizer_fn)


def _check_key(key, column_fn: str) -> None:
    if not isinstance(key, str):
        raise TypeError(f"{column_fn} got key={key!r}; expected a string feature key.")
    if not key:
        raise ValueError(f"{column_fn} got key=''; expected a non-empty feature key.")


def _check_shape(shape, key: str) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)) or not all(
            isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in shape):
        raise TypeError(
            f"numeric_column got shape={shape!r} for key {key!r}; expected an int or a "
            "tuple of ints. How to fix: e.g. shape=(3,)."
        )
    shape = tuple(int(d) for d in shape)  # () is one scalar per example, as in tf.estimator
    if any(d < 1 for d in shape):
        raise ValueError(
            f"numeric_column got shape={shape!r} for key {key!r}; expected positive ints. "
            "How to fix: give every dimension a size >= 1, e.g. shape=(3,)."
        )
    return shape


def _check_default(default_value, shape: tuple[int, ...], dtype: tf.DType, key: str):
    if default_value is None:
        return None
    kind = float if dtype.is_floating else int
    array = np.asarray(default_value, dtype=object if isinstance(default_value, str) else None)
    if array.dtype.kind not in "biuf" or (kind is int and array.dtype.kind == "f"):
        raise TypeError(
            f"numeric_column got default_value={default_value!r} for key {key!r}; expected "
            f"{'numbers' if kind is float else 'integers'} compatible with dtype={dtype.name}."
        )
    if array.ndim == 0:
        array = np.full(shape, array)
    if tuple(array.shape) != shape and array.size != int(np.prod(shape)):
        raise ValueError(
            f"numeric_column got default_value={default_value!r} for key {key!r}; expected "
            f"a scalar or {int(np.prod(shape))} values matching shape={shape}."
        )
    return _to_tuple(array.reshape(shape).astype(kind).tolist())


def _to_tuple(value):
    if isinstance(value, list):
        return tuple(_to_tuple(v) for v in value)
    return value
