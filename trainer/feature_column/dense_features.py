"""`DenseFeatures` and `input_layer`: the input layer of a deep model."""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

import tensorflow as tf

from trainer.feature_column.base import (
    DenseColumn, FeatureCache, FeatureColumn, is_sequence_column, sanitize_name)
from trainer.feature_column.state import LayerState

__all__ = ["DenseFeatures", "input_layer", "normalize_columns"]

_LAYER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class ColumnsLayer(tf.Module):
    """What `DenseFeatures`, `SequenceFeatures` and `LinearModel` share: their columns (sorted by
    name), a `LayerState` for the columns' variables, and a build on the first call.

    A subclass with variables of its own creates them in `_build_column` (after each column's
    state) and `_build_layer` (after every column).
    """

    def __init__(self, columns: list, *, trainable: bool, name: str) -> None:
        super().__init__(name=name)
        self._columns = columns
        self._state = LayerState(name, trainable=trainable)
        self._built = False

    @property
    def feature_columns(self) -> list[FeatureColumn]:
        """The columns, sorted by name."""
        return list(self._columns)

    @property
    def state(self) -> LayerState:
        """The layer's variables (`LayerState`)."""
        return self._state

    @tf.autograph.experimental.do_not_convert
    def build(self) -> None:
        """Creates the variables; called by the first `__call__`."""
        if self._built:
            return
        self._state.build()
        for column in self._columns:
            column.create_state(self._state)
            self._build_column(column)
        self._build_layer()
        self._built = True

    def _build_column(self, column: FeatureColumn) -> None:
        """Creates the layer's own variables of one column; none by default."""

    def _build_layer(self) -> None:
        """Creates the layer's own variables of no column; none by default."""


class DenseFeatures(ColumnsLayer):
    """Concatenates the dense columns of a features dict into one float tensor.

    Columns are sorted by name (as tf.feature_column did); each contributes
    ``[batch, prod(variable_shape)]``. Variables (embedding tables) are created
    on the first call under ``<current scope>/<name>/<column name>/``; see
    `trainer.feature_column.state` for the naming scheme. The layer is a
    `tf.Module`: it can be tracked by a checkpoint and exported in a SavedModel.

    Args:
        feature_columns: An iterable of dense columns (numeric, bucketized,
            indicator, embedding, shared embedding).
        trainable: If False, no variable of this layer is trainable.
        name: Name of the layer and of its variable scope.

    Example:
        >>> from trainer.feature_column import (numeric_column, indicator_column,
        ...     categorical_column_with_vocabulary_list)
        >>> color = categorical_column_with_vocabulary_list("color", ["red", "blue"])
        >>> layer = DenseFeatures([numeric_column("size"), indicator_column(color)])
        >>> features = {"size": tf.constant([[3.0]]), "color": tf.constant([["red"]])}
        >>> layer(features).numpy().tolist()  # color_indicator sorts before size
        [[1.0, 0.0, 3.0]]
    """

    def __init__(self, feature_columns, *, trainable: bool = True,
                 name: str = "dense_features") -> None:
        _check_layer_name(name, "DenseFeatures")
        super().__init__(normalize_columns(feature_columns, "DenseFeatures", DenseColumn,
                                           "dense column (numeric, bucketized, indicator or "
                                           "embedding). How to fix: wrap a categorical column "
                                           "in indicator_column or embedding_column"),
                         trainable=trainable, name=name)

    @tf.autograph.experimental.do_not_convert
    def __call__(self, features: Mapping[str, Any], cols_to_output_tensors: dict | None = None,
                 training: bool | None = None) -> tf.Tensor:
        """Returns the ``[batch, total width]`` float32 input tensor.

        Args:
            features: Dict from feature key to `tf.Tensor`, `tf.SparseTensor` or
                `tf.RaggedTensor`.
            cols_to_output_tensors: Optional dict filled with column -> its
                ``[batch, width]`` output.
            training: Accepted for Keras compatibility; unused.
        """
        del training
        # A FeatureCache may be passed to share column transforms between layers
        # (wide & deep transforms each column once, not once per layer).
        cache = features if isinstance(features, FeatureCache) else FeatureCache(features)
        self.build()
        outputs = []
        with tf.name_scope(self.name):
            for column in self._columns:
                with tf.name_scope(sanitize_name(column.name)):
                    tensor = batch_by_width(column.get_dense_tensor(cache, self._state), column_width(column))
                if cols_to_output_tensors is not None:
                    cols_to_output_tensors[column] = tensor
                outputs.append(tensor)
            return tf.concat(outputs, axis=1)

    def variables_by_column(self) -> dict[FeatureColumn, list[tf.Variable]]:
        """Maps each column to the variables it created (after the first call)."""
        return {c: _column_variables(self._state, c) for c in self._columns}


def column_width(column: DenseColumn) -> int:
    """The number of values per example of a dense column (the product of its variable shape)."""
    width = 1
    for dim in column.variable_shape:
        width *= dim
    return width


def batch_by_width(tensor: tf.Tensor, width: int) -> tf.Tensor:
    """``tensor`` as ``[batch, width]``; one already of that static shape (an embedding) is
    returned as it is, with no reshape kernels per step."""
    if tensor.shape.rank == 2 and tensor.shape[1] == width:
        return tensor
    batch = tf.shape(tensor)[0]
    return tf.reshape(tensor, tf.stack([batch, width]))


@tf.autograph.experimental.do_not_convert
def input_layer(features: Mapping[str, Any], feature_columns, trainable: bool = True,
                cols_to_vars: dict | None = None, cols_to_output_tensors: dict | None = None,
                name: str = "input_layer") -> tf.Tensor:
    """Functional form of `DenseFeatures` (tf.feature_column.input_layer).

    Each call builds a new layer. Inside a `model_fn` traced under
    `trainer.variables.VariableStore` that is what tf.estimator code expects:
    the store hands back the same variables on every trace. Outside a store,
    every call makes new variables; keep a `DenseFeatures` object instead.

    Args:
        features: Dict from feature key to tensor.
        feature_columns: Dense columns.
        trainable: Whether the variables are trainable.
        cols_to_vars: Optional dict filled with column -> list of its variables.
        cols_to_output_tensors: Optional dict filled with column -> output tensor.
        name: Name of the variable scope (``input_layer``).

    Returns:
        The ``[batch, total width]`` float32 tensor.

    Example:
        >>> from trainer.feature_column import numeric_column
        >>> input_layer({"x": tf.constant([[1.0, 2.0]])}, [numeric_column("x", shape=2)]).shape
        TensorShape([1, 2])
    """
    layer = DenseFeatures(feature_columns, trainable=trainable, name=name)
    output = layer(features, cols_to_output_tensors=cols_to_output_tensors)
    if cols_to_vars is not None:
        cols_to_vars.update(layer.variables_by_column())
    return output


def normalize_columns(feature_columns, layer: str, kind, kind_text: str, *,
                      sequence: bool = False) -> list:
    """Validates ``feature_columns`` and returns them sorted by name.

    ``sequence`` says whether the layer takes sequence columns (`SequenceFeatures`)
    or only non-sequence ones (every other layer).
    """
    if isinstance(feature_columns, FeatureColumn):
        feature_columns = [feature_columns]
    if isinstance(feature_columns, (str, bytes, Mapping)) or not isinstance(
            feature_columns, Iterable):
        raise TypeError(
            f"{layer} got feature_columns={feature_columns!r}; expected a list of feature "
            "columns."
        )
    columns = list(feature_columns)
    if not columns:
        raise ValueError(
            f"{layer} got feature_columns=[]; expected at least one column. How to fix: pass "
            "the columns the model reads."
        )
    for column in columns:
        if not isinstance(column, kind):
            raise TypeError(
                f"{layer} got the column {column!r}; expected a {kind_text}.")
        if is_sequence_column(column) != sequence:
            if sequence:
                raise ValueError(
                    f"{layer} got the non-sequence column {column.name!r}; expected sequence "
                    "columns (sequence_numeric_column, or an embedding/indicator column of a "
                    "sequence_categorical_column_with_*). How to fix: pass it as a context "
                    "column, or use the sequence_* variant of the column.")
            raise ValueError(
                f"{layer} got the sequence column {column.name!r}; expected non-sequence "
                "columns. How to fix: read sequence columns with SequenceFeatures (e.g. in "
                "RNNClassifier's sequence_feature_columns), or use the non-sequence column.")
    by_name: dict[str, Any] = {}
    for column in columns:
        if column.name in by_name:
            raise ValueError(
                f"{layer} got two columns named {column.name!r}; expected unique names. How to "
                "fix: drop the duplicate column."
            )
        by_name[column.name] = column
    return [by_name[n] for n in sorted(by_name)]


def _check_layer_name(name, layer: str) -> None:
    if not isinstance(name, str) or not _LAYER_NAME.match(name):
        raise ValueError(
            f"{layer} got name={name!r}; expected a letter followed by letters, digits or "
            "underscores (it names the variable scope), e.g. 'input_layer'."
        )


def _column_variables(state: LayerState, column) -> list[tf.Variable]:
    prefix = sanitize_name(column.name) + "/"
    found = [v for k, v in state.weights.items() if k.startswith(prefix)]
    collection = getattr(column, "shared_embedding_collection_name", None)
    if collection is not None and collection in state.shared_weights:
        found.append(state.shared_weights[collection])
    return found
