"""JSON configs of feature columns: `serialize` / `deserialize`.

``column.to_config()`` returns the column's fields as JSON-friendly values
(dtypes as names, tuples as lists, nested columns as
``{"class_name": ..., "config": ...}``); ``Class.from_config(config)`` and
`deserialize` rebuild an equal column.

Functions do not serialize: ``normalizer_fn`` (numeric columns) and a custom
``initializer`` (embedding columns) are left out of the config, so a rebuilt
column has none (the default initializer). Pass them again after loading, e.g.
``dataclasses.replace(column, normalizer_fn=fn)``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Mapping

import tensorflow as tf

from trainer.feature_column.base import FeatureColumn
from trainer.feature_column.bucketized import BucketizedColumn
from trainer.feature_column.categorical import (
    HashedCategoricalColumn, IdentityCategoricalColumn)
from trainer.feature_column.crossed import CrossedColumn
from trainer.feature_column.embedding import EmbeddingColumn, SharedEmbeddingColumn
from trainer.feature_column.indicator import IndicatorColumn
from trainer.feature_column.numeric import NumericColumn
from trainer.feature_column.sequence import SequenceCategoricalColumn, SequenceNumericColumn
from trainer.feature_column.vocabulary import (
    VocabularyFileCategoricalColumn, VocabularyListCategoricalColumn)
from trainer.feature_column.weighted import WeightedCategoricalColumn

__all__ = [
    "NOT_SERIALIZED",
    "column_from_config",
    "column_to_config",
    "deserialize",
    "deserialize_columns",
    "serialize",
    "serialize_columns",
]

#: Fields that hold Python functions and are left out of configs.
NOT_SERIALIZED = frozenset({"normalizer_fn", "initializer"})

_CLASSES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        BucketizedColumn, CrossedColumn, EmbeddingColumn, HashedCategoricalColumn,
        IdentityCategoricalColumn, IndicatorColumn, NumericColumn, SequenceCategoricalColumn,
        SequenceNumericColumn, SharedEmbeddingColumn,
        VocabularyFileCategoricalColumn, VocabularyListCategoricalColumn,
        WeightedCategoricalColumn,
    )
}


def serialize(column: FeatureColumn) -> dict[str, Any]:
    """Returns ``{"class_name": ..., "config": column.to_config()}``.

    Example:
        >>> from trainer.feature_column import numeric_column
        >>> serialize(numeric_column("age"))["class_name"]
        'NumericColumn'
    """
    if not isinstance(column, FeatureColumn) or type(column).__name__ not in _CLASSES:
        raise TypeError(
            f"serialize got {column!r}; expected a column from trainer.feature_column.")
    return {"class_name": type(column).__name__, "config": column.to_config()}


def deserialize(config: Mapping[str, Any]) -> FeatureColumn:
    """Rebuilds a column from `serialize`'s output.

    Example:
        >>> from trainer.feature_column import numeric_column
        >>> deserialize(serialize(numeric_column("age"))) == numeric_column("age")
        True
    """
    if not isinstance(config, Mapping) or "class_name" not in config or "config" not in config:
        raise TypeError(
            f"deserialize got {config!r}; expected a dict with 'class_name' and 'config' "
            "as made by serialize()."
        )
    name = config["class_name"]
    if name not in _CLASSES:
        raise ValueError(
            f"deserialize got class_name={name!r}; expected one of {sorted(_CLASSES)}.")
    return _CLASSES[name].from_config(config["config"])


def serialize_columns(columns: Iterable[FeatureColumn]) -> list[dict[str, Any]]:
    """Serializes a list of columns."""
    return [serialize(c) for c in columns]


def deserialize_columns(configs: Iterable[Mapping[str, Any]]) -> list[FeatureColumn]:
    """Rebuilds a list of columns."""
    return [deserialize(c) for c in configs]


def column_to_config(column: FeatureColumn) -> dict[str, Any]:
    """Implements `FeatureColumn.to_config`."""
    return {f.name: _encode(getattr(column, f.name))
            for f in dataclasses.fields(column) if f.name not in NOT_SERIALIZED}


def column_from_config(cls: type, config: Mapping[str, Any]) -> FeatureColumn:
    """Implements `FeatureColumn.from_config`."""
    if cls not in _CLASSES.values():
        return deserialize(config)
    if not isinstance(config, Mapping):
        raise TypeError(f"{cls.__name__}.from_config got {config!r}; expected a dict.")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(
            f"{cls.__name__}.from_config got unknown fields {unknown}; expected a subset of "
            f"{sorted(known)}."
        )
    return cls(**{name: _decode(value) for name, value in config.items()})


def _encode(value: Any) -> Any:
    if isinstance(value, FeatureColumn):
        return serialize(value)
    if isinstance(value, tf.DType):
        return value.name
    if isinstance(value, (tuple, list)):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, Mapping) and "class_name" in value:
        return deserialize(value)
    if isinstance(value, list):
        return tuple(_decode(v) for v in value)
    return value
