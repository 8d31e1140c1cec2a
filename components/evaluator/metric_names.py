"""The metric names the Evaluator accepts, per task, and what TFMA computes for each.

No TensorFlow import: `resolve_metric` runs when a pipeline is built and by
``python -m pipeline check``, so a misspelt or misfitting metric fails before any data is read.

Tasks:
    - ``classification``: a binary classifier; TFMA scores its positive-class probability
      (``logistic``) against a 0/1 label. Every ``tfma.metrics`` class name is accepted.
    - ``multiclass``: one label among N > 2 classes; TFMA scores the ``probabilities`` vector
      against a class id (or a class name, mapped to its id through the model's
      ``all_classes`` output). Binary metrics are refused here: TFMA flattens N probabilities
      into N binary decisions, so e.g. BinaryAccuracy over 3 classes reports a number near
      1.0 that is not the accuracy.
    - ``regression``: ``predictions`` against a float label.

Keras-style names users write are mapped to what TFMA computes correctly for the task:

| written | multiclass | classification (binary) |
|---|---|---|
| SparseCategoricalAccuracy, CategoricalAccuracy, Accuracy, accuracy | SparseCategoricalAccuracy (top class == label) | BinaryAccuracy |
| SparseCategoricalCrossentropy, CategoricalCrossentropy, CategoricalCrossEntropy | SparseCategoricalCrossentropy (mean -log p[label]) | BinaryCrossEntropy |

``SparseCategoricalAccuracy`` and ``SparseCategoricalCrossentropy`` are this project's TFMA
metrics (`components.evaluator.multiclass_metrics`): TFMA 0.52 has no multi-class accuracy,
and its ``CategoricalCrossEntropy`` multiplies the class id into the log-probabilities when
the label is a class id instead of a one-hot vector (20.05 where the loss is 0.0014).

Example:
    >>> resolve_metric("CategoricalAccuracy", "multiclass").class_name
    'SparseCategoricalAccuracy'
    >>> resolve_metric("accuracy", "classification").class_name
    'BinaryAccuracy'
    >>> resolve_metric("BinaryAccuracy", "multiclass")
    Traceback (most recent call last):
    ...
    ValueError: Evaluator got metric='BinaryAccuracy' for a multiclass model; BinaryAccuracy scores one probability against a 0/1 label, and over N class probabilities TFMA would score each class as a separate binary decision (not the accuracy). How to fix: use 'SparseCategoricalAccuracy' (the share of examples whose top class is the label).
"""

from __future__ import annotations

import dataclasses

CLASSIFICATION, MULTICLASS, REGRESSION = "classification", "multiclass", "regression"
TASKS = (CLASSIFICATION, MULTICLASS, REGRESSION)
# Tasks a model can have that the Evaluator does not score (NotImplementedError naming them).
UNSUPPORTED_TASKS = ("multi_label", "multilabel")
CUSTOM_MODULE = "components.evaluator.multiclass_metrics"


@dataclasses.dataclass(frozen=True)
class MetricRef:
    """One metric as TFMA's MetricConfig takes it.

    Attributes:
        class_name: ``MetricConfig.class_name``.
        module: ``MetricConfig.module`` ("" for ``tfma.metrics``).
        name: The metric key TFMA reports (None: ask TFMA, ``tfma.metrics.<class>().name``).
        plot: True for a plot (no value to put a threshold on).
    """

    class_name: str
    module: str = ""
    name: str | None = None
    plot: bool = False


# Every metric class in tfma.metrics 0.52 (tests/components/test_evaluator_multiclass.py checks the
# list against the installed TFMA).
TFMA_METRICS = frozenset("""
    MeanAbsoluteAttributions MeanAttributions TotalAbsoluteAttributions TotalAttributions Calibration
    MeanLabel MeanPrediction CalibrationPlot AUC FN FNR FP FPR NPV PPV TN TNR TP TPR F1Score
    AUCPrecisionRecall BalancedAccuracy BinaryAccuracy ConfusionMatrixAtThresholds DiagnosticOddsRatio
    FallOut FalseDiscoveryRate FalseNegatives FalseOmissionRate FalsePositives FowlkesMallowsIndex
    Informedness Markedness MatthewsCorrelationCoefficient MaxRecall MissRate NegativeLikelihoodRatio
    NegativePredictiveValue PositiveLikelihoodRatio Precision PrecisionAtRecall Prevalence
    PrevalenceThreshold Recall RecallAtPrecision SensitivityAtSpecificity Specificity
    SpecificityAtSensitivity ThreatScore TrueNegatives TruePositives ConfusionMatrixPlot
    BinaryCrossEntropy CategoricalCrossEntropy ExactMatch ExampleCount BooleanFlipRates
    NegToNegFlipRate NegToPosFlipRate PosToNegFlipRate PosToPosFlipRate SymmetricFlipRate
    MeanAbsoluteError MeanAbsolutePercentageError MeanSquaredError MeanSquaredLogarithmicError
    MinLabelPosition ModelCosineSimilarity MultiClassConfusionMatrixAtThresholds
    MultiClassConfusionMatrixPlot MultiLabelConfusionMatrixPlot NDCG ObjectDetectionMaxRecall
    ObjectDetectionPrecision ObjectDetectionPrecisionAtRecall ObjectDetectionRecall
    ObjectDetectionThresholdAtRecall ObjectDetectionConfusionMatrixPlot COCOAveragePrecision
    COCOAverageRecall COCOMeanAveragePrecision COCOMeanAverageRecall SymmetricPredictionDifference
    QueryStatistics ScoreDistributionPlot SemanticSegmentationConfusionMatrix
    SemanticSegmentationFalsePositive SemanticSegmentationTruePositive SetMatchPrecision SetMatchRecall
    SquaredPearsonCorrelation Mean CoefficientOfDiscrimination RelativeCoefficientOfDiscrimination
    WeightedExampleCount
""".split())
TFMA_PLOTS = frozenset({"CalibrationPlot", "ConfusionMatrixPlot", "MultiClassConfusionMatrixPlot",
                        "MultiLabelConfusionMatrixPlot", "ObjectDetectionConfusionMatrixPlot",
                        "ScoreDistributionPlot"})

SPARSE_CATEGORICAL_ACCURACY = MetricRef("SparseCategoricalAccuracy", CUSTOM_MODULE, "sparse_categorical_accuracy")
SPARSE_CATEGORICAL_CROSSENTROPY = MetricRef("SparseCategoricalCrossentropy", CUSTOM_MODULE,
                                            "sparse_categorical_crossentropy")
# What a multiclass Evaluator may compute: counts, this project's two metrics, TFMA's multi-class
# confusion matrices (they take a class id label and the probabilities vector).
MULTICLASS_METRICS = {
    "ExampleCount": MetricRef("ExampleCount", name="example_count"),
    "WeightedExampleCount": MetricRef("WeightedExampleCount", name="weighted_example_count"),
    "SparseCategoricalAccuracy": SPARSE_CATEGORICAL_ACCURACY,
    "SparseCategoricalCrossentropy": SPARSE_CATEGORICAL_CROSSENTROPY,
    "MultiClassConfusionMatrixPlot": MetricRef("MultiClassConfusionMatrixPlot", plot=True),
    "MultiClassConfusionMatrixAtThresholds": MetricRef("MultiClassConfusionMatrixAtThresholds", plot=True),
}
_ACCURACY_NAMES = ("SparseCategoricalAccuracy", "CategoricalAccuracy", "Accuracy", "accuracy",
                   "sparse_categorical_accuracy", "categorical_accuracy")
_CROSSENTROPY_NAMES = ("SparseCategoricalCrossentropy", "CategoricalCrossentropy", "CategoricalCrossEntropy",
                       "sparse_categorical_crossentropy", "categorical_crossentropy")
ALIASES = {
    MULTICLASS: {**{n: "SparseCategoricalAccuracy" for n in _ACCURACY_NAMES},
                 **{n: "SparseCategoricalCrossentropy" for n in _CROSSENTROPY_NAMES},
                 "example_count": "ExampleCount"},
    CLASSIFICATION: {**{n: "BinaryAccuracy" for n in (*_ACCURACY_NAMES, "binary_accuracy")},
                     **{n: "BinaryCrossEntropy" for n in (*_CROSSENTROPY_NAMES, "BinaryCrossentropy",
                                                           "binary_crossentropy")},
                     "auc": "AUC", "example_count": "ExampleCount"},
    REGRESSION: {"mse": "MeanSquaredError", "mae": "MeanAbsoluteError", "mean_squared_error": "MeanSquaredError",
                 "mean_absolute_error": "MeanAbsoluteError", "example_count": "ExampleCount"},
}
DEFAULT_METRICS_BY_TASK = {
    CLASSIFICATION: ("ExampleCount", "BinaryAccuracy", "AUC", "Calibration"),
    MULTICLASS: ("ExampleCount", "SparseCategoricalAccuracy", "SparseCategoricalCrossentropy",
                 "MultiClassConfusionMatrixPlot"),
    REGRESSION: ("ExampleCount", "MeanSquaredError", "MeanAbsoluteError", "MeanLabel", "MeanPrediction"),
}
# What each task's predict signature calls the score TFMA compares with the label.
PREDICTION_KEYS = {CLASSIFICATION: "logistic", MULTICLASS: "probabilities", REGRESSION: "predictions"}
_INSTEAD = {"BinaryAccuracy": "SparseCategoricalAccuracy", "Precision": "SparseCategoricalAccuracy",
            "Recall": "SparseCategoricalAccuracy", "BinaryCrossEntropy": "SparseCategoricalCrossentropy",
            "ConfusionMatrixPlot": "MultiClassConfusionMatrixPlot",
            "ConfusionMatrixAtThresholds": "MultiClassConfusionMatrixAtThresholds"}


def check_task(task: object) -> None:
    """Raises for a task the Evaluator does not know; NotImplementedError for multi-label."""
    if task in UNSUPPORTED_TASKS:
        raise NotImplementedError(
            f"Evaluator got task={task!r}: multi-label evaluation (several classes per example) is not "
            "implemented. How to fix: evaluate one binary label per Evaluator (task='classification'), "
            "or use task='multiclass' when each example has exactly one class.")
    if task not in TASKS:
        raise ValueError(
            f"Evaluator got task={task!r}; expected one of {list(TASKS)}. How to fix: 'classification' for a "
            "binary classifier, 'multiclass' for n_classes > 2, 'regression' for a regressor.")


def resolve_metric(name: object, task: str) -> MetricRef:
    """The metric TFMA computes for ``name`` on a ``task`` model; ValueError says what to write instead."""
    check_task(task)
    if not isinstance(name, str) or not name:
        raise ValueError(f"Evaluator got metric={name!r}; expected a metric name such as 'ExampleCount'. "
                         "How to fix: pass class names as strings.")
    canonical = ALIASES[task].get(name, name)
    if task == MULTICLASS:
        ref = MULTICLASS_METRICS.get(canonical)
        if ref is not None:
            return ref
        if canonical in TFMA_METRICS:
            instead = _INSTEAD.get(canonical, "SparseCategoricalAccuracy")
            why = ("scores one probability against a 0/1 label, and over N class probabilities TFMA would "
                   "score each class as a separate binary decision (not the accuracy)"
                   if canonical not in REGRESSION_ONLY else "is a regression metric")
            raise ValueError(
                f"Evaluator got metric={name!r} for a multiclass model; {canonical} {why}. How to fix: use "
                f"{instead!r}" + (" (the share of examples whose top class is the label)."
                                  if instead == "SparseCategoricalAccuracy" else "."))
        raise ValueError(f"Evaluator got metric={name!r}, unknown for a multiclass model; expected one of "
                         f"{sorted(MULTICLASS_METRICS)} (or a Keras-style name: {sorted(ALIASES[MULTICLASS])}). "
                         "How to fix: pick one of those.")
    if canonical in MULTICLASS_METRICS and canonical not in TFMA_METRICS:
        raise ValueError(f"Evaluator got metric={name!r} for a {task} model; it is a multiclass metric. How to "
                         f"fix: use task='multiclass' for a model with n_classes > 2, or one of "
                         f"{list(DEFAULT_METRICS_BY_TASK[task])}.")
    if canonical not in TFMA_METRICS:
        raise ValueError(
            f"Evaluator got metric={name!r}; expected a tfma.metrics class name or a Keras-style alias "
            f"({sorted(ALIASES[task])}). How to fix: use e.g. {list(DEFAULT_METRICS_BY_TASK[task])}.")
    known = {"ExampleCount": "example_count", "BinaryAccuracy": "binary_accuracy", "AUC": "auc",
             "BinaryCrossEntropy": "binary_crossentropy"}
    return MetricRef(canonical, name=known.get(canonical), plot=canonical in TFMA_PLOTS)


REGRESSION_ONLY = frozenset({"MeanAbsoluteError", "MeanAbsolutePercentageError", "MeanSquaredError",
                             "MeanSquaredLogarithmicError", "SquaredPearsonCorrelation",
                             "CoefficientOfDiscrimination", "RelativeCoefficientOfDiscrimination"})


def metric_key_name(class_name: str, task: str) -> str:
    """The name TFMA reports for a resolved class name (imports TFMA for a tfma.metrics class)."""
    ref = resolve_metric(class_name, task)
    if ref.name is not None:
        return ref.name
    import tensorflow_model_analysis as tfma

    return getattr(tfma.metrics, ref.class_name)().name
