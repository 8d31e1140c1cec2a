"""Deterministic, readable variables for a traced `model_fn`.

A `model_fn` is called inside `tf.function`, possibly several times (one trace
per mode or input signature, and again after a retrace). TensorFlow only
allows a `tf.function` to create variables on its first call, and tf.estimator
relied on graph-level variable reuse that TF2 no longer has.

`VariableStore` restores that behaviour with a public mechanism,
`tf.variable_creator_scope`: every `tf.Variable` created while the store is
active is keyed by ``<current name scope>/<requested name>`` (plus an
occurrence index when the same key repeats within one trace). The first time a
key is seen the variable is created under `tf.init_scope()`, so it is an eager
variable that outlives the trace; every later trace gets the same object back.

The keys are the checkpoint names (``dnn/hiddenlayer_0/kernel``), so
checkpoints are name-based like tf.estimator's and `tf.train.list_variables`
is meaningful.

Under a `tf.distribute.Strategy` the store is entered inside each replica
function (MirroredStrategy runs one Python thread per device), so what a call
tracks (occurrence counts, the store in use) is per thread and no lock is held
across a trace (a lock guards only the check-then-create of one variable).
Variables are created on the first trace of the replicated step, under
``strategy.scope()``: the first replica to ask creates a distributed variable,
the others get the same object back. Each kind has its synchronization and
aggregation: trainable variables and optimizer slots are mirrored and updated
through ``strategy.extended.update``; local (metric) state is ``ON_READ`` with
``SUM`` aggregation, so reading it across replicas totals it; the global step
(``get_or_create(..., aggregation=ONLY_FIRST_REPLICA)``) is advanced once per
step.
"""

from __future__ import annotations

import collections
import contextlib
import re
import threading
from typing import Iterator

import tensorflow as tf

__all__ = [
    "NameMark",
    "VariableStore",
    "current_store",
    "local_variables",
    "unique_scope_name",
]

_state = threading.local()

_KERAS_SUFFIX = re.compile(r":\d+$")


@tf.autograph.experimental.do_not_convert
def current_store() -> "VariableStore | None":
    """Returns the store of the `model_fn` call in progress (on this thread), or None."""
    call = getattr(_state, "call", None)
    return None if call is None else call.store


class _Call:
    """What one `model_fn` call (one trace, one replica thread) has seen so far."""

    __slots__ = ("store", "seen", "scopes", "base")

    def __init__(self, store: "VariableStore"):
        self.store = store
        self.seen: dict[str, int] = {}
        self.scopes: dict[str, int] = {}
        # The name scope the call starts in: ``replica_1`` in MirroredStrategy's second
        # replica. Keys are relative to it, so every replica asks for the same variables.
        self.base = [p for p in tf.get_current_name_scope().split("/") if p]


@contextlib.contextmanager
def local_variables() -> Iterator[None]:
    """Marks variables created inside as *local*: per-call state (metrics).

    Local variables are never written to or expected in checkpoints; a fresh
    evaluation starts them from their initial value.
    """
    previous = getattr(_state, "local", False)
    _state.local = True
    try:
        yield
    finally:
        _state.local = previous


@tf.autograph.experimental.do_not_convert
def unique_scope_name(base: str) -> str:
    """Returns the absolute scope ``<current>/base``, ``<current>/base_1``, ...

    Unique within the current `model_fn` call; use it as
    ``tf.name_scope(unique_scope_name('dense') + '/')`` (the trailing slash
    stops the graph from renaming it again).

    Mirrors TF1's per-graph uniquification of layer scopes (``dense``,
    ``dense_1``): it restarts for every `model_fn` call, so names do not drift
    between the TRAIN, EVAL and PREDICT traces of one process.
    """
    current = _requested_scope()
    full = f"{current}/{base}" if current else base
    call = getattr(_state, "call", None)
    if call is None:
        return full
    count = call.scopes.get(full, 0)
    call.scopes[full] = count + 1
    return full if count == 0 else f"{full}_{count}"


class NameMark:
    """The naming state of the current `model_fn` call at one point (TF1's ``reuse=True``).

    Code run inside ``replay()`` names its variables, `unique_scope_name` scopes and Keras 3
    layers as if it ran right after the mark, so it gets the variables that the code run after
    the mark created: a GAN's discriminator called on real data, then again on generated data,
    shares one set of weights. Outside a `model_fn` call it does nothing.

    Example:
        >>> mark = NameMark()  # then: d_real = disc(real); with mark.replay(): d_fake = disc(fake)
    """

    def __init__(self) -> None:
        call = getattr(_state, "call", None)
        self._state = None if call is None else (dict(call.seen), dict(call.scopes), _keras_uids())

    @contextlib.contextmanager
    def replay(self) -> Iterator[None]:
        call = getattr(_state, "call", None)
        if call is None or self._state is None:
            yield
            return
        seen, scopes, keras = dict(call.seen), dict(call.scopes), _keras_uids()
        call.seen.clear()
        call.seen.update(self._state[0])
        call.scopes.clear()
        call.scopes.update(self._state[1])
        _set_keras_uids(self._state[2])
        try:
            yield
        finally:  # afterwards, names continue after whatever either run used
            _keep_max(call.seen, seen)
            _keep_max(call.scopes, scopes)
            if keras is not None:
                _set_keras_uids(_keep_max(_keras_uids() or {}, keras))


def _keep_max(counts: dict, other: dict) -> dict:
    """Raises each of ``counts`` to ``other``'s count where that is higher; returns ``counts``."""
    for key, count in other.items():
        counts[key] = max(counts.get(key, 0), count)
    return counts


def _keras_uids():
    try:
        from keras.src.backend.common import global_state  # Keras internals; no public hook exists.
    except ImportError:  # pragma: no cover - other Keras versions
        return None
    uids = global_state.get_global_attribute("object_name_uids")
    return None if uids is None else collections.defaultdict(int, uids)


def _set_keras_uids(uids) -> None:
    if uids is None:
        return
    from keras.src.backend.common import global_state  # Keras internals; no public hook exists.

    global_state.set_global_attribute("object_name_uids", collections.defaultdict(int, uids))


class VariableStore:
    """Creates each variable once and hands it back on every later trace.

    Example:
        >>> store = VariableStore()
        >>> @tf.function
        ... def f(x):
        ...     with store.scope():
        ...         w = tf.Variable(tf.ones_initializer()([2]), name="w")
        ...     return x * w
        >>> _ = f(tf.constant(2.0)); _ = f(tf.constant([1.0, 2.0]))
        >>> sorted(store.variables)
        ['w']
    """

    def __init__(self) -> None:
        self.variables: dict[str, tf.Variable] = {}
        self.local_names: set[str] = set()
        # Guards creation only (check-then-insert); never held across a trace.
        self._lock = threading.Lock()

    # -- public views ---------------------------------------------------
    @property
    def trainable_variables(self) -> list[tf.Variable]:
        return list(self.trainable_variables_by_key().values())

    def trainable_variables_by_key(self) -> dict[str, tf.Variable]:
        """The trainable (non-local) variables keyed by their checkpoint names."""
        return {k: v for k, v in self.variables.items() if v.trainable and k not in self.local_names}

    @property
    def global_variables(self) -> dict[str, tf.Variable]:
        """Variables that belong in checkpoints (everything but local ones)."""
        return {k: v for k, v in self.variables.items() if k not in self.local_names}

    def key_of(self, variable: tf.Variable) -> str | None:
        for key, var in self.variables.items():
            if var is variable:
                return key
        return None

    # -- creation ---------------------------------------------------------
    @contextlib.contextmanager
    def scope(self) -> Iterator["VariableStore"]:
        """Activates the store for one `model_fn` call (one trace) on this thread.

        Enter it inside the replica function: each replica thread of a strategy
        then has its own call state, and nothing is locked across the trace.
        """
        previous = getattr(_state, "call", None)
        _state.call = _Call(self)
        try:
            with _fresh_keras_names(), tf.variable_creator_scope(self._creator):
                yield self
        finally:
            _state.call = previous

    @tf.autograph.experimental.do_not_convert
    def get_or_create(self, key: str, initializer, *, trainable: bool = False,
                      dtype=None, local: bool = False,
                      aggregation=tf.VariableAggregation.NONE) -> tf.Variable:
        """Returns the variable stored under ``key``, creating it if needed.

        ``initializer`` is a callable returning the initial value, or a value.
        ``aggregation`` says how replicas of a strategy update it (the global
        step uses ``ONLY_FIRST_REPLICA``); local variables are ``ON_READ``/``SUM``.
        """
        existing = self.variables.get(key)
        if existing is not None:
            return existing
        kwargs = dict(trainable=trainable, dtype=dtype, name=key.replace("/", "_"),
                      aggregation=aggregation)
        if local and tf.distribute.has_strategy():
            kwargs.update(synchronization=tf.VariableSynchronization.ON_READ,
                          aggregation=tf.VariableAggregation.SUM)
        with self._lock:
            existing = self.variables.get(key)
            if existing is not None:
                return existing
            previous = getattr(_state, "direct", False)
            _state.direct = True  # our own creator must not key this variable a second time
            try:
                with tf.init_scope():
                    value = initializer() if callable(initializer) else initializer
                    var = tf.Variable(value, **kwargs)
            finally:
                _state.direct = previous
            self.variables[key] = var
            if local:
                self.local_names.add(key)
        return var

    def _key_for(self, requested_name: str | None) -> str:
        name = _KERAS_SUFFIX.sub("", requested_name or "Variable")
        call = _state.call
        parts = _requested_scope().split("/") if _requested_scope() else []
        if call.base and parts[:len(call.base)] == call.base:
            parts = parts[len(call.base):]
        scope = "/".join(parts)
        base = f"{scope}/{name}" if scope and not name.startswith(scope + "/") else name
        count = call.seen.get(base, 0)
        call.seen[base] = count + 1
        return base if count == 0 else f"{base}_{count}"

    def _creator(self, next_creator, **kwargs):
        if getattr(_state, "direct", False):
            return next_creator(**kwargs)
        key = self._key_for(kwargs.get("name"))
        existing = self.variables.get(key)
        if existing is not None:
            return existing
        initial_value = kwargs.get("initial_value")
        if isinstance(initial_value, tf.Tensor) and not _is_eager(initial_value):
            constant = tf.get_static_value(initial_value)
            if constant is None:
                raise ValueError(
                    f"Variable {key!r} was given an initial value computed inside the "
                    "traced model_fn. Pass an initializer callable instead, e.g. "
                    "tf.Variable(tf.zeros_initializer()(shape), ...) -> "
                    "tf.Variable(lambda: tf.zeros(shape), ...)."
                )
            kwargs["initial_value"] = constant
        # TF1 code (tf.compat.v1.metrics) marks its metric state with the
        # 'local_variables' collection: per-evaluation state, like ours.
        local = getattr(_state, "local", False) or "local_variables" in (kwargs.get("collections") or ())
        if local and tf.distribute.has_strategy() and kwargs.get("synchronization") in (
                None, tf.VariableSynchronization.AUTO):
            kwargs.update(synchronization=tf.VariableSynchronization.ON_READ,
                          aggregation=tf.VariableAggregation.SUM, trainable=False)
        with self._lock:
            existing = self.variables.get(key)
            if existing is not None:
                return existing
            with tf.init_scope():
                var = next_creator(**kwargs)
            self.variables[key] = var
            if local:
                self.local_names.add(key)
        return var


def _keras_scope_names() -> list[str]:
    try:
        from keras.src.backend.common import global_state  # Keras internals; no public hook exists.
    except ImportError:  # pragma: no cover - other Keras versions
        return []
    stack = global_state.get_global_attribute("name_scope_stack") or []
    return [entry.name for entry in stack]


def _requested_scope() -> str:
    """The current name scope as *requested*, before the graph made it unique.

    Inside a graph, entering ``tf.name_scope('dense')`` twice yields
    ``dense`` then ``dense_1``; Keras 3 enters a layer's scope once to build
    and once to call it, so the next layer, ``dense_1``, would land in
    ``dense_1_1``. Each Keras 3 scope on Keras' own stack entered exactly one
    TensorFlow scope, so the innermost components are replaced by the names
    Keras asked for.
    """
    parts = [p for p in tf.get_current_name_scope().split("/") if p]
    keras_names = _keras_scope_names()
    if keras_names and len(parts) >= len(keras_names):
        parts = parts[:len(parts) - len(keras_names)] + keras_names
    return "/".join(parts)


@contextlib.contextmanager
def _fresh_keras_names() -> Iterator[None]:
    """Restarts Keras 3's automatic layer names (dense, dense_1, ...) per call.

    Keras 3 numbers unnamed layers with a process-wide counter, so the second
    trace of a model_fn would name its layers dense_2, dense_3 and the keys
    would drift. The counter is swapped for a fresh one during the call and
    put back afterwards, leaving the user's own Keras models untouched.
    tf_keras needs nothing: it numbers per graph, and each trace is a graph.
    """
    try:
        from keras.src.backend.common import global_state  # Keras internals; no public hook exists.
    except ImportError:  # pragma: no cover - other Keras versions
        yield
        return
    saved = global_state.get_global_attribute("object_name_uids")
    saved_stack = global_state.get_global_attribute("name_scope_stack")
    global_state.set_global_attribute("object_name_uids", collections.defaultdict(int))
    global_state.set_global_attribute("name_scope_stack", [])
    try:
        yield
    finally:
        global_state.set_global_attribute("object_name_uids", saved)
        global_state.set_global_attribute("name_scope_stack", saved_stack)


def _is_eager(tensor) -> bool:
    try:
        tensor.numpy()
        return True
    except (AttributeError, NotImplementedError, TypeError, ValueError):
        return False
