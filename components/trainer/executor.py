"""Trainer's executor: build the Estimator (user trainer_fn or canned), train, export.

``trainer.train_and_evaluate`` does the training with continuous evaluation; then
`serving_export.export_serving_model` writes the raw-tf.Example SavedModel into the
Model artifact, next to a copy of the final checkpoint (for later warm starts).

The Estimator's model_dir is the execution's resumable ``work_dir``: a Trainer killed
mid-way and rerun with the same inputs restores its newest checkpoint there and trains
on to the same absolute ``train_steps`` (a warm start only applies to an empty
model_dir). The model_dir is copied into the ``model_run`` output once training ends.
A canned model warm-starts from the base Model's checkpoint re-indexed to this run's
vocabularies (`components.trainer.warm_start`). Before training, a classifier's label must
have two values in the train split (`components.trainer.label_check`). The Tuner's best
hyperparameters, when given, are applied to the canned config first
(`components.trainer.hyperparameters`), so warm-start checks and the recorded architecture
see the tuned model.
"""

from __future__ import annotations

import dataclasses
import glob
import importlib.util
import os
import shutil
from typing import Any

from components.base import ComponentError, ExecutionContext
from components.trainer.canned_config import canned_trainer_fn
from components.trainer.fn_args import FnArgs
from components.trainer.hyperparameters import apply_hyperparameters, read_best_hyperparameters
from components.trainer.label_check import (
    check_label, label_values_from_examples, label_values_from_statistics, undefined_metrics)
from components.trainer.model_paths import CHECKPOINT_DIR, SERVING_DIR, checkpoint_path
from components.trainer.serving_export import export_serving_model
from components.trainer.warm_start import architecture, remap_base_checkpoint, save_vocabularies, why_not_warm_start

REQUIRED_KEYS = ("estimator", "train_spec", "eval_spec")


def load_trainer_fn(module_file: str, name: str):
    """Imports ``name`` from the user's module file."""
    spec = importlib.util.spec_from_file_location("user_trainer_module", module_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fn = getattr(module, name, None)
    if not callable(fn):
        raise ComponentError(
            f"Trainer got trainer_fn={name!r}; {module_file} defines no such function. How to fix: "
            f"define def {name}(fn_args) returning {{'estimator', 'train_spec', 'eval_spec'}}.")
    return fn


def _check_result(result: Any) -> dict:
    if not isinstance(result, dict) or any(k not in result for k in REQUIRED_KEYS):
        keys = sorted(result) if isinstance(result, dict) else type(result).__name__
        raise ComponentError(
            f"Trainer got trainer_fn result {keys}; expected a dict with keys {list(REQUIRED_KEYS)}. "
            "How to fix: return {'estimator': est, 'train_spec': trainer.TrainSpec(...), "
            "'eval_spec': trainer.EvalSpec(...)}.")
    return result


def _copy_checkpoint(estimator: Any, target_dir: str) -> str:
    prefix = estimator.latest_checkpoint()
    os.makedirs(target_dir, exist_ok=True)
    for path in glob.glob(prefix + ".*"):
        shutil.copy2(path, target_dir)
    return os.path.join(CHECKPOINT_DIR, os.path.basename(prefix))


def _scalar_metrics(result: Any) -> dict[str, float]:
    metrics = {}
    for key, value in (result or {}).items():
        try:
            metrics[str(key)] = float(value)
        except (TypeError, ValueError):
            continue
    return metrics


def run(ctx: ExecutionContext) -> None:
    import trainer
    from tensorflow_transform.tf_metadata import schema_utils

    from components.schema_gen.executor import load_schema

    params = ctx.parameters
    examples = ctx.input("examples")
    for split in (params.train_split, params.eval_split):
        if split not in examples.split_names:
            raise ComponentError(
                f"Trainer got examples with splits {examples.split_names}; expected split {split!r}. "
                "How to fix: set train_split/eval_split to existing splits.")
    model, model_run = ctx.outputs["model"], ctx.outputs["model_run"]
    base = (ctx.inputs.get("base_model") or [None])[0]
    model_dir = os.path.join(ctx.work_dir, "model_dir") if ctx.work_dir else model_run.uri
    params, tuned = _with_hyperparameters(ctx, params)
    fn_args = FnArgs(
        train_files=(examples.file_pattern(params.train_split),),
        eval_files=(examples.file_pattern(params.eval_split),),
        transform_graph_path=ctx.input("transform_graph").uri,
        schema_path=ctx.input("schema").schema_path, train_steps=params.train_steps,
        eval_steps=params.eval_steps, serving_model_dir=os.path.join(model.uri, SERVING_DIR),
        model_run_dir=model_dir, base_model=checkpoint_path(base) if base else None,
        custom_config=dict(params.custom_config), label_key=params.label_key, hyperparameters=tuned)
    _check_label_classes(ctx, params, fn_args)
    resumed_from = _checkpoint_step(model_dir)
    start, warm_start_from = _start(ctx, params, fn_args, base, resumed_from)
    if params.module_file:
        result = _check_result(load_trainer_fn(params.module_file, params.trainer_fn)(fn_args))
    else:
        result = canned_trainer_fn(params.canned, fn_args, warm_start_from=warm_start_from)
    estimator = result["estimator"]
    ctx.report(f"training {type(estimator).__name__} to step {params.train_steps}")
    if params.module_file:
        eval_result, _ = trainer.train_and_evaluate(estimator, result["train_spec"], result["eval_spec"])
    else:
        # Train, then evaluate the final checkpoint once: train_and_evaluate would also evaluate
        # the first periodic checkpoint (a trace of the eval graph, ~10 s) that nothing records.
        train_spec, eval_spec = result["train_spec"], result["eval_spec"]
        estimator.train(train_spec.input_fn, max_steps=train_spec.max_steps)
        ctx.report("evaluating the final checkpoint")
        eval_result = estimator.evaluate(eval_spec.input_fn, steps=eval_spec.steps)
    if os.path.abspath(estimator.model_dir) != os.path.abspath(model_run.uri):
        shutil.copytree(estimator.model_dir, model_run.uri, dirs_exist_ok=True)

    ctx.report("exporting the serving model")
    raw_spec = schema_utils.schema_as_feature_spec(load_schema(fn_args.schema_path)).feature_spec
    exported = export_serving_model(
        estimator, transform_graph_path=fn_args.transform_graph_path, raw_feature_spec=raw_spec,
        label_keys=[params.label_key], export_dir_base=fn_args.serving_model_dir,
        work_dir=os.path.join(ctx.temp_dir, "transformed_export"))
    metrics = _scalar_metrics(eval_result)
    undefined = undefined_metrics(metrics, params.eval_split)
    if undefined:
        ctx.report(f"metrics {sorted(undefined)} are {next(iter(undefined.values()))}")
    metrics = {k: v for k, v in metrics.items() if k not in undefined}
    model.properties.update(
        serving_model=os.path.relpath(exported, model.uri),
        checkpoint=_copy_checkpoint(estimator, os.path.join(model.uri, CHECKPOINT_DIR)),
        label_key=params.label_key, metrics=metrics, undefined_metrics=undefined, **start)
    if params.canned is not None:
        model.properties.update(
            architecture=architecture(params.canned),
            vocabularies=save_vocabularies(params.canned, fn_args.transform_graph_path, model.uri))
    if ctx.inputs.get("hyperparameters"):
        model.properties.update(hyperparameters=tuned, hyperparameters_id=ctx.input("hyperparameters").id)
    model_run.properties.update(metrics=metrics, undefined_metrics=undefined, **start)


def _with_hyperparameters(ctx: ExecutionContext, params: Any) -> tuple[Any, dict[str, Any]]:
    """The parameters with the Tuner's values applied to a canned config, and the values ({} without)."""
    artifacts = ctx.inputs.get("hyperparameters") or []
    if not artifacts:
        return params, {}
    values = read_best_hyperparameters(artifacts[0])
    if params.canned is None:  # a trainer_fn reads them from fn_args.hyperparameters
        ctx.report(f"hyperparameters for trainer_fn: {values}")
        return params, values
    try:
        canned = apply_hyperparameters(params.canned, values)
    except ValueError as e:
        raise ComponentError(f"Trainer got hyperparameters from artifact {artifacts[0].id}: {e} The Tuner "
                             "must tune the Trainer's estimator.") from None
    ctx.report(f"tuned hyperparameters: {values}")
    return dataclasses.replace(params, canned=canned), values


def _check_label_classes(ctx: ExecutionContext, params: Any, fn_args: FnArgs) -> None:
    """Refuses a classifier whose label has < 2 values in the train split (see label_check)."""
    from components.statistics_gen.executor import load_statistics

    classifier = params.canned is not None and params.canned.estimator.endswith("Classifier")
    if params.canned is not None and not classifier:
        return  # a canned regressor: any number of label values will do
    split, label = params.train_split, params.label_key
    statistics = (ctx.inputs.get("statistics") or [None])[0]
    found, source = None, ""
    if statistics is not None and split in statistics.split_names:
        found = label_values_from_statistics(load_statistics(statistics.stats_path(split)).datasets[0], label)
        source = "from the statistics"
    if found is None:
        found = label_values_from_examples(fn_args.train_files[0], fn_args.transform_graph_path, label)
        source = "from the transformed examples"
    check_label(label=label, split=split, classifier=classifier, found=found, source=source,
                report=ctx.report)


def _checkpoint_step(model_dir: str) -> int | None:
    """The global step of the newest checkpoint in model_dir (a resumed run), or None."""
    from trainer import checkpoints

    prefix = checkpoints.latest_checkpoint(model_dir)
    return checkpoints.checkpoint_step(prefix) if prefix else None


def _start(ctx: ExecutionContext, params: Any, fn_args: FnArgs, base: Any,
           resumed_from: int | None) -> tuple[dict[str, Any], str | None]:
    """Decides and reports how training starts: resumed, warm-started from a base Model, or cold.

    Returns:
        The properties recording it, and for a canned model that warm-starts from an empty
        model_dir, the base checkpoint re-indexed to this run's vocabularies (else None).
    """
    start: dict[str, Any] = {"base_model_id": base.id if base is not None else None,
                             "resumed_from_step": resumed_from}
    skipped = None
    if base is None:
        skipped = "no base model"
    elif params.canned is not None:
        skipped = why_not_warm_start(base, params.canned)
    if skipped is not None:
        start["warm_start_skipped"] = skipped
    else:
        start["warm_started_from"] = fn_args.base_model  # a trainer_fn uses it as it sees fit
    if resumed_from is not None:  # the Estimator restores it; a warm start only applies to an empty model_dir
        ctx.report(f"resuming from the checkpoint at step {resumed_from} in {fn_args.model_run_dir}")
        return start, None
    if skipped is not None:
        ctx.report(f"cold start: {skipped}")
        return start, None
    ctx.report(f"warm start from Model {base.id}: {fn_args.base_model}")
    if params.canned is None:
        return start, None
    checkpoint, vocabularies = remap_base_checkpoint(
        base, params.canned, fn_args.transform_graph_path, os.path.join(ctx.work_dir or ctx.temp_dir, "warm_start"))
    start["warm_start_vocabularies"] = vocabularies
    return start, checkpoint
