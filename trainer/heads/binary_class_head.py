"""`BinaryClassHead`: sigmoid cross-entropy over one logit."""

from __future__ import annotations

import tensorflow as tf

from trainer.export.export_output import RegressionOutput
from trainer.heads.base_head import (Head, all_classes, check_label_ids, class_strings,
                                     classification_outputs, predictions_subset, vocabulary_ids)
from trainer.heads.keys import MetricKeys, PredictionKeys as P, Reduction
from trainer.metrics import streaming


__all__ = ["BinaryClassHead"]


class BinaryClassHead(Head):
    """Head for binary classification: labels are 0/1 (or two vocabulary strings).

    Args:
        weight_column: feature key of example weights.
        thresholds: extra decision thresholds for accuracy/precision/recall metrics.
        label_vocabulary: two strings, the labels' names for classes 0 and 1.
        loss_reduction: `Reduction.SUM_OVER_BATCH_SIZE` or `Reduction.SUM`.
        loss_fn: optional ``loss_fn(labels, logits)``.
        name: metric key suffix / MultiHead name.

    Example:
        >>> head = BinaryClassHead()
        >>> sorted(head.predictions(tf.constant([[0.0]])))[:3]
        ['all_class_ids', 'all_classes', 'class_ids']
    """

    logits_dimension = 1

    def __init__(self, weight_column=None, thresholds=None, label_vocabulary=None,
                 loss_reduction=Reduction.SUM_OVER_BATCH_SIZE, loss_fn=None, name=None):
        super().__init__(weight_column=weight_column, loss_reduction=loss_reduction,
                         loss_fn=loss_fn, name=name)
        thresholds = tuple(thresholds or ())
        for t in thresholds:
            if not 0.0 < t < 1.0:
                raise ValueError(f"BinaryClassHead got thresholds={thresholds!r}; each must be in (0, 1).")
        if label_vocabulary is not None and (not isinstance(label_vocabulary, (list, tuple))
                                             or len(label_vocabulary) != 2):
            raise ValueError(
                f"BinaryClassHead got label_vocabulary={label_vocabulary!r}; expected a list of "
                "2 strings."
            )
        self.thresholds = thresholds
        self.label_vocabulary = label_vocabulary

    def _process_labels(self, labels):
        if labels.dtype == tf.string:
            if self.label_vocabulary is None:
                raise ValueError(
                    "BinaryClassHead got string labels but no label_vocabulary; pass "
                    "label_vocabulary=['no', 'yes'] (class 0 first)."
                )
            ids = vocabulary_ids(labels, self.label_vocabulary, "BinaryClassHead")
        else:
            ids = check_label_ids(tf.cast(labels, tf.int64), 2, "BinaryClassHead")
        return ids

    def _unweighted_loss(self, labels, logits):
        return tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(labels, tf.float32),
                                                       logits=logits)

    @tf.autograph.experimental.do_not_convert
    def predictions(self, logits, keys=None):
        logits = self._check_logits(logits)
        logistic = tf.sigmoid(logits)
        two = tf.concat([tf.zeros_like(logits), logits], axis=1)
        class_ids = tf.cast(logits > 0, tf.int64)
        names = class_strings(self.label_vocabulary, 2)
        predictions = {
            P.LOGITS: logits,
            P.LOGISTIC: logistic,
            P.PROBABILITIES: tf.nn.softmax(two),
            P.CLASS_IDS: class_ids,
            P.CLASSES: tf.gather(names, class_ids),
            **all_classes(names, 2, logits),
        }
        return predictions_subset(predictions, keys)

    def _export_outputs(self, predictions):
        outputs = classification_outputs(predictions)
        outputs["regression"] = RegressionOutput(value=predictions[P.LOGISTIC])
        return outputs

    def _update_metrics(self, labels, logits, predictions, weights):
        probabilities = predictions[P.LOGISTIC]
        class_ids = predictions[P.CLASS_IDS]
        metrics = {}

        def add(key, metric, *args):
            metric.update_state(*args, weights=weights)
            metrics[key] = metric

        add(MetricKeys.ACCURACY, streaming.Accuracy(name="accuracy"), labels, class_ids)
        add(MetricKeys.PRECISION, streaming.Precision(name="precision"), labels, class_ids)
        add(MetricKeys.RECALL, streaming.Recall(name="recall"), labels, class_ids)
        add(MetricKeys.PREDICTION_MEAN, streaming.Mean(name="prediction_mean"), probabilities)
        label_mean = streaming.Mean(name="label_mean")
        add(MetricKeys.LABEL_MEAN, label_mean, tf.cast(labels, tf.float32))
        metrics[MetricKeys.ACCURACY_BASELINE] = _AccuracyBaseline(label_mean)
        # Ranked by logits: the same AUC as the probabilities', without their saturation.
        logit = predictions[P.LOGITS]
        add(MetricKeys.AUC, streaming.AUC(name="auc", from_logits=True), labels, logit)
        add(MetricKeys.AUC_PR, streaming.AUC(curve="PR", summation_method="careful_interpolation",
                                             name="auc_precision_recall", from_logits=True),
            labels, logit)
        for t in self.thresholds:
            predicted = tf.cast(probabilities > t, tf.int64)
            add(MetricKeys.ACCURACY_AT_THRESHOLD % t, streaming.Accuracy(name=f"accuracy_at_{t:g}"),
                labels, predicted)
            add(MetricKeys.PRECISION_AT_THRESHOLD % t,
                streaming.Precision(name=f"precision_at_{t:g}"), labels, predicted)
            add(MetricKeys.RECALL_AT_THRESHOLD % t, streaming.Recall(name=f"recall_at_{t:g}"),
                labels, predicted)
        return metrics


class _AccuracyBaseline:
    """max(label mean, 1 - label mean): the accuracy of always guessing the majority."""

    def __init__(self, label_mean):
        self._label_mean = label_mean
        self.variables = []

    def update_state(self, *args, **kwargs):
        return self.result()

    def result(self):
        mean = self._label_mean.result()
        return tf.maximum(mean, 1.0 - mean)
