"""The loop that drives hooks around compiled runs, and what hooks see as `session`."""

from __future__ import annotations

import logging
import time

import numpy as np
import tensorflow as tf

from trainer import checkpoints
from trainer.hooks.session_run_hook import SessionRunArgs, SessionRunContext, SessionRunValues

log = logging.getLogger("trainer")

BASE_FETCHES = ("loss", "global_step")


class TrainingSession:
    """What hooks receive as ``session``: the model's state, not a `tf.Session`.

    Attributes:
        model_dir: the Estimator's model directory.
        store: the `VariableStore` with every variable of the model.
        checkpoint_step: global step of the checkpoint the variables came from, if any.
    """

    def __init__(self, *, model_dir, store, global_step, keep_checkpoint_max=5,
                 checkpoint_step=None, writer_factory=None):
        self.model_dir = model_dir
        self.store = store
        self._global_step = global_step
        self._keep = keep_checkpoint_max
        self.checkpoint_step = checkpoint_step
        self.step_limit = None
        self._writer_factory = writer_factory

    @property
    def global_step(self) -> int:
        return int(self._global_step.numpy())

    def limit_steps(self, last_step: int) -> None:
        """Makes the loop stop stepping at ``last_step`` (runs are cut to fit)."""
        self.step_limit = last_step if self.step_limit is None else min(self.step_limit, last_step)

    def save_checkpoint(self, directory=None, *, basename="model.ckpt") -> str:
        prefix = checkpoints.save(self.store.global_variables, directory or self.model_dir,
                                  self.global_step, basename=basename,
                                  keep_checkpoint_max=self._keep)
        self.checkpoint_step = self.global_step
        log.info("Saved checkpoint for step %d into %s.", self.global_step, prefix)
        return prefix

    def summary_writer(self, output_dir=None):
        if self._writer_factory is None:
            return None
        return self._writer_factory(output_dir)


def _names_in(fetches) -> list[str]:
    names = []
    for item in tf.nest.flatten(fetches):
        if not isinstance(item, str):
            raise TypeError(
                f"A hook's SessionRunArgs asked for {item!r}; fetches must be tensor names "
                "(strings) such as 'loss', 'global_step', a prediction key or a tensor name."
            )
        names.append(item)
    return names


# steps_per_run=None: runs grow by doubling while one takes less than AUTO_TARGET_S, up to
# AUTO_MAX_STEPS, and shrink when one takes longer, so time-based hooks (every N seconds)
# stay on time; every hook's steps_until_needed caps each run.
AUTO_TARGET_S = 1.0
AUTO_MAX_STEPS = 1000


class _RunLength:
    """How many steps the next run takes: ``fixed``, or (None) what the hooks allow."""

    def __init__(self, fixed):
        self.fixed = fixed
        self.cap = 1

    def next(self, hooks, session) -> int:
        if self.fixed is not None:
            return self.fixed
        n = self.cap
        if n > 1:
            step = session.global_step
            for hook in hooks:
                until = hook.steps_until_needed(step)
                if until is not None:
                    n = min(n, max(1, int(until)))
                    if n == 1:
                        break
        return n

    def ran(self, steps, seconds) -> None:
        if self.fixed is None and steps:
            self.cap = (min(AUTO_MAX_STEPS, max(self.cap, 2 * steps)) if seconds < AUTO_TARGET_S
                        else max(1, steps // 2))


def hooked_runs(*, session, hooks, run, steps_per_run, agree_to_stop=None):
    """Calls hooks around ``run(n, fetch_names) -> (outputs, steps, exhausted)``.

    A generator: yields ``(outputs, steps)`` after each run's ``after_run``
    calls, so a caller can stream results (predict). ``end`` is called when
    the loop finishes normally. ``steps_per_run``: steps per run, or None for
    as many as every hook's `SessionRunHook.steps_until_needed` allows (a run
    that takes over a second shrinks the next). ``agree_to_stop(flag) -> bool``
    (several workers stepping together) turns each worker's stop decision into
    one that all of them take; it needs a fixed ``steps_per_run``.
    """
    if steps_per_run is None and agree_to_stop is not None:
        raise ValueError("hooked_runs: workers that agree on stopping need a fixed steps_per_run.")
    length = _RunLength(steps_per_run)
    for hook in hooks:
        hook.begin()
    for hook in hooks:
        hook.after_create_session(session, None)
    while True:
        n = length.next(hooks, session)
        if session.step_limit is not None:
            n = min(n, session.step_limit - session.global_step)
            if n <= 0:
                break
        context = SessionRunContext(original_args=SessionRunArgs(list(BASE_FETCHES)),
                                    session=session, steps=n)
        requests = [hook.before_run(context) for hook in hooks]
        names = set()
        for request in requests:
            if request is not None:
                names.update(_names_in(request.fetches))
        started = time.perf_counter()
        outputs, steps, exhausted = run(n, tuple(sorted(names)))
        length.ran(steps, time.perf_counter() - started)
        if steps == 0:
            break
        context.steps = steps
        values = {}
        for hook, request in zip(hooks, requests):
            results = None
            if request is not None:
                results = tf.nest.map_structure(
                    lambda name: _to_numpy(values, outputs, name), request.fetches)
            hook.after_run(context, SessionRunValues(results, None, None))
        yield outputs, steps
        stop = context.stop_requested or exhausted
        if agree_to_stop is not None:
            stop = agree_to_stop(stop)
        if stop:
            break
    for hook in hooks:
        hook.end(session)


def run_hooked_loop(**kwargs):
    """Runs `hooked_runs` to the end; returns (outputs of the last run, total steps)."""
    last, total = None, 0
    for outputs, steps in hooked_runs(**kwargs):
        last, total = outputs, total + steps
    return last, total


def _to_numpy(cache, outputs, name):
    if name not in cache:
        value = outputs[name]
        cache[name] = value.numpy() if hasattr(value, "numpy") else np.asarray(value)
    return cache[name]


@tf.autograph.experimental.do_not_convert
def resolve_fetches(names, spec, outputs) -> dict:
    """Finds each hook-requested tensor: outputs, prediction keys, then graph names."""
    found = {}
    predictions = spec.predictions if isinstance(spec.predictions, dict) else {}
    for name in names:
        if name in outputs:
            continue
        if name in predictions:
            found[name] = predictions[name]
            continue
        found[name] = _graph_tensor(name, spec, predictions)
    return found


def _graph_tensor(name, spec, predictions):
    anchor = spec.loss if spec.loss is not None else tf.nest.flatten(spec.predictions)[0]
    graph = getattr(anchor, "graph", None)
    if graph is not None and not tf.executing_eagerly():
        try:
            return tf.identity(graph.get_tensor_by_name(name if ":" in name else f"{name}:0"))
        except (KeyError, ValueError):
            pass
    raise ValueError(
        f"A hook asked for the tensor {name!r}, which is not 'loss', 'global_step', a "
        f"prediction key ({sorted(predictions)}) or the name of a tensor in the model_fn "
        "(name one with tf.identity(x, name=...); with run_eagerly=True only the first three "
        "can be fetched)."
    )
