"""`bucketized_column`: a numeric feature cut into ranges."""

from __future__ import annotations

import dataclasses
from typing import Any

import tensorflow as tf

from trainer.feature_column.base import (
    CategoricalColumn, DenseColumn, FeatureCache, IdWeightPair)
from trainer.feature_column.numeric import NumericColumn

__all__ = ["BucketizedColumn", "bucketized_column"]


@dataclasses.dataclass(frozen=True)
class BucketizedColumn(DenseColumn, CategoricalColumn):
    """A numeric column discretized by ``boundaries``; see `bucketized_column`.

    Attributes:
        source_column: The one-dimensional `NumericColumn` being bucketized.
        boundaries: Strictly increasing floats. Bucket ``i`` holds
            ``boundaries[i-1] <= x < boundaries[i]``; there are
            ``len(boundaries) + 1`` buckets per element.
    """

    source_column: NumericColumn
    boundaries: tuple[float, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.source_column, NumericColumn):
            raise TypeError(
                f"bucketized_column got source_column={self.source_column!r}; expected a "
                "NumericColumn. How to fix: pass numeric_column('key')."
            )
        if len(self.source_column.shape) > 1:
            raise ValueError(
                f"bucketized_column got a source_column of shape {self.source_column.shape}; "
                "expected a scalar or one-dimensional shape like (), (1,) or (3,). How to fix: "
                "reshape the feature or bucketize each element in its own numeric column."
            )
        if not isinstance(self.boundaries, (list, tuple)) or not all(
                isinstance(b, (int, float)) and not isinstance(b, bool) for b in self.boundaries):
            raise TypeError(
                f"bucketized_column got boundaries={self.boundaries!r}; expected a list of "
                "numbers, e.g. [0., 10., 100.]."
            )
        boundaries = tuple(float(b) for b in self.boundaries)
        if not boundaries or any(a >= b for a, b in zip(boundaries, boundaries[1:])):
            raise ValueError(
                f"bucketized_column got boundaries={list(self.boundaries)!r}; expected a "
                "non-empty, strictly increasing list. How to fix: sort the boundaries and "
                "drop duplicates."
            )
        object.__setattr__(self, "boundaries", boundaries)

    @property
    def name(self) -> str:
        return f"{self.source_column.name}_bucketized"

    @property
    def parse_example_spec(self) -> dict[str, Any]:
        return self.source_column.parse_example_spec

    @property
    def parents(self) -> list:
        return [self.source_column]

    @property
    def variable_shape(self) -> tuple[int, ...]:
        return (*self.source_column.shape, len(self.boundaries) + 1)

    @property
    def num_buckets(self) -> int:
        return self._elements * (len(self.boundaries) + 1)

    @property
    def _elements(self) -> int:
        """Values per example: a scalar source (shape ()) has one."""
        return self.source_column.shape[0] if self.source_column.shape else 1

    def transform_feature(self, cache: FeatureCache, state) -> tf.Tensor:
        """Returns the int64 bucket index of every element, ``[batch, n]``."""
        source = cache.get(self.source_column, state)
        if not self.source_column.shape:  # a scalar per example: [batch] -> [batch, 1]
            source = tf.reshape(source, [-1, 1])
        buckets = tf.raw_ops.Bucketize(input=source, boundaries=list(self.boundaries))
        return tf.cast(buckets, tf.int64)

    def get_dense_tensor(self, cache: FeatureCache, state) -> tf.Tensor:
        buckets = cache.get(self, state)
        return tf.one_hot(buckets, len(self.boundaries) + 1, dtype=tf.float32)

    def get_sparse_tensors(self, cache: FeatureCache, state) -> IdWeightPair:
        """Element ``j`` in bucket ``b`` has id ``j * (len(boundaries) + 1) + b``."""
        buckets = cache.get(self, state)
        n = self._elements
        offsets = tf.range(n, dtype=tf.int64) * (len(self.boundaries) + 1)
        ids = buckets + offsets[tf.newaxis, :]
        batch = tf.shape(ids, out_type=tf.int64)[0]
        rows = tf.repeat(tf.range(batch), n)
        cols = tf.tile(tf.range(n, dtype=tf.int64), [batch])
        sparse = tf.SparseTensor(
            indices=tf.stack([rows, cols], axis=1),
            values=tf.reshape(ids, [-1]),
            dense_shape=tf.stack([batch, tf.constant(n, tf.int64)]),
        )
        return IdWeightPair(sparse, None)


def bucketized_column(source_column: NumericColumn, boundaries) -> BucketizedColumn:
    """Represents a numeric feature discretized into buckets.

    Used as a dense column it is a one-hot per element; used as a categorical
    column (crossed, embedded, in a linear model) it yields one id per element.

    Args:
        source_column: A one-dimensional `numeric_column`.
        boundaries: A sorted list of floats: ``[0., 10.]`` makes the buckets
            ``(-inf, 0.)``, ``[0., 10.)`` and ``[10., +inf)``.

    Returns:
        A `BucketizedColumn`.

    Example:
        >>> from trainer.feature_column import DenseFeatures, numeric_column
        >>> age = bucketized_column(numeric_column("age"), [18.0, 65.0])
        >>> DenseFeatures([age])({"age": tf.constant([[10.0], [70.0]])}).numpy().tolist()
        [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    """
    return BucketizedColumn(source_column=source_column, boundaries=boundaries)
