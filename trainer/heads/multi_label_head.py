"""`MultiLabelHead`: independent sigmoid per class; an example may have several labels."""

from __future__ import annotations

import tensorflow as tf

from trainer.heads.base_head import (Head, all_classes, class_strings, classification_outputs,
                                     predictions_subset)
from trainer.heads.keys import MetricKeys, PredictionKeys as P, Reduction
from trainer.metrics import streaming


__all__ = ["MultiLabelHead"]


class MultiLabelHead(Head):
    """Head for multi-label classification.

    Labels are multi-hot ``[batch, n_classes]`` (0/1), or class ids as a
    `tf.SparseTensor` / -1-padded dense ids, or vocabulary strings.
    The per-example loss is the mean sigmoid cross-entropy over classes.
    """

    def __init__(self, n_classes, weight_column=None, thresholds=None, label_vocabulary=None,
                 loss_reduction=Reduction.SUM_OVER_BATCH_SIZE, loss_fn=None,
                 classes_for_class_based_metrics=None, name=None):
        super().__init__(weight_column=weight_column, loss_reduction=loss_reduction,
                         loss_fn=loss_fn, name=name)
        if not isinstance(n_classes, int) or n_classes < 2:
            raise ValueError(f"MultiLabelHead got n_classes={n_classes!r}; expected an int >= 2.")
        thresholds = tuple(thresholds or ())
        for t in thresholds:
            if not 0.0 < t < 1.0:
                raise ValueError(f"MultiLabelHead got thresholds={thresholds!r}; each must be in (0, 1).")
        if label_vocabulary is not None and len(label_vocabulary) != n_classes:
            raise ValueError(
                f"MultiLabelHead got {len(label_vocabulary)} label_vocabulary entries for "
                f"n_classes={n_classes}."
            )
        self.n_classes = n_classes
        self.logits_dimension = n_classes
        self.thresholds = thresholds
        self.label_vocabulary = label_vocabulary
        self.classes_for_class_based_metrics = tuple(classes_for_class_based_metrics or ())

    def _check_labels(self, labels):
        if isinstance(labels, tf.SparseTensor):
            return labels
        return super()._check_labels(labels)

    def _process_labels(self, labels):
        if isinstance(labels, tf.SparseTensor):
            values = labels.values
            if values.dtype == tf.string:
                values = _ids_of(values, self.label_vocabulary)
            ids = tf.SparseTensor(labels.indices, tf.cast(values, tf.int64), labels.dense_shape)
            return tf.cast(tf.sparse.to_indicator(ids, self.n_classes), tf.int64)
        if labels.dtype == tf.string:
            ids = _ids_of(labels, self.label_vocabulary, allow_empty=True)
            return tf.reduce_max(tf.one_hot(ids, self.n_classes, dtype=tf.int64), axis=1)
        if labels.shape[-1] == self.n_classes:
            bad = (labels < 0) | (labels > 1)
            check = tf.debugging.Assert(~tf.reduce_any(bad), [
                f"MultiLabelHead: multi-hot labels must be 0 or 1 in each of {self.n_classes} "
                "columns; got", tf.boolean_mask(labels, bad)[:1]])
            with tf.control_dependencies([check]):
                return tf.cast(labels, tf.int64)
        raise ValueError(
            f"MultiLabelHead got labels with shape {labels.shape}; expected multi-hot "
            f"[batch, {self.n_classes}], a SparseTensor of class ids, or vocabulary strings."
        )

    def _unweighted_loss(self, labels, logits):
        losses = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(labels, tf.float32), logits=logits)
        return tf.reduce_mean(losses, axis=-1, keepdims=True)

    @tf.autograph.experimental.do_not_convert
    def predictions(self, logits, keys=None):
        logits = self._check_logits(logits)
        names = class_strings(self.label_vocabulary, self.n_classes)
        predictions = {
            P.LOGITS: logits,
            P.PROBABILITIES: tf.sigmoid(logits),
            **all_classes(names, self.n_classes, logits),
        }
        return predictions_subset(predictions, keys)

    def _export_outputs(self, predictions):
        return classification_outputs(predictions)

    def _update_metrics(self, labels, logits, predictions, weights):
        probabilities = predictions[P.PROBABILITIES]
        w = weights * tf.ones_like(probabilities)
        metrics = {}
        auc = streaming.AUC(name="auc", from_logits=True)  # ranked by logits: no saturation
        auc.update_state(labels, predictions[P.LOGITS], weights=w)
        metrics[MetricKeys.AUC] = auc
        auc_pr = streaming.AUC(curve="PR", summation_method="careful_interpolation",
                               name="auc_precision_recall", from_logits=True)
        auc_pr.update_state(labels, predictions[P.LOGITS], weights=w)
        metrics[MetricKeys.AUC_PR] = auc_pr
        for t in self.thresholds:
            predicted = tf.cast(probabilities > t, tf.int64)
            for key, cls in ((MetricKeys.ACCURACY_AT_THRESHOLD, streaming.Accuracy),
                             (MetricKeys.PRECISION_AT_THRESHOLD, streaming.Precision),
                             (MetricKeys.RECALL_AT_THRESHOLD, streaming.Recall)):
                metric = cls(name=(key % t).replace("/", "_"))
                metric.update_state(labels, predicted, weights=w)
                metrics[key % t] = metric
        for class_id in self.classes_for_class_based_metrics:
            for prefix, cls in (("auc", streaming.AUC), ("recall", streaming.Recall),
                                ("precision", streaming.Precision)):
                metric = cls(name=f"{prefix}_class_{class_id}")
                values = probabilities[:, class_id]
                if prefix != "auc":
                    values = tf.cast(values > 0.5, tf.int64)
                metric.update_state(labels[:, class_id], values, weights=weights[:, 0])
                metrics[f"{prefix}/class{class_id}"] = metric
        return metrics


def _ids_of(values, vocabulary, allow_empty=False):
    if vocabulary is None:
        raise ValueError("MultiLabelHead got string labels but no label_vocabulary.")
    vocab = tf.constant(list(vocabulary))
    matches = tf.equal(values[..., None], vocab)
    found = tf.reduce_any(matches, axis=-1)
    if allow_empty:
        found = found | tf.equal(values, "")
    check = tf.debugging.Assert(tf.reduce_all(found), [
        f"MultiLabelHead: a label is not in label_vocabulary {list(vocabulary)}:",
        tf.boolean_mask(values, ~found)[:1]])
    with tf.control_dependencies([check]):
        ids = tf.argmax(tf.cast(matches, tf.int32), axis=-1, output_type=tf.int64)
        if allow_empty:
            ids = tf.where(tf.equal(values, ""), tf.constant(-1, tf.int64), ids)
        return ids
