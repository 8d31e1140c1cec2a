"""Evaluator's spec: TFMA metrics, slices and thresholds; a blessing with the reason.

Example:
    >>> params = EvaluatorParameters(label_key="big_tipper", slicing_features=(("trip_start_hour",),),
    ...                              thresholds=(MetricThreshold("AUC", lower_bound=0.6),))
    >>> params.metrics
    ('ExampleCount', 'BinaryAccuracy', 'AUC', 'Calibration')
    >>> EvaluatorParameters(label_key="fare", task="regression").prediction_key
    'predictions'
"""

from __future__ import annotations

import dataclasses

from components.artifacts import Examples, Model, ModelBlessing, ModelEvaluation
from components.base import Channel, Component, InputSpec

CLASSIFICATION, REGRESSION = "classification", "regression"
# What the Trainer's ``predict`` signature calls the score TFMA compares with the label:
# the positive-class probability of a binary classifier, the regressor's prediction.
PREDICTION_KEYS = {CLASSIFICATION: "logistic", REGRESSION: "predictions"}
DEFAULT_METRICS_BY_TASK = {
    CLASSIFICATION: ("ExampleCount", "BinaryAccuracy", "AUC", "Calibration"),
    REGRESSION: ("ExampleCount", "MeanSquaredError", "MeanAbsoluteError", "MeanLabel", "MeanPrediction"),
}
DEFAULT_METRICS = DEFAULT_METRICS_BY_TASK[CLASSIFICATION]


@dataclasses.dataclass(frozen=True)
class MetricThreshold:
    """A bound on one TFMA metric, judged on the overall slice.

    Attributes:
        metric: The TFMA metric class name, e.g. ``"AUC"`` or ``"BinaryAccuracy"``.
        lower_bound: The candidate's value must be at least this.
        upper_bound: The candidate's value must be at most this.
        min_change: The candidate's improvement over the baseline must be at least this (e.g.
            -1e-10: "no worse than the baseline"; -0.01: "at most 0.01 worse"); skipped when
            there is no baseline model.
        higher_is_better: What improvement means: True, the candidate minus the baseline (AUC);
            False, the baseline minus the candidate (errors such as MeanSquaredError).
    """

    metric: str
    lower_bound: float | None = None
    upper_bound: float | None = None
    min_change: float | None = None
    higher_is_better: bool = True

    def __post_init__(self) -> None:
        if self.lower_bound is None and self.upper_bound is None and self.min_change is None:
            raise ValueError(
                f"MetricThreshold got metric={self.metric!r} with no bound; expected lower_bound, "
                "upper_bound or min_change. How to fix: e.g. MetricThreshold('AUC', lower_bound=0.6).")


@dataclasses.dataclass(frozen=True)
class EvaluatorParameters:
    """Attributes:
        label_key: The label feature in the raw examples.
        task: ``"classification"`` (a binary classifier) or ``"regression"``; picks the
            defaults of prediction_key and metrics.
        signature_name: The serving signature TFMA calls with serialized raw tf.Examples.
        prediction_key: The signature output TFMA scores (None: ``PREDICTION_KEYS[task]``,
            the positive-class probability or the regressor's prediction).
        metrics: TFMA metric class names computed on every slice (None:
            ``DEFAULT_METRICS_BY_TASK[task]``).
        slicing_features: Each tuple of feature names is one slicing spec (besides overall).
        thresholds: Value and change thresholds; all must pass for BLESSED.
        split: The raw examples' split to evaluate on.
    """

    label_key: str
    signature_name: str = "predict"
    prediction_key: str | None = None
    metrics: tuple[str, ...] | None = None
    slicing_features: tuple[tuple[str, ...], ...] = ()
    thresholds: tuple[MetricThreshold, ...] = ()
    split: str = "eval"
    task: str = CLASSIFICATION

    def __post_init__(self) -> None:
        if self.task not in PREDICTION_KEYS:
            raise ValueError(
                f"Evaluator got task={self.task!r}; expected one of {list(PREDICTION_KEYS)}. How to fix: "
                "'classification' for a binary classifier, 'regression' for a regressor.")
        if self.prediction_key is None:
            object.__setattr__(self, "prediction_key", PREDICTION_KEYS[self.task])
        metrics = DEFAULT_METRICS_BY_TASK[self.task] if self.metrics is None else self.metrics
        object.__setattr__(self, "metrics", tuple(metrics))
        object.__setattr__(self, "slicing_features", tuple(tuple(s) for s in self.slicing_features))
        object.__setattr__(self, "thresholds", tuple(self.thresholds))
        if not isinstance(self.label_key, str) or not self.label_key:
            raise ValueError(
                f"Evaluator got label_key={self.label_key!r}; expected the label's name. How to fix: "
                "pass e.g. label_key='big_tipper'.")
        for threshold in self.thresholds:
            if not isinstance(threshold, MetricThreshold):
                raise TypeError(
                    f"Evaluator got thresholds entry {threshold!r}; expected a MetricThreshold. How "
                    "to fix: MetricThreshold('AUC', lower_bound=0.6).")
            if threshold.metric not in self.metrics:
                raise ValueError(
                    f"Evaluator got a threshold on metric={threshold.metric!r}; expected one of the "
                    f"computed metrics {list(self.metrics)}. How to fix: add it to metrics=.")


class Evaluator(Component):
    """Evaluates the model with TFMA on Beam through its serving signature; blesses or not.

    With a ``baseline_model`` (normally the latest blessed model, from the resolver), the
    change thresholds compare the candidate with it; without one (the first model) only the
    value thresholds are judged. A baseline Model without a ``serving_model`` (what
    `LatestPushedModelResolver` outputs before the first push) counts as no baseline.

    Args:
        examples: Raw Examples (ExampleGen's output); the label is read from them.
        model: The candidate Model.
        baseline_model: Optional Model to compare with.
        label_key, signature_name, prediction_key, metrics, slicing_features, thresholds, split,
            task: See EvaluatorParameters.
        id: Node id (default "Evaluator").
    """

    INPUTS = {"examples": InputSpec(Examples), "model": InputSpec(Model),
              "baseline_model": InputSpec(Model, optional=True)}
    OUTPUTS = {"evaluation": ModelEvaluation, "blessing": ModelBlessing}
    PARAMETERS = EvaluatorParameters
    EXECUTOR = "components.evaluator.executor:run"

    def __init__(self, examples: Channel, model: Channel, *, label_key: str,
                 baseline_model: Channel | None = None, task: str = CLASSIFICATION,
                 signature_name: str = "predict", prediction_key: str | None = None,
                 metrics: tuple[str, ...] | None = None, slicing_features: tuple[tuple[str, ...], ...] = (),
                 thresholds: tuple[MetricThreshold, ...] = (), split: str = "eval", id: str | None = None):
        super().__init__(
            inputs={"examples": examples, "model": model, "baseline_model": baseline_model},
            parameters=EvaluatorParameters(label_key, signature_name, prediction_key, metrics,
                                           tuple(slicing_features), tuple(thresholds), split, task), id=id)
