"""`embedding_column` and `shared_embeddings`: dense vectors for categorical ids.

The lookup gives `tf.nn.safe_embedding_lookup_sparse`'s results (see lookup.py):
negative ids and non-positive weights are dropped, an example without ids
gets a zero vector, and several ids per example are combined with
``combiner``:

* ``'sum'``: ``sum_i w_i * e_i``
* ``'mean'``: ``sum_i w_i * e_i / sum_i w_i``
* ``'sqrtn'``: ``sum_i w_i * e_i / sqrt(sum_i w_i ** 2)``
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import tensorflow as tf

from trainer.feature_column.base import CategoricalColumn, DenseColumn, FeatureCache
from trainer.feature_column.lookup import combine_lookup

__all__ = [
    "COMBINERS",
    "EmbeddingColumn",
    "SharedEmbeddingColumn",
    "TruncatedNormal",
    "embedding_column",
    "shared_embeddings",
]

COMBINERS = ("mean", "sqrtn", "sum")


@dataclasses.dataclass(frozen=True)
class TruncatedNormal:
    """The default embedding initializer: truncated normal, ``stddev=1/sqrt(dimension)``.

    Example:
        >>> TruncatedNormal(stddev=0.5)((2, 3), dtype=tf.float32).shape
        TensorShape([2, 3])
    """

    stddev: float
    mean: float = 0.0

    def __call__(self, shape, dtype=tf.float32) -> tf.Tensor:
        return tf.random.truncated_normal(shape, mean=self.mean, stddev=self.stddev, dtype=dtype)


class _EmbeddingOfColumn:
    """What both embedding columns derive from their categorical column and dimension."""

    @property
    def parse_example_spec(self) -> dict[str, Any]:
        return self.categorical_column.parse_example_spec

    @property
    def parents(self) -> list:
        return [self.categorical_column]

    @property
    def variable_shape(self) -> tuple[int, ...]:
        return (self.dimension,)

    def table_initializer(self) -> Callable[..., tf.Tensor]:
        """Returns ``initializer`` or the default truncated normal."""
        return self.initializer or TruncatedNormal(stddev=1.0 / math.sqrt(self.dimension))


@dataclasses.dataclass(frozen=True)
class EmbeddingColumn(_EmbeddingOfColumn, DenseColumn):
    """A categorical column looked up in a trainable table; see `embedding_column`.

    Attributes:
        categorical_column: The column giving the ids.
        dimension: Size of each embedding vector.
        combiner: How several ids of one example combine: 'mean', 'sqrtn' or 'sum'.
        initializer: Callable ``(shape, dtype) -> tensor`` for the table, or None
            for `TruncatedNormal(1/sqrt(dimension))`. Not part of `to_config`.
        max_norm: If set, embeddings are l2-clipped to this norm before combining.
        trainable: Whether the table is trained.
    """

    categorical_column: CategoricalColumn
    dimension: int
    combiner: str = "mean"
    initializer: Callable[..., tf.Tensor] | None = None
    max_norm: float | None = None
    trainable: bool = True

    def __post_init__(self) -> None:
        _check_embedding_args("embedding_column", self.categorical_column, self.dimension,
                              self.combiner, self.initializer, self.max_norm, self.trainable)

    @property
    def name(self) -> str:
        return f"{self.categorical_column.name}_embedding"

    def create_state(self, state) -> None:
        state.create_variable(self.name, "embedding_weights",
                              (self.categorical_column.num_buckets, self.dimension),
                              self.table_initializer(), trainable=self.trainable)

    def transform_feature(self, cache: FeatureCache, state) -> tf.Tensor:
        table = state.get_variable(self.name, "embedding_weights")
        return _lookup(table, self.categorical_column.get_sparse_tensors(cache, state),
                       self.combiner, self.max_norm)


@dataclasses.dataclass(frozen=True)
class SharedEmbeddingColumn(_EmbeddingOfColumn, DenseColumn):
    """One of several columns sharing an embedding table; see `shared_embeddings`.

    Columns with the same ``shared_embedding_collection_name`` share the
    variable ``<collection>/embedding_weights``.

    Attributes:
        categorical_column: The column giving the ids.
        dimension: Size of each embedding vector.
        shared_embedding_collection_name: Name of the shared table.
        combiner: 'mean', 'sqrtn' or 'sum'.
        initializer: As in `EmbeddingColumn`; not part of `to_config`.
        max_norm: If set, embeddings are l2-clipped to this norm before combining.
        trainable: Whether the table is trained.
    """

    categorical_column: CategoricalColumn
    dimension: int
    shared_embedding_collection_name: str
    combiner: str = "mean"
    initializer: Callable[..., tf.Tensor] | None = None
    max_norm: float | None = None
    trainable: bool = True

    def __post_init__(self) -> None:
        _check_embedding_args("shared_embeddings", self.categorical_column, self.dimension,
                              self.combiner, self.initializer, self.max_norm, self.trainable)
        name = self.shared_embedding_collection_name
        if not isinstance(name, str) or not name:
            raise TypeError(
                f"shared_embeddings got shared_embedding_collection_name={name!r}; expected a "
                "non-empty string or None."
            )

    @property
    def name(self) -> str:
        return f"{self.categorical_column.name}_shared_embedding"

    def create_state(self, state) -> None:
        state.shared_variable(self.shared_embedding_collection_name,
                              (self.categorical_column.num_buckets, self.dimension),
                              self.table_initializer(), trainable=self.trainable)

    def transform_feature(self, cache: FeatureCache, state) -> tf.Tensor:
        table = state.shared_variable(self.shared_embedding_collection_name,
                                      (self.categorical_column.num_buckets, self.dimension),
                                      self.table_initializer(), trainable=self.trainable)
        return _lookup(table, self.categorical_column.get_sparse_tensors(cache, state),
                       self.combiner, self.max_norm)


def embedding_column(categorical_column: CategoricalColumn, dimension: int, combiner="mean",
                     initializer=None, ckpt_to_load_from=None, tensor_name_in_ckpt=None,
                     max_norm=None, trainable=True,
                     use_safe_embedding_lookup=True) -> EmbeddingColumn:
    """Represents a categorical column as a dense, trainable embedding.

    The table is the variable ``<layer>/<column>_embedding/embedding_weights``
    of shape ``[num_buckets, dimension]``.

    Args:
        categorical_column: The column giving the ids.
        dimension: Size of each embedding vector, >= 1.
        combiner: 'mean' (default), 'sqrtn' or 'sum'; see the module docstring.
        initializer: Callable ``(shape, dtype) -> tensor``; default truncated
            normal with stddev ``1/sqrt(dimension)``.
        ckpt_to_load_from: Not supported; must be None (see "How to fix" in the error).
        tensor_name_in_ckpt: Not supported; must be None.
        max_norm: If set, each embedding is l2-clipped to this norm.
        trainable: Whether the table is trained.
        use_safe_embedding_lookup: Accepted for compatibility; the lookup is
            always the safe one.

    Returns:
        An `EmbeddingColumn`.

    Example:
        >>> from trainer.feature_column import DenseFeatures, categorical_column_with_identity
        >>> item = embedding_column(categorical_column_with_identity("item", 10), dimension=4)
        >>> DenseFeatures([item])({"item": tf.constant([[3, 7]])}).shape
        TensorShape([1, 4])
    """
    _reject_checkpoint("embedding_column", ckpt_to_load_from, tensor_name_in_ckpt)
    del use_safe_embedding_lookup
    return EmbeddingColumn(categorical_column=categorical_column, dimension=dimension,
                           combiner=combiner, initializer=initializer, max_norm=max_norm,
                           trainable=trainable)


def shared_embeddings(categorical_columns, dimension: int, combiner="mean", initializer=None,
                      shared_embedding_collection_name=None, ckpt_to_load_from=None,
                      tensor_name_in_ckpt=None, max_norm=None, trainable=True,
                      use_safe_embedding_lookup=True) -> list[SharedEmbeddingColumn]:
    """Embeds several categorical columns with one shared table.

    Args:
        categorical_columns: Categorical columns with the same ``num_buckets``.
        dimension: Size of each embedding vector, >= 1.
        combiner: 'mean' (default), 'sqrtn' or 'sum'.
        initializer: Callable ``(shape, dtype) -> tensor``; default truncated normal.
        shared_embedding_collection_name: Name of the shared table; default
            ``'<sorted column names joined by _>_shared_embedding'``.
        ckpt_to_load_from: Not supported; must be None.
        tensor_name_in_ckpt: Not supported; must be None.
        max_norm: If set, each embedding is l2-clipped to this norm.
        trainable: Whether the table is trained.
        use_safe_embedding_lookup: Accepted for compatibility.

    Returns:
        A list of `SharedEmbeddingColumn`, in the order of ``categorical_columns``.

    Example:
        >>> from trainer.feature_column import categorical_column_with_identity
        >>> query = categorical_column_with_identity("query", 100)
        >>> doc = categorical_column_with_identity("doc", 100)
        >>> q, d = shared_embeddings([query, doc], dimension=8)
        >>> q.shared_embedding_collection_name
        'doc_query_shared_embedding'
    """
    _reject_checkpoint("shared_embeddings", ckpt_to_load_from, tensor_name_in_ckpt)
    del use_safe_embedding_lookup
    if isinstance(categorical_columns, CategoricalColumn) or not isinstance(
            categorical_columns, (list, tuple)):
        raise TypeError(
            f"shared_embeddings got categorical_columns={categorical_columns!r}; expected a "
            "list of categorical columns."
        )
    columns = list(categorical_columns)
    if not columns:
        raise ValueError(
            "shared_embeddings got categorical_columns=[]; expected at least one column.")
    for column in columns:
        if not isinstance(column, CategoricalColumn):
            raise TypeError(
                f"shared_embeddings got {column!r} in categorical_columns; expected "
                "categorical columns."
            )
    sizes = {c.name: c.num_buckets for c in columns}
    if len(set(sizes.values())) > 1:
        raise ValueError(
            f"shared_embeddings got columns with different num_buckets {sizes}; expected one "
            "size, because they share a table. How to fix: give all columns the same "
            "num_buckets (vocabulary size + OOV buckets)."
        )
    name = shared_embedding_collection_name
    if name is None:
        name = "_".join(sorted(c.name for c in columns)) + "_shared_embedding"
    return [SharedEmbeddingColumn(categorical_column=c, dimension=dimension,
                                  shared_embedding_collection_name=name, combiner=combiner,
                                  initializer=initializer, max_norm=max_norm,
                                  trainable=trainable)
            for c in columns]


def _lookup(table, pair, combiner: str, max_norm) -> tf.Tensor:
    return combine_lookup(table, pair.id_tensor, pair.weight_tensor, combiner=combiner,
                          max_norm=max_norm, dense_ids=pair.dense_ids)


def _reject_checkpoint(column_fn: str, ckpt_to_load_from, tensor_name_in_ckpt) -> None:
    if ckpt_to_load_from is not None or tensor_name_in_ckpt is not None:
        raise ValueError(
            f"{column_fn} got ckpt_to_load_from={ckpt_to_load_from!r}, "
            f"tensor_name_in_ckpt={tensor_name_in_ckpt!r}; expected None: loading a table "
            "from a checkpoint inside the column is not supported. How to fix: warm-start "
            "the variable '<layer>/<column>_embedding/embedding_weights' from the trainer "
            "(warm_start_from), or assign it after the layer is built."
        )


def _check_embedding_args(column_fn, categorical_column, dimension, combiner, initializer,
                          max_norm, trainable) -> None:
    if not isinstance(categorical_column, CategoricalColumn):
        raise TypeError(
            f"{column_fn} got categorical_column={categorical_column!r}; expected a "
            "categorical column, e.g. categorical_column_with_identity(...)."
        )
    if isinstance(dimension, bool) or not isinstance(dimension, int):
        raise TypeError(f"{column_fn} got dimension={dimension!r}; expected an int.")
    if dimension < 1:
        raise ValueError(
            f"{column_fn} got dimension={dimension}; expected an int >= 1. How to fix: a "
            "common choice is about the fourth root of the number of buckets."
        )
    if combiner not in COMBINERS:
        raise ValueError(
            f"{column_fn} got combiner={combiner!r}; expected one of {list(COMBINERS)}.")
    if initializer is not None and not callable(initializer):
        raise TypeError(
            f"{column_fn} got initializer={initializer!r}; expected a callable "
            "(shape, dtype) -> tensor, or None."
        )
    if max_norm is not None:
        if isinstance(max_norm, bool) or not isinstance(max_norm, (int, float)):
            raise TypeError(f"{column_fn} got max_norm={max_norm!r}; expected a float or None.")
        if max_norm <= 0:
            raise ValueError(f"{column_fn} got max_norm={max_norm}; expected a positive float.")
    if not isinstance(trainable, bool):
        raise TypeError(f"{column_fn} got trainable={trainable!r}; expected a bool.")
