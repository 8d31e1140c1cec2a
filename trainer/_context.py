"""What a `model_fn` call can reach while it runs: mode, global step, tape."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from typing import Iterator

import tensorflow as tf

__all__ = ["get_global_step", "get_or_create_global_step"]

_local = threading.local()


@dataclasses.dataclass
class ModelFnContext:
    """Per-call state the Estimator sets around a `model_fn` call."""

    mode: str
    global_step: tf.Variable
    tape: tf.GradientTape | None = None


@tf.autograph.experimental.do_not_convert
def current() -> ModelFnContext | None:
    return getattr(_local, "context", None)


@contextlib.contextmanager
def model_fn_context(context: ModelFnContext) -> Iterator[ModelFnContext]:
    previous = current()
    _local.context = context
    try:
        yield context
    finally:
        _local.context = previous


@tf.autograph.experimental.do_not_convert
def get_global_step() -> tf.Variable | None:
    """Returns the global step variable inside a `model_fn`, else None.

    The training loop makes sure it advances by one per step: when the
    `model_fn`'s train_op did not increment it (the optimizer was not given
    ``global_step``), the loop does.

    Example:
        >>> get_global_step() is None  # outside a model_fn call
        True
    """
    context = current()
    return None if context is None else context.global_step


def get_or_create_global_step() -> tf.Variable:
    """Like `get_global_step`, but raises outside a `model_fn` (nothing to create there)."""
    step = get_global_step()
    if step is None:
        raise ValueError(
            "get_or_create_global_step was called outside a model_fn. The Estimator owns "
            "the global step; read it with Estimator.get_variable_value('global_step')."
        )
    return step
