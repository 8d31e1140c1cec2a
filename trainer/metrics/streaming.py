"""Streaming metrics: variables accumulate over batches; `result` reads the total.

Their state is *local*: never checkpointed, fresh for every evaluation.
"""

from __future__ import annotations

import re

import tensorflow as tf

from trainer.variables import local_variables

__all__ = ["logit_spaced_thresholds", "Metric", "Mean", "Accuracy", "AUC", "Precision", "Recall", "MeanSquaredError",
           "RootMeanSquaredError", "MeanAbsoluteError", "TruePositives", "FalsePositives",
           "TrueNegatives", "FalseNegatives"]

_EPSILON = 1e-7


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _align(labels, predictions):
    """Drops a trailing size-1 dimension so [B, 1] labels meet [B] predictions."""
    labels = tf.convert_to_tensor(labels)
    predictions = tf.convert_to_tensor(predictions)
    lr, pr = labels.shape.rank, predictions.shape.rank
    if lr is not None and pr is not None:
        if lr == pr + 1 and labels.shape[-1] == 1:
            labels = tf.squeeze(labels, -1)
        elif pr == lr + 1 and predictions.shape[-1] == 1:
            predictions = tf.squeeze(predictions, -1)
    return labels, predictions


def _weights(weights, like):
    if weights is None:
        return tf.ones_like(like, tf.float32)
    weights = tf.cast(weights, tf.float32)
    if weights.shape.rank == like.shape.rank + 1 and weights.shape[-1] == 1:
        weights = tf.squeeze(weights, -1)
    return tf.broadcast_to(weights, tf.shape(like))


class Metric:
    """Base class: `update_state` accumulates, `result` reads, `reset_state` zeroes.

    `update_state` returns the updated result, so ``m.update_state(...)`` is
    also TF1's ``update_op``.
    """

    def __init__(self, name: str | None = None):
        self.name = name or _snake(type(self).__name__)
        self._variables: list[tf.Variable] = []

    def add_state(self, name, shape=(), dtype=tf.float32):
        with local_variables(), tf.name_scope(self.name):
            var = tf.Variable(lambda: tf.zeros(shape, dtype), trainable=False, name=name)
        self._variables.append(var)
        return var

    @property
    def variables(self) -> list[tf.Variable]:
        return list(self._variables)

    def update_state(self, *args, **kwargs):
        raise NotImplementedError

    def result(self):
        raise NotImplementedError

    def reset_state(self):
        for var in self._variables:
            var.assign(tf.zeros_like(var))


class Mean(Metric):
    """Weighted mean of ``values`` over all batches."""

    def __init__(self, name=None):
        super().__init__(name)
        self.total = self.add_state("total")
        self.count = self.add_state("count")

    def update_state(self, values, weights=None):
        values = tf.cast(values, tf.float32)
        w = _weights(weights, values)
        with tf.control_dependencies([self.total.assign_add(tf.reduce_sum(values * w)),
                                      self.count.assign_add(tf.reduce_sum(w))]):
            return self.result()

    def result(self):
        return tf.math.divide_no_nan(self.total.read_value(), self.count.read_value())


class _PairMean(Mean):
    def _values(self, labels, predictions):
        raise NotImplementedError

    def update_state(self, labels, predictions, weights=None):
        labels, predictions = _align(labels, predictions)
        return super().update_state(self._values(labels, predictions), weights)


class Accuracy(_PairMean):
    """Fraction of predictions equal to the labels."""

    def _values(self, labels, predictions):
        return tf.cast(tf.equal(tf.cast(predictions, labels.dtype), labels), tf.float32)


class MeanSquaredError(_PairMean):
    def _values(self, labels, predictions):
        return tf.square(tf.cast(predictions, tf.float32) - tf.cast(labels, tf.float32))


class MeanAbsoluteError(_PairMean):
    def _values(self, labels, predictions):
        return tf.abs(tf.cast(predictions, tf.float32) - tf.cast(labels, tf.float32))


class RootMeanSquaredError(MeanSquaredError):
    def result(self):
        return tf.sqrt(super().result())


class _Confusion(Metric):
    """Weighted confusion counts, at fixed ``thresholds`` or on boolean predictions."""

    def __init__(self, thresholds=None, name=None):
        super().__init__(name)
        self.thresholds = None if thresholds is None else [float(t) for t in thresholds]
        shape = () if thresholds is None else (len(self.thresholds),)
        self.tp = self.add_state("true_positives", shape)
        self.fp = self.add_state("false_positives", shape)
        self.tn = self.add_state("true_negatives", shape)
        self.fn = self.add_state("false_negatives", shape)

    def update_state(self, labels, predictions, weights=None):
        labels, predictions = _align(labels, predictions)
        positive = tf.cast(labels, tf.bool) if labels.dtype == tf.bool else labels > 0
        w = _weights(weights, tf.cast(positive, tf.float32))
        if self.thresholds is None:
            predicted = tf.cast(predictions, tf.bool) if predictions.dtype == tf.bool else predictions > 0
            axis = None
        else:
            t = tf.constant(self.thresholds, tf.float32)
            predicted = tf.cast(predictions, tf.float32)[..., None] > t
            positive, w = positive[..., None], w[..., None]
            axis = list(range(predicted.shape.rank - 1))

        def count(mask):
            return tf.reduce_sum(tf.cast(mask, tf.float32) * w, axis=axis)

        updates = [self.tp.assign_add(count(positive & predicted)),
                   self.fp.assign_add(count(~positive & predicted)),
                   self.tn.assign_add(count(~positive & ~predicted)),
                   self.fn.assign_add(count(positive & ~predicted))]
        with tf.control_dependencies(updates):
            return self.result()


class Precision(_Confusion):
    def result(self):
        return tf.math.divide_no_nan(self.tp.read_value(), self.tp.read_value() + self.fp.read_value())


class Recall(_Confusion):
    def result(self):
        return tf.math.divide_no_nan(self.tp.read_value(), self.tp.read_value() + self.fn.read_value())


class TruePositives(_Confusion):
    def result(self):
        return self.tp.read_value()


class FalsePositives(_Confusion):
    def result(self):
        return self.fp.read_value()


class TrueNegatives(_Confusion):
    def result(self):
        return self.tn.read_value()


class FalseNegatives(_Confusion):
    def result(self):
        return self.fn.read_value()


class AUC(Metric):
    """Area under the ROC or PR curve from ``num_thresholds`` confusion counts.

    Thresholds are TF1's: evenly spaced in (0, 1) plus ``-eps`` and ``1+eps``;
    or give ``thresholds`` explicitly (see `logit_spaced_thresholds`). With
    ``from_logits=True`` the predictions are logits and the thresholds (by
    default 1999 evenly spaced in [-30, 30]) are in logit space; the heads use
    that: well-trained classifiers crowd their probabilities near 0 and 1,
    where evenly spaced (or even float32) thresholds cannot tell them apart.
    ``summation_method`` is 'trapezoidal' (TF1's default) or
    'careful_interpolation' (exact interpolation for PR, as tf.estimator's
    ``auc_precision_recall`` used).
    """

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="trapezoidal", name=None,
                 thresholds=None, from_logits=False):
        super().__init__(name)
        self.from_logits = from_logits
        if curve not in ("ROC", "PR"):
            raise ValueError(f"AUC got curve={curve!r}; expected 'ROC' or 'PR'.")
        if summation_method not in ("trapezoidal", "careful_interpolation"):
            raise ValueError(
                f"AUC got summation_method={summation_method!r}; expected 'trapezoidal' or "
                "'careful_interpolation'."
            )
        self.curve, self.summation_method = curve, summation_method
        if from_logits:
            # AUC only depends on the order of the scores, so ranking logits gives the
            # probabilities' AUC without float32 saturation near 0 and 1.
            count = 1999 if thresholds is None else len(thresholds)
            inner = sorted(float(t) for t in thresholds) if thresholds is not None else [
                -30.0 + 60.0 * i / (count - 1) for i in range(count)]
            num_thresholds = len(inner) + 2
            self.thresholds = [-1e30] + inner + [1e30]
        elif thresholds is not None:
            inner = sorted(float(t) for t in thresholds)
            if not inner or inner[0] <= 0.0 or inner[-1] >= 1.0:
                raise ValueError(
                    f"AUC got thresholds={thresholds!r}; expected a non-empty list inside (0, 1)."
                )
            num_thresholds = len(inner) + 2
        elif not isinstance(num_thresholds, int) or num_thresholds < 2:
            raise ValueError(f"AUC got num_thresholds={num_thresholds!r}; expected an int >= 2.")
        else:
            inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        if not from_logits:
            self.thresholds = [0.0 - _EPSILON] + inner + [1.0 + _EPSILON]
        # Per-bucket weighted counts of positives/negatives; bucket b holds scores in
        # (thresholds[b-1], thresholds[b]].
        self.positives = self.add_state("positive_histogram", (num_thresholds + 1,))
        self.negatives = self.add_state("negative_histogram", (num_thresholds + 1,))

    def update_state(self, labels, predictions, weights=None):
        labels, predictions = _align(labels, predictions)
        scores = tf.cast(predictions, tf.float32)
        if not self.from_logits:
            scores = tf.clip_by_value(scores, 0.0, 1.0)
        scores = tf.reshape(scores, [-1])
        positive = tf.reshape(tf.cast(labels, tf.float32) > 0, [-1])
        w = tf.reshape(_weights(weights, tf.cast(labels, tf.float32)), [-1])
        buckets = tf.searchsorted(tf.constant(self.thresholds, tf.float32), scores, side="left")
        size = len(self.thresholds) + 1
        pos = tf.math.unsorted_segment_sum(w * tf.cast(positive, tf.float32), buckets, size)
        neg = tf.math.unsorted_segment_sum(w * tf.cast(~positive, tf.float32), buckets, size)
        with tf.control_dependencies([self.positives.assign_add(pos), self.negatives.assign_add(neg)]):
            return self.result()

    def confusion(self):
        """(tp, fp, tn, fn) at each threshold: a score counts as positive when > threshold."""
        def above(hist):
            # Scores in buckets > j lie above threshold j.
            return tf.math.cumsum(hist, reverse=True, exclusive=False)[1:]
        tp, fp = above(self.positives.read_value()), above(self.negatives.read_value())
        fn = tf.reduce_sum(self.positives.read_value()) - tp
        tn = tf.reduce_sum(self.negatives.read_value()) - fp
        return tp, fp, tn, fn

    def result(self):
        tp, fp, tn, fn = self.confusion()
        if self.curve == "PR" and self.summation_method == "careful_interpolation":
            return _interpolated_pr_auc(tp, fp, fn)
        if self.curve == "ROC":
            x = tf.math.divide_no_nan(fp, fp + tn)
            y = tf.math.divide_no_nan(tp, tp + fn)
        else:
            x = tf.math.divide_no_nan(tp, tp + fn)
            y = tf.math.divide_no_nan(tp, tp + fp)
        return tf.reduce_sum((x[:-1] - x[1:]) * (y[:-1] + y[1:]) / 2.0)


def logit_spaced_thresholds(count=999, limit=12.0):
    """Thresholds evenly spaced in logit space: fine resolution near 0 and 1."""
    import math

    return [1.0 / (1.0 + math.exp(-(-limit + 2 * limit * i / (count - 1)))) for i in range(count)]


def _interpolated_pr_auc(tp, fp, fn):
    """PR AUC with precision interpolated between thresholds (Davis & Goadrich 2006)."""
    dtp = tp[:-1] - tp[1:]
    p = tp + fp
    dp = p[:-1] - p[1:]
    slope = tf.math.divide_no_nan(dtp, tf.maximum(dp, 0.0))
    intercept = tp[1:] - slope * p[1:]
    ratio = tf.where((p[:-1] > 0) & (p[1:] > 0),
                     tf.math.divide_no_nan(p[:-1], tf.maximum(p[1:], 0.0)), tf.ones_like(p[1:]))
    increments = tf.math.divide_no_nan(slope * (dtp + intercept * tf.math.log(ratio)),
                                       tf.maximum(tp[1:] + fn[1:], 0.0))
    return tf.reduce_sum(increments)
