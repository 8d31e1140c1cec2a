"""The SessionRunHook protocol of tf.estimator, on an eager/`tf.function` loop.

There is no `tf.Session` any more, so a "run" is one call of the compiled
step function: one step, `RunConfig.steps_per_loop` steps, or (the default,
``steps_per_loop=None``) as many steps as every hook allows, which each hook
says with `SessionRunHook.steps_until_needed`. The protocol is otherwise the
same:

``begin()`` → ``after_create_session(session, coord)`` → for each run
``before_run(run_context)`` → *run* → ``after_run(run_context, run_values)``
→ ``end(session)``.

What a hook can fetch: ``before_run`` returns `SessionRunArgs` whose
``fetches`` name tensors by string — ``'loss'``, ``'global_step'``, a key of
the `model_fn`'s predictions, or the name of any tensor in the traced step
(``tf.identity(x, name='my_tensor')`` → ``'my_tensor'``). Fetches may be a
single name, a list, or a dict of names; ``run_values.results`` mirrors that
structure with numpy values.
"""

from __future__ import annotations

import collections

__all__ = [
    "SessionRunHook",
    "SessionRunArgs",
    "SessionRunContext",
    "SessionRunValues",
]


class SessionRunHook:
    """Hook to extend calls to train/evaluate/predict. All methods are optional.

    Example — the seeds' time-based stop, written against this base class:

        >>> import time
        >>> class TimeBasedStopHook(SessionRunHook):
        ...     def __init__(self, run_time_secs):
        ...         self._run_time_secs = run_time_secs
        ...     def begin(self):
        ...         self._start_time = time.time()
        ...     def after_run(self, run_context, run_values):
        ...         if time.time() - self._start_time >= self._run_time_secs:
        ...             run_context.request_stop()
    """

    def begin(self):
        """Called once before the first run, when the step is about to be built."""

    def after_create_session(self, session, coord):  # pylint: disable=unused-argument
        """Called once variables exist and are restored; ``session`` is a `TrainingSession`."""

    def before_run(self, run_context):  # pylint: disable=unused-argument
        """Called before each run; may return `SessionRunArgs` naming tensors to fetch."""
        return None

    def after_run(self, run_context, run_values):  # pylint: disable=unused-argument
        """Called after each run with the fetched values."""

    def end(self, session):  # pylint: disable=unused-argument
        """Called once at the end (not when the loop raised)."""

    def steps_until_needed(self, global_step: int) -> int | None:  # pylint: disable=unused-argument
        """How many steps the next run may take before this hook must see one (beyond tf.estimator).

        With ``RunConfig(steps_per_loop=None)`` (the default) the loop runs as many steps
        per compiled call as every hook allows: the smallest answer of all hooks. ``None``
        means any number (the hook is happy with the last step's values of each run);
        ``k`` means the next run ends at most ``k`` steps from now, so the hook's
        ``after_run`` sees the values of exactly that step. The default, 1, keeps
        tf.estimator's contract (``after_run`` after every step) for hooks that do not say
        otherwise. The standard hooks answer from their schedule (every N steps: the steps
        left to the next trigger; every N seconds: None).
        """
        return 1


class SessionRunArgs(collections.namedtuple("SessionRunArgs", ["fetches", "feed_dict", "options"])):
    """What a hook asks for in `before_run`: tensor names to fetch.

    ``feed_dict`` and ``options`` are accepted for source compatibility and must
    be None: there is no feeding in TF2.
    """

    def __new__(cls, fetches, feed_dict=None, options=None):
        if feed_dict is not None:
            raise ValueError(
                "SessionRunArgs got feed_dict; TF2 has no feeding. Put the values in the "
                "input_fn's dataset instead."
            )
        return super().__new__(cls, fetches, feed_dict, options)


class SessionRunValues(collections.namedtuple("SessionRunValues", ["results", "options", "run_metadata"])):
    """What `after_run` receives: ``results`` mirrors the hook's fetches."""


class SessionRunContext:
    """Passed to `before_run`/`after_run`; lets a hook stop the loop."""

    def __init__(self, original_args=None, session=None, steps=1):
        self._original_args = original_args
        self._session = session
        self._stop_requested = False
        self.steps = steps

    # ``steps``: in before_run, how many steps this run takes at most; in after_run, how
    # many it took (fewer when the data ended). 1 under tf.estimator's per-step runs.

    @property
    def original_args(self):
        return self._original_args

    @property
    def session(self):
        return self._session

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested

    def request_stop(self) -> None:
        """Ends the loop after the current run (the hooks' `end` still runs)."""
        self._stop_requested = True


class _TF1Hook(SessionRunHook):
    """A ``tf.compat.v1.train.SessionRunHook`` (tf.estimator's own hook class) run by this loop.

    Its methods are called as tf.estimator called them, once per step; ``before_run`` may
    return TF1's ``SessionRunArgs`` (fetches by name, no ``feed_dict``).
    """

    def __init__(self, hook):
        self.hook = hook

    def begin(self):
        self.hook.begin()

    def after_create_session(self, session, coord):
        self.hook.after_create_session(session, coord)

    def before_run(self, run_context):
        request = self.hook.before_run(run_context)
        if request is None:
            return None
        if getattr(request, "feed_dict", None) is not None:
            raise ValueError(f"Hook {self.hook!r} returned SessionRunArgs with a feed_dict; TF2 has no "
                             "feeding. Put the values in the input_fn's dataset instead.")
        return SessionRunArgs(request.fetches)

    def after_run(self, run_context, run_values):
        self.hook.after_run(run_context, run_values)

    def end(self, session):
        self.hook.end(session)

    def __repr__(self):
        return repr(self.hook)


def as_hook(hook):
    """``hook`` as a `SessionRunHook` (tf.estimator's own hook class is adapted), or None."""
    if isinstance(hook, SessionRunHook):
        return hook
    import tensorflow as tf

    if isinstance(hook, tf.compat.v1.train.SessionRunHook):
        return _TF1Hook(hook)
    return None

