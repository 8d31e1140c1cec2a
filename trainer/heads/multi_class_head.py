"""`MultiClassHead`: softmax cross-entropy over ``n_classes`` logits."""

from __future__ import annotations

import tensorflow as tf

from trainer.heads.base_head import (Head, all_classes, check_label_ids, class_strings,
                                     classification_outputs, predictions_subset, vocabulary_ids)
from trainer.heads.keys import MetricKeys, PredictionKeys as P, Reduction
from trainer.metrics import streaming

__all__ = ["MultiClassHead"]


class MultiClassHead(Head):
    """Head for single-label classification among ``n_classes`` > 2 classes.

    Example:
        >>> MultiClassHead(3).logits_dimension
        3
    """

    def __init__(self, n_classes, weight_column=None, label_vocabulary=None,
                 loss_reduction=Reduction.SUM_OVER_BATCH_SIZE, loss_fn=None, name=None):
        super().__init__(weight_column=weight_column, loss_reduction=loss_reduction,
                         loss_fn=loss_fn, name=name)
        if not isinstance(n_classes, int) or n_classes <= 2:
            raise ValueError(
                f"MultiClassHead got n_classes={n_classes!r}; expected an int > 2 (use "
                "BinaryClassHead for 2 classes)."
            )
        if label_vocabulary is not None and len(label_vocabulary) != n_classes:
            raise ValueError(
                f"MultiClassHead got {len(label_vocabulary)} label_vocabulary entries for "
                f"n_classes={n_classes}; they must match."
            )
        self.n_classes = n_classes
        self.logits_dimension = n_classes
        self.label_vocabulary = label_vocabulary

    def _process_labels(self, labels):
        if labels.dtype == tf.string:
            if self.label_vocabulary is None:
                raise ValueError(
                    "MultiClassHead got string labels but no label_vocabulary; pass the class "
                    "names in id order."
                )
            return vocabulary_ids(labels, self.label_vocabulary, "MultiClassHead")
        return check_label_ids(tf.cast(labels, tf.int64), self.n_classes, "MultiClassHead")

    def _unweighted_loss(self, labels, logits):
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels[:, 0], logits=logits)[:, None]

    @tf.autograph.experimental.do_not_convert
    def predictions(self, logits, keys=None):
        logits = self._check_logits(logits)
        class_ids = tf.argmax(logits, axis=1)[:, None]
        names = class_strings(self.label_vocabulary, self.n_classes)
        predictions = {
            P.LOGITS: logits,
            P.PROBABILITIES: tf.nn.softmax(logits),
            P.CLASS_IDS: class_ids,
            P.CLASSES: tf.gather(names, class_ids),
            **all_classes(names, self.n_classes, logits),
        }
        return predictions_subset(predictions, keys)

    def _export_outputs(self, predictions):
        return classification_outputs(predictions)

    def _update_metrics(self, labels, logits, predictions, weights):
        accuracy = streaming.Accuracy(name="accuracy")
        accuracy.update_state(labels, predictions[P.CLASS_IDS], weights=weights)
        return {MetricKeys.ACCURACY: accuracy}
