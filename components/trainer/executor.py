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

A module_file gives TFX's ``trainer_fn(fn_args)`` / ``trainer_fn(fn_args, schema)`` or its
generic ``run_fn(fn_args)`` (`resolve_user_fn`); errors in it, and failures while training,
are one-line `ComponentError`s with the user's frame and TensorFlow's root cause
(`components.trainer.errors`). With ``span_window`` > 1 the earlier spans' train splits are
transformed with this run's graph and trained on too (`components.trainer.span_window`).
See docs/trainer_modules.md.
"""

from __future__ import annotations

import dataclasses
import glob
import importlib.util
import inspect
import os
import shutil
from typing import Any

from components.base import ComponentError, ExecutionContext
from components.trainer.canned_config import canned_trainer_fn
from components.trainer.errors import call_user_fn, describe, training_error, user_frame
from components.trainer.fn_args import FnArgs
from components.trainer.hyperparameters import apply_hyperparameters, read_best_hyperparameters
from components.trainer.label_check import (
    check_label, fewer_classes_warning, head_info, head_problem, label_values_from_examples,
    label_values_from_statistics, label_values_from_statistics_full, scan_label, undefined_metrics)
from components.trainer.model_paths import CHECKPOINT_DIR, SERVING_DIR, checkpoint_path
from components.trainer.serving_export import TFLITE_FILE, export_serving_model
from components.trainer.span_window import window_train_files
from components.trainer.warm_start import architecture, remap_base_checkpoint, save_vocabularies, why_not_warm_start

REQUIRED_KEYS = ("estimator", "train_spec", "eval_spec")
# TFX's trainer_fn also returned these; accepted and not used (a note in the component's log).
IGNORED_KEYS = {"eval_input_receiver_fn": "the Evaluator scores the served model's 'predict' signature; "
                                          "no EvalSavedModel is written"}
TRAINER_FN_FIX = ("return {'estimator': est, 'train_spec': trainer.TrainSpec(...), 'eval_spec': "
                  "trainer.EvalSpec(...)} (import trainer: this project's tf.estimator; see "
                  "docs/trainer_modules.md).")
RUN_FN_FIX = ("train the model in run_fn(fn_args) and save it as a SavedModel with a 'serving_default' "
              "signature to fn_args.serving_model_dir (see docs/trainer_modules.md).")


def load_module(module_file: str) -> Any:
    """Imports the user's module file; a failure is a one-line `ComponentError` naming it."""
    spec = importlib.util.spec_from_file_location("user_trainer_module", module_file)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # noqa: BLE001 - anything the module's top level raises
        if isinstance(e, SyntaxError):
            where = f"{e.filename}:{e.lineno}"
            fix = f"correct the syntax at {where}."
        else:
            where = user_frame(e, module_file)
            if isinstance(e, ImportError):
                fix = (f"install {e.name!r} in the environment that runs the pipeline, or remove the import"
                       if e.name else "correct the import") + (
                    "; TensorFlow 2.21 has no tf.estimator: use `import trainer`" if e.name and "estimator" in e.name
                    else "") + "."
            else:
                fix = f"correct the module's top-level code at {where}." if where else "correct the module."
        at = f" at {where}" if where else ""
        raise ComponentError(f"Trainer could not import module_file {module_file}: {describe(e)}{at}. "
                             f"How to fix: {fix}") from e
    return module


def load_trainer_fn(module_file: str, name: str):
    """Imports ``name`` from the user's module file."""
    fn = getattr(load_module(module_file), name, None)
    if not callable(fn):
        raise ComponentError(
            f"Trainer got trainer_fn={name!r}; {module_file} defines no such function. How to fix: "
            f"define def {name}(fn_args) or def {name}(fn_args, schema) returning "
            "{'estimator', 'train_spec', 'eval_spec'}.")
    return fn


def resolve_user_fn(module_file: str, trainer_fn: str, run_fn: str | None) -> tuple[str, str, Any]:
    """Which function of the module to call: ``("trainer_fn" | "run_fn", name, function)``.

    ``run_fn`` named: that one. Otherwise ``trainer_fn``, or, when the module defines no
    function of that (default) name, TFX's generic ``run_fn``.
    """
    module = load_module(module_file)
    if run_fn is not None:
        fn = getattr(module, run_fn, None)
        if not callable(fn):
            raise ComponentError(
                f"Trainer got run_fn={run_fn!r}; {module_file} defines no such function. How to fix: "
                f"define def {run_fn}(fn_args) there, or pass the name of the one it defines.")
        return "run_fn", run_fn, fn
    fn = getattr(module, trainer_fn, None)
    if callable(fn):
        return "trainer_fn", trainer_fn, fn
    if trainer_fn == "trainer_fn" and callable(getattr(module, "run_fn", None)):
        return "run_fn", "run_fn", module.run_fn
    if trainer_fn != "trainer_fn":
        raise ComponentError(
            f"Trainer got trainer_fn={trainer_fn!r}; {module_file} defines no such function. How to fix: "
            f"define def {trainer_fn}(fn_args) or def {trainer_fn}(fn_args, schema) returning "
            "{'estimator', 'train_spec', 'eval_spec'}.")
    raise ComponentError(
        f"Trainer got module_file {module_file}, which defines neither trainer_fn nor run_fn. How to fix: "
        "define trainer_fn(fn_args, schema) returning {'estimator', 'train_spec', 'eval_spec'} (TFX's "
        "estimator Trainer), or run_fn(fn_args) saving a SavedModel to fn_args.serving_model_dir (TFX's "
        "generic Trainer).")


def positional_arity(fn: Any, *, module_file: str, name: str, allowed: tuple[int, ...]) -> int:
    """How many positional arguments to pass ``fn``: the largest of ``allowed`` it accepts."""
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return allowed[0]
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    varargs = any(p.kind == p.VAR_POSITIONAL for p in parameters)
    kw_required = [p.name for p in parameters if p.kind == p.KEYWORD_ONLY and p.default is p.empty]
    fits = [n for n in allowed if len(required) <= n and (n <= len(positional) or varargs)]
    if not fits or kw_required:
        forms = " or ".join(f"{name}({', '.join(['fn_args', 'schema'][:n])})" for n in allowed)
        code = getattr(fn, "__code__", None)
        at = f" at {code.co_filename}:{code.co_firstlineno}" if code else ""
        raise ComponentError(
            f"Trainer: {name} in {module_file} takes ({', '.join(p.name for p in parameters)}){at}; expected "
            f"{forms}. How to fix: change its parameters to one of those forms.")
    return max(fits)


def _check_result(result: Any, module_file: str | None = None, name: str = "trainer_fn",
                  report: Any = None) -> dict:
    where = f"{name} in {module_file}" if module_file else name
    if not isinstance(result, dict) or any(k not in result for k in REQUIRED_KEYS):
        keys = sorted(result) if isinstance(result, dict) else type(result).__name__
        raise ComponentError(
            f"Trainer got {where} result {keys}; expected a dict with keys {list(REQUIRED_KEYS)}. "
            f"How to fix: {TRAINER_FN_FIX}")
    import trainer

    for key, expected in (("train_spec", trainer.TrainSpec), ("eval_spec", trainer.EvalSpec)):
        if not isinstance(result[key], expected):
            raise ComponentError(
                f"Trainer got {where} result {key}={type(result[key]).__name__}; expected a "
                f"trainer.{expected.__name__}. How to fix: {TRAINER_FN_FIX}")
    estimator = result["estimator"]
    missing = [m for m in ("train", "evaluate", "export_saved_model", "latest_checkpoint")
               if not callable(getattr(estimator, m, None))]
    if missing:
        raise ComponentError(
            f"Trainer got {where} result estimator={type(estimator).__name__}, without {missing}; expected "
            f"a trainer.Estimator. How to fix: {TRAINER_FN_FIX}")
    for key in sorted(set(result) - set(REQUIRED_KEYS)):
        note = IGNORED_KEYS.get(key, "not a key the Trainer uses")
        if report is not None:
            report(f"note: {where} returned {key!r}, ignored: {note}")
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
    train_files, train_spans = window_train_files(
        ctx, params, examples, transform_graph_path=ctx.input("transform_graph").uri,
        schema_path=ctx.input("schema").schema_path)
    if len(train_spans) > 1:
        ctx.report(f"training on spans {train_spans}")
    fn_args = FnArgs(
        train_files=train_files,
        eval_files=(examples.file_pattern(params.eval_split),),
        transform_graph_path=ctx.input("transform_graph").uri,
        schema_path=ctx.input("schema").schema_path, train_steps=params.train_steps,
        eval_steps=params.eval_steps, serving_model_dir=os.path.join(model.uri, SERVING_DIR),
        model_run_dir=model_dir, base_model=checkpoint_path(base) if base else None,
        custom_config=dict(params.custom_config), label_key=params.label_key, hyperparameters=tuned)
    resumed_from = _checkpoint_step(model_dir)
    start, warm_start_from = _start(ctx, params, fn_args, base, resumed_from)
    if params.span_window > 1:
        start["train_spans"] = train_spans
    kind, name, user_fn = ("canned", "", None)
    if params.module_file:
        kind, name, user_fn = resolve_user_fn(params.module_file, params.trainer_fn, params.run_fn)
    if kind == "run_fn":
        _check_label_classes(ctx, params, fn_args, None)
        _run_fn(ctx, params, fn_args, name, user_fn, start)
        return
    if kind == "trainer_fn":
        result = _call_trainer_fn(ctx, params, fn_args, name, user_fn)
    else:
        result = canned_trainer_fn(params.canned, fn_args, warm_start_from=warm_start_from)
    estimator = result["estimator"]
    _check_label_classes(ctx, params, fn_args, estimator)
    ctx.report(f"training {type(estimator).__name__} to step {params.train_steps}")
    stage = "training"
    try:
        if params.module_file:
            eval_result, _ = trainer.train_and_evaluate(estimator, result["train_spec"], result["eval_spec"])
        else:
            # Train, then evaluate the final checkpoint once: train_and_evaluate would also evaluate
            # the first periodic checkpoint (a trace of the eval graph, ~10 s) that nothing records.
            train_spec, eval_spec = result["train_spec"], result["eval_spec"]
            estimator.train(train_spec.input_fn, max_steps=train_spec.max_steps)
            ctx.report("evaluating the final checkpoint")
            stage = "evaluating"
            eval_result = estimator.evaluate(eval_spec.input_fn, steps=eval_spec.steps)
        if os.path.abspath(estimator.model_dir) != os.path.abspath(model_run.uri):
            shutil.copytree(estimator.model_dir, model_run.uri, dirs_exist_ok=True)

        ctx.report("exporting the serving model")
        stage = "exporting the serving model"
        raw_spec = schema_utils.schema_as_feature_spec(load_schema(fn_args.schema_path)).feature_spec
        exported = export_serving_model(
            estimator, transform_graph_path=fn_args.transform_graph_path, raw_feature_spec=raw_spec,
            label_keys=[params.label_key], export_dir_base=fn_args.serving_model_dir,
            work_dir=os.path.join(ctx.temp_dir, "transformed_export"),
            use_model_export_outputs=bool(params.module_file), tflite=params.tflite)
    except ComponentError:
        raise
    except Exception as e:  # noqa: BLE001 - the root cause, in one line; the traceback stays in the log
        raise training_error(e, what=stage, module_file=params.module_file, label=params.label_key) from e
    if exported.from_model_fn:
        ctx.report(f"serving signatures from the model_fn's export_outputs: {exported.signatures}")
    if exported.tflite_tensorflow_ops is not None:
        tflite_path = os.path.join(exported.path, TFLITE_FILE)
        model.properties.update(tflite_model=os.path.relpath(tflite_path, model.uri),
                                tflite_tensorflow_ops=list(exported.tflite_tensorflow_ops))
        ops = (f", keeping TensorFlow ops {list(exported.tflite_tensorflow_ops)} (needs the Flex delegate)"
               if exported.tflite_tensorflow_ops else ", builtin ops only")
        ctx.report(f"TF Lite model: {tflite_path} ({os.path.getsize(tflite_path)} bytes{ops})")
    metrics = _scalar_metrics(eval_result)
    undefined = undefined_metrics(metrics, params.eval_split)
    if undefined:
        ctx.report(f"metrics {sorted(undefined)} are {next(iter(undefined.values()))}")
    metrics = {k: v for k, v in metrics.items() if k not in undefined}
    model.properties.update(
        serving_model=os.path.relpath(exported.path, model.uri),
        serving_raw_features=list(exported.raw_features), serving_signatures=exported.signatures,
        checkpoint=_copy_checkpoint(estimator, os.path.join(model.uri, CHECKPOINT_DIR)),
        label_key=params.label_key, metrics=metrics, undefined_metrics=undefined, **start)
    if params.canned is not None:
        model.properties.update(
            architecture=architecture(params.canned),
            vocabularies=save_vocabularies(params.canned, fn_args.transform_graph_path, model.uri))
    if ctx.inputs.get("hyperparameters"):
        model.properties.update(hyperparameters=tuned, hyperparameters_id=ctx.input("hyperparameters").id)
    model_run.properties.update(metrics=metrics, undefined_metrics=undefined, **start)


def _call_trainer_fn(ctx: ExecutionContext, params: Any, fn_args: FnArgs, name: str, fn: Any) -> dict:
    """Calls TFX's ``trainer_fn(fn_args)`` or ``trainer_fn(fn_args, schema)`` (the Schema proto)."""
    from components.schema_gen.executor import load_schema

    arity = positional_arity(fn, module_file=params.module_file, name=name, allowed=(1, 2))
    args: tuple[Any, ...] = (fn_args,)
    if arity == 2:
        args = (fn_args, load_schema(fn_args.schema_path))
    call = f"{name}({', '.join(['fn_args', 'schema'][:arity])})"
    result = call_user_fn(fn, args, module_file=params.module_file, name=name, call=call,
                          fix=_fix_for_user_code(TRAINER_FN_FIX))
    return _check_result(result, params.module_file, name, ctx.report)


def _fix_for_user_code(default: str) -> str:
    return (f"correct the code at the line named; {default} TensorFlow 2.21 has no tf.estimator: "
            "use trainer.* for tf.estimator.*.")


def _run_fn(ctx: ExecutionContext, params: Any, fn_args: FnArgs, name: str, fn: Any,
            start: dict[str, Any]) -> None:
    """TFX's generic Trainer: ``run_fn(fn_args)`` trains and saves to ``fn_args.serving_model_dir``."""
    model, model_run = ctx.outputs["model"], ctx.outputs["model_run"]
    positional_arity(fn, module_file=params.module_file, name=name, allowed=(1,))
    ctx.report(f"calling {name}(fn_args) of {params.module_file}")
    call_user_fn(fn, (fn_args,), module_file=params.module_file, name=name, call=f"{name}(fn_args)",
                 fix=_fix_for_user_code(RUN_FN_FIX))
    saved = find_run_fn_export(fn_args.serving_model_dir, module_file=params.module_file, name=name)
    if os.path.isdir(fn_args.model_run_dir) and (
            os.path.abspath(fn_args.model_run_dir) != os.path.abspath(model_run.uri)):
        shutil.copytree(fn_args.model_run_dir, model_run.uri, dirs_exist_ok=True)
    from trainer.export.saved_model import signature_defs

    signatures = {k: v.method_name for k, v in sorted(signature_defs(saved).items()) if not k.startswith("__")}
    model.properties.update(serving_model=os.path.relpath(saved, model.uri), serving_signatures=signatures,
                            checkpoint=None, label_key=params.label_key, metrics={}, undefined_metrics={},
                            run_fn=name, **start)
    if ctx.inputs.get("hyperparameters"):
        model.properties.update(hyperparameters=dict(fn_args.hyperparameters),
                                hyperparameters_id=ctx.input("hyperparameters").id)
    model_run.properties.update(metrics={}, undefined_metrics={}, **start)


def find_run_fn_export(serving_model_dir: str, *, module_file: str, name: str) -> str:
    """The SavedModel a run_fn saved: ``serving_model_dir`` itself, or its newest subdirectory
    holding one (an Estimator's timestamped export). It must have a ``serving_default`` signature."""
    from trainer.export.saved_model import signature_defs

    def is_saved_model(path: str) -> bool:
        return any(os.path.isfile(os.path.join(path, f)) for f in ("saved_model.pb", "saved_model.pbtxt"))

    candidates = []
    if os.path.isdir(serving_model_dir):
        if is_saved_model(serving_model_dir):
            candidates.append(serving_model_dir)
        else:
            subdirs = sorted((os.path.join(serving_model_dir, d) for d in os.listdir(serving_model_dir)
                              if not d.startswith(".")), key=os.path.getmtime)
            candidates = [d for d in subdirs if os.path.isdir(d) and is_saved_model(d)][-1:]
    if not candidates:
        found = sorted(os.listdir(serving_model_dir)) if os.path.isdir(serving_model_dir) else "nothing"
        raise ComponentError(
            f"Trainer: {name}(fn_args) in {module_file} returned without saving a SavedModel to "
            f"fn_args.serving_model_dir ({serving_model_dir} holds {found}). How to fix: end {name} with "
            "tf.saved_model.save(module, fn_args.serving_model_dir, signatures={'serving_default': ...}) "
            "(or a Keras model.export(fn_args.serving_model_dir)).")
    path = candidates[0]
    signatures = {k: v for k, v in signature_defs(path).items() if not k.startswith("__")}
    if "serving_default" not in signatures:
        raise ComponentError(
            f"Trainer: {name}(fn_args) in {module_file} saved a SavedModel at {path} without a "
            f"'serving_default' signature (it has {sorted(signatures)}). How to fix: pass "
            "signatures={'serving_default': serve.get_concrete_function(tf.TensorSpec([None], tf.string, "
            "name='examples'))} to tf.saved_model.save, serve taking serialized raw tf.Examples.")
    return path


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


def _check_label_classes(ctx: ExecutionContext, params: Any, fn_args: FnArgs, estimator: Any) -> None:
    """Before training: the label against the head (see label_check).

    A classifier's label needs 2 values in the train split; a canned classifier, or an
    estimator whose head is known (``estimator.head``), makes fewer an error, an unknown head a
    warning. A known head then gets `_check_label_against_head`.
    """
    from components.statistics_gen.executor import load_statistics

    head = head_info(estimator) if estimator is not None else None
    if head is not None:
        classifier = head.kind == "classifier"
    else:
        classifier = params.canned is not None and params.canned.estimator.endswith("Classifier")
        if params.canned is not None and not classifier:
            return  # a canned regressor: any number of label values will do
    if head is not None and head.kind != "classifier":
        _check_label_against_head(ctx, params, fn_args, head, None)
        return
    split, label = params.train_split, params.label_key
    statistics = (ctx.inputs.get("statistics") or [None])[0]
    dataset = None
    found, source = None, ""
    if statistics is not None and split in statistics.split_names:
        dataset = load_statistics(statistics.stats_path(split)).datasets[0]
        found = label_values_from_statistics(dataset, label)
        source = "from the statistics"
    if found is None:
        found = label_values_from_examples(fn_args.train_files[0], fn_args.transform_graph_path, label)
        source = "from the transformed examples"
    check_label(label=label, split=split, classifier=classifier, found=found, source=source,
                report=ctx.report)
    if head is not None:
        _check_label_against_head(ctx, params, fn_args, head, dataset)


def _check_label_against_head(ctx: ExecutionContext, params: Any, fn_args: FnArgs, head: Any,
                              dataset: Any) -> None:
    """The label's type and values against what ``head`` accepts; a problem is an error.

    Values come from the raw statistics (``dataset``) when they describe the label with the
    transformed label's type; a problem they show is confirmed on the transformed train split
    (the preprocessing_fn may have changed the values). Without them, the transformed split is
    read (at most label_check.SCAN_LIMIT examples).
    """
    import tensorflow_transform as tft

    from components.trainer.label_check import _kind_of_dtype

    label, split = params.label_key, params.train_split
    spec = tft.TFTransformOutput(fn_args.transform_graph_path).transformed_feature_spec().get(label)
    if spec is None:
        return  # the input_fn names the missing label
    kind = _kind_of_dtype(spec.dtype)
    found = label_values_from_statistics_full(dataset, label) if dataset is not None else None
    if found is not None and found.kind != kind:
        found = None  # the Transform changed the label's type: the raw statistics do not describe it
    # A type the head refuses (a string without label_vocabulary) needs no values to be an error.
    problem = head_problem(label=label, split=split, head=head, kind=kind, found=None)
    if problem is not None:
        raise ComponentError(head_problem(label=label, split=split, head=head, kind=kind, found=found) or problem)
    problem = head_problem(label=label, split=split, head=head, kind=kind, found=found)
    if found is None and head.kind == "classifier":
        found = scan_label(fn_args.train_files[0], fn_args.transform_graph_path, label, head)
        problem = head_problem(label=label, split=split, head=head, kind=kind, found=found)
    elif problem is not None and found is not None:
        found = scan_label(fn_args.train_files[0], fn_args.transform_graph_path, label, head, limit=None)
        problem = head_problem(label=label, split=split, head=head, kind=kind, found=found)
    if problem is not None:
        raise ComponentError(problem)
    warning = fewer_classes_warning(label=label, split=split, head=head, found=found)
    if warning:
        ctx.report(warning)


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
