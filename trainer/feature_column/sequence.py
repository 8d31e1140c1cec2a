"""Sequence feature columns (tf.feature_column's ``sequence_*`` columns).

A sequence column reads a variable-length list of steps per example:

* `sequence_numeric_column`: each step is ``prod(shape)`` numbers.
* ``sequence_categorical_column_with_*``: each step holds one id (or several,
  from a `tf.train.SequenceExample` feature list); wrap it in
  `embedding_column` or `indicator_column` to get a vector per step.

Raw inputs are a `tf.SparseTensor` ``[batch, n]`` (what `tf.io.parse_example`
gives for the `tf.io.VarLenFeature` of `make_parse_example_spec`), a
`tf.RaggedTensor` ``[batch, (steps)]`` or ``[batch, (steps), (values)]``
(what a SequenceExample's feature lists parse to), or a dense tensor
``[batch, steps]`` in which every step is present.

`SequenceFeatures` turns them into ``(input [batch, T, width], sequence_length
[batch])``. The ids of a sequence categorical column are computed per step by
its inner (non-sequence) column on a ``[batch * T, values]`` view of the
input, so vocabulary, hashing and range checks are exactly the non-sequence
column's; the embedding or indicator column then gives ``[batch * T, width]``,
reshaped to ``[batch, T, width]``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar, NamedTuple

import tensorflow as tf

from trainer.feature_column.base import (
    CategoricalColumn, DenseColumn, FeatureCache, IdWeightPair, is_sequence_column)
from trainer.feature_column.categorical import (
    categorical_column_with_hash_bucket, categorical_column_with_identity)
from trainer.feature_column.dtypes import as_dtype
from trainer.feature_column.numeric import _check_key, _check_shape
from trainer.feature_column.vocabulary import (
    categorical_column_with_vocabulary_file, categorical_column_with_vocabulary_list)

__all__ = [
    "SequenceCategoricalColumn",
    "SequenceNumericColumn",
    "SequenceShape",
    "sequence_categorical_column_with_hash_bucket",
    "sequence_categorical_column_with_identity",
    "sequence_categorical_column_with_vocabulary_file",
    "sequence_categorical_column_with_vocabulary_list",
    "sequence_dense_tensor",
    "sequence_numeric_column",
]


class SequenceShape(NamedTuple):
    """The step layout of one batch of a sequence feature.

    Attributes:
        steps: ``T``, the padded number of steps (int32 scalar).
        length: ``[batch]`` int64, the number of real steps of each example.
    """

    steps: tf.Tensor
    length: tf.Tensor


def _as_step_sparse(value, key: str, column_fn: str) -> tuple[tf.SparseTensor, bool]:
    """Returns the raw input as a SparseTensor ``[batch, n]`` or ``[batch, T, k]``.

    The flag says whether every position is present (a dense input), in which
    case the sequence length is the full width.
    """
    if isinstance(value, tf.RaggedTensor):
        if value.ragged_rank > 2:
            raise ValueError(
                f"{column_fn} got a RaggedTensor of ragged_rank {value.ragged_rank} for key "
                f"{key!r}; expected [batch, (steps)] or [batch, (steps), (values)].")
        return value.to_sparse(), False
    if isinstance(value, tf.SparseTensor):
        if value.shape.rank not in (None, 2, 3):
            raise ValueError(
                f"{column_fn} got a SparseTensor of rank {value.shape.rank} for key {key!r}; "
                "expected [batch, n] (a parsed VarLenFeature) or [batch, steps, values].")
        return value, False
    value = tf.convert_to_tensor(value)
    if value.shape.rank == 1:
        value = value[:, None]
    if value.shape.rank not in (2, 3):
        raise ValueError(
            f"{column_fn} got a dense tensor of shape {value.shape} for key {key!r}; expected "
            "[batch, steps] or [batch, steps, values].")
    # Every position of a dense input is a step, including 0 or "" (from_dense would drop them).
    shape = tf.shape(value, out_type=tf.int64)
    indices = tf.where(tf.ones(tf.shape(value), tf.bool))
    return tf.SparseTensor(indices, tf.reshape(value, [-1]), shape), True


def _row_extent(sparse: tf.SparseTensor, dense: bool) -> tf.Tensor:
    """``[batch]`` int64: 1 + the last used position along axis 1 (0 for an empty row)."""
    batch = sparse.dense_shape[0]
    if dense:
        return tf.fill([batch], sparse.dense_shape[1])
    last = tf.math.unsorted_segment_max(sparse.indices[:, 1] + 1, sparse.indices[:, 0], batch)
    return tf.maximum(last, 0)


@dataclasses.dataclass(frozen=True)
class SequenceNumericColumn(DenseColumn):
    """Real-valued steps; see `sequence_numeric_column`.

    Attributes:
        key: The raw feature key.
        shape: Shape of one step's value.
        default_value: Fills padding steps (and short steps) of the dense tensor.
        dtype: Dtype of the raw feature; the output is float32.
        normalizer_fn: Optional function applied to the ``[batch, T] + shape``
            tensor. Not part of `to_config`.
    """

    key: str
    shape: tuple[int, ...] = (1,)
    default_value: float = 0.0
    dtype: tf.DType = tf.float32
    normalizer_fn: Callable[[tf.Tensor], tf.Tensor] | None = None

    is_sequence: ClassVar[bool] = True

    def __post_init__(self) -> None:
        fn = "sequence_numeric_column"
        _check_key(self.key, fn)
        object.__setattr__(self, "shape", _check_shape(self.shape, self.key))
        dtype = as_dtype(self.dtype, fn, "dtype")
        if not (dtype.is_floating or dtype.is_integer):
            raise ValueError(
                f"{fn} got dtype={dtype.name} for key {self.key!r}; expected a float or "
                "integer dtype. How to fix: use tf.float32 (the default) or tf.int64.")
        object.__setattr__(self, "dtype", dtype)
        if isinstance(self.default_value, bool) or not isinstance(self.default_value, (int, float)):
            raise TypeError(
                f"{fn} got default_value={self.default_value!r} for key {self.key!r}; expected "
                "one number (it pads the sequence).")
        if self.normalizer_fn is not None and not callable(self.normalizer_fn):
            raise TypeError(
                f"{fn} got normalizer_fn={self.normalizer_fn!r}; expected a callable or None.")

    @property
    def name(self) -> str:
        return self.key

    @property
    def parse_example_spec(self) -> dict[str, Any]:
        return {self.key: tf.io.VarLenFeature(self.dtype)}

    @property
    def variable_shape(self) -> tuple[int, ...]:
        return self.shape

    def transform_feature(self, cache: FeatureCache, state) -> tuple[tf.Tensor, SequenceShape]:
        fn = "sequence_numeric_column"
        raw = cache.get(self.key, state)
        if isinstance(raw, tf.RaggedTensor) and raw.ragged_rank == 2:
            raw = raw.merge_dims(1, 2)  # a SequenceExample feature list: steps of values
        sparse, dense = _as_step_sparse(raw, self.key, fn)
        if sparse.dtype == tf.string:
            raise TypeError(
                f"{fn} got string values for key {self.key!r}; expected numbers. How to fix: "
                "parse the feature as a number or use a sequence categorical column.")
        if sparse.shape.rank == 3:
            sparse = tf.sparse.reshape(sparse, tf.stack([sparse.dense_shape[0], -1]))
        width = 1
        for dim in self.shape:
            width *= dim
        default = tf.cast(self.default_value, sparse.dtype)
        values = tf.sparse.to_dense(sparse, default_value=default)
        batch = tf.shape(values)[0]
        steps = (tf.shape(values)[1] + width - 1) // width
        values = tf.pad(values, [[0, 0], [0, steps * width - tf.shape(values)[1]]],
                        constant_values=default)
        values = tf.reshape(values, tf.concat([[batch, steps], list(self.shape)], axis=0))
        length = (_row_extent(sparse, dense) + width - 1) // width
        if self.normalizer_fn is not None:
            values = self.normalizer_fn(values)
        return tf.cast(values, tf.float32), SequenceShape(steps, length)


@dataclasses.dataclass(frozen=True)
class SequenceCategoricalColumn(CategoricalColumn):
    """A categorical column applied to every step; see ``sequence_categorical_column_with_*``.

    `get_sparse_tensors` returns the ids of all steps as ``[batch * T, values]``
    (step ``t`` of example ``b`` is row ``b * T + t``); `sequence_shape` gives
    ``T`` and the lengths.

    Attributes:
        categorical_column: The non-sequence column that maps each step's values to ids.
    """

    categorical_column: CategoricalColumn

    is_sequence: ClassVar[bool] = True

    def __post_init__(self) -> None:
        inner = self.categorical_column
        if not isinstance(inner, CategoricalColumn) or not hasattr(inner, "key"):
            raise TypeError(
                f"SequenceCategoricalColumn got categorical_column={inner!r}; expected an "
                "identity, hash bucket or vocabulary column. How to fix: use a "
                "sequence_categorical_column_with_* function.")
        if is_sequence_column(inner):
            raise ValueError(
                f"SequenceCategoricalColumn got categorical_column={inner!r}, which is already "
                "a sequence column; expected a non-sequence categorical column.")

    @property
    def key(self) -> str:
        return self.categorical_column.key

    @property
    def name(self) -> str:
        return self.categorical_column.name

    @property
    def num_buckets(self) -> int:
        return self.categorical_column.num_buckets

    @property
    def parse_example_spec(self) -> dict[str, Any]:
        return self.categorical_column.parse_example_spec

    @property
    def parents(self) -> list:
        return [self.categorical_column]

    def _steps(self, cache: FeatureCache, state) -> tuple[tf.SparseTensor, SequenceShape]:
        raw = cache.get(self.key, state)
        sparse, dense = _as_step_sparse(raw, self.key, type(self).__name__)
        length = _row_extent(sparse, dense)
        batch = sparse.dense_shape[0]
        steps = sparse.dense_shape[1]
        if sparse.shape.rank == 3:  # several values per step
            row = sparse.indices[:, 0] * steps + sparse.indices[:, 1]
            flat = tf.SparseTensor(tf.stack([row, sparse.indices[:, 2]], axis=1), sparse.values,
                                   tf.stack([batch * steps, sparse.dense_shape[2]]))
        else:  # one value per step
            row = sparse.indices[:, 0] * steps + sparse.indices[:, 1]
            flat = tf.SparseTensor(tf.stack([row, tf.zeros_like(row)], axis=1), sparse.values,
                                   tf.stack([batch * steps, tf.constant(1, tf.int64)]))
        return flat, SequenceShape(tf.cast(steps, tf.int32), length)

    def transform_feature(self, cache: FeatureCache, state) -> IdWeightPair:
        flat, _ = self._steps(cache, state)
        # The inner column sees one row per step: the same lookup as without sequences.
        return self.categorical_column.transform_feature(FeatureCache({self.key: flat}), state)

    def sequence_shape(self, cache: FeatureCache, state) -> SequenceShape:
        """``T`` and the per-example lengths of this column's input."""
        return self._steps(cache, state)[1]


def sequence_dense_tensor(column: DenseColumn, cache: FeatureCache,
                          state) -> tuple[tf.Tensor, tf.Tensor]:
    """Returns ``(values [batch, T, width], length [batch])`` of a sequence dense column.

    ``column`` is a `SequenceNumericColumn`, or an embedding or indicator
    column over a `SequenceCategoricalColumn`.
    """
    width = 1
    for dim in column.variable_shape:
        width *= dim
    if isinstance(column, SequenceNumericColumn):
        values, shape = cache.get(column, state)
        batch = tf.shape(values)[0]
        return tf.reshape(values, tf.stack([batch, shape.steps, width])), shape.length
    categorical = getattr(column, "categorical_column", None)
    if not isinstance(categorical, SequenceCategoricalColumn):
        raise ValueError(
            f"SequenceFeatures got the column {column.name!r}, which is not a sequence column; "
            "expected sequence_numeric_column or an embedding/indicator column of a "
            "sequence_categorical_column_with_*. How to fix: pass it as a context feature "
            "column (or to DenseFeatures) instead.")
    shape = categorical.sequence_shape(cache, state)
    flat = column.get_dense_tensor(cache, state)  # [batch * T, width]
    return tf.reshape(flat, tf.stack([-1, shape.steps, width])), shape.length


def sequence_numeric_column(key: str, shape=(1,), default_value=0.0, dtype=tf.float32,
                            normalizer_fn=None) -> SequenceNumericColumn:
    """Represents a sequence of numbers (or of ``shape``-d values) per example.

    Args:
        key: The raw feature key (also the column name).
        shape: Shape of one step, e.g. ``(2,)`` for two numbers per step.
        default_value: Pads the steps after an example's end.
        dtype: The raw dtype, float or integer; output is float32.
        normalizer_fn: Optional function applied to the ``[batch, T] + shape`` tensor.

    Returns:
        A `SequenceNumericColumn`.

    Example:
        >>> from trainer.feature_column import SequenceFeatures
        >>> x = sequence_numeric_column("x")
        >>> values, length = SequenceFeatures([x])(
        ...     {"x": tf.ragged.constant([[1.0, 2.0], [3.0]])})
        >>> values.numpy()[..., 0].tolist(), length.numpy().tolist()
        ([[1.0, 2.0], [3.0, 0.0]], [2, 1])
    """
    return SequenceNumericColumn(key=key, shape=shape, default_value=default_value,
                                 dtype=dtype, normalizer_fn=normalizer_fn)


def sequence_categorical_column_with_identity(key: str, num_buckets: int,
                                              default_value=None) -> SequenceCategoricalColumn:
    """A sequence of integer ids in ``[0, num_buckets)``; see `categorical_column_with_identity`.

    Example:
        >>> from trainer.feature_column import SequenceFeatures, indicator_column
        >>> day = sequence_categorical_column_with_identity("day", 3)
        >>> values, length = SequenceFeatures([indicator_column(day)])(
        ...     {"day": tf.ragged.constant([[2, 0], [1]], dtype=tf.int64)})
        >>> values.numpy().tolist()
        [[[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]]
    """
    return SequenceCategoricalColumn(
        categorical_column_with_identity(key, num_buckets, default_value))


def sequence_categorical_column_with_hash_bucket(key: str, hash_bucket_size: int,
                                                 dtype=tf.string) -> SequenceCategoricalColumn:
    """A sequence of values hashed into buckets; see `categorical_column_with_hash_bucket`.

    Example:
        >>> sequence_categorical_column_with_hash_bucket("token", 100).num_buckets
        100
    """
    return SequenceCategoricalColumn(
        categorical_column_with_hash_bucket(key, hash_bucket_size, dtype))


def sequence_categorical_column_with_vocabulary_list(
        key: str, vocabulary_list, dtype=None, default_value=-1,
        num_oov_buckets=0) -> SequenceCategoricalColumn:
    """A sequence of values looked up in a list; see `categorical_column_with_vocabulary_list`.

    Example:
        >>> sequence_categorical_column_with_vocabulary_list("w", ["a", "b"]).num_buckets
        2
    """
    return SequenceCategoricalColumn(categorical_column_with_vocabulary_list(
        key, vocabulary_list, dtype=dtype, default_value=default_value,
        num_oov_buckets=num_oov_buckets))


def sequence_categorical_column_with_vocabulary_file(
        key: str, vocabulary_file, vocabulary_size=None, num_oov_buckets=0, default_value=None,
        dtype=tf.string) -> SequenceCategoricalColumn:
    """A sequence of values looked up in a file; see `categorical_column_with_vocabulary_file`."""
    return SequenceCategoricalColumn(categorical_column_with_vocabulary_file(
        key, vocabulary_file, vocabulary_size=vocabulary_size, num_oov_buckets=num_oov_buckets,
        default_value=default_value, dtype=dtype))
