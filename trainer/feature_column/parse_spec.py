"""`make_parse_example_spec`: the tf.Example parsing spec of a set of columns."""

from __future__ import annotations

from typing import Any

from trainer.feature_column.base import FeatureColumn

__all__ = ["make_parse_example_spec"]


def make_parse_example_spec(feature_columns) -> dict[str, Any]:
    """Returns the dict for `tf.io.parse_example` that feeds ``feature_columns``.

    Args:
        feature_columns: Iterable of feature columns (not only the leaves: an
            embedding column brings its categorical column's spec).

    Returns:
        Dict from feature key to `tf.io.FixedLenFeature` / `tf.io.VarLenFeature`.

    Raises:
        TypeError: if an item is not a feature column.
        ValueError: if two columns need different specs for the same key.

    Example:
        >>> import tensorflow as tf
        >>> from trainer.feature_column import numeric_column, categorical_column_with_identity
        >>> spec = make_parse_example_spec([numeric_column("age"),
        ...                                 categorical_column_with_identity("day", 7)])
        >>> spec["day"]
        VarLenFeature(dtype=tf.int64)
    """
    if isinstance(feature_columns, FeatureColumn):
        feature_columns = [feature_columns]
    spec: dict[str, Any] = {}
    for column in feature_columns:
        if not isinstance(column, FeatureColumn):
            raise TypeError(
                f"make_parse_example_spec got {column!r}; expected feature columns, e.g. "
                "numeric_column('age')."
            )
        for key, value in column.parse_example_spec.items():
            if key in spec and spec[key] != value:
                raise ValueError(
                    f"make_parse_example_spec got two specs for key {key!r}: {spec[key]} and "
                    f"{value}; expected one. How to fix: read the feature with one dtype and "
                    "shape in every column."
                )
            spec[key] = value
    return spec
