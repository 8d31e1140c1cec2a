"""`LinearModel` and `linear_model`: weighted sums of feature columns."""

from __future__ import annotations

from typing import Any, Mapping

import tensorflow as tf

from trainer.feature_column.base import (
    CategoricalColumn, DenseColumn, FeatureCache, FeatureColumn, sanitize_name)
from trainer.feature_column.dense_features import (
    ColumnsLayer, _check_layer_name, _column_variables, batch_by_width, column_width, normalize_columns)
from trainer.feature_column.lookup import combine_lookup

__all__ = ["LinearModel", "SPARSE_COMBINERS", "linear_model"]

SPARSE_COMBINERS = ("sum", "mean", "sqrtn")


class LinearModel(ColumnsLayer):
    """Produces ``[batch, units]`` logits as a weighted sum of feature columns.

    A categorical column gets one weight row per id (it acts like an
    `indicator_column`, without materializing it); several ids of one example
    combine with ``sparse_combiner`` (their weighted 'sum', 'mean' or
    'sqrtn'), with `tf.nn.safe_embedding_lookup_sparse`'s semantics (see lookup.py).
    A dense column gets a ``[width, units]`` matrix. A bucketized column counts
    as categorical. Columns are summed in name order, plus a bias.

    Variables (all zero-initialized): ``<scope>/<name>/<column>/weights`` and
    ``<scope>/<name>/bias_weights``.

    Args:
        feature_columns: Categorical and dense columns.
        units: Output width (1 for regression/binary, n_classes otherwise).
        sparse_combiner: 'sum' (default), 'mean' or 'sqrtn'.
        trainable: If False, no variable of this layer is trainable.
        name: Name of the layer and of its variable scope.

    Example:
        >>> from trainer.feature_column import categorical_column_with_identity
        >>> model = LinearModel([categorical_column_with_identity("day", 7)], units=1)
        >>> model({"day": tf.constant([[1], [5]])}).numpy().tolist()  # zero weights
        [[0.0], [0.0]]
    """

    def __init__(self, feature_columns, units: int = 1, sparse_combiner: str = "sum", *,
                 trainable: bool = True, name: str = "linear_model") -> None:
        _check_layer_name(name, "LinearModel")
        if isinstance(units, bool) or not isinstance(units, int):
            raise TypeError(f"LinearModel got units={units!r}; expected an int.")
        if units < 1:
            raise ValueError(f"LinearModel got units={units}; expected an int >= 1.")
        if sparse_combiner not in SPARSE_COMBINERS:
            raise ValueError(
                f"LinearModel got sparse_combiner={sparse_combiner!r}; expected one of "
                f"{list(SPARSE_COMBINERS)}."
            )
        super().__init__(normalize_columns(feature_columns, "LinearModel", (CategoricalColumn, DenseColumn),
                                           "categorical or dense column"),
                         trainable=trainable, name=name)
        self._units = units
        self._sparse_combiner = sparse_combiner

    @property
    def units(self) -> int:
        return self._units

    @property
    def sparse_combiner(self) -> str:
        return self._sparse_combiner

    @property
    def bias(self) -> tf.Variable:
        """The ``[units]`` bias variable (after the first call)."""
        return self._state.get_variable("", "bias_weights")

    def _build_column(self, column: FeatureColumn) -> None:
        rows = column.num_buckets if isinstance(column, CategoricalColumn) else column_width(column)
        self._state.create_variable(column.name, "weights", (rows, self._units), tf.zeros)

    def _build_layer(self) -> None:
        self._state.create_variable("", "bias_weights", (self._units,), tf.zeros)

    @tf.autograph.experimental.do_not_convert
    def __call__(self, features: Mapping[str, Any]) -> tf.Tensor:
        """Returns the ``[batch, units]`` float32 weighted sum."""
        # A FeatureCache may be passed to share column transforms between layers
        # (wide & deep transforms each column once, not once per layer).
        cache = features if isinstance(features, FeatureCache) else FeatureCache(features)
        self.build()
        with tf.name_scope(self.name):
            sums = []
            for column in self._columns:
                with tf.name_scope(sanitize_name(column.name)):
                    weights = self._state.get_variable(column.name, "weights")
                    sums.append(self._weighted_sum(column, cache, weights))
            total = tf.math.add_n(sums, name="weighted_sum_no_bias")
            return tf.nn.bias_add(total, self.bias, name="weighted_sum")

    def variables_by_column(self) -> dict[Any, list[tf.Variable]]:
        """Maps each column (and the string 'bias') to its variables."""
        result: dict[Any, list[tf.Variable]] = {
            c: _column_variables(self._state, c) for c in self._columns}
        result["bias"] = [self.bias]
        return result

    def _weighted_sum(self, column, cache: FeatureCache, weights: tf.Variable) -> tf.Tensor:
        if isinstance(column, CategoricalColumn):
            pair = column.get_sparse_tensors(cache, self._state)
            return combine_lookup(weights, pair.id_tensor, pair.weight_tensor,
                                  combiner=self._sparse_combiner, dense_ids=pair.dense_ids)
        return tf.matmul(batch_by_width(column.get_dense_tensor(cache, self._state), column_width(column)),
                         weights)


@tf.autograph.experimental.do_not_convert
def linear_model(features: Mapping[str, Any], feature_columns, units: int = 1,
                 sparse_combiner: str = "sum", trainable: bool = True,
                 cols_to_vars: dict | None = None, name: str = "linear_model") -> tf.Tensor:
    """Functional form of `LinearModel` (tf.feature_column.linear_model).

    Each call builds a new layer: use it inside a `model_fn` traced under
    `trainer.variables.VariableStore` (which reuses the variables across
    traces), or keep a `LinearModel` object.

    Args:
        features: Dict from feature key to tensor.
        feature_columns: Categorical and dense columns.
        units: Output width.
        sparse_combiner: 'sum', 'mean' or 'sqrtn'.
        trainable: Whether the variables are trainable.
        cols_to_vars: Optional dict filled with column -> its variables, plus
            'bias' -> [bias].
        name: Name of the variable scope.

    Returns:
        The ``[batch, units]`` float32 tensor.

    Example:
        >>> from trainer.feature_column import numeric_column
        >>> linear_model({"x": tf.constant([[2.0]])}, [numeric_column("x")]).numpy().tolist()
        [[0.0]]
    """
    model = LinearModel(feature_columns, units, sparse_combiner, trainable=trainable, name=name)
    output = model(features)
    if cols_to_vars is not None:
        cols_to_vars.update(model.variables_by_column())
    return output

