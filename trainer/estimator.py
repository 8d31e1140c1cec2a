"""`Estimator`: train, evaluate, predict and export a `model_fn`, natively on TF2.

Each call builds the model afresh, as tf.estimator did with graphs: the
`model_fn` is traced inside `tf.function` under a `VariableStore`, the
variables are restored from the newest checkpoint in `model_dir` (or warm
started), and a `CompiledStep` runs the data through it while hooks watch.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile

import numpy as np
import tensorflow as tf

from trainer import _calling, _context, checkpoints
from trainer._predict import predict_loop, select_predictions
from trainer._session import BASE_FETCHES, TrainingSession, resolve_fetches, run_hooked_loop
from trainer._step import CompiledStep
from trainer.hooks.basic_hooks import (CheckpointSaverHook, LoggingTensorHook, NanTensorHook,
                                       StepCounterHook, StopAtStepHook, SummarySaverHook)
from trainer.mode_keys import ModeKeys
from trainer.run_config import RunConfig
from trainer.variables import VariableStore
from trainer.warm_starting import WarmStartSettings, warm_start

__all__ = ["Estimator"]

log = logging.getLogger("trainer")

GLOBAL_STEP = "global_step"


class Estimator:
    """Trains and evaluates a model described by a `model_fn`.

    Args:
        model_fn: ``model_fn(features, labels, mode, params, config)`` returning
            an `EstimatorSpec`; it may take any subset of those arguments
            (``features`` is required).
        model_dir: where checkpoints and summaries go; a temporary directory
            if neither this nor ``config.model_dir`` is set.
        config: a `RunConfig`.
        params: a dict passed to ``model_fn`` as ``params``.
        warm_start_from: a checkpoint path or directory, or `WarmStartSettings`.

    Example:
        >>> def model_fn(features, labels, mode):
        ...     w = tf.Variable(lambda: tf.zeros([1]), name="w")
        ...     pred = features["x"] * w
        ...     if mode == ModeKeys.PREDICT:
        ...         return EstimatorSpec(mode, predictions={"y": pred})
        ...     loss = tf.reduce_mean(tf.square(pred - labels))
        ...     train_op = optimizers.SGD(0.1).minimize(loss, get_global_step())
        ...     return EstimatorSpec(mode, loss=loss, train_op=train_op)
        >>> est = Estimator(model_fn)
        >>> input_fn = lambda: tf.data.Dataset.from_tensors(({"x": [1.0, 2.0]}, [2.0, 4.0]))
        >>> _ = est.train(lambda: input_fn().repeat(), steps=50)
        >>> round(float(est.get_variable_value("w")[0]), 2)
        2.0
    """

    def __init__(self, model_fn, model_dir=None, config=None, params=None, warm_start_from=None):
        self._model_fn_args = _calling.check_model_fn(model_fn)
        self._model_fn = model_fn
        if config is None:
            config = RunConfig()
        elif not isinstance(config, RunConfig):
            raise TypeError(f"Estimator got config={config!r}; expected a trainer.RunConfig.")
        model_dir = os.fspath(model_dir) if model_dir is not None else None
        if model_dir and config.model_dir and model_dir != config.model_dir:
            raise ValueError(
                f"Estimator got model_dir={model_dir!r} and config.model_dir="
                f"{config.model_dir!r}; they differ. Give one, or make them equal."
            )
        model_dir = model_dir or config.model_dir
        if model_dir is None:
            model_dir = tempfile.mkdtemp(prefix="estimator-")
            log.warning("Using temporary folder as model directory: %s", model_dir)
        self._config = config.replace(model_dir=model_dir)
        if params is not None and not isinstance(params, dict):
            raise TypeError(f"Estimator got params={params!r}; expected a dict or None.")
        self._params = dict(params or {})
        if isinstance(warm_start_from, (str, os.PathLike)):
            warm_start_from = WarmStartSettings(os.fspath(warm_start_from))
        if warm_start_from is not None and not isinstance(warm_start_from, WarmStartSettings):
            raise TypeError(
                f"Estimator got warm_start_from={warm_start_from!r}; expected a checkpoint "
                "path or trainer.WarmStartSettings."
            )
        self._warm_start_settings = warm_start_from

    # -- properties -------------------------------------------------------------
    @property
    def model_dir(self) -> str:
        return self._config.model_dir

    @property
    def config(self) -> RunConfig:
        return self._config

    @property
    def params(self) -> dict:
        return dict(self._params)

    @property
    def model_fn(self):
        return self._model_fn

    # -- checkpoints --------------------------------------------------------------
    def latest_checkpoint(self) -> str | None:
        """Prefix of the newest checkpoint in `model_dir`, or None."""
        return checkpoints.latest_checkpoint(self.model_dir)

    def get_variable_names(self) -> list[str]:
        """Names of the variables in the newest checkpoint."""
        return sorted(checkpoints.list_variables(self._require_checkpoint("get_variable_names")))

    def get_variable_value(self, name: str) -> np.ndarray:
        """Value of the variable ``name`` in the newest checkpoint."""
        prefix = self._require_checkpoint("get_variable_value")
        available = checkpoints.list_variables(prefix)
        if name not in available:
            raise ValueError(
                f"Estimator.get_variable_value got name={name!r}, which is not in checkpoint "
                f"{prefix}. Known names: {sorted(available)[:30]}."
            )
        return tf.train.load_variable(prefix, name)

    def _require_checkpoint(self, caller, checkpoint_path=None) -> str:
        prefix = checkpoint_path or self.latest_checkpoint()
        if prefix is None:
            raise ValueError(
                f"Estimator.{caller}: could not find a trained model in model_dir "
                f"{self.model_dir!r}. Train it first, or pass checkpoint_path."
            )
        if not tf.io.gfile.exists(prefix + ".index"):
            raise ValueError(f"Estimator.{caller}: checkpoint_path={prefix!r} does not exist.")
        return prefix

    # -- building -------------------------------------------------------------------
    def _new_state(self):
        store = VariableStore()
        global_step = store.get_or_create(GLOBAL_STEP, lambda: tf.constant(0, tf.int64))
        return store, global_step

    def _call_model_fn(self, features, labels, mode, store, global_step, tape=None):
        context = _context.ModelFnContext(mode=mode, global_step=global_step, tape=tape)
        with _context.model_fn_context(context), store.scope():
            return _calling.call_model_fn(self._model_fn, self._model_fn_args, features,
                                          labels, mode, self._params, self._config)

    def _dataset(self, input_fn, mode, caller):
        dataset = _calling.call_input_fn(input_fn, mode, self._params, self._config, caller=caller)
        _, labels = _calling.split_element(dataset.element_spec)
        if mode == ModeKeys.TRAIN and labels is None and "labels" in self._model_fn_args:
            raise ValueError(
                f"{caller}: the input_fn returned features only, but TRAIN mode needs labels "
                "for this model_fn. Make the input_fn's dataset yield (features, labels)."
            )
        return dataset

    def _compiled(self, body, dataset):
        return CompiledStep(body, dataset.element_spec, jit_compile=self._config.jit_compile,
                            run_eagerly=self._config.run_eagerly)

    def _summary_writers(self):
        writers = {}

        def factory(output_dir=None):
            path = output_dir or self.model_dir
            if path not in writers:
                writers[path] = tf.summary.create_file_writer(path)
            return writers[path]

        return writers, factory

    # -- train ----------------------------------------------------------------------
    def train(self, input_fn, hooks=None, steps=None, max_steps=None, saving_listeners=None):
        """Trains the model from the newest checkpoint on; returns self.

        Args:
            input_fn: returns a `tf.data.Dataset` of ``(features, labels)``.
            hooks: extra `SessionRunHook`s.
            steps: train this many more steps (counted from the current global step).
            max_steps: train until the global step reaches this (absolute).
            saving_listeners: `CheckpointSaverListener`s called around each save.
        """
        if steps is not None and max_steps is not None:
            raise ValueError(
                f"Estimator.train got steps={steps!r} and max_steps={max_steps!r}; give at most one."
            )
        for name, value in (("steps", steps), ("max_steps", max_steps)):
            if value is not None and (not isinstance(value, (int, np.integer)) or value <= 0):
                raise ValueError(f"Estimator.train got {name}={value!r}; expected an int > 0.")
        latest = self.latest_checkpoint()
        if max_steps is not None and latest is not None:
            done = checkpoints.checkpoint_step(latest)
            if done is not None and done >= max_steps:
                log.info("Skipping training: max_steps=%d already reached (step %d).", max_steps, done)
                return self
        hooks = _check_hooks(hooks, "Estimator.train")
        dataset = self._dataset(input_fn, ModeKeys.TRAIN, "Estimator.train")
        if self._config.tf_random_seed is not None:
            tf.random.set_seed(self._config.tf_random_seed)
        store, global_step = self._new_state()
        writers, writer_factory = self._summary_writers()
        train_writer = writer_factory(self.model_dir)
        summary_every = self._config.save_summary_steps
        spec_holder = {}

        # XLA cannot compile summary ops: under jit_compile the loss summary is written
        # by a SummarySaverHook instead, and the model_fn's own summaries are skipped.
        in_graph_summaries = bool(summary_every) and not self._config.jit_compile

        def summaries(before):
            if not in_graph_summaries:
                return contextlib.nullcontext()
            stack = contextlib.ExitStack()
            # Like tf.estimator, a step's summaries carry the step number after it (1, 101...).
            stack.enter_context(train_writer.as_default(step=before + 1))
            stack.enter_context(tf.summary.record_if(lambda: tf.equal(before % summary_every, 0)))
            return stack

        def body(features, labels, fetch_names):
            before = global_step.read_value()
            with tf.GradientTape() as tape:
                with summaries(before):
                    spec = self._call_model_fn(features, labels, ModeKeys.TRAIN, store,
                                               global_step, tape)
                    tf.summary.scalar("loss", spec.loss)
            spec_holder["spec"] = spec
            deps = [spec.train_op] if isinstance(spec.train_op, (tf.Tensor, tf.Operation)) else []
            with tf.control_dependencies(deps):
                after = global_step.read_value()
            # The step advances exactly once, whether or not the train_op incremented it.
            with tf.control_dependencies([global_step.assign(tf.maximum(after, before + 1))]):
                outputs = {"loss": tf.identity(spec.loss), GLOBAL_STEP: global_step.read_value()}
            outputs.update(resolve_fetches(fetch_names, spec, outputs))
            return outputs

        step = self._compiled(body, dataset)
        step.build(BASE_FETCHES)
        spec = spec_holder["spec"]
        checkpoint_step = self._restore_or_warm_start(store, latest)
        session = TrainingSession(model_dir=self.model_dir, store=store, global_step=global_step,
                                  keep_checkpoint_max=self._config.keep_checkpoint_max,
                                  checkpoint_step=checkpoint_step, writer_factory=writer_factory)
        all_hooks = self._training_hooks(hooks, spec, steps, max_steps, saving_listeners)
        if summary_every and not in_graph_summaries:
            all_hooks.append(SummarySaverHook(save_steps=summary_every, summary_writer=train_writer))
        iterator = iter(dataset)
        log.info("Training from global step %d in %s.", session.global_step, self.model_dir)
        try:
            outputs, total = run_hooked_loop(
                session=session, hooks=all_hooks,
                run=lambda n, names: step.run(iterator, n, names),
                steps_per_run=self._config.steps_per_loop)
        finally:
            for writer in writers.values():
                writer.flush()
        if total == 0 and steps is None and max_steps is None:
            log.warning("Estimator.train: the input_fn produced no data; nothing was trained.")
        if outputs is not None:
            log.info("Loss for final step: %s.", float(outputs["loss"]))
        return self

    def _training_hooks(self, hooks, spec, steps, max_steps, saving_listeners):
        config = self._config
        result = []
        if steps is not None or max_steps is not None:
            result.append(StopAtStepHook(num_steps=steps, last_step=max_steps))
        result.append(NanTensorHook("loss"))
        if config.log_step_count_steps:
            result.append(LoggingTensorHook({"loss": "loss", "step": GLOBAL_STEP},
                                            every_n_iter=config.log_step_count_steps))
        result += list(hooks) + list(spec.training_hooks)
        if config.is_chief:
            result += list(spec.training_chief_hooks)
            if config.log_step_count_steps:
                result.append(StepCounterHook(every_n_steps=config.log_step_count_steps,
                                              output_dir=self.model_dir))
            save_steps, save_secs = config.checkpoint_every
            result.append(CheckpointSaverHook(self.model_dir, save_secs=save_secs,
                                              save_steps=save_steps,
                                              listeners=list(saving_listeners or [])))
        return result

    def _restore_or_warm_start(self, store, latest):
        if latest is not None:
            checkpoints.restore(store.global_variables, latest)
            return checkpoints.checkpoint_step(latest)
        if self._warm_start_settings is not None:
            warm_start(store, self._warm_start_settings)
        return None

    # -- evaluate ---------------------------------------------------------------------
    def evaluate(self, input_fn, steps=None, hooks=None, checkpoint_path=None, name=None):
        """Evaluates the model on ``input_fn``'s data; returns a dict of metrics.

        The dict holds every ``eval_metric_ops`` entry aggregated over all
        batches, ``loss`` (the mean of the batch losses) and ``global_step``.
        Summaries go to ``model_dir/eval`` (``eval_<name>`` when named).
        """
        if steps is not None and (not isinstance(steps, (int, np.integer)) or steps <= 0):
            raise ValueError(f"Estimator.evaluate got steps={steps!r}; expected an int > 0 or None.")
        hooks = _check_hooks(hooks, "Estimator.evaluate")
        prefix = self._require_checkpoint("evaluate", checkpoint_path)
        dataset = self._dataset(input_fn, ModeKeys.EVAL, "Estimator.evaluate")
        store, global_step = self._new_state()
        spec_holder = {}

        def body(features, labels, fetch_names):
            spec = self._call_model_fn(features, labels, ModeKeys.EVAL, store, global_step)
            spec_holder["spec"] = spec
            _mark_metric_objects_local(store, spec.eval_metric_ops)
            total = store.get_or_create("eval/loss_sum", lambda: tf.zeros([], tf.float64), local=True)
            count = store.get_or_create("eval/loss_count", lambda: tf.zeros([], tf.float64), local=True)
            update = tf.group(total.assign_add(tf.cast(spec.loss, tf.float64)), count.assign_add(1.0))
            with tf.control_dependencies([update]):
                outputs = {"loss": tf.cast(total.read_value() / count.read_value(), tf.float32),
                           GLOBAL_STEP: global_step.read_value()}
                for key, metric in spec.eval_metric_ops.items():
                    outputs[key] = metric[1] if isinstance(metric, tuple) else metric.result()
            outputs.update(resolve_fetches(fetch_names, spec, outputs))
            return outputs

        step = self._compiled(body, dataset)
        step.build(BASE_FETCHES)
        spec = spec_holder["spec"]
        checkpoints.restore(store.global_variables, prefix)
        session = TrainingSession(model_dir=self.model_dir, store=store, global_step=global_step,
                                  checkpoint_step=checkpoints.checkpoint_step(prefix))
        eval_hooks = list(hooks) + list(spec.evaluation_hooks)
        iterator = iter(dataset)
        counter = _BatchCounter(steps)
        outputs, total = run_hooked_loop(
            session=session, hooks=eval_hooks,
            run=lambda n, names: counter.run(step, iterator, n, names),
            steps_per_run=max(self._config.steps_per_loop, 1 if eval_hooks else 100))
        if total == 0:
            raise ValueError(
                "Estimator.evaluate: the input_fn produced no batches. Check its data source "
                "(an empty file, or a filter that drops everything)."
            )
        results = {key: np.asarray(value) for key, value in outputs.items()
                   if key in spec.eval_metric_ops or key in BASE_FETCHES}
        results = {k: (v.item() if v.ndim == 0 and k == GLOBAL_STEP else v) for k, v in results.items()}
        self._write_eval_summaries(results, name)
        log.info("Saving dict for global step %s: %s", results[GLOBAL_STEP],
                 ", ".join(f"{k} = {v}" for k, v in sorted(results.items())))
        return results

    def eval_dir(self, name=None) -> str:
        """The directory evaluation summaries go to: ``model_dir/eval[_name]``."""
        return os.path.join(self.model_dir, f"eval_{name}" if name else "eval")

    def _write_eval_summaries(self, results, name):
        writer = tf.summary.create_file_writer(self.eval_dir(name))
        step = int(results[GLOBAL_STEP])
        with writer.as_default():
            for key, value in results.items():
                if key != GLOBAL_STEP and np.ndim(value) == 0:
                    tf.summary.scalar(key, float(value), step=step)
        writer.flush()
        writer.close()

    # -- predict -------------------------------------------------------------------------
    def predict(self, input_fn, predict_keys=None, hooks=None, checkpoint_path=None,
                yield_single_examples=True):
        """Yields predictions for ``input_fn``'s features (labels are ignored).

        Args:
            predict_keys: a key or list of keys of the predictions dict to keep.
            yield_single_examples: yield one prediction per example (True) or
                per batch (False).
        """
        hooks = _check_hooks(hooks, "Estimator.predict")
        prefix = self._require_checkpoint("predict", checkpoint_path)
        if isinstance(predict_keys, str):
            predict_keys = [predict_keys]
        dataset = _calling.call_input_fn(input_fn, ModeKeys.PREDICT, self._params, self._config,
                                         caller="Estimator.predict")
        features_spec, labels_spec = _calling.split_element(dataset.element_spec)
        if labels_spec is not None:
            dataset = dataset.map(lambda *element: element[0])
        store, global_step = self._new_state()
        spec_holder = {}

        def body(features, labels, fetch_names):
            del labels
            spec = self._call_model_fn(features, None, ModeKeys.PREDICT, store, global_step)
            spec_holder["spec"] = spec
            predictions = select_predictions(spec.predictions, predict_keys)
            outputs = {"predictions": predictions}
            outputs.update(resolve_fetches(fetch_names, spec, {}))
            return outputs

        step = self._compiled(body, dataset)
        step.build(())
        spec = spec_holder["spec"]
        checkpoints.restore(store.global_variables, prefix)
        yield from predict_loop(self, step, dataset, store, global_step, prefix,
                                 list(hooks) + list(spec.prediction_hooks), yield_single_examples)

    # -- export ----------------------------------------------------------------------------
    def export_saved_model(self, export_dir_base, serving_input_receiver_fn, assets_extra=None,
                           as_text=False, checkpoint_path=None, experimental_mode=ModeKeys.PREDICT):
        """Exports the model as a SavedModel under ``<export_dir_base>/<timestamp>``.

        The signatures are the PREDICT-mode spec's ``export_outputs``; see
        `trainer.export.write_saved_model`. Returns the export directory (bytes,
        as tf.estimator did).
        """
        from trainer.export.saved_model import write_saved_model

        prefix = self._require_checkpoint("export_saved_model", checkpoint_path)
        if experimental_mode != ModeKeys.PREDICT:
            raise ValueError(
                f"Estimator.export_saved_model got experimental_mode={experimental_mode!r}; only "
                "PREDICT-mode exports are supported."
            )
        store, global_step = self._new_state()

        def model_call(features):
            return self._call_model_fn(features, None, ModeKeys.PREDICT, store, global_step)

        def restore():
            checkpoints.restore(store.global_variables, prefix)

        path = write_saved_model(export_dir_base, serving_input_receiver_fn, model_call, store,
                                 restore, assets_extra=assets_extra, as_text=as_text)
        return path.encode()

    export_savedmodel = export_saved_model  # the TF 1.x name


class _BatchCounter:
    """Stops evaluation after ``limit`` batches (None: until the data ends)."""

    def __init__(self, limit):
        self.limit = limit
        self.done = 0

    def run(self, step, iterator, n, names):
        if self.limit is not None:
            n = min(n, self.limit - self.done)
            if n <= 0:
                return None, 0, True
        outputs, steps, exhausted = step.run(iterator, n, names)
        self.done += steps
        return outputs, steps, exhausted


def _mark_metric_objects_local(store, metric_ops):
    """Variables of metric objects are per-evaluation state, not checkpointed."""
    for metric in metric_ops.values():
        if isinstance(metric, tuple):
            continue
        for variable in getattr(metric, "variables", []):
            underlying = variable if isinstance(variable, tf.Variable) else getattr(variable, "value", None)
            key = store.key_of(underlying) if underlying is not None else None
            if key is not None:
                store.local_names.add(key)


def _check_hooks(hooks, caller):
    from trainer.hooks.session_run_hook import SessionRunHook

    hooks = list(hooks or [])
    for hook in hooks:
        if not isinstance(hook, SessionRunHook):
            raise TypeError(
                f"{caller} got hook {hook!r}; hooks must subclass trainer.SessionRunHook."
            )
    return hooks
