"""Baseline estimators: ignore the features and learn the label prior (or mean)."""

from __future__ import annotations

import tensorflow as tf

from trainer.canned import _common
from trainer.mode_keys import ModeKeys

__all__ = ["BaselineEstimator", "BaselineClassifier", "BaselineRegressor"]

_BASELINE_LEARNING_RATE = 0.3


class BaselineEstimator(_common.CannedEstimator):
    """Predicts a learned constant (``baseline/bias``) for every example, with any head."""

    def __init__(self, head, model_dir=None, optimizer="Ftrl", config=None, warm_start_from=None):
        init_args = dict(head=head, optimizer=optimizer)

        def model_fn(features, labels, mode):
            batch = _common.batch_size_of(features)
            bias = tf.Variable(lambda: tf.zeros([head.logits_dimension]), name="baseline/bias")
            logits = tf.tile(bias[None, :], [batch, 1])
            opt = (_common.resolve_optimizer(optimizer, _BASELINE_LEARNING_RATE)
                   if mode == ModeKeys.TRAIN else None)
            return head.create_estimator_spec(features, mode, logits, labels, optimizer=opt)

        self.head = head
        super().__init__(model_fn, init_args=init_args, model_dir=model_dir, config=config,
                         warm_start_from=warm_start_from)


class BaselineClassifier(BaselineEstimator):
    """Predicts the class distribution seen in training."""

    def __init__(self, model_dir=None, n_classes=2, weight_column=None, label_vocabulary=None,
                 optimizer="Ftrl", config=None, loss_reduction=_common.DEFAULT_REDUCTION,
                 warm_start_from=None):
        head = _common.classification_head(n_classes, weight_column, label_vocabulary,
                                           loss_reduction, type(self).__name__)
        super().__init__(head, model_dir=model_dir, optimizer=optimizer, config=config,
                         warm_start_from=warm_start_from)
        self._init_args.update(n_classes=n_classes, weight_column=weight_column,
                               label_vocabulary=label_vocabulary, loss_reduction=loss_reduction)
        self._init_args.pop("head")


class BaselineRegressor(BaselineEstimator):
    """Predicts the mean label seen in training."""

    def __init__(self, model_dir=None, label_dimension=1, weight_column=None, optimizer="Ftrl",
                 config=None, loss_reduction=_common.DEFAULT_REDUCTION, warm_start_from=None):
        head = _common.regression_head(label_dimension, weight_column, loss_reduction)
        super().__init__(head, model_dir=model_dir, optimizer=optimizer, config=config,
                         warm_start_from=warm_start_from)
        self._init_args.update(label_dimension=label_dimension, weight_column=weight_column,
                               loss_reduction=loss_reduction)
        self._init_args.pop("head")
