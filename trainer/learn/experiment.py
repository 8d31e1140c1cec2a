"""TF.Learn's `Experiment`: an estimator with its train and eval inputs, and schedules.

``train()``, ``evaluate()``, ``train_and_evaluate()``, ``continuous_eval()``,
``continuous_eval_on_train_data()`` and ``test()`` run on the trainer core
(`trainer.Estimator.train`/``evaluate``/``export_saved_model``; on a
``TF_CONFIG`` cluster `trainer.train_and_evaluate`). Export strategies
(`make_export_strategy`) write SavedModels after evaluations to
``model_dir/export/<strategy name>/<timestamp>``.
"""

from __future__ import annotations

import inspect
import logging
import os
import time

import tensorflow as tf

from trainer import checkpoints
from trainer import estimator as core
from trainer.exporter import Exporter, LatestExporter
from trainer.hooks.basic_hooks import CheckpointSaverListener
from trainer.learn.estimator import Estimator as LearnEstimator
from trainer.learn.estimator import _check_hooks, _check_metrics
from trainer.run_config import TaskType
from trainer.training import EvalSpec, TrainSpec, train_and_evaluate

__all__ = ["Experiment", "ExportStrategy", "make_export_strategy"]

log = logging.getLogger("trainer")


class ExportStrategy(Exporter):
    """TF.Learn's ExportStrategy: a name and ``export_fn(estimator, export_dir_base,
    checkpoint_path, eval_result)`` (the last two optional) returning the export path.

    It is also a `trainer.Exporter`, so it can be given to `trainer.EvalSpec`.
    """

    def __init__(self, name, export_fn, strip_default_attrs=None):
        super().__init__(name)
        if not callable(export_fn):
            raise TypeError(f"ExportStrategy got export_fn={export_fn!r}; expected a callable.")
        if strip_default_attrs is not None:
            raise NotImplementedError("ExportStrategy(strip_default_attrs=...) is not supported; "
                                      "leave it None.")
        self.export_fn = export_fn
        self.strip_default_attrs = None
        params = inspect.signature(export_fn).parameters
        self._n_args = sum(1 for p in params.values()
                           if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
        if any(p.kind == p.VAR_POSITIONAL for p in params.values()):
            self._n_args = 4

    def export(self, estimator, export_path, checkpoint_path=None, eval_result=None,
               is_the_final_export=False):
        del is_the_final_export
        args = (estimator, export_path, checkpoint_path, eval_result)[:max(self._n_args, 2)]
        return self.export_fn(*args)


def make_export_strategy(serving_input_fn, default_output_alternative_key=None,
                         assets_extra=None, as_text=False, exports_to_keep=5,
                         strip_default_attrs=None):
    """An `ExportStrategy` named ``'Servo'`` exporting with ``export_saved_model``.

    ``serving_input_fn`` is a serving input receiver fn, e.g.
    ``trainer.export.build_parsing_serving_input_receiver_fn(feature_spec)``;
    the newest ``exports_to_keep`` exports are kept (None: all).
    """
    if default_output_alternative_key is not None:
        raise NotImplementedError(
            "make_export_strategy(default_output_alternative_key=...) is not supported: "
            "signatures come from the model_fn's export_outputs ('serving_default').")
    if strip_default_attrs is not None:
        raise NotImplementedError("make_export_strategy(strip_default_attrs=...) is not "
                                  "supported; leave it None.")
    exporter = LatestExporter("Servo", serving_input_fn, assets_extra=assets_extra,
                              as_text=as_text, exports_to_keep=exports_to_keep)

    def export_fn(estimator, export_dir_base, checkpoint_path=None, eval_result=None):
        return exporter.export(estimator, export_dir_base, checkpoint_path, eval_result, False)

    return ExportStrategy("Servo", export_fn)


def _check_strategies(export_strategies):
    if export_strategies is None:
        return []
    if isinstance(export_strategies, ExportStrategy):
        return [export_strategies]
    strategies = list(export_strategies)
    for strategy in strategies:
        if not isinstance(strategy, ExportStrategy):
            raise TypeError(f"Experiment got export_strategies item {strategy!r}; expected "
                            "learn.ExportStrategy objects, e.g. from learn.make_export_strategy.")
    names = [s.name for s in strategies]
    if len(set(names)) != len(names):
        raise ValueError(f"Experiment got export_strategies with duplicate names {names}; "
                         "each needs its own name (its export directory).")
    return strategies


def _check_secs(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"Experiment got {name}={value!r}; expected a number of seconds >= 0.")
    return value


def _check_steps(value, name, *, allow_zero=False):
    if value is None:
        return None
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"Experiment got {name}={value!r}; expected an int >= {low} or None.")
    return value


class Experiment:
    """An estimator with its training and evaluation inputs, run by a schedule.

    Args:
        estimator: a `learn.Estimator` (canned or custom) or a `trainer.Estimator`.
        train_input_fn, eval_input_fn: input functions.
        eval_metrics: TF.Learn metrics ``{name: fn(predictions, labels)}`` added
            to the evaluations (a `learn.Estimator` only).
        train_steps: train until this global step (None: until the input ends).
        eval_steps: batches per evaluation (None: the whole eval input).
        train_monitors: `SessionRunHook`s for training; eval_hooks: for evaluation.
        eval_delay_secs: `evaluate`/`continuous_eval` wait this long first.
        continuous_eval_throttle_secs: at least this long between the starts of
            two evaluations in `continuous_eval`.
        min_eval_frequency: in `train_and_evaluate`, evaluate each new checkpoint
            at least this many steps after the previous evaluation (checkpoints
            follow ``RunConfig.save_checkpoints_steps/secs``); 0 evaluates only
            after training; None is 1.
        export_strategies: `ExportStrategy` objects run after the final
            evaluation of `train_and_evaluate` and after each evaluation in
            `continuous_eval`.
        checkpoint_and_export: in `train_and_evaluate`, evaluate and export at
            every checkpoint (`trainer.train_and_evaluate`); min_eval_frequency is
            then ignored.
        saving_listeners: `CheckpointSaverListener`s for training.
        check_interval_secs: how often `continuous_eval` looks for a new
            checkpoint while waiting.

    ``local_eval_frequency``, ``delay_workers_by_global_step`` and
    ``train_steps_per_iteration`` accept only their defaults (NotImplementedError
    otherwise).
    """

    def __init__(self, estimator, train_input_fn, eval_input_fn, eval_metrics=None,
                 train_steps=None, eval_steps=100, train_monitors=None, eval_hooks=None,
                 local_eval_frequency=None, eval_delay_secs=120, continuous_eval_throttle_secs=60,
                 min_eval_frequency=None, delay_workers_by_global_step=False,
                 export_strategies=None, train_steps_per_iteration=None,
                 checkpoint_and_export=False, saving_listeners=None, check_interval_secs=5):
        for name, value, default in (
                ("local_eval_frequency", local_eval_frequency, None),
                ("delay_workers_by_global_step", delay_workers_by_global_step, False),
                ("train_steps_per_iteration", train_steps_per_iteration, None)):
            if value != default:
                raise NotImplementedError(
                    f"Experiment({name}={value!r}) is not supported; leave it at {default!r} "
                    "(min_eval_frequency sets how often train_and_evaluate evaluates).")
        if isinstance(estimator, LearnEstimator):
            self._learn = True
        elif isinstance(estimator, core.Estimator):
            self._learn = False
            if eval_metrics is not None:
                raise ValueError(
                    "Experiment got eval_metrics with a trainer.Estimator; it only applies to a "
                    "learn.Estimator. How to fix: put the metrics in the model_fn's "
                    "eval_metric_ops.")
        else:
            raise TypeError(f"Experiment got estimator={estimator!r}; expected a learn.Estimator "
                            "or a trainer.Estimator.")
        for name, fn in (("train_input_fn", train_input_fn), ("eval_input_fn", eval_input_fn)):
            if not callable(fn):
                raise TypeError(f"Experiment got {name}={fn!r}; expected a callable.")
        self._estimator = estimator
        self._train_input_fn = train_input_fn
        self._eval_input_fn = eval_input_fn
        self._eval_metrics = _check_metrics(eval_metrics, "Experiment(eval_metrics)")
        self._train_steps = _check_steps(train_steps, "train_steps")
        self._eval_steps = _check_steps(eval_steps, "eval_steps")
        self._train_monitors = _check_hooks(train_monitors, "train_monitors", "Experiment")
        self._eval_hooks = _check_hooks(eval_hooks, "eval_hooks", "Experiment")
        self._eval_delay_secs = _check_secs(eval_delay_secs, "eval_delay_secs")
        self._continuous_eval_throttle_secs = _check_secs(continuous_eval_throttle_secs,
                                                          "continuous_eval_throttle_secs")
        self._min_eval_frequency = _check_steps(min_eval_frequency, "min_eval_frequency",
                                                allow_zero=True)
        self._export_strategies = _check_strategies(export_strategies)
        self._checkpoint_and_export = bool(checkpoint_and_export)
        self._saving_listeners = list(saving_listeners or [])
        for listener in self._saving_listeners:
            if not isinstance(listener, CheckpointSaverListener):
                raise TypeError(f"Experiment got saving_listeners item {listener!r}; expected "
                                "trainer.CheckpointSaverListener objects.")
        self._check_interval_secs = _check_secs(check_interval_secs, "check_interval_secs")

    # -- properties ---------------------------------------------------------------
    @property
    def estimator(self):
        return self._estimator

    @property
    def train_steps(self):
        return self._train_steps

    @property
    def eval_steps(self):
        return self._eval_steps

    @property
    def eval_metrics(self):
        return self._eval_metrics

    def extend_train_hooks(self, additional_hooks):
        """Adds `SessionRunHook`s to the training hooks."""
        self._train_monitors += _check_hooks(additional_hooks, "additional_hooks",
                                             "Experiment.extend_train_hooks")

    # -- the estimators the core runs ---------------------------------------------
    def _train_core(self):
        return self._estimator.core_estimator if self._learn else self._estimator

    def _eval_core(self):
        return (self._estimator._core_for(self._eval_metrics) if self._learn
                else self._estimator)

    def _evaluate(self, input_fn, name, checkpoint_path=None, steps="default"):
        return self._eval_core().evaluate(
            input_fn, steps=self._eval_steps if steps == "default" else steps,
            hooks=list(self._eval_hooks), checkpoint_path=checkpoint_path, name=name)

    def _export(self, eval_result, checkpoint_path):
        paths = []
        for strategy in self._export_strategies:
            export_dir = os.path.join(self._estimator.model_dir, "export", strategy.name)
            path = strategy.export(self._estimator, export_dir, checkpoint_path=checkpoint_path,
                                   eval_result=eval_result)
            if path is not None:
                log.info("Export strategy %s wrote %s.", strategy.name, path)
                paths.append(path)
        return paths

    # -- schedules -------------------------------------------------------------------
    def train(self, delay_secs=None):
        """Trains until ``train_steps`` (or the end of the input); returns the estimator.

        ``delay_secs`` (default 0 here; TF.Learn delayed workers by their index):
        wait this long first.
        """
        if delay_secs:
            time.sleep(_check_secs(delay_secs, "delay_secs"))
        self._train_core().train(self._train_input_fn, hooks=list(self._train_monitors),
                                 max_steps=self._train_steps,
                                 saving_listeners=list(self._saving_listeners))
        return self._estimator

    def evaluate(self, delay_secs=None, name=None):
        """Evaluates the newest checkpoint on the eval input (after ``eval_delay_secs``)."""
        delay = self._eval_delay_secs if delay_secs is None else _check_secs(delay_secs,
                                                                            "delay_secs")
        if delay:
            time.sleep(delay)
        return self._evaluate(self._eval_input_fn, name)

    def train_and_evaluate(self):
        """Trains, evaluating on the way, then evaluates and exports the final model.

        Returns ``(eval_result, export_paths)``. On a ``TF_CONFIG`` cluster (or in
        the evaluator task) this is `trainer.train_and_evaluate`.
        """
        config = self._estimator.config
        distributed = (config.task_type == TaskType.EVALUATOR or config.num_worker_replicas > 1
                       or config.num_ps_replicas)
        if distributed or self._checkpoint_and_export:
            return self._core_train_and_evaluate()
        listener = _EvaluateEveryNSteps(self, self._min_eval_frequency)
        self._train_core().train(self._train_input_fn, hooks=list(self._train_monitors),
                                 max_steps=self._train_steps,
                                 saving_listeners=[listener, *self._saving_listeners])
        final = self._train_core().latest_checkpoint()
        step = checkpoints.checkpoint_step(final)
        if listener.last_step == step and listener.last_result is not None:
            result = listener.last_result
        else:
            result = self._evaluate(self._eval_input_fn, None, checkpoint_path=final)
        return result, self._export(result, final)

    def _core_train_and_evaluate(self):
        estimator = self._eval_core()
        train_spec = TrainSpec(self._train_input_fn, max_steps=self._train_steps,
                               hooks=self._train_monitors,
                               saving_listeners=self._saving_listeners)
        eval_spec = EvalSpec(self._eval_input_fn, steps=self._eval_steps, hooks=self._eval_hooks,
                             exporters=self._export_strategies,
                             start_delay_secs=self._eval_delay_secs,
                             throttle_secs=(0 if self._checkpoint_and_export
                                            else self._continuous_eval_throttle_secs))
        return train_and_evaluate(estimator, train_spec, eval_spec)

    def continuous_eval(self, delay_secs=None, throttle_delay_secs=None,
                        evaluate_checkpoint_only_once=True, continuous_eval_predicate_fn=None,
                        export=True):
        """Evaluates each new checkpoint as it appears, exporting after each evaluation.

        Stops after evaluating a checkpoint at or beyond ``train_steps``, or when
        ``continuous_eval_predicate_fn(eval_result)`` (or ``(eval_result,
        checkpoint_path)``) returns False; it is called before each round, with
        None before the first evaluation. With neither, it runs until stopped,
        as TF.Learn's did. Returns the last evaluation's result.
        """
        return self._continuous_eval(self._eval_input_fn, None, delay_secs, throttle_delay_secs,
                                     evaluate_checkpoint_only_once,
                                     continuous_eval_predicate_fn, export)

    def continuous_eval_on_train_data(self, delay_secs=None, throttle_delay_secs=None,
                                      continuous_eval_predicate_fn=None, export=True):
        """`continuous_eval` on the training input (results in ``model_dir/eval_train``)."""
        return self._continuous_eval(self._train_input_fn, "train", delay_secs,
                                     throttle_delay_secs, True, continuous_eval_predicate_fn,
                                     export)

    def _continuous_eval(self, input_fn, name, delay_secs, throttle_delay_secs, only_once,
                         predicate_fn, export):
        delay = self._eval_delay_secs if delay_secs is None else _check_secs(delay_secs,
                                                                            "delay_secs")
        throttle = (self._continuous_eval_throttle_secs if throttle_delay_secs is None
                    else _check_secs(throttle_delay_secs, "throttle_delay_secs"))
        if predicate_fn is not None and not callable(predicate_fn):
            raise TypeError(f"Experiment.continuous_eval got continuous_eval_predicate_fn="
                            f"{predicate_fn!r}; expected a callable.")
        predicate = _predicate(predicate_fn)
        if delay:
            time.sleep(delay)
        model_dir = self._estimator.model_dir
        result, last_path, last_start = None, None, None
        while predicate is None or predicate(result, last_path):
            if self._train_steps is not None and result is not None and \
                    int(result.get("global_step", 0)) >= self._train_steps:
                log.info("continuous_eval: stopping, global step %s >= train_steps %d.",
                         result.get("global_step"), self._train_steps)
                break
            if last_start is not None:  # keep throttle secs between evaluation starts
                time.sleep(max(0.0, throttle - (time.monotonic() - last_start)))
            path = checkpoints.latest_checkpoint(model_dir)
            if path is None or (only_once and path == last_path):
                log.info("continuous_eval: %s; checking again in %s s.",
                         "no checkpoint yet" if path is None else "no new checkpoint",
                         self._check_interval_secs)
                time.sleep(self._check_interval_secs)
                continue
            last_start = time.monotonic()
            try:
                result = self._evaluate(input_fn, name, checkpoint_path=path)
            except (tf.errors.NotFoundError, ValueError):
                if tf.io.gfile.exists(path + ".index"):
                    raise
                log.warning("continuous_eval: checkpoint %s was removed before it could be "
                            "read (keep_checkpoint_max); skipping it.", path)
                continue
            last_path = path
            if export:
                self._export(result, path)
        return result

    def test(self):
        """A smoke test: one training step and one evaluation batch."""
        self._train_core().train(self._train_input_fn, hooks=list(self._train_monitors), steps=1)
        return self._evaluate(self._eval_input_fn, "one_pass", steps=1)

    def run_std_server(self):
        raise NotImplementedError(
            "Experiment.run_std_server (a parameter server) is not supported: parameter servers "
            "are not implemented. See docs/distributed.md for MultiWorkerMirroredStrategy.")

    def continuous_train_and_eval(self, continuous_eval_predicate_fn=None):
        raise NotImplementedError(
            "Experiment.continuous_train_and_eval is not supported. How to fix: use "
            "train_and_evaluate with min_eval_frequency.")


def _predicate(fn):
    if fn is None:
        return None
    try:
        params = inspect.signature(fn).parameters
        takes_path = "checkpoint_path" in params or len(params) >= 2
    except (TypeError, ValueError):
        takes_path = False
    if takes_path:
        return lambda result, path: fn(result, path)
    return lambda result, path: fn(result)


class _EvaluateEveryNSteps(CheckpointSaverListener):
    """Evaluates a new checkpoint when ``n`` steps passed since the last evaluation.

    TF.Learn's ValidationMonitor: only checkpoints are evaluated, so how often
    depends on ``RunConfig.save_checkpoints_steps/secs`` too. ``n == 0``: never.
    """

    def __init__(self, experiment, n):
        self._experiment = experiment
        self._n = 1 if n is None else n
        self._first = True
        self.last_step = None
        self.last_result = None

    def after_save(self, session, global_step_value):
        if self._first:  # the checkpoint training starts from
            self._first = False
            return False
        if self._n == 0:
            return False
        if self.last_step is not None and global_step_value - self.last_step < self._n:
            return False
        path = checkpoints.latest_checkpoint(session.model_dir)
        experiment = self._experiment
        self.last_result = experiment._evaluate(experiment._eval_input_fn, None,
                                                checkpoint_path=path)
        self.last_step = global_step_value
        return False
