"""What the canned estimators share: head choice, column checks, optimizers."""

from __future__ import annotations

import math
from collections.abc import Mapping

import tensorflow as tf

from trainer import optimizers
from trainer.estimator import Estimator
from trainer.heads import BinaryClassHead, MultiClassHead, RegressionHead
from trainer.heads.keys import Reduction
from trainer.variables import current_store

# tf.estimator 2.x (its V2 canned estimators): a DNN optimizer given by name gets Keras's
# default learning rate for it; a linear one by name gets 0.2 (with optimizer=None:
# Ftrl at min(0.2, 1/sqrt(#columns))); the wide & deep parts get their own, below.
KERAS_DEFAULT_LEARNING_RATES = {"Adagrad": 0.001, "Adam": 0.001, "Ftrl": 0.001, "RMSProp": 0.001,
                                "SGD": 0.01, "Momentum": 0.01}
LINEAR_LEARNING_RATE = 0.2
# tf.estimator's wide & deep kept lower defaults of its own for both parts.
WIDE_DEEP_DNN_LEARNING_RATE = 0.001
WIDE_DEEP_LINEAR_LEARNING_RATE = 0.005


def classification_head(n_classes, weight_column, label_vocabulary, loss_reduction, caller):
    if not isinstance(n_classes, int) or n_classes < 2:
        raise ValueError(f"{caller} got n_classes={n_classes!r}; expected an int >= 2.")
    if n_classes == 2:
        return BinaryClassHead(weight_column=weight_column, label_vocabulary=label_vocabulary,
                               loss_reduction=loss_reduction)
    return MultiClassHead(n_classes, weight_column=weight_column,
                          label_vocabulary=label_vocabulary, loss_reduction=loss_reduction)


def regression_head(label_dimension, weight_column, loss_reduction):
    return RegressionHead(label_dimension=label_dimension, weight_column=weight_column,
                          loss_reduction=loss_reduction)


def check_columns(columns, caller, argument="feature_columns"):
    if columns is None or isinstance(columns, (str, bytes)):
        raise ValueError(f"{caller} got {argument}={columns!r}; expected a list of feature columns.")
    columns = list(columns)
    if not columns:
        raise ValueError(f"{caller} got {argument}=[]; expected at least one feature column.")
    from trainer.feature_column import FeatureColumn

    for column in columns:
        if not isinstance(column, FeatureColumn):
            raise ValueError(
                f"{caller} got {argument} item {column!r}; expected trainer.feature_column columns "
                "(e.g. numeric_column('age'))."
            )
    return columns


def linear_learning_rate(num_columns: int, cap: float = LINEAR_LEARNING_RATE) -> float:
    """tf.estimator's default for linear models: min(cap, 1/sqrt(#columns)); cap 0.2 (0.005 in wide & deep)."""
    return min(cap, 1.0 / math.sqrt(max(num_columns, 1)))


def keras_default_learning_rate(optimizer):
    """Keras's default rate for an optimizer named by a string or a ``{"name": ...}`` mapping."""
    name = optimizer.get("name") if isinstance(optimizer, Mapping) else optimizer
    return KERAS_DEFAULT_LEARNING_RATES.get(name) if isinstance(name, str) else None


def resolve_optimizer(optimizer, learning_rate):
    """A name (or a ``{"name": ...}`` mapping without a rate) gets the estimator's default learning rate."""
    if isinstance(optimizer, (str, Mapping)):
        return optimizers.get(optimizer, learning_rate)
    return optimizers.get(optimizer)


def scope_variables(prefix: str):
    store = current_store()
    return [v for key, v in store.global_variables.items()
            if v.trainable and key.startswith(prefix + "/")]


def batch_size_of(features):
    for value in tf.nest.flatten(features, expand_composites=False):
        if isinstance(value, tf.SparseTensor):
            return tf.cast(value.dense_shape[0], tf.int32)
        if isinstance(value, tf.RaggedTensor):
            return tf.cast(value.nrows(), tf.int32)
        return tf.shape(value)[0]
    raise ValueError("The features dict is empty; a canned estimator needs at least one feature.")


class CannedEstimator(Estimator):
    """An `Estimator` built from a head, a network and optimizers.

    It keeps its constructor arguments (`get_params`), so scikit-learn style
    wrappers can clone it.
    """

    def __init__(self, model_fn, *, init_args: dict, model_dir=None, config=None,
                 warm_start_from=None):
        # The canned networks, heads and columns are written with TensorFlow ops, not
        # Python control flow on tensors: AutoGraph converting them (some 300 functions)
        # cost seconds per trace and bought nothing.
        model_fn = tf.autograph.experimental.do_not_convert(model_fn)
        super().__init__(model_fn, model_dir=model_dir, config=config,
                         warm_start_from=warm_start_from)
        self._init_args = dict(init_args)

    def get_params(self) -> dict:
        return dict(self._init_args)


DEFAULT_REDUCTION = Reduction.SUM_OVER_BATCH_SIZE
