"""Wide & deep: a linear model and a DNN summed into one logit, each with its optimizer."""

from __future__ import annotations

import tensorflow as tf

from trainer import _context, optimizers
from trainer import feature_column as fc
from trainer.canned import _common
from trainer.canned.dnn import check_dropout, check_hidden_units, dnn_logits
from trainer.canned.linear import check_combiner, linear_logits
from trainer.mode_keys import ModeKeys

__all__ = ["DNNLinearCombinedEstimator", "DNNLinearCombinedClassifier",
           "DNNLinearCombinedRegressor"]


class DNNLinearCombinedEstimator(_common.CannedEstimator):
    """Wide & deep with any head.

    The linear part (``linear/...`` variables) is trained by
    ``linear_optimizer`` (FTRL by default), the deep part (``dnn/...``) by
    ``dnn_optimizer`` (Adagrad by default), from one gradient computation.
    """

    def __init__(self, head, model_dir=None, linear_feature_columns=None,
                 linear_optimizer="Ftrl", dnn_feature_columns=None, dnn_optimizer="Adagrad",
                 dnn_hidden_units=None, dnn_activation_fn=tf.nn.relu, dnn_dropout=None,
                 config=None, batch_norm=False, linear_sparse_combiner="sum",
                 warm_start_from=None):
        caller = type(self).__name__
        if not linear_feature_columns and not dnn_feature_columns:
            raise ValueError(
                f"{caller} got neither linear_feature_columns nor dnn_feature_columns; give at "
                "least one."
            )
        linear_columns = (_common.check_columns(linear_feature_columns, caller, "linear_feature_columns")
                          if linear_feature_columns else [])
        dnn_columns = (_common.check_columns(dnn_feature_columns, caller, "dnn_feature_columns")
                       if dnn_feature_columns else [])
        if dnn_columns:
            dnn_hidden_units = check_hidden_units(dnn_hidden_units, caller)
        dnn_dropout = check_dropout(dnn_dropout, caller)
        linear_sparse_combiner = check_combiner(linear_sparse_combiner, caller)
        linear_rate = _common.linear_learning_rate(len(linear_columns), _common.WIDE_DEEP_LINEAR_LEARNING_RATE)
        init_args = dict(head=head, linear_feature_columns=linear_columns,
                         linear_optimizer=linear_optimizer, dnn_feature_columns=dnn_columns,
                         dnn_optimizer=dnn_optimizer, dnn_hidden_units=dnn_hidden_units,
                         dnn_activation_fn=dnn_activation_fn, dnn_dropout=dnn_dropout,
                         batch_norm=batch_norm, linear_sparse_combiner=linear_sparse_combiner)

        def model_fn(features, labels, mode):
            parts = []
            shared = fc.FeatureCache(features)  # each column is transformed once for both parts
            if dnn_columns:
                with tf.name_scope("dnn"):
                    parts.append(dnn_logits(shared, dnn_columns, dnn_hidden_units,
                                            head.logits_dimension, mode=mode,
                                            activation_fn=dnn_activation_fn, dropout=dnn_dropout,
                                            batch_norm=batch_norm))
            if linear_columns:
                with tf.name_scope("linear"):
                    parts.append(linear_logits(shared, linear_columns, head.logits_dimension,
                                               linear_sparse_combiner))
            logits = tf.add_n(parts) if len(parts) > 1 else parts[0]

            def train_op_fn(loss):
                pairs = []
                if dnn_columns:
                    pairs.append((_common.resolve_optimizer(dnn_optimizer, _common.WIDE_DEEP_DNN_LEARNING_RATE),
                                  _common.scope_variables("dnn")))
                if linear_columns:
                    pairs.append((_common.resolve_optimizer(linear_optimizer, linear_rate),
                                  _common.scope_variables("linear")))
                return optimizers.minimize_split(loss, pairs, _context.get_global_step())

            return head.create_estimator_spec(
                features, mode, logits, labels,
                train_op_fn=train_op_fn if mode == ModeKeys.TRAIN else None)

        self.head = head
        super().__init__(model_fn, init_args=init_args, model_dir=model_dir, config=config,
                         warm_start_from=warm_start_from)


class DNNLinearCombinedClassifier(DNNLinearCombinedEstimator):
    """Wide & deep classifier (binary or multi-class)."""

    def __init__(self, model_dir=None, linear_feature_columns=None, linear_optimizer="Ftrl",
                 dnn_feature_columns=None, dnn_optimizer="Adagrad", dnn_hidden_units=None,
                 dnn_activation_fn=tf.nn.relu, dnn_dropout=None, n_classes=2, weight_column=None,
                 label_vocabulary=None, config=None, warm_start_from=None,
                 loss_reduction=_common.DEFAULT_REDUCTION, batch_norm=False,
                 linear_sparse_combiner="sum"):
        head = _common.classification_head(n_classes, weight_column, label_vocabulary,
                                           loss_reduction, type(self).__name__)
        super().__init__(head, model_dir=model_dir, linear_feature_columns=linear_feature_columns,
                         linear_optimizer=linear_optimizer, dnn_feature_columns=dnn_feature_columns,
                         dnn_optimizer=dnn_optimizer, dnn_hidden_units=dnn_hidden_units,
                         dnn_activation_fn=dnn_activation_fn, dnn_dropout=dnn_dropout,
                         config=config, batch_norm=batch_norm,
                         linear_sparse_combiner=linear_sparse_combiner,
                         warm_start_from=warm_start_from)
        self._init_args.update(n_classes=n_classes, weight_column=weight_column,
                               label_vocabulary=label_vocabulary, loss_reduction=loss_reduction)
        self._init_args.pop("head")


class DNNLinearCombinedRegressor(DNNLinearCombinedEstimator):
    """Wide & deep regressor."""

    def __init__(self, model_dir=None, linear_feature_columns=None, linear_optimizer="Ftrl",
                 dnn_feature_columns=None, dnn_optimizer="Adagrad", dnn_hidden_units=None,
                 dnn_activation_fn=tf.nn.relu, dnn_dropout=None, label_dimension=1,
                 weight_column=None, config=None, warm_start_from=None,
                 loss_reduction=_common.DEFAULT_REDUCTION, batch_norm=False,
                 linear_sparse_combiner="sum"):
        head = _common.regression_head(label_dimension, weight_column, loss_reduction)
        super().__init__(head, model_dir=model_dir, linear_feature_columns=linear_feature_columns,
                         linear_optimizer=linear_optimizer, dnn_feature_columns=dnn_feature_columns,
                         dnn_optimizer=dnn_optimizer, dnn_hidden_units=dnn_hidden_units,
                         dnn_activation_fn=dnn_activation_fn, dnn_dropout=dnn_dropout,
                         config=config, batch_norm=batch_norm,
                         linear_sparse_combiner=linear_sparse_combiner,
                         warm_start_from=warm_start_from)
        self._init_args.update(label_dimension=label_dimension, weight_column=weight_column,
                               loss_reduction=loss_reduction)
        self._init_args.pop("head")
