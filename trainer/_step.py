"""Compiles one mode's step and runs it over a dataset iterator.

A *run* executes up to ``n`` steps inside one `tf.function` call: with
``n == 1`` the step reads the next element itself (end of data surfaces as
`tf.errors.OutOfRangeError`); with ``n > 1`` a `tf.while_loop` pulls optional
elements and stops early when the data ends (or, for training, after a step
whose loss is NaN or infinite). The per-step body is its own `tf.function`
(optionally XLA-compiled), traced once per set of fetched names, so the
variables it creates exist before anything executes — the Estimator restores
the checkpoint in between.

Under a `tf.distribute.Strategy` (not the default one) each step runs the body
in every replica with ``strategy.run``, always under ``strategy.scope()``; the
body is converted by AutoGraph once and traced inline into each calling
function (one step, the loop); the build is the first trace of that step (the
first replica creates each variable as a distributed variable, the others get
it back from the store).
Outputs are reduced by a declared rule (`reduce_outputs`): ``loss`` is
averaged, ``global_step`` taken from the first replica, ``predictions`` and
other batched tensors concatenated along the batch dimension (this worker's
replicas in replica order, which is the order of the global batch), and other
numeric scalars averaged.
"""

from __future__ import annotations

import weakref
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
        strategy: run the body in every replica of this strategy.
        multi_worker: the strategy spans workers (each step read as an agreed optional).
        stop_on_nonfinite: an output key (``"loss"``): a run of several steps ends after
            the first step whose value is NaN or infinite, so hooks see that step.
    """

    def __init__(self, body: Callable, element_spec, *, jit_compile: bool = False,
                 run_eagerly: bool = False, strategy: tf.distribute.Strategy | None = None,
                 multi_worker: bool = False, stop_on_nonfinite: str | None = None):
        self._body = body
        self._stop_key = stop_on_nonfinite
        self._element_spec = element_spec
        self._jit_compile = jit_compile
        self._run_eagerly = run_eagerly
        self._strategy = strategy
        self._multi_worker = multi_worker
        self._compiled: dict = {}
        self._loops: dict = {}
        self._ones: dict = {}
        self._fetch_key: tuple = ()
        self._one_call = None  # (run_one, weakref to its iterator, its concrete function)

    def build(self, fetch_names=(), iterator=None) -> None:
        """Traces the body (creating its variables) for these fetch names.

        Under a strategy the trace is of the replicated step, which takes the
        (distributed) ``iterator``; nothing is read from it.
        """
        single, run_one, _ = self._functions(fetch_names)
        if self._strategy is not None and not self._run_eagerly:
            with self._strategy.scope():
                run_one.get_concrete_function(iterator)

    def run(self, iterator, n: int, fetch_names=()):
        """Runs up to ``n`` steps; returns (outputs of the last step, steps run, exhausted)."""
        if self._strategy is None:
            return self._run(iterator, n, fetch_names)
        with self._strategy.scope():
            return self._run(iterator, n, fetch_names)

    def _run(self, iterator, n, fetch_names):
        single, run_one, run_many = self._functions(fetch_names)
        if self._multi_worker:
            return self._run_agreed(run_one, iterator, n)
        if (run_many is None and n > 1 and self._strategy is not None and not self._run_eagerly
                and not self._jit_compile):  # XLA under a strategy: one step per call
            run_many = self._distributed_loop(run_one, iterator)
        if n == 1 or run_many is None:
            try:
                outputs = self._one_step_function(run_one, iterator)(iterator)
            except (tf.errors.OutOfRangeError, StopIteration):
                return None, 0, True
            return outputs, 1, False
        outputs, done, exhausted = run_many(iterator, tf.constant(n, tf.int32))
        done = int(done)
        return (outputs if done else None), done, bool(exhausted)

    def _one_step_function(self, run_one, iterator):
        """``run_one``'s concrete function for this iterator, looked up once per iterator.

        Calling the `tf.function` itself hashes the iterator's type spec (every feature's
        shape and dtype) to find its trace, on every call: about 0.1 ms per step for the
        taxi model's 16 features when each call runs one step.
        """
        if self._run_eagerly or not hasattr(run_one, "get_concrete_function"):
            return run_one
        cached = self._one_call
        if cached is None or cached[0] is not run_one or cached[1]() is not iterator:
            try:
                ref = weakref.ref(iterator)
            except TypeError:  # an iterator without weak references: no cache
                return run_one
            cached = self._one_call = (run_one, ref, run_one.get_concrete_function(iterator))
        return cached[2]

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
        strategy = self._strategy
        if strategy is not None:
            return self._distributed_functions(key, step, features_spec, labels_spec)
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

            functions = (single, run_one, _make_loop(single, concrete.structured_outputs,
                                                     stop_key=self._stop_key))
        self._compiled[key] = functions
        return functions

    def _distributed_functions(self, key, step, features_spec, labels_spec):
        del features_spec, labels_spec  # The distributed iterator carries them.
        strategy = self._strategy
        # The body is traced inline into each calling function (run_one, the multi-step loop),
        # converted by AutoGraph here (a model_fn may use Python control flow on tensors; the
        # callers are not AutoGraph functions): an inner tf.function called from the loop's
        # tf.cond branch failed at run time with "You must feed a value for placeholder tensor
        # 'while/cond/Placeholder'" (TF 2.21). XLA needs its own function: with jit_compile,
        # runs under a strategy are one step each.
        if self._run_eagerly:
            replica_fn = step
        elif self._jit_compile:
            replica_fn = tf.function(step, jit_compile=True)
        else:
            replica_fn = tf.autograph.to_graph(step)

        def one(element):
            features, labels = split_element(element)
            return reduce_outputs(strategy, strategy.run(replica_fn, args=(features, labels)))

        if self._run_eagerly:
            def run_eager(iterator):
                return one(next(iterator))

            functions = (step, run_eager, None)
        else:
            @tf.function(autograph=False)
            def run_one(iterator):
                return one(next(iterator))

            self._ones[id(run_one)] = one
            functions = (step, run_one, None)
        self._compiled[key] = functions
        return functions

    def _run_agreed(self, run_one, iterator, n):
        """Several workers: step by step, each element read as an optional whose presence the
        workers agree on, so the end of the data stops all of them at the same step (next()
        would fail on one worker and leave the others waiting in a collective)."""
        one = self._ones.get(("function", id(run_one)))
        if one is None:
            one = self._ones[("function", id(run_one))] = tf.function(self._ones[id(run_one)],
                                                                     autograph=False)
        outputs, done = None, 0
        while done < n:
            optional = iterator.get_next_as_optional()
            if not bool(optional.has_value()):
                return outputs, done, True
            outputs = one(optional.get_value())
            done += 1
        return outputs, done, False

    def _distributed_loop(self, run_one, iterator):
        """The multi-step loop under a strategy, shaped by one trace of a single step."""
        loop = self._loops.get(id(run_one))
        if loop is None:
            structure = run_one.get_concrete_function(iterator).structured_outputs
            loop = self._loops[id(run_one)] = _make_loop(self._ones[id(run_one)], structure,
                                                         whole_element=True, stop_key=self._stop_key)
        return loop


def reduce_outputs(strategy: tf.distribute.Strategy, outputs: dict) -> dict:
    """One value per output from the replicas' values (see the module docstring)."""
    reduced = {}
    for name, value in outputs.items():
        if name == "global_step":
            reduced[name] = strategy.experimental_local_results(value)[0]
        elif name == "loss":
            reduced[name] = strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
        else:
            reduced[name] = tf.nest.map_structure(
                lambda v, name=name: _reduce_one(strategy, name, v), value)
    return reduced


def _reduce_one(strategy, name, value):
    local = strategy.experimental_local_results(value)
    first = local[0]
    if len(local) == 1:
        return first
    if not isinstance(first, tf.Tensor):
        raise ValueError(
            f"The output {name!r} is a {type(first).__name__} in each replica of "
            f"{type(strategy).__name__}; only tensors can be gathered or averaged across "
            "replicas. How to fix: fetch a dense tensor (tf.sparse.to_dense) or a scalar.")
    if first.shape.rank == 0:
        if not (first.dtype.is_floating or first.dtype.is_integer):
            raise ValueError(
                f"The output {name!r} is a {first.dtype.name} scalar in each replica of "
                f"{type(strategy).__name__}; it cannot be averaged across replicas. How to fix: "
                "fetch a numeric value, or a batched tensor (gathered across replicas).")
        return strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
    # This worker's replicas, in replica order (the order of the global batch). A
    # concatenation, not a collective: any dtype, and replicas may hold uneven batches.
    return tf.concat(local, axis=0)


def _make_loop(single, output_structure, *, whole_element=False, stop_key=None):
    flat = tf.nest.flatten(output_structure)
    if any(not isinstance(t, tf.Tensor) for t in flat):
        return None  # sparse/ragged outputs: run step by step
    if stop_key is not None and not (isinstance(output_structure, dict) and stop_key in output_structure
                                     and output_structure[stop_key].dtype.is_floating):
        stop_key = None

    def finite(outputs):
        if stop_key is None:
            return tf.constant(True)
        return tf.reduce_all(tf.math.is_finite(outputs[stop_key]))

    def initial():
        return tf.nest.map_structure(
            lambda t: tf.zeros([d if d is not None else 0 for d in t.shape.as_list()]
                               if t.shape.rank is not None else [], t.dtype),
            output_structure)

    invariants = tf.nest.map_structure(lambda t: tf.TensorShape(None) if t.shape.rank is None
                                       else tf.TensorShape([None] * t.shape.rank), output_structure)

    @tf.function(autograph=False)
    def run_many(iterator, n):
        def cond(i, exhausted, outputs):
            return tf.logical_and(tf.logical_and(i < n, tf.logical_not(exhausted)), finite(outputs))

        def loop_body(i, exhausted, outputs):
            optional = iterator.get_next_as_optional()

            def step():
                if whole_element:
                    return i + 1, tf.constant(False), single(optional.get_value())
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
