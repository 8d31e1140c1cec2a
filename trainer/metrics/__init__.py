"""Streaming metrics for `eval_metric_ops`: TF1 functions and update/result objects."""

from trainer.metrics.functional import (MetricOp, accuracy, auc, false_negatives,
                                        false_positives, mean, mean_absolute_error,
                                        mean_squared_error, precision, precision_at_thresholds,
                                        recall, recall_at_thresholds, root_mean_squared_error,
                                        true_negatives, true_positives)
from trainer.metrics.streaming import (AUC, Accuracy, FalseNegatives, FalsePositives, Mean,
                                       MeanAbsoluteError, MeanSquaredError, Metric, Precision,
                                       Recall, RootMeanSquaredError, TrueNegatives,
                                       TruePositives)

__all__ = [
    "MetricOp", "accuracy", "auc", "precision", "recall", "mean", "mean_squared_error",
    "root_mean_squared_error", "mean_absolute_error", "true_positives", "false_positives",
    "true_negatives", "false_negatives", "precision_at_thresholds", "recall_at_thresholds",
    "Metric", "Mean", "Accuracy", "AUC", "Precision", "Recall", "MeanSquaredError",
    "RootMeanSquaredError", "MeanAbsoluteError", "TruePositives", "FalsePositives",
    "TrueNegatives", "FalseNegatives",
]
