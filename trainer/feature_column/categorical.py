"""Categorical columns over integer ids and hashed values.

`categorical_column_with_identity` uses integer ids as they are;
`categorical_column_with_hash_bucket` hashes values into buckets exactly like
tf.feature_column did (`tf.strings.to_hash_bucket_fast`, integers hashed via
their decimal string).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import tensorflow as tf

from trainer.feature_column import inputs
from trainer.feature_column.base import CategoricalColumn, FeatureCache, IdWeightPair
from trainer.feature_column.dtypes import categorical_dtype
from trainer.feature_column.numeric import _check_key

__all__ = [
    "HashedCategoricalColumn",
    "IdentityCategoricalColumn",
    "categorical_column_with_hash_bucket",
    "categorical_column_with_identity",
]

_IDENTITY_FN = "categorical_column_with_identity"
_HASH_FN = "categorical_column_with_hash_bucket"


def check_positive_int(value, column_fn: str, arg: str, key: str, *, allow_zero=False) -> int:
    """Validates an int argument such as ``num_buckets``; returns it as int."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{column_fn} got {arg}={value!r} for key {key!r}; expected an int.")
    if value < (0 if allow_zero else 1):
        bound = ">= 0" if allow_zero else ">= 1"
        raise ValueError(
            f"{column_fn} got {arg}={value!r} for key {key!r}; expected an int {bound}. "
            f"How to fix: pass a {'non-negative' if allow_zero else 'positive'} {arg}."
        )
    return value


@dataclasses.dataclass(frozen=True)
class IdentityCategoricalColumn(CategoricalColumn):
    """Integer ids used as they are; see `categorical_column_with_identity`.

    Attributes:
        key: The raw feature key.
        num_buckets: Ids are valid in ``[0, num_buckets)``.
        default_value: Id that replaces out-of-range ids, or None to fail on them.
    """

    key: str
    num_buckets: int
    default_value: int | None = None

    def __post_init__(self) -> None:
        _check_key(self.key, _IDENTITY_FN)
        check_positive_int(self.num_buckets, _IDENTITY_FN, "num_buckets", self.key)
        if self.default_value is not None:
            if isinstance(self.default_value, bool) or not isinstance(self.default_value, int):
                raise TypeError(
                    f"{_IDENTITY_FN} got default_value={self.default_value!r} for key "
                    f"{self.key!r}; expected an int or None."
                )
            if not 0 <= self.default_value < self.num_buckets:
                raise ValueError(
                    f"{_IDENTITY_FN} got default_value={self.default_value} for key "
                    f"{self.key!r}; expected an id in [0, {self.num_buckets}). How to fix: "
                    "pick a default inside the range or raise num_buckets."
                )

    @property
    def name(self) -> str:
        return self.key

    @property
    def parse_example_spec(self) -> dict[str, Any]:
        return {self.key: tf.io.VarLenFeature(tf.int64)}

    def transform_feature(self, cache: FeatureCache, state) -> IdWeightPair:
        raw = cache.get(self.key, state)
        raw = inputs.check_dtype(raw, key=self.key, column_fn=_IDENTITY_FN, dtype=tf.int64)
        single = inputs.single_id_input(raw)
        if single is not None:  # one id per example: stay dense, -1 = missing
            ids = self._checked(single, missing=-1)
            sparse = inputs.categorical_input(ids, key=self.key, column_fn=_IDENTITY_FN)  # drops the -1s
            return IdWeightPair(sparse, None, dense_ids=ids)
        sparse = inputs.categorical_input(raw, key=self.key, column_fn=_IDENTITY_FN)
        ids = self._checked(sparse.values)
        return IdWeightPair(tf.SparseTensor(sparse.indices, ids, sparse.dense_shape), None)

    def _checked(self, ids: tf.Tensor, missing: int | None = None) -> tf.Tensor:
        """Out-of-range ids fail (no default) or become the default; ``missing`` ids stay."""
        if self.default_value is None:
            return inputs.assert_ids_in_range(
                ids, key=self.key, column_fn=_IDENTITY_FN, num_buckets=self.num_buckets, missing=missing,
                how_to_fix="How to fix: clean the data, raise num_buckets or set "
                           "default_value to map bad ids to one bucket.")
        valid = tf.logical_and(ids >= 0, ids < self.num_buckets)
        if missing is not None:
            valid = tf.logical_or(valid, tf.equal(ids, missing))
        return tf.where(valid, ids, tf.constant(self.default_value, tf.int64))


@dataclasses.dataclass(frozen=True)
class HashedCategoricalColumn(CategoricalColumn):
    """Values hashed into buckets; see `categorical_column_with_hash_bucket`.

    Attributes:
        key: The raw feature key.
        hash_bucket_size: Number of buckets.
        dtype: tf.string or tf.int64 (integers are hashed as decimal strings).
    """

    key: str
    hash_bucket_size: int
    dtype: tf.DType = tf.string

    def __post_init__(self) -> None:
        _check_key(self.key, _HASH_FN)
        check_positive_int(self.hash_bucket_size, _HASH_FN, "hash_bucket_size", self.key)
        object.__setattr__(self, "dtype", categorical_dtype(self.dtype, _HASH_FN, self.key))

    @property
    def name(self) -> str:
        return self.key

    @property
    def num_buckets(self) -> int:
        return self.hash_bucket_size

    @property
    def parse_example_spec(self) -> dict[str, Any]:
        return {self.key: tf.io.VarLenFeature(self.dtype)}

    def transform_feature(self, cache: FeatureCache, state) -> IdWeightPair:
        raw = cache.get(self.key, state)
        raw = inputs.check_dtype(raw, key=self.key, column_fn=_HASH_FN, dtype=self.dtype)
        sparse = inputs.categorical_input(raw, key=self.key, column_fn=_HASH_FN)
        values = sparse.values
        if values.dtype != tf.string:
            values = tf.strings.as_string(values)
        ids = tf.strings.to_hash_bucket_fast(values, self.hash_bucket_size)
        return IdWeightPair(tf.SparseTensor(sparse.indices, ids, sparse.dense_shape), None)


def categorical_column_with_identity(key: str, num_buckets: int,
                                     default_value: int | None = None
                                     ) -> IdentityCategoricalColumn:
    """Represents integer ids that are already in ``[0, num_buckets)``.

    In dense inputs ``-1`` means missing. Out-of-range ids (and negative ids in
    sparse or ragged inputs) become ``default_value``; without a default they
    raise `tf.errors.InvalidArgumentError` naming the key, the first bad id and
    the valid range.

    Args:
        key: The raw feature key (also the column name).
        num_buckets: The number of distinct ids.
        default_value: Id for out-of-range inputs, or None to fail on them.

    Returns:
        An `IdentityCategoricalColumn`.

    Example:
        >>> from trainer.feature_column import DenseFeatures, indicator_column
        >>> day = categorical_column_with_identity("day", num_buckets=3)
        >>> layer = DenseFeatures([indicator_column(day)])
        >>> layer({"day": tf.constant([[2], [-1]])}).numpy().tolist()
        [[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    """
    return IdentityCategoricalColumn(key=key, num_buckets=num_buckets, default_value=default_value)


def categorical_column_with_hash_bucket(key: str, hash_bucket_size: int,
                                        dtype=tf.string) -> HashedCategoricalColumn:
    """Represents values hashed into ``hash_bucket_size`` buckets.

    The id of a value ``v`` is ``tf.strings.to_hash_bucket_fast(v, size)``
    (integers are hashed as their decimal string), as in tf.feature_column.

    Args:
        key: The raw feature key (also the column name).
        hash_bucket_size: Number of buckets, >= 1.
        dtype: tf.string or an integer dtype.

    Returns:
        A `HashedCategoricalColumn`.

    Example:
        >>> from trainer.feature_column import DenseFeatures, indicator_column
        >>> city = categorical_column_with_hash_bucket("city", 4)
        >>> DenseFeatures([indicator_column(city)])({"city": tf.constant([["paris"]])}).shape
        TensorShape([1, 4])
    """
    return HashedCategoricalColumn(key=key, hash_bucket_size=hash_bucket_size, dtype=dtype)
