"""Builds the TFMA EvalConfig from EvaluatorParameters; summarizes a ValidationResult."""

from __future__ import annotations

from typing import Any

from components.evaluator.metric_names import metric_key_name, resolve_metric

CANDIDATE = "candidate"
BASELINE = "baseline"


def build_eval_config(params: Any, *, with_baseline: bool) -> Any:
    """The EvalConfig: model specs, slices (overall + features), metrics and thresholds.

    Thresholds are judged on the overall slice only (small slices are too noisy to gate on).
    """
    from tensorflow_model_analysis.proto import config_pb2

    config = config_pb2.EvalConfig()
    for name, is_baseline in ((CANDIDATE, False), (BASELINE, True))[:2 if with_baseline else 1]:
        config.model_specs.add(name=name, signature_name=params.signature_name, label_key=params.label_key,
                               prediction_key=params.prediction_key, is_baseline=is_baseline)
    config.slicing_specs.add()
    for features in params.slicing_features:
        config.slicing_specs.add(feature_keys=list(features))
    spec = config.metrics_specs.add()
    thresholds = {}
    for threshold in params.thresholds:
        thresholds.setdefault(threshold.metric, []).append(_threshold_proto(threshold, with_baseline))
    metrics = list(params.metrics)
    if set(metrics) & set(NEEDS_BOTH_CLASSES) and "MeanLabel" not in metrics:
        metrics.append("MeanLabel")  # tells an undefined AUC (one class) from a real 0
    for metric in metrics:
        ref = resolve_metric(metric, params.task)
        metric_config = spec.metrics.add(class_name=ref.class_name, module=ref.module)
        for threshold in thresholds.get(metric, []):
            if threshold.ListFields():
                per_slice = metric_config.per_slice_thresholds.add(threshold=threshold)
                per_slice.slicing_specs.add()
    return config


# TFMA metric class -> the label classes it needs. TFMA returns 0 when they are missing;
# `undefined_metrics` tells those apart.
NEEDS_BOTH_CLASSES = {"AUC": "both", "AUCPrecisionRecall": "positive", "Recall": "positive"}


def undefined_metrics(metrics: dict[str, float], params: Any) -> dict[str, str]:
    """Computed metrics (by TFMA name) that the eval labels leave undefined -> why.

    From ``mean_label`` of a binary label: 0 means no positives (AUC, AUC-PR and recall are
    undefined), 1 no negatives (AUC is undefined).
    """
    mean = metrics.get("mean_label")
    if mean not in (0.0, 1.0):
        return {}
    only = "0 (no positives)" if mean == 0.0 else "1 (no negatives)"
    reason = f"undefined: every label of split {params.split!r} is {only}"
    undefined = {}
    for class_name, needs in NEEDS_BOTH_CLASSES.items():
        if class_name not in params.metrics:
            continue
        name = _metric_name(class_name, params.task)
        if name in metrics and (needs == "both" or mean == 0.0):
            undefined[name] = reason
    return undefined


def with_undefined_reasons(reasons: list[str], undefined: dict[str, str], params: Any) -> list[str]:
    """Failure reasons where a threshold on an undefined metric says so, not "auc = 0"."""
    thresholded = {_metric_name(t.metric, params.task) for t in params.thresholds}
    kept = [r for r in reasons if r.split(" ", 1)[0] not in undefined]
    return kept + [f"{name} is {why}" for name, why in sorted(undefined.items()) if name in thresholded]


def _threshold_proto(threshold: Any, with_baseline: bool) -> Any:
    from tensorflow_model_analysis.proto import config_pb2

    proto = config_pb2.MetricThreshold()
    if threshold.lower_bound is not None:
        proto.value_threshold.lower_bound.value = threshold.lower_bound
    if threshold.upper_bound is not None:
        proto.value_threshold.upper_bound.value = threshold.upper_bound
    if threshold.min_change is not None and with_baseline:
        # TFMA checks candidate - baseline >= absolute (HIGHER_IS_BETTER) or <= absolute
        # (LOWER_IS_BETTER); min_change is an improvement, so lower-is-better negates it.
        if threshold.higher_is_better:
            proto.change_threshold.direction = config_pb2.MetricDirection.HIGHER_IS_BETTER
            proto.change_threshold.absolute.value = threshold.min_change
        else:
            proto.change_threshold.direction = config_pb2.MetricDirection.LOWER_IS_BETTER
            proto.change_threshold.absolute.value = -threshold.min_change
    return proto


def _metric_name(class_name: str, task: str = "classification") -> str:
    """TFMA's metric name for a class name (AUC -> auc, BinaryAccuracy -> binary_accuracy)."""
    return metric_key_name(class_name, task)


def _slice_text(slice_key: Any) -> str:
    parts = []
    for key in slice_key.single_slice_keys:
        value = key.WhichOneof("kind")
        parts.append(f"{key.column}={getattr(key, value)!r}" if value else key.column)
    return ", ".join(parts) or "overall"


def failure_reasons(validation: Any) -> list[str]:
    """One line per failed threshold: metric, slice, value and the bound it missed."""
    from google.protobuf import text_format

    reasons = []
    for per_slice in validation.metric_validations_per_slice:
        where = _slice_text(per_slice.slice_key)
        for failure in per_slice.failures:
            key = failure.metric_key
            what = f"{key.name} change vs baseline" if key.is_diff else key.name
            threshold = text_format.MessageToString(failure.metric_threshold, as_one_line=True)
            reasons.append(f"{what} on {where} = {failure.metric_value.double_value.value:.4g}, "
                           f"threshold {threshold}")
    if validation.missing_thresholds:
        reasons.append("a threshold has no computed metric (check metrics= and the model's outputs)")
    for missing in validation.missing_slices:
        reasons.append(f"slice {text_format.MessageToString(missing, as_one_line=True)} has no examples")
    return reasons
