"""The standard hooks of tf.estimator, on the run protocol of `session_run_hook`."""

from __future__ import annotations

import logging
import time

import numpy as np
import tensorflow as tf

from trainer.hooks.session_run_hook import SessionRunArgs, SessionRunHook

__all__ = [
    "SecondOrStepTimer",
    "StopAtStepHook",
    "LoggingTensorHook",
    "StepCounterHook",
    "NanLossDuringTrainingError",
    "NanTensorHook",
    "SummarySaverHook",
    "CheckpointSaverListener",
    "CheckpointSaverHook",
]

log = logging.getLogger("trainer")


class SecondOrStepTimer:
    """Triggers every N seconds or every N steps (exactly one must be set)."""

    def __init__(self, every_secs=None, every_steps=None):
        if (every_secs is None) == (every_steps is None):
            raise ValueError(
                f"SecondOrStepTimer got every_secs={every_secs!r}, every_steps={every_steps!r}; "
                "set exactly one of them."
            )
        self._every_secs = every_secs
        self._every_steps = every_steps
        self.reset()

    def reset(self):
        self._last_time = None
        self._last_step = None

    def should_trigger_for_step(self, step: int) -> bool:
        if self._last_step is None:
            return True
        if step <= self._last_step:
            return False
        if self._every_secs is not None:
            return time.time() >= self._last_time + self._every_secs
        return step >= self._last_step + self._every_steps

    def update_last_triggered_step(self, step: int):
        now = time.time()
        elapsed = None if self._last_time is None else (now - self._last_time, step - self._last_step)
        self._last_time, self._last_step = now, step
        return elapsed

    def last_triggered_step(self):
        return self._last_step

    def steps_until_trigger(self, step: int) -> int | None:
        """Steps from ``step`` to the next step that triggers (>= 1); None for a seconds timer."""
        if self._every_secs is not None:
            return None
        if self._last_step is None:
            return 1
        return max(1, self._last_step + self._every_steps - step)


def _global_step(session) -> int:
    return int(session.global_step)


class StopAtStepHook(SessionRunHook):
    """Requests stop at a given global step (``last_step``) or after ``num_steps`` more."""

    def __init__(self, num_steps=None, last_step=None):
        if num_steps is None and last_step is None:
            raise ValueError("StopAtStepHook needs one of num_steps or last_step.")
        if num_steps is not None and last_step is not None:
            raise ValueError(
                f"StopAtStepHook got num_steps={num_steps!r} and last_step={last_step!r}; "
                "give only one."
            )
        self._num_steps = num_steps
        self._last_step = last_step

    def after_create_session(self, session, coord):
        if self._num_steps is not None:
            self._last_step = _global_step(session) + self._num_steps
        # Lets the loop size its runs so it never steps past last_step.
        session.limit_steps(self._last_step)

    def before_run(self, run_context):
        return SessionRunArgs("global_step")

    def after_run(self, run_context, run_values):
        if run_values.results >= self._last_step:
            run_context.request_stop()

    def steps_until_needed(self, global_step):
        return None  # the loop cuts runs at session.limit_steps


def _tensor_name(tensor) -> str:
    """A hook's fetch: a tensor name, or the name of a tensor made inside the model_fn."""
    if isinstance(tensor, str):
        return tensor
    if isinstance(tensor, tf.Tensor) and hasattr(tensor, "graph") and not tf.executing_eagerly():
        # tf.estimator's idiom: LoggingTensorHook({"loss": loss}) built in the model_fn and
        # returned as a training hook. The tensor is fetched by its graph name in the step.
        return tensor.name
    raise TypeError(
        f"LoggingTensorHook got {tensor!r}; expected a tensor name (a string) or a tensor "
        "built inside the model_fn. How to fix: pass names such as 'loss', 'global_step', a "
        "prediction key, or name a tensor with tf.identity(x, name='my_value') and pass "
        "'my_value'.")


class LoggingTensorHook(SessionRunHook):
    """Logs the named tensors every N runs, every N seconds, and/or at the end.

    Args:
        tensors: dict of tag -> tensor name, or a list of tensor names.
    """

    def __init__(self, tensors, every_n_iter=None, every_n_secs=None, at_end=False,
                 formatter=None):
        only_at_end = at_end and every_n_iter is None and every_n_secs is None
        if not only_at_end and (every_n_iter is None) == (every_n_secs is None):
            raise ValueError(
                "LoggingTensorHook needs exactly one of every_n_iter and every_n_secs "
                "(or only at_end=True)."
            )
        if every_n_iter is not None and every_n_iter <= 0:
            raise ValueError(f"LoggingTensorHook got every_n_iter={every_n_iter!r}; expected > 0.")
        if isinstance(tensors, dict):
            self._tensors = {tag: _tensor_name(t) for tag, t in tensors.items()}
        elif isinstance(tensors, (list, tuple)):
            names = [_tensor_name(t) for t in tensors]
            self._tensors = {name.removesuffix(":0"): name for name in names}
        else:
            raise TypeError(
                f"LoggingTensorHook got tensors={tensors!r}; expected a dict of tag -> tensor "
                "name or a list of tensor names."
            )
        self._timer = None if only_at_end else SecondOrStepTimer(every_n_secs, every_n_iter)
        self._at_end = at_end
        self._formatter = formatter
        self._iter = 0
        self._should_log = False
        self._last = None

    def begin(self):
        self._iter = 0
        if self._timer:
            self._timer.reset()

    def before_run(self, run_context):
        # Iterations are steps: a run of several steps logs the values of its last one
        # when the trigger falls inside it.
        last = self._iter + run_context.steps - 1
        self._should_log = bool(self._timer and self._timer.should_trigger_for_step(last))
        if self._should_log or self._at_end:
            return SessionRunArgs(dict(self._tensors))
        return None

    def after_run(self, run_context, run_values):
        if run_values.results is not None:
            self._last = run_values.results
        self._iter += run_context.steps
        if self._should_log:
            self._log(run_values.results)
            self._timer.update_last_triggered_step(self._iter - 1)

    def steps_until_needed(self, global_step):
        if self._timer is None:
            return None  # at_end only: the last run's values
        # The run's last iteration (self._iter + n - 1) is the next one that triggers.
        return self._timer.steps_until_trigger(self._iter - 1)

    def end(self, session):
        if self._at_end and self._last is not None:
            self._log(self._last)

    def _log(self, values):
        if self._formatter:
            log.info(self._formatter(values))
        else:
            log.info(", ".join(f"{tag} = {values[tag]}" for tag in self._tensors))


class StepCounterHook(SessionRunHook):
    """Logs and writes ``global_step/sec`` (TensorBoard) every N steps or seconds."""

    def __init__(self, every_n_steps=100, every_n_secs=None, output_dir=None,
                 summary_writer=None):
        if (every_n_steps is None) == (every_n_secs is None):
            raise ValueError("StepCounterHook needs exactly one of every_n_steps and every_n_secs.")
        self._timer = SecondOrStepTimer(every_n_secs, every_n_steps)
        self._output_dir = output_dir
        self._writer = summary_writer

    def after_create_session(self, session, coord):
        if self._writer is None:
            self._writer = session.summary_writer(self._output_dir)
        self._timer.reset()
        self._timer.update_last_triggered_step(_global_step(session))

    def before_run(self, run_context):
        return SessionRunArgs("global_step")

    def steps_until_needed(self, global_step):
        return self._timer.steps_until_trigger(global_step)

    def after_run(self, run_context, run_values):
        step = int(run_values.results)
        if self._timer.should_trigger_for_step(step):
            elapsed = self._timer.update_last_triggered_step(step)
            if elapsed and elapsed[0] > 0:
                rate = elapsed[1] / elapsed[0]
                log.info("global_step/sec: %g", rate)
                if self._writer is not None:
                    with self._writer.as_default():
                        tf.summary.scalar("global_step/sec", rate, step=step)


class NanLossDuringTrainingError(RuntimeError):
    """The loss was NaN; ``global_step`` is the step after which it was seen (when known)."""

    def __init__(self, global_step=None):
        super().__init__(global_step)
        self.global_step = global_step

    def __str__(self):
        where = f" (global step {self.global_step})" if self.global_step is not None else ""
        return f"NaN loss during training{where}."


class NanTensorHook(SessionRunHook):
    """Raises `NanLossDuringTrainingError` (or requests stop) when the loss is NaN."""

    def __init__(self, loss_tensor="loss", fail_on_nan_loss=True):
        if not isinstance(loss_tensor, str):
            raise TypeError(
                f"NanTensorHook got loss_tensor={loss_tensor!r}; expected a tensor name such "
                "as 'loss' (TF2 tensors are named, not passed around)."
            )
        self._loss = loss_tensor
        self._fail = fail_on_nan_loss

    def before_run(self, run_context):
        return SessionRunArgs({"loss": self._loss, "step": "global_step"})

    def steps_until_needed(self, global_step):
        # A run of several steps stops at the first step whose loss is not finite (the
        # training loop's own check), so its last loss is the one to look at.
        return None

    def after_run(self, run_context, run_values):
        results = run_values.results
        # The hook fetches {"loss", "step"}; a caller that drives it by hand (as
        # tf.estimator's tests did) may pass the loss value alone.
        loss = results["loss"] if isinstance(results, dict) else results
        if np.any(np.isnan(loss)):
            step = int(results["step"]) if isinstance(results, dict) else None
            if self._fail:
                log.error("Model diverged with loss = NaN at global step %s.", step)
                raise NanLossDuringTrainingError(step)
            log.warning("Model diverged with loss = NaN; stopping.")
            run_context.request_stop()


class SummarySaverHook(SessionRunHook):
    """Writes scalar summaries of named tensors every N steps or seconds.

    The `model_fn`'s own ``tf.summary.*`` calls are written by the training
    loop every ``RunConfig.save_summary_steps``; this hook is for extra
    scalars. ``summary_op`` is a tensor name, list of names or dict of
    tag -> name (default ``'loss'``).
    """

    def __init__(self, save_steps=None, save_secs=None, output_dir=None, summary_writer=None,
                 scaffold=None, summary_op="loss"):
        del scaffold
        self._timer = SecondOrStepTimer(save_secs, save_steps)
        self._output_dir = output_dir
        self._writer = summary_writer
        if isinstance(summary_op, str):
            summary_op = [summary_op]
        self._tensors = summary_op if isinstance(summary_op, dict) else {t: t for t in summary_op}
        self._request = False

    def after_create_session(self, session, coord):
        if self._writer is None:
            self._writer = session.summary_writer(self._output_dir)

    def before_run(self, run_context):
        self._request = True
        return SessionRunArgs({"global_step": "global_step", **self._tensors})

    def steps_until_needed(self, global_step):
        return self._timer.steps_until_trigger(global_step)

    def after_run(self, run_context, run_values):
        step = int(run_values.results["global_step"])
        if self._timer.should_trigger_for_step(step):
            self._timer.update_last_triggered_step(step)
            with self._writer.as_default():
                for tag in self._tensors:
                    tf.summary.scalar(tag, np.mean(run_values.results[tag]), step=step)

    def end(self, session):
        if self._writer is not None:
            self._writer.flush()


class CheckpointSaverListener:
    """Callbacks around checkpoint saves. ``after_save`` may return True to stop training."""

    def begin(self):
        pass

    def before_save(self, session, global_step_value):
        pass

    def after_save(self, session, global_step_value):
        pass

    def end(self, session, global_step_value):
        pass


class CheckpointSaverHook(SessionRunHook):
    """Saves a checkpoint at the start, every N steps or seconds, and at the end."""

    def __init__(self, checkpoint_dir, save_secs=None, save_steps=None, saver=None,
                 checkpoint_basename="model.ckpt", scaffold=None, listeners=None):
        del saver, scaffold
        self._dir = checkpoint_dir
        self._timer = SecondOrStepTimer(save_secs, save_steps)
        self._basename = checkpoint_basename
        self._listeners = list(listeners or [])
        self._session = None
        self._saved_step = None

    def begin(self):
        self._timer.reset()
        for listener in self._listeners:
            listener.begin()

    def after_create_session(self, session, coord):
        self._session = session
        step = _global_step(session)
        # Like tf.estimator: a checkpoint of the initial state (step 0 or the restored one),
        # so evaluation and resumption always have something to read.
        if session.checkpoint_step != step:
            self._save(step, run_context=None)
        else:
            self._saved_step = step
        self._timer.update_last_triggered_step(step)

    def before_run(self, run_context):
        return SessionRunArgs("global_step")

    def steps_until_needed(self, global_step):
        return self._timer.steps_until_trigger(global_step)

    def after_run(self, run_context, run_values):
        step = int(run_values.results)
        if self._timer.should_trigger_for_step(step):
            self._timer.update_last_triggered_step(step)
            self._save(step, run_context)

    def end(self, session):
        step = _global_step(session)
        if step != self._saved_step:
            self._save(step, run_context=None)
        for listener in self._listeners:
            listener.end(session, step)

    def _save(self, step, run_context):
        for listener in self._listeners:
            listener.before_save(self._session, step)
        self._session.save_checkpoint(self._dir, basename=self._basename)
        self._saved_step = step
        should_stop = False
        for listener in self._listeners:
            should_stop = bool(listener.after_save(self._session, step)) or should_stop
        if should_stop and run_context is not None:
            run_context.request_stop()
