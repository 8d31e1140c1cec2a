"""The YAML spec's model, training, tuning, evaluation and push sections: checks and components.

``check_model_sections(spec)`` validates the sections against each other (load_spec
calls it); ``model_components(...)`` builds [Tuner ->] WarmStartResolver -> Trainer ->
BaselineResolver -> Evaluator, InfraValidator -> Pusher from them: the Trainer warm-starts
from, and the Evaluator compares against, the latest blessed model, as in docs/pipeline.md
"Scheduled retraining"; with ``tuning``, the Trainer applies the Tuner's best values to
``model.args`` (docs/tuner.md). The task follows ``model.estimator`` and ``model.args``:
a ``*Regressor`` is a regression (float label, regression metrics, Regress requests), a
classifier with ``n_classes`` > 2 a multi-class classification (softmax probabilities,
SparseCategoricalAccuracy / SparseCategoricalCrossentropy), every other classifier a binary
one. ``model.args.label_vocabulary`` (the class names in id order) makes the label a string
column whose values are those names; the served model then answers with the names.

Threshold names are TFMA's metric names (what the Evaluator reports); ``METRICS``
maps each to its TFMA class, the tasks it applies to and what "better" means for
``min_change``. docs/pipeline_yaml.md shows the same table. A Keras-style name is mapped
for the task (``accuracy``: binary_accuracy, or sparse_categorical_accuracy for a
multi-class model; see components/evaluator/metric_names.py), as are ``evaluation.metrics``.

Example:
    >>> METRICS["auc"].tfma_class, METRICS["mean_squared_error"].higher_is_better
    ('AUC', False)
    >>> task_of("DNNLinearCombinedRegressor"), task_of("DNNClassifier", {"n_classes": 3})
    ('regression', 'multiclass')
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Any

from components.evaluator.component import CLASSIFICATION, MULTICLASS, REGRESSION, canned_task

if TYPE_CHECKING:
    from components.base import Channel, Component
    from components.feature_spec import FeatureSpec
    from pipeline.yaml_spec import PipelineSpec

BOTH = (CLASSIFICATION, REGRESSION)
ALL_TASKS = (CLASSIFICATION, MULTICLASS, REGRESSION)


@dataclasses.dataclass(frozen=True)
class MetricInfo:
    """A threshold name's TFMA metric.

    Attributes:
        tfma_class: The ``tfma.metrics`` class computed.
        tasks: The tasks it is defined for.
        higher_is_better: What ``min_change`` improves: True (AUC), False (errors), None (no
            better direction, e.g. calibration's ideal is 1: bounds only).
    """

    tfma_class: str
    tasks: tuple[str, ...]
    higher_is_better: bool | None


METRICS: dict[str, MetricInfo] = {
    "example_count": MetricInfo("ExampleCount", ALL_TASKS, None),
    "mean_label": MetricInfo("MeanLabel", BOTH, None),
    "mean_prediction": MetricInfo("MeanPrediction", BOTH, None),
    "auc": MetricInfo("AUC", (CLASSIFICATION,), True),
    "auc_precision_recall": MetricInfo("AUCPrecisionRecall", (CLASSIFICATION,), True),
    "binary_accuracy": MetricInfo("BinaryAccuracy", (CLASSIFICATION,), True),
    "precision": MetricInfo("Precision", (CLASSIFICATION,), True),
    "recall": MetricInfo("Recall", (CLASSIFICATION,), True),
    "calibration": MetricInfo("Calibration", (CLASSIFICATION,), None),
    "mean_squared_error": MetricInfo("MeanSquaredError", (REGRESSION,), False),
    "mean_absolute_error": MetricInfo("MeanAbsoluteError", (REGRESSION,), False),
    "squared_pearson_correlation": MetricInfo("SquaredPearsonCorrelation", (REGRESSION,), True),
    "sparse_categorical_accuracy": MetricInfo("SparseCategoricalAccuracy", (MULTICLASS,), True),
    "sparse_categorical_crossentropy": MetricInfo("SparseCategoricalCrossentropy", (MULTICLASS,), False),
}

# model.args the pipeline sets itself (from features, the Trainer's run and the base model).
RESERVED_ARGS = ("feature_columns", "linear_feature_columns", "dnn_feature_columns", "model_dir", "config",
                 "warm_start_from")
REQUEST_KINDS = {CLASSIFICATION: ("classify", "predict"), MULTICLASS: ("classify", "predict"),
                 REGRESSION: ("regress", "predict")}


def task_of(estimator: str, args: dict[str, Any] | None = None) -> str:
    """``"regression"`` for a ``*Regressor``, ``"multiclass"`` for n_classes > 2, else ``"classification"``."""
    return canned_task(estimator, args)


def metric_info(name: str, task: str) -> tuple[str, MetricInfo] | None:
    """A threshold name's (table name, MetricInfo): a name of ``METRICS``, or a name the Evaluator maps
    for ``task`` (``accuracy``, ``SparseCategoricalAccuracy``, ``AUC`` ...) to a metric of the table."""
    if name in METRICS:
        return name, METRICS[name]
    from components.evaluator.metric_names import resolve_metric

    try:
        class_name = resolve_metric(name, task).class_name
    except ValueError:
        return None
    return next(((n, m) for n, m in METRICS.items() if m.tfma_class == class_name and task in m.tasks), None)


def check_model_sections(spec: PipelineSpec) -> None:
    """Raises ValueError naming the field when the model sections do not fit together."""
    if spec.model is None:
        for field in ("training", "tuning", "evaluation", "push"):
            if getattr(spec, field) is not None:
                raise ValueError(f"{field}: given without model; expected model (and training) with it. "
                                 "How to fix: add model: {estimator: ..., args: {...}}, or remove "
                                 f"{field}.")
        return
    if spec.training is None:
        raise ValueError("training: missing; model needs training: {steps: N}. How to fix: add e.g. "
                         "training: {steps: 1000}.")
    if spec.label is None:
        raise ValueError("label: missing; model needs the label to train on. How to fix: add "
                         "label: {name: <column>} (and expression: to derive it).")
    split = spec.data.split
    if split.partition_feature is None and not {"train", "eval"} <= set(split.ratios):
        raise ValueError(f"data.split.ratios: got splits {list(split.ratios)}; the Trainer trains on 'train' "
                         "and the Evaluator evaluates on 'eval'. How to fix: name the splits train and eval.")
    task = task_of(spec.model.estimator, spec.model.args)
    _check_args(spec.model.estimator, spec.model.args, task)
    if spec.tuning is not None:
        check_tuning(spec)
    if spec.evaluation is not None:
        from components.evaluator.metric_names import resolve_metric

        for i, name in enumerate(spec.evaluation.metrics):
            try:
                resolve_metric(name, task)
            except ValueError as e:
                raise ValueError(f"evaluation.metrics[{i}]: got {str(e).removeprefix('Evaluator got ')}") from None
        for name, bound in spec.evaluation.thresholds.items():
            _check_threshold(name, bound, spec.model.estimator, task)
        for i, keys in enumerate(spec.evaluation.slices):
            if not keys:
                raise ValueError(f"evaluation.slices[{i}]: empty; expected feature names, e.g. "
                                 "[trip_start_hour]. How to fix: remove it (the overall slice is always there).")
    from components.pusher.component import PusherParameters

    model_name = push_model_name(spec)
    try:
        PusherParameters("unused", model_name)
    except ValueError:
        where = "push.model_name" if spec.push and spec.push.model_name else "name (the default push.model_name)"
        raise ValueError(f"{where}: got {model_name!r}; expected a plain directory name. How to fix: set "
                         "push.model_name to e.g. taxi (no slashes, not starting with '.').") from None


def _check_args(estimator: str, args: dict[str, Any], task: str) -> None:
    for key in RESERVED_ARGS:
        if key in args:
            raise ValueError(f"model.args.{key}: set by the pipeline (from features, the Trainer's run "
                             "directory and RunConfig); expected constructor options such as "
                             "dnn_hidden_units. How to fix: remove it.")
    for key in ("multi_label", "head"):
        if key in args:
            raise NotImplementedError(
                f"model.args.{key}: multi-label classification (several classes per example) is not implemented "
                "in the YAML pipeline; the canned classifiers take one class per example. How to fix: remove it "
                "(one label per example: binary, or n_classes > 2 for multi-class).")
    if "n_classes" in args:
        n_classes = args["n_classes"]
        if task == REGRESSION:
            raise ValueError(f"model.args.n_classes: {estimator} is a regressor; n_classes is a classifier's. "
                             "How to fix: remove it, or use a *Classifier.")
        if not isinstance(n_classes, int) or isinstance(n_classes, bool) or n_classes < 2:
            raise ValueError(f"model.args.n_classes: got {n_classes!r}; expected an int >= 2 (the number of "
                             "classes). How to fix: e.g. n_classes: 3, with labels 0, 1, 2 (or label_vocabulary).")
    if "label_vocabulary" in args:
        _check_vocabulary(args["label_vocabulary"], args.get("n_classes", 2), task)
    if task == REGRESSION and args.get("label_dimension", 1) != 1:
        raise ValueError(f"model.args.label_dimension: got {args['label_dimension']!r}; the YAML pipeline "
                         f"regresses one target ({estimator}). How to fix: remove it.")


def _check_vocabulary(vocabulary: Any, n_classes: Any, task: str) -> None:
    field = "model.args.label_vocabulary"
    if task == REGRESSION:
        raise ValueError(f"{field}: a regressor has no classes. How to fix: remove it.")
    if (not isinstance(vocabulary, list) or not vocabulary or not all(isinstance(v, str) and v for v in vocabulary)
            or len(set(vocabulary)) != len(vocabulary)):
        raise ValueError(f"{field}: got {vocabulary!r}; expected the distinct class names (non-empty strings) in "
                         "class id order. How to fix: e.g. label_vocabulary: [setosa, versicolor, virginica].")
    if len(vocabulary) != n_classes:
        raise ValueError(f"{field}: got {len(vocabulary)} names but n_classes is {n_classes}; expected one name per "
                         f"class. How to fix: set n_classes: {len(vocabulary)} (or list {n_classes} names).")
    if not string_labels_supported():
        raise NotImplementedError(
            f"{field}: string labels need the Transform to pass a string label through to the model, which "
            "this version's FeatureSpec does not do. How to fix: label the data with class ids "
            "0..n_classes-1 and remove label_vocabulary.")


def string_labels_supported() -> bool:
    """Whether FeatureSpec has a ``string`` label dtype (Transform passes the names to the model)."""
    from components.feature_spec import LABEL_DTYPES

    return "string" in LABEL_DTYPES


def check_tuning(spec: PipelineSpec) -> None:
    """Raises ValueError naming the ``tuning.*`` field that cannot tune ``model.estimator``."""
    from components.tuner.component import default_metric, metrics_for

    tuning, estimator = spec.tuning, spec.model.estimator
    if not tuning.space:
        raise ValueError("tuning.space: empty; expected hyperparameters to search. How to fix: e.g. space: "
                         "{learning_rate: {low: 0.01, high: 0.3, log: true}} (names: docs/tuner.md).")
    space_of(spec)
    metrics = metrics_for(estimator)
    metric = tuning.metric or default_metric(estimator)
    if task_of(estimator, spec.model.args) == MULTICLASS:
        # A softmax head evaluates accuracy and the losses only (no auc, precision or recall).
        metrics = {k: v for k, v in metrics.items() if k in ("accuracy", "average_loss", "loss")}
        if tuning.metric is None:
            raise ValueError(f"tuning.metric: missing; the default ({metric}) is a binary metric, and a multi-class "
                             f"model evaluates only {sorted(metrics)}. How to fix: metric: accuracy.")
    if metric not in metrics:
        raise ValueError(f"tuning.metric: got {metric!r}; expected one of {sorted(metrics)} (the Estimator's "
                         f"evaluation metrics of {estimator}). How to fix: pick one of those.")
    if tuning.direction is not None and tuning.direction != metrics[metric]:
        raise ValueError(f"tuning.direction: got {tuning.direction!r}, but {metric} is better when "
                         f"{'higher' if metrics[metric] == 'maximize' else 'lower'}; expected {metrics[metric]!r}. "
                         "How to fix: remove direction (it follows the metric).")
    if tuning.storage is not None and "://" not in tuning.storage:
        raise ValueError(f"tuning.storage: got {tuning.storage!r}; expected a SQLAlchemy URL of a database for the "
                         "study (not the metadata store's), or null for a SQLite file next to the Tuner's outputs. "
                         "How to fix: e.g. storage: postgresql+psycopg://host/optuna.")


def space_of(spec: PipelineSpec) -> dict[str, Any]:
    """``tuning.space`` as Choice / Range objects, each checked against model.estimator and the features.

    A YAML list is a Choice (``hidden_units: [[64, 32], [128, 64]]``), a mapping a Range
    (``learning_rate: {low: 0.01, high: 0.3, log: true}``).
    """
    from components.trainer.hyperparameters import check_hyperparameter
    from components.tuner.space import Choice, Range, check_dimension

    try:
        features = spec.feature_spec
    except ValueError:
        features = None  # load_spec reports the features section's own error
    space = {}
    for name, entry in spec.tuning.space.items():
        field = f"tuning.space.{name}"
        if isinstance(entry, list):
            dimension: Any = Choice(*entry)
        elif isinstance(entry, dict):
            unknown = sorted(set(entry) - {"low", "high", "log", "step"})
            if unknown or not {"low", "high"} <= set(entry):
                raise ValueError(f"{field}: got keys {sorted(entry)}; a range takes low, high and optionally log, "
                                 f"step. How to fix: e.g. {name}: {{low: 0.01, high: 0.3, log: true}}"
                                 f"{', or a list of choices' if unknown else ''}.")
            if not isinstance(entry.get("log", False), bool):
                raise ValueError(f"{field}.log: got {entry['log']!r}; expected true or false. How to fix: "
                                 "log: true samples in log space.")
            dimension = Range(**entry)
        else:
            raise ValueError(f"{field}: got {entry!r}; expected a list of choices or a range {{low, high, log, "
                             f"step}}. How to fix: e.g. {name}: [a, b], or {name}: {{low: 1, high: 8}}.")
        try:
            check_hyperparameter(name, spec.model.estimator, features)
            check_dimension(name, dimension)
        except ValueError as e:
            raise ValueError(f"{field}: {e}.") from None
        space[name] = dimension
    return space


def _check_threshold(name: str, bound: Any, estimator: str, task: str) -> None:
    field = f"evaluation.thresholds.{name}"
    found = metric_info(name, task)
    info = found[1] if found else None
    names = [n for n, m in METRICS.items() if task in m.tasks]
    if info is None:
        raise ValueError(f"{field}: unknown metric {name!r}; expected one of {names} for {task}. How to fix: "
                         "use a name from the threshold table in docs/pipeline_yaml.md.")
    if task not in info.tasks:
        raise ValueError(f"{field}: {name!r} is a {info.tasks[0]} metric, but model.estimator={estimator!r} is a "
                         f"{task} model; expected one of {names}. How to fix: pick a {task} metric, or change "
                         "model.estimator.")
    if bound.lower_bound is None and bound.upper_bound is None and bound.min_change is None:
        raise ValueError(f"{field}: no bound; expected lower_bound, upper_bound or min_change. How to fix: "
                         f"e.g. {name}: {{lower_bound: 0.7}}.")
    if bound.lower_bound is not None and bound.upper_bound is not None and bound.lower_bound > bound.upper_bound:
        raise ValueError(f"{field}: lower_bound={bound.lower_bound} > upper_bound={bound.upper_bound}; no value "
                         "passes. How to fix: swap or widen them.")
    if bound.min_change is not None and info.higher_is_better is None:
        raise ValueError(f"{field}.min_change: {name!r} has no better direction, so a change against the "
                         "baseline means nothing. How to fix: use lower_bound/upper_bound.")


def _tflite(spec: PipelineSpec):
    """push.tflite as the Trainer's TFLiteOptions (None when off)."""
    from components.trainer import TFLiteOptions

    tflite = spec.push.tflite if spec.push is not None else False
    if tflite is False:
        return None
    if tflite is True:
        return TFLiteOptions()
    return TFLiteOptions(quantize=tflite.quantize, select_tf_ops=tflite.select_tf_ops)


def push_model_name(spec: PipelineSpec) -> str:
    """push.model_name, or the pipeline name."""
    return spec.push.model_name if spec.push is not None and spec.push.model_name else spec.name


def push_destination(spec: PipelineSpec, root: str) -> str:
    """push.destination (relative to the YAML file), or ``<root>/serving``."""
    if spec.push is not None and spec.push.destination:
        return spec.path(spec.push.destination)
    return os.path.join(root, "serving")


def model_components(spec: PipelineSpec, *, features: FeatureSpec, examples: Channel, schema: Channel,
                     transform: Component, root: str, statistics: Channel | None = None) -> list[Component]:
    """The components after Transform: Tuner, resolvers, Trainer, Evaluator, InfraValidator, Pusher.

    This is the one place the YAML wires the model. The Trainer's ``base_model`` is the
    newest model blessed and pushed before Transform's examples were made (nothing on the
    first run: a cold start).

    Args:
        spec: The validated spec (``spec.model`` and ``spec.training`` set).
        features: The FeatureSpec Transform used (its label's dtype fits the task).
        examples: ExampleGen's raw Examples (the Evaluator and InfraValidator read them).
        schema: The raw Schema.
        transform: The Transform component.
        root: The pipeline root (default push destination ``<root>/serving``).
        statistics: The raw ExampleStatistics; the Trainer refuses a classifier whose label
            has a single value in them.
    """
    from components.evaluator import Evaluator, MetricThreshold
    from components.evaluator.component import DEFAULT_METRICS_BY_TASK
    from components.infra_validator import InfraValidator
    from components.pusher import Pusher
    from components.resolver import LatestBlessedModelResolver
    from components.trainer import CannedEstimatorConfig, Trainer

    model, training = spec.model, spec.training
    task = task_of(model.estimator, model.args)
    canned = CannedEstimatorConfig(model.estimator, feature_spec=features, kwargs=dict(model.args),
                                   batch_size=training.batch_size, random_seed=training.random_seed)
    tuner = _tuner(spec, canned, transform) if spec.tuning is not None else None
    warm = LatestBlessedModelResolver(before=transform.outputs["transformed_examples"], id="WarmStartResolver")
    trainer = Trainer(
        transform.outputs["transformed_examples"], transform.outputs["transform_graph"], schema,
        base_model=warm.outputs["model"], statistics=statistics, train_steps=training.steps,
        eval_steps=training.eval_steps, canned=canned,
        hyperparameters=tuner.outputs["best_hyperparameters"] if tuner else None, tflite=_tflite(spec))
    destination, model_name = push_destination(spec, root), push_model_name(spec)
    # Pushed before this candidate was trained: an unchanged rerun stays cached instead of judging
    # the served model against itself and pushing it again.
    baseline = LatestBlessedModelResolver(before=trainer.outputs["model"], id="BaselineResolver")
    evaluation = spec.evaluation
    infos = {name: metric_info(name, task)[1] for name in (evaluation.thresholds if evaluation else ())}
    thresholds = tuple(
        MetricThreshold(infos[name].tfma_class, lower_bound=b.lower_bound, upper_bound=b.upper_bound,
                        min_change=b.min_change, higher_is_better=infos[name].higher_is_better is not False)
        for name, b in (evaluation.thresholds.items() if evaluation else ()))
    from components.evaluator.metric_names import resolve_metric

    metrics = DEFAULT_METRICS_BY_TASK[task]
    metrics += tuple(resolve_metric(m, task).class_name for m in (evaluation.metrics if evaluation else ()))
    metrics += tuple(t.metric for t in thresholds)
    metrics = tuple(dict.fromkeys(metrics))
    evaluator = Evaluator(
        examples, trainer.outputs["model"], baseline_model=baseline.outputs["model"], label_key=spec.label.name,
        task=task, metrics=metrics, thresholds=thresholds,
        slicing_features=tuple(tuple(s) for s in evaluation.slices) if evaluation else ())
    infra = InfraValidator(trainer.outputs["model"], examples, request_kinds=REQUEST_KINDS[task])
    pusher = Pusher(trainer.outputs["model"], model_blessing=evaluator.outputs["blessing"],
                    infra_blessing=infra.outputs["blessing"], push_destination=destination, model_name=model_name)
    return [*([tuner] if tuner else []), warm, trainer, baseline, evaluator, infra, pusher]


def _tuner(spec: PipelineSpec, canned: Any, transform: Component) -> Component:
    """The Tuner of ``tuning``: it tunes the Trainer's canned config; steps default to training's."""
    from components.tuner import Pruner, Tuner

    tuning, training = spec.tuning, spec.training
    return Tuner(
        transform.outputs["transformed_examples"], transform.outputs["transform_graph"], canned=canned,
        space=space_of(spec), trials=tuning.trials, steps=tuning.steps or training.steps,
        eval_every=tuning.eval_every, eval_steps=tuning.eval_steps or training.eval_steps, metric=tuning.metric,
        direction=tuning.direction, sampler=tuning.sampler, seed=tuning.seed,
        pruner=Pruner(tuning.pruner.type, startup_trials=tuning.pruner.startup_trials,
                      warmup_steps=tuning.pruner.warmup_steps),
        storage=tuning.storage, study_name=tuning.study_name)
