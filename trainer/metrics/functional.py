"""TF1-style metric functions returning ``(value, update_op)`` for `eval_metric_ops`.

``value`` reads the running result; ``update_op`` adds the batch and returns
the updated result. The Estimator reports ``update_op``'s value after the
last batch, i.e. the metric over the whole evaluation.

Example (inside a model_fn):
    >>> # accuracy = trainer.metrics.accuracy(labels=labels, predictions=classes, name="acc_op")
    >>> # eval_metric_ops = {"accuracy": accuracy}
"""

from __future__ import annotations

import collections


from trainer.metrics import streaming

__all__ = ["MetricOp", "accuracy", "auc", "precision", "recall", "mean", "mean_squared_error",
           "root_mean_squared_error", "mean_absolute_error", "true_positives",
           "false_positives", "true_negatives", "false_negatives", "precision_at_thresholds",
           "recall_at_thresholds"]


class MetricOp(collections.namedtuple("MetricOp", ["value", "update_op"])):
    """The ``(value, update_op)`` pair of a TF1 metric."""


def _op(metric: streaming.Metric, *args, weights=None) -> MetricOp:
    value = metric.result()
    update = metric.update_state(*args, weights=weights)
    return MetricOp(value, update)


def _unused(metrics_collections, updates_collections):
    if metrics_collections or updates_collections:
        raise ValueError(
            "metrics_collections/updates_collections are graph collections, which TF2 does not "
            "have; drop them (the Estimator collects eval_metric_ops itself)."
        )


def accuracy(labels, predictions, weights=None, metrics_collections=None,
             updates_collections=None, name=None):
    _unused(metrics_collections, updates_collections)
    return _op(streaming.Accuracy(name or "accuracy"), labels, predictions, weights=weights)


def auc(labels, predictions, weights=None, num_thresholds=200, metrics_collections=None,
        updates_collections=None, curve="ROC", name=None, summation_method="trapezoidal"):
    _unused(metrics_collections, updates_collections)
    metric = streaming.AUC(num_thresholds, curve=curve, summation_method=summation_method,
                           name=name or "auc")
    return _op(metric, labels, predictions, weights=weights)


def precision(labels, predictions, weights=None, metrics_collections=None,
              updates_collections=None, name=None):
    _unused(metrics_collections, updates_collections)
    return _op(streaming.Precision(name=name or "precision"), labels, predictions, weights=weights)


def recall(labels, predictions, weights=None, metrics_collections=None,
           updates_collections=None, name=None):
    _unused(metrics_collections, updates_collections)
    return _op(streaming.Recall(name=name or "recall"), labels, predictions, weights=weights)


def precision_at_thresholds(labels, predictions, thresholds, weights=None,
                            metrics_collections=None, updates_collections=None, name=None):
    _unused(metrics_collections, updates_collections)
    metric = streaming.Precision(thresholds, name=name or "precision_at_thresholds")
    return _op(metric, labels, predictions, weights=weights)


def recall_at_thresholds(labels, predictions, thresholds, weights=None,
                         metrics_collections=None, updates_collections=None, name=None):
    _unused(metrics_collections, updates_collections)
    metric = streaming.Recall(thresholds, name=name or "recall_at_thresholds")
    return _op(metric, labels, predictions, weights=weights)


def mean(values, weights=None, metrics_collections=None, updates_collections=None, name=None):
    _unused(metrics_collections, updates_collections)
    return _op(streaming.Mean(name or "mean"), values, weights=weights)


def mean_squared_error(labels, predictions, weights=None, metrics_collections=None,
                       updates_collections=None, name=None):
    _unused(metrics_collections, updates_collections)
    return _op(streaming.MeanSquaredError(name or "mean_squared_error"), labels, predictions,
               weights=weights)


def root_mean_squared_error(labels, predictions, weights=None, metrics_collections=None,
                            updates_collections=None, name=None):
    _unused(metrics_collections, updates_collections)
    return _op(streaming.RootMeanSquaredError(name or "root_mean_squared_error"), labels,
               predictions, weights=weights)


def mean_absolute_error(labels, predictions, weights=None, metrics_collections=None,
                        updates_collections=None, name=None):
    _unused(metrics_collections, updates_collections)
    return _op(streaming.MeanAbsoluteError(name or "mean_absolute_error"), labels, predictions,
               weights=weights)


def _counter(cls, default):
    def fn(labels, predictions, weights=None, metrics_collections=None,
           updates_collections=None, name=None):
        _unused(metrics_collections, updates_collections)
        return _op(cls(name=name or default), labels, predictions, weights=weights)
    fn.__name__ = default
    fn.__doc__ = f"Weighted count of {default.replace('_', ' ')}: ``(value, update_op)``."
    return fn


true_positives = _counter(streaming.TruePositives, "true_positives")
false_positives = _counter(streaming.FalsePositives, "false_positives")
true_negatives = _counter(streaming.TrueNegatives, "true_negatives")
false_negatives = _counter(streaming.FalseNegatives, "false_negatives")
