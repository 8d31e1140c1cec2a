"""`PoissonRegressionHead`: log-Poisson loss on counts; predictions are exp(logits)."""

from __future__ import annotations

import tensorflow as tf

from trainer.heads.keys import Reduction
from trainer.heads.regression_head import RegressionHead

__all__ = ["PoissonRegressionHead"]


class PoissonRegressionHead(RegressionHead):
    """Regression of non-negative counts with the full log-Poisson loss."""

    def __init__(self, label_dimension=1, weight_column=None,
                 loss_reduction=Reduction.SUM_OVER_BATCH_SIZE, compute_full_loss=True, name=None):
        super().__init__(label_dimension=label_dimension, weight_column=weight_column,
                         loss_reduction=loss_reduction, inverse_link_fn=tf.exp, name=name)
        self.compute_full_loss = compute_full_loss

    def _process_labels(self, labels):
        labels = super()._process_labels(labels)
        check = tf.debugging.Assert(tf.reduce_all(labels >= 0), [
            "PoissonRegressionHead: labels must be non-negative counts; got",
            tf.boolean_mask(labels, labels < 0)[:1]])
        with tf.control_dependencies([check]):
            return tf.identity(labels)

    def _unweighted_loss(self, labels, logits):
        return tf.nn.log_poisson_loss(targets=labels, log_input=logits,
                                      compute_full_loss=self.compute_full_loss)
