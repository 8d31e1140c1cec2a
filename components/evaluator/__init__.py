"""The Evaluator component: TFMA metrics per slice, thresholds, and the ModelBlessing."""

from components.evaluator.component import Evaluator, EvaluatorParameters, MetricThreshold

__all__ = ["Evaluator", "EvaluatorParameters", "MetricThreshold"]
