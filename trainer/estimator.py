"""`Estimator`: train, evaluate, predict and export a `model_fn`, natively on TF2.

Each mode runs a *program* (`_Program`), built once per Estimator, mode and
input structure, under the mode's strategy (``RunConfig.train_distribute`` /
``eval_distribute``; the default strategy when none): it owns the variable
store, the global step and the compiled step (`CompiledStep`: the `model_fn`
traced inside `tf.function`, under `strategy.run` with reduce rules when a
strategy is set). A later call of the same mode reuses the program and only
restores the newest checkpoint into it (evaluation also zeroes its metric
state), so evaluating checkpoint after checkpoint does not retrace the model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import tempfile

import numpy as np
import tensorflow as tf

from trainer import _calling, _context, _distribute, checkpoints
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
        if not tf.executing_eagerly():
            raise RuntimeError(
                f"{type(self).__name__} needs TensorFlow 2's eager mode, but it is off (a "
                "tf.compat.v1.disable_eager_execution() call, or an Estimator built inside a "
                "graph). How to fix: remove that call; the Estimator builds its graphs itself "
                "with tf.function, as tf.estimator's session did.")
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
        # A dict is copied; any other object (an HParams, a namespace) is passed to the
        # model_fn as it is, as tf.estimator did.
        self._params = dict(params) if isinstance(params, dict) else ({} if params is None else params)
        if isinstance(warm_start_from, (str, os.PathLike)):
            warm_start_from = WarmStartSettings(os.fspath(warm_start_from))
        if warm_start_from is not None and not isinstance(warm_start_from, WarmStartSettings):
            raise TypeError(
                f"Estimator got warm_start_from={warm_start_from!r}; expected a checkpoint "
                "path or trainer.WarmStartSettings."
            )
        self._warm_start_settings = warm_start_from
        self._programs: dict = {}

    # -- properties -------------------------------------------------------------
    @property
    def model_dir(self) -> str:
        return self._config.model_dir

    @property
    def config(self) -> RunConfig:
        return self._config

    @property
    def params(self):
        """A copy of the params dict (or the params object given, as it is)."""
        return dict(self._params) if isinstance(self._params, dict) else self._params

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
        global_step = store.get_or_create(GLOBAL_STEP, lambda: tf.constant(0, tf.int64),
                                          aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        return store, global_step

    def _call_model_fn(self, features, labels, mode, store, global_step, tape=None):
        # Entered inside the (replica) function that calls the model_fn: each replica
        # thread of a strategy installs its own context and store call.
        context = _context.ModelFnContext(mode=mode, global_step=global_step, tape=tape)
        with _context.model_fn_context(context), store.scope():
            return _calling.call_model_fn(self._model_fn, self._model_fn_args, features,
                                          labels, mode, self._params, self._config)

    def _input(self, input_fn, mode, caller, strategy, *, features_only=False):
        data = _distribute.make_input(input_fn, mode, self._params, self._config, caller=caller,
                                      strategy=strategy, features_only=features_only)
        # An input_fn that yields features only gives the model_fn labels=None in every mode,
        # as tf.estimator did (an unsupervised model_fn may still declare ``labels``); a head
        # that needs labels says so.
        return data

    def _program(self, mode, data, strategy, build, *, extra=(), reuse=True):
        """The program for ``mode`` and this input structure: cached, or built now.

        ``reuse=False`` (nothing to restore into a used program) builds a fresh one.
        """
        key = (mode, repr(data.element_spec), id(strategy), extra)
        program = self._programs.get(key)
        if program is None or not reuse:
            if mode == ModeKeys.TRAIN and self._config.tf_random_seed is not None:
                # Again before the variables: their initial values then do not depend on
                # how many seeded ops the input pipeline made (a strategy's makes others).
                tf.random.set_seed(self._config.tf_random_seed)
            with strategy.scope() if strategy is not None else contextlib.nullcontext():
                store, global_step = self._new_state()  # a distributed global step
            program = _Program(mode=mode, strategy=strategy, store=store, global_step=global_step,
                               element_spec_for_build=data.element_spec,
                               build_iterator=(lambda: iter(data.dataset)) if strategy else None)
            build(program)
            self._programs[key] = program
        return program

    def _compiled(self, body, element_spec, strategy, *, stop_on_nonfinite=None):
        return CompiledStep(body, element_spec, jit_compile=self._config.jit_compile,
                            run_eagerly=self._config.run_eagerly, strategy=strategy,
                            multi_worker=_distribute.is_multi_worker(strategy),
                            stop_on_nonfinite=stop_on_nonfinite)

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
        strategy = _distribute.strategy_for(self._config, ModeKeys.TRAIN)
        multi_worker = _distribute.is_multi_worker(strategy)
        if (self._config.num_worker_replicas > 1 or self._config.num_ps_replicas) and not multi_worker:
            # Each worker would train a model of its own and they would overwrite each
            # other's checkpoints.
            raise NotImplementedError(
                f"Estimator.train on a TF_CONFIG cluster ({self._config.num_worker_replicas} "
                f"workers, {self._config.num_ps_replicas} ps) without "
                "train_distribute=tf.distribute.MultiWorkerMirroredStrategy() is not implemented "
                "(parameter servers are not either). See docs/distributed.md.")
        if self._config.tf_random_seed is not None:
            # Before the input_fn, as tf.estimator did: its shuffles are seeded too.
            tf.random.set_seed(self._config.tf_random_seed)
        data = self._input(input_fn, ModeKeys.TRAIN, "Estimator.train", strategy)
        # A used program is reused when a checkpoint restores all of its state.
        program = self._program(ModeKeys.TRAIN, data, strategy, self._build_train,
                                reuse=latest is not None)
        store, global_step, step = program.store, program.global_step, program.step
        checkpoint_step = self._restore_or_warm_start(program, latest)
        writers, writer_factory = program.writers, program.writer_factory
        chief = self._config.is_chief
        summary_every = self._config.save_summary_steps
        # Only the chief writes into model_dir (checkpoints, summaries); another worker's
        # hooks get no summary writer.
        session = TrainingSession(model_dir=self.model_dir, store=store, global_step=global_step,
                                  keep_checkpoint_max=self._config.keep_checkpoint_max,
                                  checkpoint_step=checkpoint_step,
                                  writer_factory=writer_factory if chief else None)
        all_hooks = self._training_hooks(hooks, program.spec, steps, max_steps, saving_listeners)
        if summary_every and not program.in_graph_summaries and chief:
            all_hooks.append(SummarySaverHook(save_steps=summary_every,
                                              summary_writer=writer_factory(self.model_dir)))
        iterator = iter(data.dataset)
        log.info("Training from global step %d in %s.", session.global_step, self.model_dir)
        try:
            outputs, total = run_hooked_loop(
                session=session, hooks=all_hooks,
                run=lambda n, names: step.run(iterator, n, names),
                # Workers must agree on every run's length: auto sizing is per process.
                steps_per_run=(self._config.steps_per_loop if self._config.steps_per_loop is not None
                               else 1 if multi_worker else None),
                agree_to_stop=_distribute.stop_agreement(strategy) if multi_worker else None)
        finally:
            for writer in writers.values():
                writer.flush()
        if total == 0 and steps is None and max_steps is None:
            log.warning("Estimator.train: the input_fn produced no data; nothing was trained.")
        if outputs is not None:
            log.info("Loss for final step: %s.", float(outputs["loss"]))
        return self

    def _build_train(self, program):
        store, global_step = program.store, program.global_step
        writers, writer_factory = self._summary_writers()
        program.writers, program.writer_factory = writers, writer_factory
        summary_every = self._config.save_summary_steps
        spec_holder = {}

        # XLA cannot compile summary ops, and each replica of a strategy would write its
        # own: then the loss summary is written by a SummarySaverHook (from the reduced
        # loss) instead, and the model_fn's own summaries are skipped.
        in_graph_summaries = (bool(summary_every) and not self._config.jit_compile
                              and program.strategy is None)
        program.in_graph_summaries = in_graph_summaries
        train_writer = writer_factory(self.model_dir) if in_graph_summaries else None

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
            spec_holder.setdefault("spec", spec)
            deps = _train_op_dependency(spec.train_op)
            with tf.control_dependencies(deps):
                after = global_step.read_value()
            # The step advances exactly once, whether or not the train_op incremented it.
            with tf.control_dependencies([global_step.assign(tf.maximum(after, before + 1))]):
                outputs = {"loss": tf.identity(spec.loss), GLOBAL_STEP: global_step.read_value()}
            outputs.update(resolve_fetches(fetch_names, spec, outputs))
            return outputs

        # A run of several steps ends at a NaN/inf loss, so the NanTensorHook sees its step.
        program.step = self._compiled(body, program.element_spec_for_build, program.strategy,
                                      stop_on_nonfinite="loss")
        program.step.build(BASE_FETCHES, program.iterator_for_build())
        program.spec = spec_holder["spec"]

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

    def _restore_or_warm_start(self, program, latest):
        if latest is not None:
            program.restore(latest)
            return checkpoints.checkpoint_step(latest)
        if self._warm_start_settings is not None:
            warm_start(program.store, self._warm_start_settings)
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
        strategy = _distribute.strategy_for(self._config, ModeKeys.EVAL)
        data = self._input(input_fn, ModeKeys.EVAL, "Estimator.evaluate", strategy)
        program = self._program(ModeKeys.EVAL, data, strategy, self._build_eval)
        program.reset_local_variables()
        program.restore(prefix)
        spec, step = program.spec, program.step
        session = TrainingSession(model_dir=self.model_dir, store=program.store,
                                  global_step=program.global_step,
                                  checkpoint_step=checkpoints.checkpoint_step(prefix))
        eval_hooks = list(hooks) + list(spec.evaluation_hooks)
        iterator = iter(data.dataset)
        counter = _BatchCounter(steps)
        outputs, total = run_hooked_loop(
            session=session, hooks=eval_hooks,
            run=lambda n, names: counter.run(step, iterator, n, names),
            steps_per_run=(None if eval_hooks else 100) if self._config.steps_per_loop is None
            else max(self._config.steps_per_loop, 1 if eval_hooks else 100))
        if total == 0:
            raise ValueError(
                "Estimator.evaluate: the input_fn produced no batches. Check its data source "
                "(an empty file, or a filter that drops everything)."
            )
        if program.finalize is not None:
            # Across replicas: the metric state is ON_READ/SUM, read here in cross-replica
            # context, so every value covers the whole evaluation.
            outputs = {**outputs, **program.finalize()}
        results = {key: np.asarray(value) for key, value in outputs.items()
                   if key in spec.eval_metric_ops or key in BASE_FETCHES}
        # As tf.estimator's session returned them: numpy scalars (np.float32 ...) for scalar
        # metrics, arrays for the rest; the global step as an int.
        results = {k: (v.item() if k == GLOBAL_STEP else v[()]) if v.ndim == 0 else v
                   for k, v in results.items()}
        self._write_eval_summaries(results, name)
        log.info("Saving dict for global step %s: %s", results[GLOBAL_STEP],
                 ", ".join(f"{k} = {v}" for k, v in sorted(results.items())))
        return results

    def _build_eval(self, program):
        store, global_step, strategy = program.store, program.global_step, program.strategy
        spec_holder = {}

        def body(features, labels, fetch_names):
            spec = self._call_model_fn(features, labels, ModeKeys.EVAL, store, global_step)
            spec_holder.setdefault("spec", spec)
            _mark_metric_objects_local(store, spec.eval_metric_ops)
            total = store.get_or_create("eval/loss_sum", lambda: tf.zeros([], tf.float64), local=True)
            count = store.get_or_create("eval/loss_count", lambda: tf.zeros([], tf.float64), local=True)
            update = tf.group(total.assign_add(tf.cast(spec.loss, tf.float64)), count.assign_add(1.0))
            with tf.control_dependencies([update]):
                outputs = {"loss": tf.cast(total.read_value() / count.read_value(), tf.float32),
                           GLOBAL_STEP: global_step.read_value()}
                for key, metric in spec.eval_metric_ops.items():
                    if strategy is not None and not isinstance(metric, tuple):
                        continue  # read once, across replicas, by program.finalize
                    outputs[key] = metric[1] if isinstance(metric, tuple) else metric.result()
            outputs.update(resolve_fetches(fetch_names, spec, outputs))
            return outputs

        program.step = self._compiled(body, program.element_spec_for_build, strategy)
        program.step.build(BASE_FETCHES, program.iterator_for_build())
        program.spec = spec = spec_holder["spec"]
        program.record_local_initial_values()
        if strategy is not None:
            program.finalize = _finalize_function(strategy, store, spec.eval_metric_ops)

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
        strategy = _distribute.strategy_for(self._config, ModeKeys.PREDICT)
        data = self._input(input_fn, ModeKeys.PREDICT, "Estimator.predict", strategy,
                           features_only=True)
        keys = tuple(predict_keys) if predict_keys is not None else None
        program = self._program(ModeKeys.PREDICT, data, strategy,
                                lambda p: self._build_predict(p, predict_keys), extra=keys)
        program.restore(prefix)
        yield from predict_loop(self, program.step, data.dataset, program.store, program.global_step,
                                prefix, list(hooks) + list(program.spec.prediction_hooks),
                                yield_single_examples)

    def _build_predict(self, program, predict_keys):
        store, global_step = program.store, program.global_step
        spec_holder = {}

        def body(features, labels, fetch_names):
            del labels
            spec = self._call_model_fn(features, None, ModeKeys.PREDICT, store, global_step)
            spec_holder.setdefault("spec", spec)
            predictions = select_predictions(spec.predictions, predict_keys)
            outputs = {"predictions": predictions}
            outputs.update(resolve_fetches(fetch_names, spec, {}))
            return outputs

        program.step = self._compiled(body, program.element_spec_for_build, program.strategy)
        program.step.build((), program.iterator_for_build())
        program.spec = spec_holder["spec"]

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


@dataclasses.dataclass(eq=False)
class _Program:
    """One mode of one Estimator, built once under its strategy (None: the default one)."""

    mode: str
    strategy: tf.distribute.Strategy | None
    store: VariableStore
    global_step: tf.Variable
    element_spec_for_build: object = None
    build_iterator: object = None  # Under a strategy: makes an iterator to trace the step with.
    step: CompiledStep | None = None
    spec: object = None
    finalize: object = None
    writers: dict = dataclasses.field(default_factory=dict)
    writer_factory: object = None
    in_graph_summaries: bool = False
    local_initial: dict = dataclasses.field(default_factory=dict)

    def iterator_for_build(self):
        return None if self.build_iterator is None else self.build_iterator()

    def restore(self, prefix: str) -> None:
        """Loads every checkpointed variable from ``prefix`` (all replicas' copies)."""
        checkpoints.restore(self.store.global_variables, prefix)

    def record_local_initial_values(self) -> None:
        for key in self.store.local_names:
            var = self.store.variables[key]
            self.local_initial[key] = _local_copies(self.strategy, var)[0].numpy()

    def reset_local_variables(self) -> None:
        """Puts the metric state back to its initial value, on every replica."""
        for key, value in self.local_initial.items():
            for copy in _local_copies(self.strategy, self.store.variables[key]):
                copy.assign(value)


def _local_copies(strategy, var):
    if strategy is None:
        return (var,)
    return strategy.experimental_local_results(var)


def _finalize_function(strategy, store, metric_ops):
    """Reads the loss and the metrics once, in cross-replica context, after the loop."""
    tuples = sorted(key for key, metric in metric_ops.items() if isinstance(metric, tuple))
    if tuples and strategy.num_replicas_in_sync > 1:
        raise ValueError(
            f"eval_metric_ops {tuples} are (value, update_op) tuples; under "
            f"{type(strategy).__name__} with {strategy.num_replicas_in_sync} replicas their value "
            "tensor sees one replica's share only. How to fix: use metric objects "
            "(trainer.metrics.AUC(), keras.metrics.AUC(), ...), whose state is summed across replicas.")
    total = store.variables["eval/loss_sum"]
    count = store.variables["eval/loss_count"]

    @tf.function(autograph=False)
    def finalize():
        values = {"loss": tf.cast(total.read_value() / count.read_value(), tf.float32)}
        for key, metric in metric_ops.items():
            if not isinstance(metric, tuple):  # a tuple's value comes from the last step
                values[key] = metric.result()
        return values

    def run():
        with strategy.scope():
            return finalize()

    return run


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


@tf.autograph.experimental.do_not_convert
def _train_op_dependency(train_op) -> list:
    """What "after the train_op" depends on: the op, or the update behind a variable result.

    ``var.assign_add(1)`` returns a variable-like value (under a strategy a per-replica
    one), not a Tensor; its ``op`` is the update.
    """
    if train_op is None:
        return []
    if isinstance(train_op, (tf.Tensor, tf.Operation)):
        return [train_op]
    op = getattr(train_op, "op", None)
    return [op] if isinstance(op, tf.Operation) else []


def _check_hooks(hooks, caller):
    from trainer.hooks.session_run_hook import as_hook

    checked = []
    for hook in list(hooks or []):
        adapted = as_hook(hook)
        if adapted is None:
            raise TypeError(
                f"{caller} got hook {hook!r}; hooks must subclass trainer.SessionRunHook "
                "(or tf.estimator's tf.compat.v1.train.SessionRunHook)."
            )
        checked.append(adapted)
    return checked
