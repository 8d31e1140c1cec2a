"""`SequenceFeatures`: the input layer of a sequence model (tf.keras.experimental.SequenceFeatures)."""

from __future__ import annotations

from typing import Any, Mapping

import tensorflow as tf

from trainer.feature_column.base import DenseColumn, FeatureCache, sanitize_name
from trainer.feature_column.dense_features import ColumnsLayer, _check_layer_name, normalize_columns
from trainer.feature_column.sequence import sequence_dense_tensor

__all__ = ["SequenceFeatures", "concatenate_context_input"]


class SequenceFeatures(ColumnsLayer):
    """Concatenates sequence columns into ``(input [batch, T, width], sequence_length [batch])``.

    Columns are sorted by name and concatenated along the last axis; they must
    have the same length in every example (a run-time check names the
    columns). Variables are named like `DenseFeatures`'s:
    ``<scope>/<name>/<column name>/embedding_weights``.

    Args:
        feature_columns: Sequence columns: `sequence_numeric_column`, or
            `embedding_column` / `indicator_column` of a
            ``sequence_categorical_column_with_*``.
        trainable: If False, no variable of this layer is trainable.
        name: Name of the layer and of its variable scope.

    Example:
        >>> from trainer.feature_column import (embedding_column, sequence_numeric_column,
        ...     sequence_categorical_column_with_identity)
        >>> word = embedding_column(sequence_categorical_column_with_identity("w", 10), 3)
        >>> layer = SequenceFeatures([word, sequence_numeric_column("x")])
        >>> values, length = layer({"w": tf.ragged.constant([[1, 2], [3]], dtype=tf.int64),
        ...                         "x": tf.ragged.constant([[0.5, 1.0], [2.0]])})
        >>> values.shape, length.numpy().tolist()
        (TensorShape([2, 2, 4]), [2, 1])
    """

    def __init__(self, feature_columns, *, trainable: bool = True,
                 name: str = "sequence_features") -> None:
        _check_layer_name(name, "SequenceFeatures")
        super().__init__(normalize_columns(
            feature_columns, "SequenceFeatures", DenseColumn,
            "sequence dense column (sequence_numeric_column, or embedding_column / "
            "indicator_column of a sequence_categorical_column_with_*)", sequence=True),
            trainable=trainable, name=name)

    @tf.autograph.experimental.do_not_convert
    def __call__(self, features: Mapping[str, Any],
                 training: bool | None = None) -> tuple[tf.Tensor, tf.Tensor]:
        """Returns ``(float32 [batch, T, width], int64 sequence_length [batch])``."""
        del training
        cache = features if isinstance(features, FeatureCache) else FeatureCache(features)
        self.build()
        values, lengths = [], []
        with tf.name_scope(self.name):
            for column in self._columns:
                with tf.name_scope(sanitize_name(column.name)):
                    tensor, length = sequence_dense_tensor(column, cache, self._state)
                values.append(tensor)
                lengths.append(length)
            length = lengths[0]
            for column, other in zip(self._columns[1:], lengths[1:]):
                tf.debugging.assert_equal(
                    other, length, message=(
                        f"SequenceFeatures got columns {self._columns[0].name!r} and "
                        f"{column.name!r} with different sequence lengths; expected every "
                        "column to have one value (or one list) per step of the same sequence. "
                        "How to fix: give them the same number of steps or use two models."))
            # Columns may be padded to different widths (T); pad all to the longest.
            steps = tf.reduce_max(tf.stack([tf.shape(v)[1] for v in values]))
            values = [tf.pad(v, [[0, 0], [0, steps - tf.shape(v)[1]], [0, 0]]) for v in values]
            return tf.concat(values, axis=-1), length


def concatenate_context_input(context_input: tf.Tensor, sequence_input: tf.Tensor) -> tf.Tensor:
    """Repeats ``context_input [batch, c]`` at every step of ``sequence_input [batch, T, d]``.

    Returns ``[batch, T, d + c]`` (the sequence features first), as tf.feature_column did.

    Example:
        >>> concatenate_context_input(tf.ones([2, 1]), tf.zeros([2, 3, 2])).shape
        TensorShape([2, 3, 3])
    """
    context_input = tf.convert_to_tensor(context_input)
    sequence_input = tf.convert_to_tensor(sequence_input)
    if context_input.shape.rank != 2 or sequence_input.shape.rank != 3:
        raise ValueError(
            f"concatenate_context_input got context_input of shape {context_input.shape} and "
            f"sequence_input of shape {sequence_input.shape}; expected [batch, c] and "
            "[batch, T, d].")
    steps = tf.shape(sequence_input)[1]
    tiled = tf.tile(context_input[:, None, :], tf.stack([1, steps, 1]))
    return tf.concat([sequence_input, tf.cast(tiled, sequence_input.dtype)], axis=-1)
