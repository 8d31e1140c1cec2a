"""Variables owned by a feature-column layer, with tf.estimator-style names.

A layer (`DenseFeatures`, `LinearModel`) builds once: it records the name
scope it is built in and creates every variable with a *callable* initializer
under an absolute, deterministic scope:

* ``<outer>/<layer>/<column name>/<variable>``, e.g.
  ``dnn/input_layer/city_embedding/embedding_weights`` or
  ``linear/linear_model/city/weights``;
* ``<outer>/<layer>/bias_weights`` for a linear model's bias;
* ``<outer>/<shared_embedding_collection_name>/embedding_weights`` for shared
  embeddings, outside the layer, so that every layer built in the same scope
  shares one table.

Inside a `model_fn` traced under `trainer.variables.VariableStore`, these
scopes are the checkpoint keys and every later trace gets the same variables
back. ``<layer>`` goes through `unique_scope_name`, so a second layer with the
same name in one trace becomes ``<layer>_1`` (TF1's behaviour). In plain eager
mode the layer simply owns its variables.
"""

from __future__ import annotations

from typing import Callable

import tensorflow as tf

from trainer.feature_column.base import sanitize_name
from trainer.variables import current_store, unique_scope_name

__all__ = ["LayerState"]

Initializer = Callable[..., tf.Tensor]


class LayerState(tf.Module):
    """Holds the variables a layer's columns create, keyed by ``<scope>/<name>``.

    Example:
        >>> state = LayerState("input_layer")
        >>> state.build()
        >>> v = state.create_variable("price", "weights", (1, 1), tf.zeros)
        >>> v.name
        'input_layer/price/weights:0'
    """

    def __init__(self, layer_name: str, *, trainable: bool = True) -> None:
        super().__init__()
        self._layer_name = layer_name
        self._trainable = trainable
        self._outer_scope: str | None = None
        self._layer_scope: str | None = None
        self.weights: dict[str, tf.Variable] = {}
        self.shared_weights: dict[str, tf.Variable] = {}

    @property
    def layer_scope(self) -> str:
        """The absolute name scope of the layer's variables (set by `build`)."""
        if self._layer_scope is None:
            raise ValueError(
                f"LayerState got no scope for layer {self._layer_name!r}; expected build() "
                "first. How to fix: call the layer on features before reading its variables."
            )
        return self._layer_scope

    @property
    def trainable(self) -> bool:
        return self._trainable

    def build(self) -> None:
        """Records the scope the layer is built in."""
        self._outer_scope = tf.get_current_name_scope().strip("/")
        scope = unique_scope_name(self._layer_name).strip("/")  # absolute: <current>/<name>[_n]
        outer = self._outer_scope
        if outer and scope != outer and not scope.startswith(outer + "/"):
            scope = _join(outer, scope)  # tolerate a relative answer
        self._layer_scope = scope

    def create_variable(self, scope: str, name: str, shape, initializer: Initializer, *,
                        trainable: bool = True, dtype: tf.DType = tf.float32) -> tf.Variable:
        """Creates ``<layer>/<scope>/<name>`` (``scope`` may be "") once and returns it."""
        relative = _join(sanitize_name(scope) if scope else "", name)
        if relative in self.weights:
            return self.weights[relative]
        path = _join(self.layer_scope, sanitize_name(scope) if scope else "")
        variable = _new_variable(path, name, shape, initializer, dtype,
                                 trainable=trainable and self._trainable)
        self.weights[relative] = variable
        return variable

    def get_variable(self, scope: str, name: str) -> tf.Variable:
        """Returns the variable made by `create_variable(scope, name, ...)`."""
        relative = _join(sanitize_name(scope) if scope else "", name)
        if relative not in self.weights:
            raise ValueError(
                f"Layer {self._layer_name!r} got a request for variable {relative!r} that was "
                "never created; expected the column's create_state to run at build. How to "
                "fix: pass every column to the layer's constructor."
            )
        return self.weights[relative]

    def shared_variable(self, collection: str, shape, initializer: Initializer, *,
                        trainable: bool = True) -> tf.Variable:
        """Returns ``<outer>/<collection>/embedding_weights``, created on first use."""
        shape = tuple(shape)
        variable = self.shared_weights.get(collection)
        if variable is None:
            path = _join(self._outer_scope or "", sanitize_name(collection))
            store = current_store()
            key = _join(path, "embedding_weights")
            if store is not None and key in store.variables:
                variable = store.variables[key]  # made by another layer of this model_fn
            else:
                variable = _new_variable(path, "embedding_weights", shape, initializer,
                                         tf.float32, trainable=trainable and self._trainable)
            self.shared_weights[collection] = variable
        if tuple(variable.shape) != shape:
            raise ValueError(
                f"shared_embeddings collection {collection!r} got shape {shape}; expected "
                f"{tuple(variable.shape)} like its other columns. How to fix: give columns "
                "that share a collection the same dimension and num_buckets."
            )
        return variable


def _join(*parts: str) -> str:
    return "/".join(p for p in parts if p)


def _new_variable(path: str, name: str, shape, initializer: Initializer, dtype: tf.DType, *,
                  trainable: bool) -> tf.Variable:
    shape = tuple(int(d) for d in shape)
    with tf.name_scope(path + "/" if path else ""):
        return tf.Variable(lambda: tf.cast(initializer(shape, dtype=dtype), dtype),
                           name=name, trainable=trainable, dtype=dtype)
