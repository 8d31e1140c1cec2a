"""`indicator_column`: a multi-hot view of a categorical column."""

from __future__ import annotations

import dataclasses
from typing import Any

import tensorflow as tf

from trainer.feature_column.base import CategoricalColumn, DenseColumn, FeatureCache, IdWeightPair

__all__ = ["IndicatorColumn", "indicator_column", "sum_by_id"]


@dataclasses.dataclass(frozen=True)
class IndicatorColumn(DenseColumn):
    """Multi-hot representation of a categorical column; see `indicator_column`.

    Attributes:
        categorical_column: The column whose ids are counted.
    """

    categorical_column: CategoricalColumn

    def __post_init__(self) -> None:
        if not isinstance(self.categorical_column, CategoricalColumn):
            raise TypeError(
                f"indicator_column got categorical_column={self.categorical_column!r}; "
                "expected a categorical column. How to fix: wrap a categorical_column_with_* "
                "column, or use the numeric column directly."
            )

    @property
    def name(self) -> str:
        return f"{self.categorical_column.name}_indicator"

    @property
    def parse_example_spec(self) -> dict[str, Any]:
        return self.categorical_column.parse_example_spec

    @property
    def parents(self) -> list:
        return [self.categorical_column]

    @property
    def variable_shape(self) -> tuple[int, ...]:
        return (self.categorical_column.num_buckets,)

    def transform_feature(self, cache: FeatureCache, state) -> tf.Tensor:
        pair = self.categorical_column.get_sparse_tensors(cache, state)
        return sum_by_id(pair, self.categorical_column.num_buckets)


def sum_by_id(pair: IdWeightPair, num_buckets: int) -> tf.Tensor:
    """Returns ``[batch, num_buckets]``: per example, the count (or weight sum) of each id.

    Negative ids (out-of-vocabulary with ``default_value=-1``) are ignored.
    """
    ids = pair.id_tensor
    weights = (tf.ones_like(ids.values, tf.float32) if pair.weight_tensor is None
               else tf.cast(pair.weight_tensor.values, tf.float32))
    batch = ids.dense_shape[0]
    keep = ids.values >= 0
    rows = tf.boolean_mask(ids.indices[:, 0], keep)
    segments = rows * num_buckets + tf.boolean_mask(ids.values, keep)
    flat = tf.math.unsorted_segment_sum(tf.boolean_mask(weights, keep), segments,
                                        batch * num_buckets)
    return tf.reshape(flat, tf.stack([batch, tf.constant(num_buckets, tf.int64)]))


def indicator_column(categorical_column: CategoricalColumn) -> IndicatorColumn:
    """Represents a categorical column as a multi-hot dense vector.

    Output ``[batch, num_buckets]``: how often each id occurs in the example
    (the sum of its weights for a weighted column).

    Args:
        categorical_column: Any categorical column.

    Returns:
        An `IndicatorColumn`.

    Example:
        >>> from trainer.feature_column import DenseFeatures, categorical_column_with_identity
        >>> tags = indicator_column(categorical_column_with_identity("tags", 4))
        >>> DenseFeatures([tags])({"tags": tf.constant([[1, 3, 3]])}).numpy().tolist()
        [[0.0, 1.0, 0.0, 2.0]]
    """
    return IndicatorColumn(categorical_column=categorical_column)
