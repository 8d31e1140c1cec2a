"""Compiles one mode's step and runs it over a dataset iterator.

A *run* executes up to ``n`` steps inside one `tf.function` call: with
``n == 1`` the step reads the next element itself (end of data surfaces as
`tf.errors.OutOfRangeError`); with ``n > 1`` a `tf.while_loop` pulls optional
elements and stops early when the data ends. The per-step body is its own
`tf.function` (optionally XLA-compiled), traced once per set of fetched names,
so the variables it creates exist before anything executes — the Estimator
restores the checkpoint in between.
"""

from __future__ import annotations

from typing import Callable

import tensorflow as tf

from trainer._calling import split_element


class CompiledStep:
    """Runs ``body(features, labels, fetch_names) -> dict`` efficiently.

    Args:
        body: the per-step Python function.
        element_spec: the dataset's element spec.
        jit_compile: XLA-compile the body.
        run_eagerly: no `tf.function` at all (for debugging a model_fn).
    """

    def __init__(self, body: Callable, element_spec, *, jit_compile: bool = False,
                 run_eagerly: bool = False):
        self._body = body
        self._element_spec = element_spec
        self._jit_compile = jit_compile
        self._run_eagerly = run_eagerly
        self._compiled: dict = {}
        self._fetch_key: tuple = ()

    def build(self, fetch_names=()) -> None:
        """Traces the body (creating its variables) for these fetch names."""
        self._functions(fetch_names)

    def run(self, iterator, n: int, fetch_names=()):
        """Runs up to ``n`` steps; returns (outputs of the last step, steps run, exhausted)."""
        single, run_one, run_many = self._functions(fetch_names)
        if n == 1 or run_many is None:
            try:
                outputs = run_one(iterator)
            except (tf.errors.OutOfRangeError, StopIteration):
                return None, 0, True
            return outputs, 1, False
        outputs, done, exhausted = run_many(iterator, tf.constant(n, tf.int32))
        done = int(done)
        return (outputs if done else None), done, bool(exhausted)

    # -- building -------------------------------------------------------------
    def _functions(self, fetch_names):
        # The set of fetched names only grows, so a hook that fetches every
        # N steps causes one retrace, not one per change.
        key = tuple(sorted(set(self._fetch_key) | set(fetch_names)))
        if key in self._compiled:
            return self._compiled[key]
        self._fetch_key = key
        body = self._body

        def step(features, labels):
            return body(features, labels, key)

        features_spec, labels_spec = split_element(self._element_spec)
        # AutoGraph on: a model_fn may use Python control flow on tensors.
        single = tf.function(step, jit_compile=self._jit_compile or None)
        # Tracing creates the variables (and shows the spec) without running a step,
        # also when the steps will run eagerly.
        concrete = single.get_concrete_function(features_spec, labels_spec)
        if self._run_eagerly:
            def run_eager(iterator):
                features, labels = split_element(next(iterator))
                return step(features, labels)

            functions = (step, run_eager, None)
        else:
            @tf.function(autograph=False)
            def run_one(iterator):
                features, labels = split_element(next(iterator))
                return single(features, labels)

            functions = (single, run_one, _make_loop(single, concrete.structured_outputs))
        self._compiled[key] = functions
        return functions


def _make_loop(single, output_structure):
    flat = tf.nest.flatten(output_structure)
    if any(not isinstance(t, tf.Tensor) for t in flat):
        return None  # sparse/ragged outputs: run step by step

    def initial():
        return tf.nest.map_structure(
            lambda t: tf.zeros([d if d is not None else 0 for d in t.shape.as_list()]
                               if t.shape.rank is not None else [], t.dtype),
            output_structure)

    invariants = tf.nest.map_structure(lambda t: tf.TensorShape(None) if t.shape.rank is None
                                       else tf.TensorShape([None] * t.shape.rank), output_structure)

    @tf.function(autograph=False)
    def run_many(iterator, n):
        def cond(i, exhausted, _):
            return tf.logical_and(i < n, tf.logical_not(exhausted))

        def loop_body(i, exhausted, outputs):
            optional = iterator.get_next_as_optional()

            def step():
                features, labels = split_element(optional.get_value())
                return i + 1, tf.constant(False), single(features, labels)

            def stop():
                return i, tf.constant(True), outputs

            return tf.cond(optional.has_value(), step, stop)

        i, exhausted, outputs = tf.while_loop(
            cond, loop_body, (tf.constant(0), tf.constant(False), initial()),
            shape_invariants=(tf.TensorShape([]), tf.TensorShape([]), invariants))
        return outputs, i, exhausted

    return run_many
