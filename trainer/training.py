"""`train_and_evaluate`: train while evaluating each new checkpoint, then export.

Local mode (one process): training saves checkpoints on `RunConfig`'s
schedule; after each save a listener evaluates the new checkpoint, at most
once every ``throttle_secs``, and calls the exporters with the result. When
training ends, the final checkpoint is evaluated (if it was not already) and
the exporters run with ``is_the_final_export=True``.

On a TF_CONFIG cluster `train_and_evaluate` dispatches on the task type, as
tf.estimator did: the chief and the workers train (with
``train_distribute=tf.distribute.MultiWorkerMirroredStrategy()``; only the
chief writes); the ``evaluator`` task polls ``model_dir`` and evaluates each
new checkpoint with `ContinuousEvaluator` (the Estimator builds its evaluation
program once and only restores each checkpoint into it), runs the exporters,
and stops after the checkpoint at ``max_steps``. Parameter servers are not
implemented.
"""

from __future__ import annotations

import collections
import logging
import os
import time

import tensorflow as tf

from trainer import checkpoints
from trainer.exporter import Exporter
from trainer.hooks.basic_hooks import CheckpointSaverListener
from trainer.hooks.session_run_hook import as_hook

__all__ = ["TrainSpec", "EvalSpec", "train_and_evaluate", "ContinuousEvaluator"]

log = logging.getLogger("trainer")


def _check_hooks(hooks, owner):
    checked = []
    for hook in tuple(hooks or ()):
        adapted = as_hook(hook)
        if adapted is None:
            raise TypeError(f"{owner} got hook {hook!r}; hooks must subclass trainer.SessionRunHook "
                            "(or tf.estimator's tf.compat.v1.train.SessionRunHook).")
        checked.append(adapted)
    return tuple(checked)


class TrainSpec(collections.namedtuple("TrainSpec", ["input_fn", "max_steps", "hooks", "saving_listeners"])):
    """What to train on and for how long (``max_steps`` is absolute; None = until the data ends)."""

    def __new__(cls, input_fn, max_steps=None, hooks=None, saving_listeners=None):
        if not callable(input_fn):
            raise TypeError(f"TrainSpec got input_fn={input_fn!r}; expected a callable.")
        if max_steps is not None and (not isinstance(max_steps, int) or max_steps <= 0):
            raise ValueError(f"TrainSpec got max_steps={max_steps!r}; expected an int > 0 or None.")
        return super().__new__(cls, input_fn, max_steps, _check_hooks(hooks, "TrainSpec"),
                               tuple(saving_listeners or ()))


class EvalSpec(collections.namedtuple("EvalSpec", [
        "input_fn", "steps", "name", "hooks", "exporters", "start_delay_secs", "throttle_secs"])):
    """What to evaluate on, how often, and which exporters to run after.

    Args:
        steps: batches per evaluation (None: the whole input).
        name: evaluations go to ``model_dir/eval_<name>`` (``eval`` if None).
        exporters: an `Exporter` or a list of them.
        start_delay_secs: used by a separate evaluator task; local mode starts
            evaluating at the first checkpoint after step 0.
        throttle_secs: at least this long between two evaluations.
    """

    def __new__(cls, input_fn, steps=100, name=None, hooks=None, exporters=None,
                start_delay_secs=120, throttle_secs=600):
        if not callable(input_fn):
            raise TypeError(f"EvalSpec got input_fn={input_fn!r}; expected a callable.")
        if steps is not None and (not isinstance(steps, int) or steps <= 0):
            raise ValueError(f"EvalSpec got steps={steps!r}; expected an int > 0 or None.")
        if name is not None and (not isinstance(name, str) or "/" in name):
            raise ValueError(f"EvalSpec got name={name!r}; expected a string without '/'.")
        if isinstance(exporters, Exporter):
            exporters = [exporters]
        exporters = tuple(exporters or ())
        names = [e.name for e in exporters if isinstance(e, Exporter)]
        if len(names) != len(exporters):
            raise TypeError(f"EvalSpec got exporters={exporters!r}; each must be a trainer.Exporter.")
        if len(set(names)) != len(names):
            raise ValueError(f"EvalSpec got exporters with duplicate names {names}; names must differ.")
        for field, value in (("start_delay_secs", start_delay_secs), ("throttle_secs", throttle_secs)):
            if value < 0:
                raise ValueError(f"EvalSpec got {field}={value!r}; expected >= 0.")
        return super().__new__(cls, input_fn, steps, name, _check_hooks(hooks, "EvalSpec"),
                               exporters, start_delay_secs, throttle_secs)


class ContinuousEvaluator:
    """Evaluates a checkpoint with an `EvalSpec` and runs its exporters."""

    def __init__(self, estimator, eval_spec: EvalSpec):
        self.estimator = estimator
        self.eval_spec = eval_spec
        self.last_evaluated_step = None
        self.last_result = None
        self.export_results = []

    def evaluate_and_export(self, checkpoint_path, *, is_the_final_export=False):
        spec = self.eval_spec
        if not tf.io.gfile.exists(checkpoint_path + ".index"):
            raise _CheckpointGone(f"{checkpoint_path}.index does not exist")
        try:
            result = self._evaluate(checkpoint_path)
        except (tf.errors.NotFoundError, ValueError) as e:
            if tf.io.gfile.exists(checkpoint_path + ".index"):
                raise
            raise _CheckpointGone(str(e)) from None  # deleted while being read
        self.last_evaluated_step = checkpoints.checkpoint_step(checkpoint_path)
        self.last_result = result
        for exporter in spec.exporters:
            export_dir = os.path.join(self.estimator.model_dir, "export", exporter.name)
            path = exporter.export(self.estimator, export_dir, checkpoint_path, result,
                                   is_the_final_export)
            if path is not None:
                log.info("Exporter %s wrote %s.", exporter.name, path)
                self.export_results.append(path)
        return result

    def _evaluate(self, checkpoint_path):
        spec = self.eval_spec
        return self.estimator.evaluate(spec.input_fn, steps=spec.steps, hooks=list(spec.hooks),
                                       checkpoint_path=checkpoint_path, name=spec.name)


class _EvaluateNewCheckpoints(CheckpointSaverListener):
    """After each save (but the initial one), evaluates if ``throttle_secs`` passed."""

    def __init__(self, evaluators, throttle_secs):
        self._evaluators = evaluators
        self._throttle_secs = throttle_secs
        self._last_time = None
        self._first_step = None

    def begin(self):
        self._last_time = None

    def after_save(self, session, global_step_value):
        if self._first_step is None:
            self._first_step = global_step_value
            return False  # the state training starts from was evaluated before (or is untrained)
        if self._last_time is not None and time.time() - self._last_time < self._throttle_secs:
            return False
        self._last_time = time.time()
        prefix = checkpoints.latest_checkpoint(session.model_dir)
        for evaluator in self._evaluators:
            evaluator.evaluate_and_export(prefix)
        return False


POLL_SECS = 1.0  # how often the evaluator looks for a new checkpoint


def run_evaluator(estimator, train_spec: TrainSpec, specs, *, sleep=time.sleep, poll_secs=POLL_SECS,
                  latest=checkpoints.latest_checkpoint):
    """The evaluator task: evaluates each new checkpoint in ``model_dir`` until ``max_steps``.

    Waits ``start_delay_secs`` first, then evaluates the newest checkpoint whenever one
    appears, at most once every ``throttle_secs`` (both from the first EvalSpec); a
    checkpoint removed (``keep_checkpoint_max``) before it could be read is skipped with a
    log line. After evaluating the checkpoint at ``train_spec.max_steps`` it runs the
    exporters as the final export and returns ``(result, export paths)`` of the first
    EvalSpec; with ``max_steps=None`` it runs until it is stopped. ``sleep``, ``poll_secs``
    and ``latest`` (how the newest checkpoint is found) are there for tests.
    """
    evaluators = [ContinuousEvaluator(estimator, spec) for spec in specs]
    first = specs[0]
    log.info("Evaluator: waiting %s s before the first evaluation (start_delay_secs).",
             first.start_delay_secs)
    sleep(first.start_delay_secs)
    last_step, last_time = None, None
    while True:
        prefix = latest(estimator.model_dir)
        step = checkpoints.checkpoint_step(prefix) if prefix else None
        throttled = last_time is not None and time.monotonic() - last_time < first.throttle_secs
        if step is not None and step != last_step and not throttled:
            final = train_spec.max_steps is not None and step >= train_spec.max_steps
            last_time = time.monotonic()
            try:
                for evaluator in evaluators:
                    evaluator.evaluate_and_export(prefix, is_the_final_export=final)
            except _CheckpointGone as gone:
                log.warning("Evaluator: skipping checkpoint %s, removed before it could be read "
                            "(keep_checkpoint_max): %s", prefix, gone)
            else:
                log.info("Evaluator: evaluated checkpoint %s.", prefix)
                if final:
                    return evaluators[0].last_result, evaluators[0].export_results
            last_step = step
        sleep(poll_secs)


class _CheckpointGone(Exception):
    pass


def train_and_evaluate(estimator, train_spec: TrainSpec, eval_spec):
    """Trains ``estimator`` and evaluates its checkpoints as they appear (local mode).

    Args:
        eval_spec: an `EvalSpec`, or a list of them with distinct names — e.g.
            one on the evaluation data and one on the training input to spot
            overfitting (their results go to ``eval_<name>``).

    Returns:
        ``(eval_result, export_results)`` of the first `EvalSpec`: the final
        evaluation's metrics and the paths its exporters wrote.

    Example:
        >>> # train_and_evaluate(est, TrainSpec(train_fn, max_steps=1000),
        >>> #                    EvalSpec(eval_fn, steps=None, throttle_secs=30,
        >>> #                             exporters=LatestExporter("latest", receiver_fn)))
    """
    if not isinstance(train_spec, TrainSpec):
        raise TypeError(f"train_and_evaluate got train_spec={train_spec!r}; expected a trainer.TrainSpec.")
    if isinstance(eval_spec, EvalSpec):  # a namedtuple itself: check before "list of specs"
        specs = [eval_spec]
    else:
        specs = list(eval_spec) if isinstance(eval_spec, (list, tuple)) else [eval_spec]
    if not specs or any(not isinstance(s, EvalSpec) for s in specs):
        raise TypeError(
            f"train_and_evaluate got eval_spec={eval_spec!r}; expected a trainer.EvalSpec or a list of them."
        )
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(
            f"train_and_evaluate got EvalSpecs named {names}; each needs its own name "
            "(its results go to model_dir/eval_<name>)."
        )
    config = estimator.config
    if config.task_type == "evaluator":
        return run_evaluator(estimator, train_spec, specs)
    if config.task_type == "ps" or config.num_ps_replicas:
        raise NotImplementedError(
            "train_and_evaluate with parameter servers (a 'ps' task in TF_CONFIG) is not "
            "implemented yet; use workers with train_distribute=tf.distribute."
            "MultiWorkerMirroredStrategy(). See docs/distributed.md.")
    if config.num_worker_replicas > 1:
        # Distributed mode: the workers train together; the evaluator task evaluates.
        estimator.train(train_spec.input_fn, hooks=list(train_spec.hooks), max_steps=train_spec.max_steps,
                        saving_listeners=list(train_spec.saving_listeners))
        return None, []
    evaluators = [ContinuousEvaluator(estimator, spec) for spec in specs]
    listener = _EvaluateNewCheckpoints(evaluators, min(s.throttle_secs for s in specs))
    estimator.train(train_spec.input_fn, hooks=list(train_spec.hooks),
                    max_steps=train_spec.max_steps,
                    saving_listeners=[listener, *train_spec.saving_listeners])
    final = estimator.latest_checkpoint()
    final_step = checkpoints.checkpoint_step(final)
    for evaluator in evaluators:
        if evaluator.last_evaluated_step != final_step or evaluator.eval_spec.exporters:
            if evaluator.last_evaluated_step == final_step:
                # Evaluated already; only the exporters still need the final call.
                for exporter in evaluator.eval_spec.exporters:
                    export_dir = os.path.join(estimator.model_dir, "export", exporter.name)
                    path = exporter.export(estimator, export_dir, final, evaluator.last_result, True)
                    if path is not None:
                        evaluator.export_results.append(path)
            else:
                evaluator.evaluate_and_export(final, is_the_final_export=True)
    return evaluators[0].last_result, evaluators[0].export_results
