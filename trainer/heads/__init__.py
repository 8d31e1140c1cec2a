"""Heads: loss, metrics, predictions and export outputs for a model's logits."""

from trainer.heads.base_head import Head
from trainer.heads.binary_class_head import BinaryClassHead
from trainer.heads.keys import MetricKeys, PredictionKeys, Reduction
from trainer.heads.logistic_regression_head import LogisticRegressionHead
from trainer.heads.multi_class_head import MultiClassHead
from trainer.heads.multi_head import MultiHead
from trainer.heads.multi_label_head import MultiLabelHead
from trainer.heads.poisson_regression_head import PoissonRegressionHead
from trainer.heads.regression_head import RegressionHead

__all__ = ["Head", "BinaryClassHead", "MultiClassHead", "MultiLabelHead", "RegressionHead",
           "PoissonRegressionHead", "LogisticRegressionHead", "MultiHead", "MetricKeys",
           "PredictionKeys", "Reduction"]
