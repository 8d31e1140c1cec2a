"""Early stopping: stop training when an evaluation metric stops improving.

These hooks read the evaluation results that `Estimator.evaluate` writes as
TensorBoard events in ``model_dir/eval[_name]`` (by `train_and_evaluate` or
any other evaluator running beside training), every ``run_every_secs`` or
``run_every_steps``, like tf.estimator's.
"""

from __future__ import annotations

import logging
import operator
import os

import numpy as np
import tensorflow as tf
from tensorflow.core.util import event_pb2  # generated proto, not private API

from trainer.hooks.basic_hooks import SecondOrStepTimer
from trainer.hooks.session_run_hook import SessionRunArgs, SessionRunHook

__all__ = ["read_eval_metrics", "make_early_stopping_hook", "stop_if_higher_hook",
           "stop_if_lower_hook", "stop_if_no_increase_hook", "stop_if_no_decrease_hook"]

log = logging.getLogger("trainer")


def read_eval_metrics(eval_dir: str) -> dict[int, dict[str, float]]:
    """Returns ``{global_step: {metric: value}}`` from the event files in ``eval_dir``."""
    results: dict[int, dict[str, float]] = {}
    if not tf.io.gfile.isdir(eval_dir):
        return results
    for path in sorted(tf.io.gfile.glob(os.path.join(eval_dir, "events.out.tfevents.*"))):
        for record in tf.data.TFRecordDataset(path):
            event = event_pb2.Event.FromString(record.numpy())
            if not event.HasField("summary"):
                continue
            for value in event.summary.value:
                if value.HasField("tensor"):
                    number = float(np.asarray(tf.make_ndarray(value.tensor)).reshape(-1)[0])
                elif value.HasField("simple_value"):
                    number = float(value.simple_value)
                else:
                    continue
                results.setdefault(int(event.step), {})[value.tag] = number
    return dict(sorted(results.items()))


class _StopOnPredicateHook(SessionRunHook):
    def __init__(self, should_stop_fn, run_every_secs=60, run_every_steps=None):
        if run_every_secs is not None and run_every_steps is not None:
            run_every_secs = None
        self._should_stop_fn = should_stop_fn
        self._timer = SecondOrStepTimer(every_secs=run_every_secs, every_steps=run_every_steps)

    def begin(self):
        self._timer.reset()

    def before_run(self, run_context):
        return SessionRunArgs("global_step")

    def steps_until_needed(self, global_step):
        return self._timer.steps_until_trigger(global_step)

    def after_run(self, run_context, run_values):
        step = int(run_values.results)
        if self._timer.should_trigger_for_step(step):
            self._timer.update_last_triggered_step(step)
            if self._should_stop_fn():
                log.info("Requesting early stopping at global step %d.", step)
                run_context.request_stop()


def make_early_stopping_hook(estimator, should_stop_fn, run_every_secs=60, run_every_steps=None):
    """A hook that stops training when ``should_stop_fn()`` returns True."""
    del estimator
    if not callable(should_stop_fn):
        raise TypeError(f"make_early_stopping_hook got should_stop_fn={should_stop_fn!r}; expected a callable.")
    return _StopOnPredicateHook(should_stop_fn, run_every_secs, run_every_steps)


def _eval_dir(estimator, eval_dir):
    return eval_dir or estimator.eval_dir()


def _threshold_hook(estimator, metric_name, threshold, compare, eval_dir, min_steps,
                    run_every_secs, run_every_steps):
    def should_stop():
        for step, metrics in read_eval_metrics(_eval_dir(estimator, eval_dir)).items():
            if step >= min_steps and metric_name in metrics and compare(metrics[metric_name], threshold):
                return True
        return False

    return make_early_stopping_hook(estimator, should_stop, run_every_secs, run_every_steps)


def _no_progress_hook(estimator, metric_name, max_steps_without, better, eval_dir, min_steps,
                      run_every_secs, run_every_steps):
    def should_stop():
        best, best_step = None, None
        for step, metrics in read_eval_metrics(_eval_dir(estimator, eval_dir)).items():
            if metric_name not in metrics:
                continue
            if best is None or better(metrics[metric_name], best):
                best, best_step = metrics[metric_name], step
            if step >= min_steps and step - best_step >= max_steps_without:
                return True
        return False

    return make_early_stopping_hook(estimator, should_stop, run_every_secs, run_every_steps)


def stop_if_higher_hook(estimator, metric_name, threshold, eval_dir=None, min_steps=0,
                        run_every_secs=60, run_every_steps=None):
    """Stops once ``metric_name`` > ``threshold`` in some evaluation."""
    return _threshold_hook(estimator, metric_name, threshold, operator.gt, eval_dir, min_steps,
                           run_every_secs, run_every_steps)


def stop_if_lower_hook(estimator, metric_name, threshold, eval_dir=None, min_steps=0,
                       run_every_secs=60, run_every_steps=None):
    """Stops once ``metric_name`` < ``threshold`` in some evaluation."""
    return _threshold_hook(estimator, metric_name, threshold, operator.lt, eval_dir, min_steps,
                           run_every_secs, run_every_steps)


def stop_if_no_increase_hook(estimator, metric_name, max_steps_without_increase, eval_dir=None,
                             min_steps=0, run_every_secs=60, run_every_steps=None):
    """Stops when ``metric_name`` has not increased for that many global steps."""
    return _no_progress_hook(estimator, metric_name, max_steps_without_increase, operator.gt,
                             eval_dir, min_steps, run_every_secs, run_every_steps)


def stop_if_no_decrease_hook(estimator, metric_name, max_steps_without_decrease, eval_dir=None,
                             min_steps=0, run_every_secs=60, run_every_steps=None):
    """Stops when ``metric_name`` has not decreased for that many global steps."""
    return _no_progress_hook(estimator, metric_name, max_steps_without_decrease, operator.lt,
                             eval_dir, min_steps, run_every_secs, run_every_steps)
