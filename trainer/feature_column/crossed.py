"""`crossed_column`: hashed conjunctions of categorical features."""

from __future__ import annotations

import dataclasses
from typing import Any

import tensorflow as tf

from trainer.feature_column import inputs
from trainer.feature_column.base import CategoricalColumn, FeatureCache, IdWeightPair
from trainer.feature_column.categorical import HashedCategoricalColumn, check_positive_int

__all__ = ["CrossedColumn", "crossed_column"]

_FN = "crossed_column"


@dataclasses.dataclass(frozen=True)
class CrossedColumn(CategoricalColumn):
    """Hashed cross of several features; see `crossed_column`.

    Attributes:
        keys: Tuple of raw feature keys (str) and categorical columns, in the
            order they are crossed.
        hash_bucket_size: Number of buckets of the crossed ids.
        hash_key: Optional int key of the FingerprintCat64 hash (None: TF's
            default key, as tf.feature_column used).
    """

    keys: tuple
    hash_bucket_size: int
    hash_key: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.keys, (str, bytes)) or not isinstance(self.keys, (list, tuple)):
            raise TypeError(
                f"{_FN} got keys={self.keys!r}; expected a list of feature keys (str) and "
                "categorical columns."
            )
        keys = tuple(self.keys)
        if len(keys) < 2:
            raise ValueError(
                f"{_FN} got keys={list(keys)!r}; expected at least 2 keys to cross. How to fix: "
                "use a categorical column directly for a single feature."
            )
        for key in keys:
            if isinstance(key, HashedCategoricalColumn):
                raise ValueError(
                    f"{_FN} got a categorical_column_with_hash_bucket {key.key!r} in keys; "
                    "expected raw keys or other categorical columns, because hashing before "
                    f"crossing adds collisions. How to fix: pass the key {key.key!r} instead."
                )
            if not isinstance(key, (str, CategoricalColumn)):
                raise TypeError(
                    f"{_FN} got keys item {key!r}; expected a feature key (str) or a "
                    "categorical column."
                )
            if _weight_key(key) is not None:
                raise ValueError(
                    f"{_FN} got the weighted column {key.name!r} in keys; expected columns "
                    "without weights, because a cross has no weights. How to fix: cross the "
                    "underlying categorical column."
                )
        check_positive_int(self.hash_bucket_size, _FN, "hash_bucket_size", _names(keys))
        if self.hash_key is not None and (isinstance(self.hash_key, bool)
                                          or not isinstance(self.hash_key, int)):
            raise TypeError(f"{_FN} got hash_key={self.hash_key!r}; expected an int or None.")
        object.__setattr__(self, "keys", keys)

    @property
    def name(self) -> str:
        return _names(self.keys)

    @property
    def num_buckets(self) -> int:
        return self.hash_bucket_size

    @property
    def parents(self) -> list:
        return list(self.keys)

    @property
    def parse_example_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {}
        for key in self.keys:
            if isinstance(key, str):
                spec[key] = tf.io.VarLenFeature(tf.string)
            else:
                spec.update(key.parse_example_spec)
        return spec

    def transform_feature(self, cache: FeatureCache, state) -> IdWeightPair:
        tensors = []
        for key in _leaf_keys(self):
            if isinstance(key, str):
                raw = cache.get(key, state)
                if raw.dtype.is_floating:
                    # tf.estimator crossed a float feature by its int64 cast (toward zero: age
                    # 37.9 -> 37), which the linear-model tutorial relies on.
                    raw = (tf.SparseTensor(raw.indices, tf.cast(raw.values, tf.int64), raw.dense_shape)
                           if isinstance(raw, tf.SparseTensor) else tf.cast(raw, tf.int64))
                elif raw.dtype != tf.string:
                    raw = inputs.check_dtype(raw, key=key, column_fn=_FN, dtype=tf.int64)
                tensors.append(inputs.categorical_input(raw, key=key, column_fn=_FN))
            else:
                tensors.append(key.get_sparse_tensors(cache, state).id_tensor)
        crossed = tf.sparse.cross_hashed(tensors, num_buckets=self.hash_bucket_size,
                                         hash_key=self.hash_key)
        return IdWeightPair(crossed, None)


def crossed_column(keys, hash_bucket_size: int, hash_key: int | None = None) -> CrossedColumn:
    """Represents the hashed cross of categorical features.

    Every combination of one value per key becomes one id,
    ``FingerprintCat64(values) % hash_bucket_size``, computed by
    `tf.sparse.cross_hashed` exactly as tf.feature_column did. Keys may be raw
    feature keys (strings or ints), other categorical columns (their ids are
    crossed) or crossed columns (their keys are flattened in).

    Args:
        keys: At least two raw keys or categorical columns; not hash bucket columns.
        hash_bucket_size: Number of buckets, >= 1.
        hash_key: Optional int key for the fingerprint (None: TF's default).

    Returns:
        A `CrossedColumn`.

    Example:
        >>> from trainer.feature_column import DenseFeatures, indicator_column
        >>> cross = crossed_column(["city", "day"], hash_bucket_size=10)
        >>> cross.name
        'city_X_day'
        >>> features = {"city": tf.constant([["paris"]]), "day": tf.constant([["mon"]])}
        >>> float(DenseFeatures([indicator_column(cross)])(features).numpy().sum())
        1.0
    """
    return CrossedColumn(keys=keys, hash_bucket_size=hash_bucket_size, hash_key=hash_key)


def _key_name(key) -> str:
    return key if isinstance(key, str) else key.name


def _names(keys) -> str:
    names = []
    for key in keys:
        if isinstance(key, CrossedColumn):
            names.extend(_key_name(k) for k in _leaf_keys(key))
        else:
            names.append(_key_name(key))
    return "_X_".join(sorted(names))


def _leaf_keys(column: CrossedColumn) -> list:
    leaves = []
    for key in column.keys:
        if isinstance(key, CrossedColumn):
            leaves.extend(_leaf_keys(key))
        else:
            leaves.append(key)
    return leaves


def _weight_key(key) -> str | None:
    return getattr(key, "weight_feature_key", None)
