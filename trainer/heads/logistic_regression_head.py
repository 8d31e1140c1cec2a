"""`LogisticRegressionHead`: regression of probabilities in [0, 1] with sigmoid cross-entropy."""

from __future__ import annotations

import tensorflow as tf

from trainer.heads.keys import Reduction
from trainer.heads.regression_head import RegressionHead

__all__ = ["LogisticRegressionHead"]


class LogisticRegressionHead(RegressionHead):
    """Labels are probabilities in [0, 1]; predictions are sigmoid(logits)."""

    def __init__(self, weight_column=None, loss_reduction=Reduction.SUM_OVER_BATCH_SIZE, name=None):
        super().__init__(label_dimension=1, weight_column=weight_column,
                         loss_reduction=loss_reduction, inverse_link_fn=tf.sigmoid, name=name)

    def _process_labels(self, labels):
        labels = super()._process_labels(labels)
        bad = (labels < 0) | (labels > 1)
        check = tf.debugging.Assert(~tf.reduce_any(bad), [
            "LogisticRegressionHead: labels must be in [0, 1]; got", tf.boolean_mask(labels, bad)[:1]])
        with tf.control_dependencies([check]):
            return tf.identity(labels)

    def _unweighted_loss(self, labels, logits):
        return tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
