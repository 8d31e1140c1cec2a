"""`weighted_categorical_column`: categorical ids with a weight per value."""

from __future__ import annotations

import dataclasses
from typing import Any

import tensorflow as tf

from trainer.feature_column.base import CategoricalColumn, FeatureCache, IdWeightPair
from trainer.feature_column.dtypes import as_dtype

__all__ = ["WeightedCategoricalColumn", "weighted_categorical_column"]

_FN = "weighted_categorical_column"


@dataclasses.dataclass(frozen=True)
class WeightedCategoricalColumn(CategoricalColumn):
    """Ids of a categorical column with per-value weights; see `weighted_categorical_column`.

    Attributes:
        categorical_column: The column giving the ids.
        weight_feature_key: The raw feature holding one weight per id value.
        dtype: Float dtype of the weights.
    """

    categorical_column: CategoricalColumn
    weight_feature_key: str
    dtype: tf.DType = tf.float32

    def __post_init__(self) -> None:
        if not isinstance(self.categorical_column, CategoricalColumn):
            raise TypeError(
                f"{_FN} got categorical_column={self.categorical_column!r}; expected a "
                "categorical column, e.g. categorical_column_with_identity(...)."
            )
        if not isinstance(self.weight_feature_key, str) or not self.weight_feature_key:
            raise TypeError(
                f"{_FN} got weight_feature_key={self.weight_feature_key!r}; expected a "
                "non-empty feature key."
            )
        dtype = as_dtype(self.dtype, _FN)
        if not dtype.is_floating:
            raise ValueError(
                f"{_FN} got dtype={dtype.name}; expected a float dtype such as tf.float32. "
                "How to fix: weights are real numbers; cast integer weights to float."
            )
        object.__setattr__(self, "dtype", dtype)

    @property
    def name(self) -> str:
        return f"{self.categorical_column.name}_weighted_by_{self.weight_feature_key}"

    @property
    def num_buckets(self) -> int:
        return self.categorical_column.num_buckets

    @property
    def parents(self) -> list:
        return [self.categorical_column, self.weight_feature_key]

    @property
    def parse_example_spec(self) -> dict[str, Any]:
        spec = dict(self.categorical_column.parse_example_spec)
        if self.weight_feature_key in spec:
            raise ValueError(
                f"{_FN} got weight_feature_key={self.weight_feature_key!r}, which is also "
                "the id feature; expected a separate weight feature."
            )
        spec[self.weight_feature_key] = tf.io.VarLenFeature(self.dtype)
        return spec

    def transform_feature(self, cache: FeatureCache, state) -> IdWeightPair:
        """Pairs every id with the weight at the same position.

        Dense weights are read at the ids' positions; sparse or ragged weights
        must share the ids' layout. Zero weights count as absent, as in
        tf.feature_column.
        """
        ids = self.categorical_column.get_sparse_tensors(cache, state).id_tensor
        weights = cache.get(self.weight_feature_key, state)
        if isinstance(weights, tf.RaggedTensor):
            weights = weights.to_sparse()
        if not weights.dtype.is_floating:
            raise TypeError(
                f"{_FN} {self.weight_feature_key!r} got weights of dtype {weights.dtype.name}; "
                "expected floats. How to fix: cast the weight feature to tf.float32."
            )
        if isinstance(weights, tf.SparseTensor):
            weights = tf.sparse.to_dense(tf.sparse.reorder(weights))
        if weights.shape.rank == 1:
            weights = weights[:, tf.newaxis]
        batch = tf.shape(weights)[0]
        weights = tf.reshape(weights, tf.stack([batch, -1]))
        values = tf.cast(tf.gather_nd(weights, ids.indices), tf.float32)
        return IdWeightPair(ids, tf.SparseTensor(ids.indices, values, ids.dense_shape))


def weighted_categorical_column(categorical_column: CategoricalColumn, weight_feature_key: str,
                                dtype=tf.float32) -> WeightedCategoricalColumn:
    """Attaches a weight to each id of a categorical column.

    The weight feature has the same layout as the id feature (one weight per
    value). Indicator columns then sum weights instead of counting ids;
    embeddings and linear models use them as combiner weights.

    Args:
        categorical_column: The column giving the ids.
        weight_feature_key: Raw feature key of the weights.
        dtype: Float dtype of the weights.

    Returns:
        A `WeightedCategoricalColumn`.

    Example:
        >>> from trainer.feature_column import (DenseFeatures, indicator_column,
        ...     categorical_column_with_identity)
        >>> words = categorical_column_with_identity("word", num_buckets=3)
        >>> tfidf = weighted_categorical_column(words, "tfidf")
        >>> features = {"word": tf.constant([[0, 2]]), "tfidf": tf.constant([[0.5, 2.0]])}
        >>> DenseFeatures([indicator_column(tfidf)])(features).numpy().tolist()
        [[0.5, 0.0, 2.0]]
    """
    return WeightedCategoricalColumn(categorical_column=categorical_column,
                                     weight_feature_key=weight_feature_key, dtype=dtype)
