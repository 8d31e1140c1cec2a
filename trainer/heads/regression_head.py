"""`RegressionHead`: squared error on ``label_dimension`` outputs."""

from __future__ import annotations

import tensorflow as tf

from trainer.export.export_output import PredictOutput, RegressionOutput
from trainer.heads.base_head import Head, predictions_subset
from trainer.heads.keys import MetricKeys, PredictionKeys as P, Reduction
from trainer.metrics import streaming

__all__ = ["RegressionHead"]


class RegressionHead(Head):
    """Head for regression; predictions are ``inverse_link_fn(logits)``.

    Args:
        label_dimension: number of regression targets per example.
        inverse_link_fn: maps logits to predictions (identity by default).

    Example:
        >>> RegressionHead().predictions(tf.constant([[1.5]]))["predictions"].numpy().tolist()
        [[1.5]]
    """

    def __init__(self, label_dimension=1, weight_column=None,
                 loss_reduction=Reduction.SUM_OVER_BATCH_SIZE, loss_fn=None, inverse_link_fn=None,
                 name=None):
        super().__init__(weight_column=weight_column, loss_reduction=loss_reduction,
                         loss_fn=loss_fn, name=name)
        if not isinstance(label_dimension, int) or label_dimension < 1:
            raise ValueError(f"RegressionHead got label_dimension={label_dimension!r}; expected an int >= 1.")
        self.label_dimension = label_dimension
        self.logits_dimension = label_dimension
        self.inverse_link_fn = inverse_link_fn

    def _process_labels(self, labels):
        if labels.dtype == tf.string or labels.dtype == tf.bool:
            raise ValueError(
                f"{type(self).__name__} got labels of dtype {labels.dtype.name}; expected numbers."
            )
        if labels.shape[-1] is not None and labels.shape[-1] != self.label_dimension:
            raise ValueError(
                f"{type(self).__name__} got labels with shape {labels.shape}; expected "
                f"[batch_size, {self.label_dimension}] (label_dimension)."
            )
        return tf.cast(labels, tf.float32)

    def _unweighted_loss(self, labels, logits):
        return tf.square(labels - logits)

    @tf.autograph.experimental.do_not_convert
    def predictions(self, logits, keys=None):
        logits = self._check_logits(logits)
        values = self.inverse_link_fn(logits) if self.inverse_link_fn else logits
        return predictions_subset({P.PREDICTIONS: values, P.LOGITS: logits}, keys)

    def _export_outputs(self, predictions):
        outputs = {"predict": PredictOutput(predictions)}
        if self.label_dimension == 1:
            regression = RegressionOutput(value=predictions[P.PREDICTIONS])
            outputs.update({"serving_default": regression, "regression": regression})
        else:
            outputs["serving_default"] = outputs["predict"]
        return outputs

    def _update_metrics(self, labels, logits, predictions, weights):
        values = predictions[P.PREDICTIONS]
        w = weights * tf.ones_like(values)
        label_mean = streaming.Mean(name="label_mean")
        label_mean.update_state(labels, weights=w)
        prediction_mean = streaming.Mean(name="prediction_mean")
        prediction_mean.update_state(values, weights=w)
        return {MetricKeys.LABEL_MEAN: label_mean, MetricKeys.PREDICTION_MEAN: prediction_mean}
