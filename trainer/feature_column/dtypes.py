"""Dtype arguments: accept tf.DType, numpy dtypes or names ('int64')."""

from __future__ import annotations

import tensorflow as tf

__all__ = ["as_dtype", "categorical_dtype"]


def as_dtype(dtype, column_fn: str, arg: str = "dtype") -> tf.DType:
    """Returns ``dtype`` as a `tf.DType`, raising a TypeError naming the argument."""
    try:
        return tf.as_dtype(dtype)
    except TypeError as error:
        raise TypeError(
            f"{column_fn} got {arg}={dtype!r}; expected a TensorFlow dtype such as "
            "tf.string, tf.int64 or tf.float32 (or its name)."
        ) from error


def categorical_dtype(dtype, column_fn: str, key: str) -> tf.DType:
    """Returns tf.string or tf.int64 for a categorical column's ``dtype``."""
    dtype = as_dtype(dtype, column_fn)
    if dtype == tf.string:
        return dtype
    if dtype.is_integer:
        return tf.int64
    raise ValueError(
        f"{column_fn} got dtype={dtype.name} for key {key!r}; expected tf.string or an "
        "integer dtype. How to fix: categorical values are strings or integer ids."
    )
