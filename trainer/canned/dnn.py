"""DNN estimators: a feed-forward network over dense feature columns."""

from __future__ import annotations

import tensorflow as tf

from trainer import feature_column as fc
from trainer.canned import _common
from trainer.layers import batch_normalization, dense
from trainer.mode_keys import ModeKeys

__all__ = ["dnn_logits", "DNNEstimator", "DNNClassifier", "DNNRegressor"]


def check_hidden_units(hidden_units, caller):
    if not hidden_units or any(not isinstance(u, int) or u <= 0 for u in hidden_units):
        raise ValueError(
            f"{caller} got hidden_units={hidden_units!r}; expected a non-empty list of positive ints."
        )
    return list(hidden_units)


def check_dropout(dropout, caller):
    if dropout is not None and not 0.0 <= dropout < 1.0:
        raise ValueError(f"{caller} got dropout={dropout!r}; expected a rate in [0, 1).")
    return dropout


def dnn_logits(features, feature_columns, hidden_units, logits_dimension, *, mode,
               activation_fn=tf.nn.relu, dropout=None, batch_norm=False):
    """The network under the current scope: input layer, hidden layers, logits.

    Variables: ``input_from_feature_columns/input_layer/...``, ``hiddenlayer_<i>/{kernel,bias}``,
    ``hiddenlayer_<i>/batchnorm_<i>/...``, ``logits/{kernel,bias}``.
    """
    training = mode == ModeKeys.TRAIN
    with tf.name_scope("input_from_feature_columns"):  # tf.estimator's names, so its checkpoints load
        net = fc.DenseFeatures(feature_columns, name="input_layer")(features)
    for i, units in enumerate(hidden_units):
        net = dense(net, units, activation=None if batch_norm else activation_fn,
                    name=f"hiddenlayer_{i}")
        if batch_norm:
            net = activation_fn(batch_normalization(net, training, name=f"hiddenlayer_{i}/batchnorm_{i}"))
        if dropout and training:
            net = tf.nn.dropout(net, rate=dropout)
    return dense(net, logits_dimension, name="logits")


class DNNEstimator(_common.CannedEstimator):
    """A DNN with any head (e.g. `MultiLabelHead`).

    Example:
        >>> # est = DNNEstimator(head=trainer.heads.MultiLabelHead(3), hidden_units=[32, 16],
        >>> #                    feature_columns=[numeric_column("x", shape=4)])
    """

    def __init__(self, head, hidden_units, feature_columns, model_dir=None, optimizer="Adagrad",
                 activation_fn=tf.nn.relu, dropout=None, config=None, warm_start_from=None,
                 batch_norm=False):
        caller = type(self).__name__
        hidden_units = check_hidden_units(hidden_units, caller)
        feature_columns = _common.check_columns(feature_columns, caller)
        dropout = check_dropout(dropout, caller)
        init_args = dict(head=head, hidden_units=hidden_units, feature_columns=feature_columns,
                         optimizer=optimizer, activation_fn=activation_fn, dropout=dropout,
                         batch_norm=batch_norm)

        def model_fn(features, labels, mode, config):
            del config
            with tf.name_scope("dnn"):
                logits = dnn_logits(features, feature_columns, hidden_units,
                                    head.logits_dimension, mode=mode, activation_fn=activation_fn,
                                    dropout=dropout, batch_norm=batch_norm)
            opt = None
            if mode == ModeKeys.TRAIN:
                opt = _common.resolve_optimizer(optimizer, _common.keras_default_learning_rate(optimizer))
            return head.create_estimator_spec(features, mode, logits, labels, optimizer=opt)

        self.head = head
        super().__init__(model_fn, init_args=init_args, model_dir=model_dir, config=config,
                         warm_start_from=warm_start_from)


class DNNClassifier(DNNEstimator):
    """A DNN classifier (binary or multi-class).

    Example:
        >>> from trainer.feature_column import numeric_column
        >>> clf = DNNClassifier(hidden_units=[8], feature_columns=[numeric_column("x")], n_classes=3)
        >>> clf.head.logits_dimension
        3
    """

    def __init__(self, hidden_units, feature_columns, model_dir=None, n_classes=2,
                 weight_column=None, label_vocabulary=None, optimizer="Adagrad",
                 activation_fn=tf.nn.relu, dropout=None, config=None, warm_start_from=None,
                 loss_reduction=_common.DEFAULT_REDUCTION, batch_norm=False):
        head = _common.classification_head(n_classes, weight_column, label_vocabulary,
                                           loss_reduction, type(self).__name__)
        super().__init__(head, hidden_units, feature_columns, model_dir=model_dir,
                         optimizer=optimizer, activation_fn=activation_fn, dropout=dropout,
                         config=config, warm_start_from=warm_start_from, batch_norm=batch_norm)
        self._init_args.update(n_classes=n_classes, weight_column=weight_column,
                               label_vocabulary=label_vocabulary, loss_reduction=loss_reduction)
        self._init_args.pop("head")


class DNNRegressor(DNNEstimator):
    """A DNN regressor with ``label_dimension`` outputs."""

    def __init__(self, hidden_units, feature_columns, model_dir=None, label_dimension=1,
                 weight_column=None, optimizer="Adagrad", activation_fn=tf.nn.relu, dropout=None,
                 config=None, warm_start_from=None, loss_reduction=_common.DEFAULT_REDUCTION,
                 batch_norm=False):
        head = _common.regression_head(label_dimension, weight_column, loss_reduction)
        super().__init__(head, hidden_units, feature_columns, model_dir=model_dir,
                         optimizer=optimizer, activation_fn=activation_fn, dropout=dropout,
                         config=config, warm_start_from=warm_start_from, batch_norm=batch_norm)
        self._init_args.update(label_dimension=label_dimension, weight_column=weight_column,
                               loss_reduction=loss_reduction)
        self._init_args.pop("head")
