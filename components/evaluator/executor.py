"""Evaluator's executor: ``tfma.run_model_analysis`` on Beam, then the verdict."""

from __future__ import annotations

import os
from components.base import ComponentError, ExecutionContext
from components.evaluator.metric_names import CLASSIFICATION, DEFAULT_METRICS_BY_TASK, MULTICLASS
from components.evaluator.eval_config import (
    BASELINE, CANDIDATE, build_eval_config, failure_reasons, undefined_metrics, with_undefined_reasons)
from components.trainer.model_paths import serving_model_path


def overall_metrics(output_path: str) -> dict[str, float]:
    """The candidate's scalar metrics on the overall slice (diffs against the baseline as ``<name>_diff``)."""
    import tensorflow_model_analysis as tfma

    metrics = {}
    for per_slice in tfma.load_metrics(output_path):
        if per_slice.slice_key.single_slice_keys:
            continue
        for entry in per_slice.metric_keys_and_values:
            key, value = entry.key, entry.value
            if key.model_name not in ("", CANDIDATE) or not value.HasField("double_value"):
                continue
            metrics[f"{key.name}_diff" if key.is_diff else key.name] = float(value.double_value.value)
    return metrics


def why_not_comparable(baseline, candidate, params) -> str | None:
    """Why ``baseline`` cannot be compared with ``candidate`` (None when it can).

    A model trained for another label, or one whose signature lacks the output the Evaluator
    scores (a classifier after a switch to a regressor), is no baseline: change thresholds are
    then skipped, as for a first model, and the reason is recorded.
    """
    from trainer.export.saved_model import signature_defs

    labels = baseline.properties.get("label_key"), candidate.properties.get("label_key")
    if None not in labels and labels[0] != labels[1]:
        return f"it was trained for label {labels[0]!r}, the candidate for {labels[1]!r}"
    try:
        signatures = signature_defs(serving_model_path(baseline))
    except OSError as e:
        return f"its SavedModel cannot be read ({e.strerror}: {e.filename})"
    signature = signatures.get(params.signature_name)
    if signature is None:
        return f"it has no {params.signature_name!r} signature (it has {sorted(signatures)})"
    if params.prediction_key not in signature.outputs:
        return (f"its {params.signature_name!r} signature has no {params.prediction_key!r} output "
                f"(it has {sorted(signature.outputs)}): a model for another task")
    return None


def check_model_outputs(model, params) -> None:
    """Refuses a model whose scored output does not fit the task, before TFMA runs.

    The signature must have ``prediction_key``; a binary task over more than two class
    probabilities is refused (TFMA would flatten them into per-class binary decisions and
    report, e.g., a binary accuracy near 1.0 that is not the model's accuracy).
    """
    from trainer.export.saved_model import signature_defs

    signatures = signature_defs(serving_model_path(model))
    signature = signatures.get(params.signature_name)
    if signature is None:
        raise ComponentError(
            f"Evaluator got model {model.id} without a {params.signature_name!r} signature (it has "
            f"{sorted(signatures)}). How to fix: pass signature_name= one of those.")
    output = signature.outputs.get(params.prediction_key)
    if output is None:
        raise ComponentError(
            f"Evaluator got model {model.id} whose {params.signature_name!r} signature has no "
            f"{params.prediction_key!r} output (it has {sorted(signature.outputs)}). How to fix: pass "
            "prediction_key= the class probabilities (multiclass), the positive-class probability "
            "(classification) or the prediction (regression).")
    dims = [] if output.tensor_shape.unknown_rank else [d.size for d in output.tensor_shape.dim]
    classes = dims[-1] if len(dims) >= 2 else 1
    if params.task == CLASSIFICATION and classes > 2:
        raise ComponentError(
            f"Evaluator got task='classification' (binary metrics {list(params.metrics)}), but model "
            f"{model.id}'s {params.prediction_key!r} output has {classes} classes. How to fix: "
            f"Evaluator(..., task='multiclass', metrics={DEFAULT_METRICS_BY_TASK[MULTICLASS]!r}).")


def metric_error_in(error: BaseException) -> str | None:
    """The message of a multi-class metric's own error inside Beam's wrapping, if there is one."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        for text in (str(error), *map(str, getattr(error, "args", ()))):
            start = text.find("multi-class metrics got")
            if start >= 0:
                end = text.find("How to fix:", start)
                end = text.find(".", end) + 1 if end >= 0 else len(text)
                return text[start:end or len(text)]
        error = error.__cause__ or error.__context__
    return None


def run(ctx: ExecutionContext) -> None:
    import tensorflow_model_analysis as tfma
    from apache_beam.options.pipeline_options import PipelineOptions

    params = ctx.parameters
    examples = ctx.input("examples")
    if params.split not in examples.split_names:
        raise ComponentError(
            f"Evaluator got examples with splits {examples.split_names}; expected split {params.split!r}. "
            "How to fix: pass split= one of those.")
    baseline = (ctx.inputs.get("baseline_model") or [None])[0]
    if baseline is not None and not baseline.properties.get("serving_model"):
        baseline = None  # a resolver that found no earlier model
    baseline_skipped = None
    if baseline is not None:
        baseline_skipped = why_not_comparable(baseline, ctx.input("model"), params)
        if baseline_skipped:
            ctx.report(f"baseline model {baseline.id} not used: {baseline_skipped}")
            baseline = None
    check_model_outputs(ctx.input("model"), params)
    config = build_eval_config(params, with_baseline=baseline is not None)
    models = [tfma.default_eval_shared_model(
        eval_saved_model_path=serving_model_path(ctx.input("model")), eval_config=config,
        model_name=CANDIDATE)]
    if baseline is not None:
        models.append(tfma.default_eval_shared_model(
            eval_saved_model_path=serving_model_path(baseline), eval_config=config, model_name=BASELINE))
    out = ctx.outputs["evaluation"]
    ctx.report(f"TFMA over {examples.file_pattern(params.split)}")
    try:
        tfma.run_model_analysis(
            eval_shared_model=models if baseline is not None else models[0], eval_config=config,
            data_location=examples.file_pattern(params.split), file_format="tfrecords", output_path=out.uri,
            pipeline_options=PipelineOptions(list(ctx.beam_pipeline_args)))
    except Exception as e:
        cause = metric_error_in(e)
        if cause is None:
            raise
        raise ComponentError(f"Evaluator on split {params.split!r}: {cause}") from e
    validation = tfma.load_validation_result(out.uri)
    reasons = failure_reasons(validation)
    metrics = overall_metrics(out.uri)
    undefined = undefined_metrics(metrics, params)
    if undefined:
        # TFMA scores them 0; a threshold on one fails for the real reason, named here.
        ctx.report(f"metrics {sorted(undefined)} are {next(iter(undefined.values()))}")
        reasons = with_undefined_reasons(reasons, undefined, params)
        metrics = {k: v for k, v in metrics.items()
                   if k not in undefined and k.removesuffix("_diff") not in undefined}
    out.properties.update(metrics=metrics, undefined_metrics=undefined,
                          baseline_model_id=baseline.id if baseline else None)
    blessing = ctx.outputs["blessing"]
    blessed = bool(validation.validation_ok) and not reasons
    blessing.properties.update(
        blessed=blessed, verdict="BLESSED" if blessed else "NOT_BLESSED",
        reason="; ".join(reasons) if reasons else (
            "every threshold passed" + ("" if baseline else (
                f" (baseline not used: {baseline_skipped}; value thresholds only)" if baseline_skipped
                else " (no baseline: value thresholds only)"))),
        baseline_skipped=baseline_skipped,
        model_id=ctx.input("model").id, baseline_model_id=baseline.id if baseline else None, metrics=metrics,
        undefined_metrics=undefined)
    with open(os.path.join(blessing.uri, "BLESSED" if blessed else "NOT_BLESSED"), "w", encoding="utf-8") as f:
        f.write(blessing.properties["reason"] + "\n")
