"""Evaluator's spec: TFMA metrics, slices and thresholds; a blessing with the reason.

Example:
    >>> params = EvaluatorParameters(label_key="big_tipper", slicing_features=(("trip_start_hour",),),
    ...                              thresholds=(MetricThreshold("AUC", lower_bound=0.6),))
    >>> params.metrics
    ('ExampleCount', 'BinaryAccuracy', 'AUC', 'Calibration')
    >>> EvaluatorParameters(label_key="fare", task="regression").prediction_key
    'predictions'
    >>> EvaluatorParameters(label_key="species", task="multiclass", metrics=("ExampleCount", "accuracy")).metrics
    ('ExampleCount', 'SparseCategoricalAccuracy')
"""

from __future__ import annotations

import dataclasses

from components.artifacts import Examples, Model, ModelBlessing, ModelEvaluation
from components.base import Channel, Component, InputSpec
from components.evaluator.metric_names import (
    CLASSIFICATION, DEFAULT_METRICS_BY_TASK, MULTICLASS, PREDICTION_KEYS, REGRESSION, check_task, resolve_metric)

__all__ = ["CLASSIFICATION", "DEFAULT_METRICS", "DEFAULT_METRICS_BY_TASK", "MULTICLASS", "PREDICTION_KEYS",
           "REGRESSION", "Evaluator", "EvaluatorParameters", "MetricThreshold", "check_evaluators"]
DEFAULT_METRICS = DEFAULT_METRICS_BY_TASK[CLASSIFICATION]


@dataclasses.dataclass(frozen=True)
class MetricThreshold:
    """A bound on one TFMA metric, judged on the overall slice.

    Attributes:
        metric: The TFMA metric class name, e.g. ``"AUC"`` or ``"BinaryAccuracy"``, or a Keras-style
            name the task maps (``"SparseCategoricalAccuracy"``; see metric_names).
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
        label_key: The label feature in the raw examples (class ids, or class names that the
            model's ``all_classes`` output maps to ids, for ``multiclass``).
        task: ``"classification"`` (a binary classifier), ``"multiclass"`` (one of N > 2 classes)
            or ``"regression"``; picks the defaults of prediction_key and metrics, and which
            metrics fit (`components.evaluator.metric_names`). ``"multi_label"`` raises
            NotImplementedError.
        signature_name: The serving signature TFMA calls with serialized raw tf.Examples.
        prediction_key: The signature output TFMA scores (None: ``PREDICTION_KEYS[task]``:
            ``logistic``, ``probabilities`` or ``predictions``).
        metrics: Metric names computed on every slice (None: ``DEFAULT_METRICS_BY_TASK[task]``):
            ``tfma.metrics`` class names, or Keras-style names mapped to what TFMA computes
            correctly for the task; stored resolved (``"accuracy"`` -> ``"BinaryAccuracy"`` or
            ``"SparseCategoricalAccuracy"``). A metric that does not fit the task is an error.
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
        check_task(self.task)
        if self.prediction_key is None:
            object.__setattr__(self, "prediction_key", PREDICTION_KEYS[self.task])
        metrics = DEFAULT_METRICS_BY_TASK[self.task] if self.metrics is None else self.metrics
        if isinstance(metrics, str):
            raise TypeError(f"Evaluator got metrics={metrics!r}; expected a tuple of names. How to fix: "
                            f"metrics=({metrics!r},).")
        resolved = tuple(dict.fromkeys(resolve_metric(m, self.task).class_name for m in metrics))
        object.__setattr__(self, "metrics", resolved)
        object.__setattr__(self, "slicing_features", tuple(tuple(s) for s in self.slicing_features))
        object.__setattr__(self, "thresholds", tuple(self.thresholds))
        if not isinstance(self.label_key, str) or not self.label_key:
            raise ValueError(
                f"Evaluator got label_key={self.label_key!r}; expected the label's name. How to fix: "
                "pass e.g. label_key='big_tipper'.")
        thresholds = []
        for threshold in self.thresholds:
            if not isinstance(threshold, MetricThreshold):
                raise TypeError(
                    f"Evaluator got thresholds entry {threshold!r}; expected a MetricThreshold. How "
                    "to fix: MetricThreshold('AUC', lower_bound=0.6).")
            ref = resolve_metric(threshold.metric, self.task)
            if ref.plot:
                raise ValueError(
                    f"Evaluator got a threshold on metric={threshold.metric!r}, a plot (no single value). How to "
                    f"fix: put the threshold on a value metric, e.g. {list(self.metrics)[:3]}.")
            if ref.class_name not in self.metrics:
                raise ValueError(
                    f"Evaluator got a threshold on metric={threshold.metric!r}, which is not computed; expected "
                    f"one of the computed metrics {list(self.metrics)}. How to fix: add it to metrics=.")
            thresholds.append(dataclasses.replace(threshold, metric=ref.class_name))
        object.__setattr__(self, "thresholds", tuple(thresholds))


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


def check_evaluators(components: list[Component]) -> None:
    """Checks each Evaluator against the Trainer that makes its model, before any data is read.

    ``python -m pipeline check`` calls it. A canned Trainer's estimator says the model's task
    (``n_classes`` > 2: multiclass; ``*Regressor``: regression), so an Evaluator of another task
    (binary metrics over 3 class probabilities, which TFMA would score as something near 1.0),
    or for another label, is an error naming both nodes. A ``module_file`` Trainer's head is
    known only once trained: the Evaluator checks the model's outputs then.

    Raises:
        ValueError: naming the Evaluator, the Trainer and what to write instead.
    """
    for evaluator in components:
        if not isinstance(evaluator, Evaluator):
            continue
        params = evaluator.parameters
        channel = evaluator.inputs.get("model")
        trainer = getattr(channel, "producer", None)
        trainer_params = getattr(trainer, "parameters", None)
        label = getattr(trainer_params, "label_key", None)
        if label and label != params.label_key:
            raise ValueError(
                f"Evaluator {evaluator.id!r} got label_key={params.label_key!r}, but {trainer.id!r} trains on "
                f"label {label!r}. How to fix: pass label_key={label!r} (the raw examples' label column).")
        canned = getattr(trainer_params, "canned", None)
        if canned is None:
            continue
        task = canned_task(canned.estimator, canned.kwargs)
        if task != params.task:
            n_classes = canned.kwargs.get("n_classes", 2)
            what = (f"a {n_classes}-class {canned.estimator} (n_classes={n_classes})" if task == MULTICLASS
                    else f"a {task} model ({canned.estimator})")
            raise ValueError(
                f"Evaluator {evaluator.id!r} got task={params.task!r} (metrics {list(params.metrics)}), but "
                f"{trainer.id!r} trains {what}. How to fix: Evaluator(..., task={task!r}) with its metrics, e.g. "
                f"metrics={DEFAULT_METRICS_BY_TASK[task]!r}.")


def canned_task(estimator: str, kwargs: dict | None = None) -> str:
    """The Evaluator task of a canned estimator: regression, multiclass (n_classes > 2) or classification.

    Example:
        >>> canned_task("DNNClassifier", {"n_classes": 3}), canned_task("LinearRegressor")
        ('multiclass', 'regression')
    """
    if estimator.endswith("Regressor"):
        return REGRESSION
    n_classes = (kwargs or {}).get("n_classes", 2)
    return MULTICLASS if isinstance(n_classes, int) and n_classes > 2 else CLASSIFICATION
