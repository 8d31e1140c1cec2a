"""The column abstractions every feature column builds on.

A feature column is a frozen dataclass that *describes* one input: which raw
feature it reads (``key``), how to turn it into numbers, and what it needs to
parse a tf.Example (`parse_example_spec`). Columns hold no TensorFlow state.
The layers (`DenseFeatures`, `LinearModel`) own the variables and pass a
`LayerState` to the columns when they compute tensors.

There are two families, as in tf.feature_column:

* `DenseColumn`: produces a dense float tensor ``[batch] + variable_shape``
  (numeric, bucketized, indicator, embedding).
* `CategoricalColumn`: produces sparse integer ids in ``[0, num_buckets)``
  plus optional weights (identity, vocabulary, hash bucket, crossed,
  bucketized, weighted).
"""

from __future__ import annotations

import abc
import re
from typing import Any, Mapping, NamedTuple

import tensorflow as tf

__all__ = [
    "CategoricalColumn",
    "DenseColumn",
    "FeatureCache",
    "FeatureColumn",
    "IdWeightPair",
    "is_sequence_column",
    "sanitize_name",
]

_INVALID_SCOPE_CHARS = re.compile(r"[^A-Za-z0-9_.\-]")


def sanitize_name(name: str) -> str:
    """Returns ``name`` made safe for a TF name scope (and a checkpoint key).

    Characters a name scope does not accept become ``_`` (as tf.feature_column
    did for its variable scopes).

    Example:
        >>> sanitize_name("price (usd)")
        'price__usd_'
    """
    return _INVALID_SCOPE_CHARS.sub("_", name)


class IdWeightPair(NamedTuple):
    """Sparse ids of a categorical column and their optional weights.

    Attributes:
        id_tensor: int64 `tf.SparseTensor` of shape ``[batch, n]``.
        weight_tensor: float `tf.SparseTensor` with the same indices, or None.
        dense_ids: The same ids as an int64 ``[batch]`` tensor (``-1`` where an example
            has none) when every example has at most one id, e.g. a dense ``[batch]``
            input; None otherwise. Lookups use it to skip the sparse path.
    """

    id_tensor: tf.SparseTensor
    weight_tensor: tf.SparseTensor | None
    dense_ids: tf.Tensor | None = None


class FeatureColumn(abc.ABC):
    """Base of all feature columns.

    Subclasses are frozen dataclasses. They define `name`,
    `parse_example_spec`, `parents` and `transform_feature`, and serialize with
    `to_config` / `from_config` (see `trainer.feature_column.config`).
    """

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """Unique name of the column; sorts the layer output and names variables."""

    @property
    @abc.abstractmethod
    def parse_example_spec(self) -> dict[str, Any]:
        """Maps raw feature keys to `tf.io.FixedLenFeature`/`VarLenFeature`."""

    @property
    def parents(self) -> list["FeatureColumn | str"]:
        """Columns (or raw keys) this column is built from."""
        return []

    @abc.abstractmethod
    def transform_feature(self, cache: "FeatureCache", state) -> Any:
        """Computes this column's intermediate tensor (called once per batch)."""

    def create_state(self, state) -> None:
        """Creates the variables this column needs in ``state`` (none by default)."""
        del state

    def to_config(self) -> dict[str, Any]:
        """Returns a JSON-serializable dict of this column's fields."""
        from trainer.feature_column import config  # local: config imports every column module

        return config.column_to_config(self)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "FeatureColumn":
        """Rebuilds a column from `to_config`'s output."""
        from trainer.feature_column import config as config_lib

        return config_lib.column_from_config(cls, config)


class DenseColumn(FeatureColumn):
    """A column that produces a dense float32 tensor ``[batch] + variable_shape``."""

    @property
    @abc.abstractmethod
    def variable_shape(self) -> tuple[int, ...]:
        """Shape of one example's output, without the batch dimension."""

    def get_dense_tensor(self, cache: "FeatureCache", state) -> tf.Tensor:
        """Returns the dense float32 tensor for this column."""
        return cache.get(self, state)


class CategoricalColumn(FeatureColumn):
    """A column that produces sparse ids in ``[0, num_buckets)``.

    Every subclass has ``num_buckets`` (a property, or a field for the
    identity column): the number of distinct ids, i.e. the size of an
    indicator vector or an embedding table.
    """

    num_buckets: int

    def get_sparse_tensors(self, cache: "FeatureCache", state) -> IdWeightPair:
        """Returns the ids (and weights) of this column as an `IdWeightPair`."""
        return cache.get(self, state)


class FeatureCache:
    """Computes each column's transformation once per batch of features.

    Columns share parents (a bucketized column and a crossed column built on
    the same numeric column); the cache makes them reuse one tensor.

    Example:
        >>> cache = FeatureCache({"age": tf.constant([[30.0]])})
        >>> cache.get("age", None).shape
        TensorShape([1, 1])
    """

    def __init__(self, features: Mapping[str, Any]) -> None:
        if not isinstance(features, Mapping):
            raise TypeError(
                f"FeatureCache got features={type(features).__name__}; expected a dict "
                "mapping feature keys to tensors. How to fix: pass {'key': tensor, ...}."
            )
        self._features = features
        self._cache: dict[Any, Any] = {}

    def get(self, key: "str | FeatureColumn", state) -> Any:
        """Returns the raw feature ``key`` or the transformed column ``key``."""
        if isinstance(key, str):
            if key not in self._cache:
                if key not in self._features:
                    raise ValueError(
                        f"Feature column input got no feature {key!r}; received keys "
                        f"{sorted(self._features)}. How to fix: add {key!r} to the "
                        "features dict or remove the column that reads it."
                    )
                self._cache[key] = _convert_raw(key, self._features[key])
            return self._cache[key]
        if isinstance(key, FeatureColumn):
            cache_key = _cache_key(key)
            if cache_key not in self._cache:
                self._cache[cache_key] = key.transform_feature(self, state)
            return self._cache[cache_key]
        raise TypeError(
            f"FeatureCache.get got key={key!r}; expected a feature key (str) or a "
            "FeatureColumn."
        )


def is_sequence_column(column) -> bool:
    """Whether ``column`` (or a column it is built from) reads a sequence per example.

    Sequence columns mark themselves with the class attribute ``is_sequence``;
    an embedding or indicator column of one is a sequence column too.
    """
    if getattr(type(column), "is_sequence", False):
        return True
    return any(is_sequence_column(p) for p in getattr(column, "parents", ())
               if isinstance(p, FeatureColumn))


def _cache_key(column: "FeatureColumn") -> Any:
    """Equal columns share one entry; a column with an unhashable field (e.g. an
    initializer object defining __eq__ only) is cached by identity."""
    try:
        hash(column)
    except TypeError:
        return ("column-id", id(column))
    return column


def _convert_raw(key: str, value: Any) -> Any:
    if isinstance(value, (tf.SparseTensor, tf.RaggedTensor)):
        return value
    try:
        return tf.convert_to_tensor(value)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"Feature {key!r} got a value of type {type(value).__name__} that is not a "
            "tensor; expected a tf.Tensor, tf.SparseTensor, tf.RaggedTensor or array. "
            f"({error})"
        ) from error
