"""Optimizers for `model_fn`s, with tf.estimator's names, defaults and slot names.

They update variables with TensorFlow's fused `tf.raw_ops.ResourceApply*`
kernels (the same kernels tf.estimator's optimizers used), keep their slots in
the Estimator's variable store under TF1's names (``<var>/Adagrad``,
``<var>/Adam_1``...), and take a tensor loss inside a traced `model_fn`: the
gradient comes from the tape the Estimator opens around the call.

Under a `tf.distribute.Strategy` with several replicas, each replica's loss is
scaled by ``1 / num_replicas_in_sync`` before its gradient is taken (so a mean
loss gives the gradient of the global batch, as tf.estimator did), the
gradients are summed across replicas (``batch_reduce_to``) in a
``merge_call``, and each variable is updated with the same fused kernel on
every device through ``strategy.extended.update``.

Example (inside a model_fn):
    >>> optimizer = Adagrad(learning_rate=0.05)
    >>> # train_op = optimizer.minimize(loss, global_step=trainer.get_global_step())
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Mapping

import tensorflow as tf

from trainer import _context
from trainer.mode_keys import ModeKeys
from trainer.variables import current_store

__all__ = ["Optimizer", "SGD", "Adagrad", "Adam", "Ftrl", "RMSProp", "Momentum", "get",
           "minimize_split", "DEFAULT_LEARNING_RATES"]

# tf.estimator's canned defaults (DNN: Adagrad 0.05; Linear: Ftrl 0.2 capped).
DEFAULT_LEARNING_RATES = {"Adagrad": 0.05, "Adam": 0.001, "Ftrl": 0.05, "RMSProp": 0.05,
                          "SGD": 0.05, "Momentum": 0.05}


class Optimizer:
    """Base class: subclasses implement `_apply_dense` and `_apply_sparse`.

    Args:
        learning_rate: a float, a callable of the global step, or a
            `keras.optimizers.schedules.LearningRateSchedule`.
        name: the slot suffix (``<var>/<name>``).
    """

    slot_names: tuple = ()

    def __init__(self, learning_rate, *, name: str | None = None):
        if isinstance(learning_rate, numbers.Real) and not isinstance(learning_rate, bool):
            learning_rate = float(learning_rate)
        # A tensor: e.g. tf.compat.v1.train.exponential_decay(..., global_step, ...) called in
        # the model_fn, where it returns a tensor of the step (a callable when eager).
        tensor = isinstance(learning_rate, (tf.Tensor, tf.Variable))
        if not (callable(learning_rate) or tensor or isinstance(learning_rate, float)):
            raise TypeError(
                f"{type(self).__name__} got learning_rate={learning_rate!r}; expected a float, "
                "a scalar tensor, a callable of the global step or a Keras LearningRateSchedule."
            )
        if tensor and learning_rate.shape.rank not in (None, 0):
            raise ValueError(f"{type(self).__name__} got a learning_rate tensor of shape "
                             f"{learning_rate.shape}; expected a scalar.")
        if isinstance(learning_rate, float) and learning_rate <= 0:
            raise ValueError(
                f"{type(self).__name__} got learning_rate={learning_rate!r}; expected > 0."
            )
        self.learning_rate = learning_rate
        self.name = name or type(self).__name__

    # -- the TF1 surface --------------------------------------------------
    @tf.autograph.experimental.do_not_convert
    def minimize(self, loss, global_step=None, var_list=None, name=None):
        """Computes gradients of ``loss`` and applies them; returns the update op."""
        del name
        if _outside_train(_context.current()):
            return tf.no_op()
        grads_and_vars = self.compute_gradients(loss, var_list=var_list)
        return self.apply_gradients(grads_and_vars, global_step=global_step)

    @tf.autograph.experimental.do_not_convert
    def compute_gradients(self, loss, var_list=None):
        """Returns ``[(gradient, variable)]`` for the trainable variables (or ``var_list``)."""
        context = _context.current()
        if _outside_train(context):
            return []  # tf.estimator tolerated a train op built in every mode; it never runs
        if context is None or context.tape is None:
            raise ValueError(
                f"{type(self).__name__}.compute_gradients was called outside a TRAIN-mode "
                "model_fn. Call optimizer.minimize(loss, ...) only in the TRAIN branch of the "
                "model_fn that the Estimator runs."
            )
        if var_list is None:
            store = current_store()
            var_list = store.trainable_variables if store is not None else context.tape.watched_variables()
        var_list = list(var_list)
        grads = context.tape.gradient(scale_loss_for_replicas(loss), var_list)
        pairs = [(g, v) for g, v in zip(grads, var_list) if g is not None]
        if not pairs:
            names = [v.name for v in var_list]
            raise ValueError(
                f"No gradients for any of the variables {names}. Does the loss depend on "
                "the trainable variables the model_fn created?"
            )
        return pairs

    @tf.autograph.experimental.do_not_convert
    def apply_gradients(self, grads_and_vars, global_step=None, name=None):
        """Applies gradients; increments ``global_step`` if given. Returns an op."""
        del name
        if _outside_train(_context.current()):
            # An EVAL/PREDICT model_fn that builds its train op anyway (as tf.estimator allowed):
            # nothing may change the variables there, and the op is never fetched.
            return tf.no_op()
        grads_and_vars = [(g, v) for g, v in grads_and_vars if g is not None]
        self._create_non_slots()
        slots = [self._slots_for(var) for _, var in grads_and_vars]
        replica = tf.distribute.get_replica_context()
        if replica is None:
            raise ValueError(
                f"{type(self).__name__}.apply_gradients was called in cross-replica context; call "
                "it inside the model_fn, which the Estimator runs in each replica.")
        lr = self._lr_tensor(global_step)
        if tf.distribute.has_strategy():
            dense, masks = _densify_sparse(grads_and_vars)
            finish = replica.merge_call(self._distributed_apply, args=(dense, masks, slots, lr))
        else:
            updates = [self._apply_one(grad, var, var_slots, lr)
                       for (grad, var), var_slots in zip(grads_and_vars, slots)]
            with tf.control_dependencies(updates):
                finish = self._finish(_assign_here)
        if global_step is not None:
            with tf.control_dependencies([finish]):
                finish = global_step.assign_add(1)
        return finish

    def _apply_one(self, grad, var, slots, lr):
        if isinstance(grad, tf.IndexedSlices):
            values, indices = _deduplicate(grad)
            return self._apply_sparse(values, indices, var, slots, lr)
        return self._apply_dense(grad, var, slots, lr)

    def _distributed_apply(self, strategy, grads_and_vars, masks, slots, lr):
        """In cross-replica context: sum the replicas' gradients, update every copy.

        A sparse gradient arrives as a dense per-row sum plus a mask of the rows some
        replica touched (see `_densify_sparse`); after the sum it is applied sparsely
        to those rows only, so Momentum or RMSProp leave untouched rows alone exactly
        as on one device.
        """
        mask_pairs = [(m, v) for m, (_, v) in zip(masks, grads_and_vars) if m is not None]
        reduced = strategy.extended.batch_reduce_to(tf.distribute.ReduceOp.SUM,
                                                    list(grads_and_vars) + mask_pairs)
        grads, reduced_masks = reduced[:len(grads_and_vars)], iter(reduced[len(grads_and_vars):])
        updates = []
        for grad, mask, (_, var), var_slots in zip(grads, masks, grads_and_vars, slots):
            if mask is None:
                updates.append(strategy.extended.update(
                    var, lambda v, g, r, *s: self._apply_one(g, v, list(s), r),
                    args=(grad, lr, *var_slots), group=True))
            else:
                updates.append(strategy.extended.update(
                    var, lambda v, g, m, r, *s: self._apply_rows(g, m, v, list(s), r),
                    args=(grad, next(reduced_masks), lr, *var_slots), group=True))
        with tf.control_dependencies(updates):
            def assign(var, value_fn):
                return strategy.extended.update(var, lambda v: v.assign(value_fn(v)), group=True)

            return self._finish(assign)

    def _apply_rows(self, dense, mask, var, slots, lr):
        rows = tf.reshape(tf.where(mask > 0), [-1])
        return self._apply_sparse(tf.gather(dense, rows), rows, var, slots, lr)

    # -- subclass API -------------------------------------------------------
    def _slot_initial_values(self, var):
        """Initial values of the slots, in `slot_names` order."""
        return [tf.zeros(var.shape, var.dtype) for _ in self.slot_names]

    def _create_non_slots(self):
        pass

    def _finish(self, assign):
        """Updates non-slot state after the variables: ``assign(var, fn)`` sets ``var`` to ``fn(var)``."""
        del assign
        return tf.no_op()

    def _apply_dense(self, grad, var, slots, lr):
        raise NotImplementedError

    def _apply_sparse(self, values, indices, var, slots, lr):
        # Default: densify. Subclasses with a fused sparse kernel override this.
        dense = tf.math.unsorted_segment_sum(values, indices, tf.shape(var, out_type=indices.dtype)[0])
        return self._apply_dense(dense, var, slots, lr)

    # -- helpers ------------------------------------------------------------
    def _lr_tensor(self, global_step):
        lr = self.learning_rate
        if callable(lr) and not isinstance(lr, (tf.Tensor, tf.Variable)):
            step = global_step if global_step is not None else _context.get_global_step()
            lr = lr(step)
        return tf.cast(lr, tf.float32)

    def _variable(self, key, initial_value):
        store = current_store()
        if store is None:
            raise ValueError(
                f"{type(self).__name__} must be used inside a model_fn run by an Estimator "
                "(it keeps its slots in the Estimator's variable store)."
            )
        return store.get_or_create(key, initial_value, trainable=False)

    def _slots_for(self, var):
        store = current_store()
        var_key = store.key_of(var) if store is not None else None
        if var_key is None:
            var_key = var.name.split(":")[0]
        slots = []
        for i, _ in enumerate(self.slot_names):
            suffix = self.name if i == 0 else f"{self.name}_{i}"
            initial = lambda i=i: self._slot_initial_values(var)[i]  # noqa: E731
            slots.append(self._variable(f"{var_key}/{suffix}", initial))
        return slots


def _assign_here(var, value_fn):
    return var.assign(value_fn(var))


def _densify_sparse(grads_and_vars):
    """Sparse gradients as (a dense per-row sum, a per-row count of the entries touching it).

    Replicas touch different rows, so their IndexedSlices differ in size and cannot
    be all-reduced as they are; the dense sum and the mask can, at a cost of one
    vocabulary-sized tensor per variable and step.
    """
    dense, masks = [], []
    for grad, var in grads_and_vars:
        if isinstance(grad, tf.IndexedSlices):
            rows = tf.shape(var, out_type=grad.indices.dtype)[0]
            dense.append((tf.math.unsorted_segment_sum(grad.values, grad.indices, rows), var))
            # A count, not a max: unsorted_segment_max fills untouched rows with the
            # lowest float, which would cancel another replica's touch in the sum.
            masks.append(tf.math.unsorted_segment_sum(
                tf.ones_like(grad.indices, tf.float32), grad.indices, rows))
        else:
            dense.append((grad, var))
            masks.append(None)
    return dense, masks


@tf.autograph.experimental.do_not_convert
def scale_loss_for_replicas(loss):
    """``loss / num_replicas_in_sync`` inside a replica of a multi-replica strategy, else ``loss``.

    Gradients are summed across replicas, so each replica's mean loss is scaled
    down for their sum to be the gradient of the global batch's mean.
    """
    replica = tf.distribute.get_replica_context()
    if replica is None or replica.num_replicas_in_sync == 1:
        return loss
    return loss / tf.cast(replica.num_replicas_in_sync, loss.dtype)


def _deduplicate(grad: tf.IndexedSlices):
    unique, positions = tf.unique(grad.indices)
    values = tf.math.unsorted_segment_sum(grad.values, positions, tf.shape(unique)[0])
    return values, unique


class SGD(Optimizer):
    """Plain gradient descent (tf.compat.v1.train.GradientDescentOptimizer)."""

    def __init__(self, learning_rate=0.05, *, name="GradientDescent"):
        super().__init__(learning_rate, name=name)

    def _apply_dense(self, grad, var, slots, lr):
        return tf.raw_ops.ResourceApplyGradientDescent(var=var.handle, alpha=tf.cast(lr, var.dtype), delta=grad)

    def _apply_sparse(self, values, indices, var, slots, lr):
        return tf.raw_ops.ResourceScatterAdd(resource=var.handle, indices=indices,
                                             updates=-tf.cast(lr, var.dtype) * values)


class Momentum(Optimizer):
    """Momentum SGD, optionally Nesterov (tf.compat.v1.train.MomentumOptimizer)."""

    slot_names = ("accum",)

    def __init__(self, learning_rate=0.05, momentum=0.9, *, use_nesterov=False, name="Momentum"):
        super().__init__(learning_rate, name=name)
        self.momentum = momentum
        self.use_nesterov = use_nesterov

    def _apply_dense(self, grad, var, slots, lr):
        return tf.raw_ops.ResourceApplyMomentum(
            var=var.handle, accum=slots[0].handle, lr=tf.cast(lr, var.dtype), grad=grad,
            momentum=tf.cast(self.momentum, var.dtype), use_nesterov=self.use_nesterov)

    def _apply_sparse(self, values, indices, var, slots, lr):
        return tf.raw_ops.ResourceSparseApplyMomentum(
            var=var.handle, accum=slots[0].handle, lr=tf.cast(lr, var.dtype), grad=values,
            indices=indices, momentum=tf.cast(self.momentum, var.dtype),
            use_nesterov=self.use_nesterov)


class Adagrad(Optimizer):
    """Adagrad with TF1's defaults (initial accumulator 0.1, no epsilon)."""

    slot_names = ("accumulator",)

    def __init__(self, learning_rate=0.05, initial_accumulator_value=0.1, *, name="Adagrad"):
        super().__init__(learning_rate, name=name)
        if initial_accumulator_value <= 0:
            raise ValueError(
                f"Adagrad got initial_accumulator_value={initial_accumulator_value!r}; expected > 0."
            )
        self.initial_accumulator_value = initial_accumulator_value

    def _slot_initial_values(self, var):
        return [tf.fill(var.shape, tf.cast(self.initial_accumulator_value, var.dtype))]

    def _apply_dense(self, grad, var, slots, lr):
        return tf.raw_ops.ResourceApplyAdagrad(var=var.handle, accum=slots[0].handle,
                                               lr=tf.cast(lr, var.dtype), grad=grad)

    def _apply_sparse(self, values, indices, var, slots, lr):
        return tf.raw_ops.ResourceSparseApplyAdagrad(var=var.handle, accum=slots[0].handle,
                                                     lr=tf.cast(lr, var.dtype), grad=values,
                                                     indices=indices)


class Adam(Optimizer):
    """Adam with TF1's defaults and slot names (``<var>/Adam``, ``<var>/Adam_1``)."""

    slot_names = ("m", "v")

    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8, *, name="Adam"):
        super().__init__(learning_rate, name=name)
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon
        self._powers = None

    def _create_non_slots(self):
        self._powers = (
            self._variable(f"{self.name}/beta1_power", lambda: tf.constant(self.beta1, tf.float32)),
            self._variable(f"{self.name}/beta2_power", lambda: tf.constant(self.beta2, tf.float32)))

    def _apply_dense(self, grad, var, slots, lr):
        b1p, b2p = self._powers
        cast = lambda x: tf.cast(x, var.dtype)  # noqa: E731
        return tf.raw_ops.ResourceApplyAdam(
            var=var.handle, m=slots[0].handle, v=slots[1].handle, beta1_power=cast(b1p),
            beta2_power=cast(b2p), lr=cast(lr), beta1=cast(self.beta1), beta2=cast(self.beta2),
            epsilon=cast(self.epsilon), grad=grad)

    def _finish(self, assign):
        b1p, b2p = self._powers
        return tf.group(assign(b1p, lambda v: v * self.beta1), assign(b2p, lambda v: v * self.beta2))


class Ftrl(Optimizer):
    """FTRL-Proximal, the linear models' default (tf.compat.v1.train.FtrlOptimizer)."""

    slot_names = ("accum", "linear")

    def __init__(self, learning_rate=0.05, learning_rate_power=-0.5,
                 initial_accumulator_value=0.1, l1_regularization_strength=0.0,
                 l2_regularization_strength=0.0, *, l2_shrinkage_regularization_strength=0.0,
                 name="Ftrl"):
        super().__init__(learning_rate, name=name)
        if learning_rate_power > 0:
            raise ValueError(f"Ftrl got learning_rate_power={learning_rate_power!r}; expected <= 0.")
        self.learning_rate_power = learning_rate_power
        self.initial_accumulator_value = initial_accumulator_value
        self.l1 = l1_regularization_strength
        self.l2 = l2_regularization_strength
        self.l2_shrinkage = l2_shrinkage_regularization_strength

    def _slot_initial_values(self, var):
        return [tf.fill(var.shape, tf.cast(self.initial_accumulator_value, var.dtype)),
                tf.zeros(var.shape, var.dtype)]

    def _args(self, var, lr):
        cast = lambda x: tf.cast(x, var.dtype)  # noqa: E731
        return dict(lr=cast(lr), l1=cast(self.l1), l2=cast(self.l2),
                    l2_shrinkage=cast(self.l2_shrinkage), lr_power=cast(self.learning_rate_power))

    def _apply_dense(self, grad, var, slots, lr):
        return tf.raw_ops.ResourceApplyFtrlV2(var=var.handle, accum=slots[0].handle,
                                              linear=slots[1].handle, grad=grad,
                                              **self._args(var, lr))

    def _apply_sparse(self, values, indices, var, slots, lr):
        return tf.raw_ops.ResourceSparseApplyFtrlV2(var=var.handle, accum=slots[0].handle,
                                                    linear=slots[1].handle, grad=values,
                                                    indices=indices, **self._args(var, lr))


class RMSProp(Optimizer):
    """RMSProp with TF1's defaults (decay 0.9, epsilon 1e-10, ``ms`` starts at 1)."""

    slot_names = ("ms", "mom")

    def __init__(self, learning_rate=0.05, decay=0.9, momentum=0.0, epsilon=1e-10, *, name="RMSProp"):
        super().__init__(learning_rate, name=name)
        self.decay, self.momentum, self.epsilon = decay, momentum, epsilon

    def _slot_initial_values(self, var):
        return [tf.ones(var.shape, var.dtype), tf.zeros(var.shape, var.dtype)]

    def _args(self, var, lr):
        cast = lambda x: tf.cast(x, var.dtype)  # noqa: E731
        return dict(lr=cast(lr), rho=cast(self.decay), momentum=cast(self.momentum),
                    epsilon=cast(self.epsilon))

    def _apply_dense(self, grad, var, slots, lr):
        return tf.raw_ops.ResourceApplyRMSProp(var=var.handle, ms=slots[0].handle,
                                               mom=slots[1].handle, grad=grad, **self._args(var, lr))

    def _apply_sparse(self, values, indices, var, slots, lr):
        return tf.raw_ops.ResourceSparseApplyRMSProp(var=var.handle, ms=slots[0].handle,
                                                     mom=slots[1].handle, grad=values,
                                                     indices=indices, **self._args(var, lr))


class KerasOptimizer(Optimizer):
    """Adapts a Keras optimizer instance (Keras 3 or tf_keras) to this interface."""

    def __init__(self, keras_optimizer):
        super().__init__(1.0, name=getattr(keras_optimizer, "name", "keras_optimizer"))
        self.keras_optimizer = keras_optimizer

    @tf.autograph.experimental.do_not_convert
    def apply_gradients(self, grads_and_vars, global_step=None, name=None):
        pairs = [(g, v) for g, v in grads_and_vars if g is not None]
        with tf.name_scope("optimizer"):
            result = self.keras_optimizer.apply_gradients(pairs)
        deps = [result] if isinstance(result, (tf.Tensor, tf.Operation)) else []
        with tf.control_dependencies(deps):
            if global_step is None:
                return tf.no_op()
            return global_step.assign_add(1)


def minimize_split(loss, optimizers_and_variables, global_step=None):
    """One gradient pass, several optimizers: each updates its own variables.

    Wide & deep trains its linear part with FTRL and its deep part with
    Adagrad. The tape gives gradients once, so they are computed together
    and applied per optimizer; ``global_step`` is incremented once.

    Args:
        optimizers_and_variables: ``[(optimizer, [variables]), ...]``.
    """
    context = _context.current()
    if _outside_train(context):
        return tf.no_op()
    if context is None or context.tape is None:
        raise ValueError("minimize_split must be called inside a TRAIN-mode model_fn.")
    flat = [v for _, variables in optimizers_and_variables for v in variables]
    grads = context.tape.gradient(scale_loss_for_replicas(loss), flat)
    ops, i = [], 0
    for optimizer, variables in optimizers_and_variables:
        pairs = [(g, v) for g, v in zip(grads[i:i + len(variables)], variables) if g is not None]
        i += len(variables)
        if pairs:
            ops.append(get(optimizer).apply_gradients(pairs))
    with tf.control_dependencies(ops):
        return global_step.assign_add(1) if global_step is not None else tf.no_op()


def _outside_train(context) -> bool:
    """True inside an EVAL or PREDICT model_fn (a train op built there is a no-op)."""
    return context is not None and context.mode is not None and context.mode != ModeKeys.TRAIN


_BY_NAME = {"SGD": SGD, "Adagrad": Adagrad, "Adam": Adam, "Ftrl": Ftrl, "RMSProp": RMSProp,
            "Momentum": Momentum}


@tf.autograph.experimental.do_not_convert
def get(optimizer, learning_rate: float | None = None) -> Optimizer:
    """Resolves an optimizer given by name, class, instance or Keras optimizer.

    Names are tf.estimator's: 'Adagrad', 'Adam', 'Ftrl', 'RMSProp', 'SGD'
    (and 'Momentum'); ``learning_rate`` defaults to tf.estimator's value. A mapping
    ``{"name": ..., **constructor arguments}`` (what a config file can hold) builds
    that optimizer with those arguments.

    Example:
        >>> get("Adam").learning_rate
        0.001
        >>> get({"name": "Adagrad", "learning_rate": 0.05}).learning_rate
        0.05
    """
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, Mapping):
        arguments = dict(optimizer)
        name = arguments.pop("name", None)
        cls = _BY_NAME.get(name) if isinstance(name, str) else None
        if cls is None:
            raise ValueError(
                f"optimizer={dict(optimizer)!r} names no known optimizer; expected a 'name' among "
                f"{sorted(_BY_NAME)}. How to fix: e.g. {{'name': 'Adagrad', 'learning_rate': 0.05}}.")
        if learning_rate is not None:
            arguments.setdefault("learning_rate", learning_rate)
        try:
            return cls(**arguments)
        except TypeError as e:
            raise ValueError(
                f"optimizer={dict(optimizer)!r}: {e}. How to fix: use {name}'s constructor arguments "
                f"({', '.join(inspect.signature(cls).parameters)}).") from None
    if isinstance(optimizer, str):
        cls = _BY_NAME.get(optimizer)
        if cls is None:
            raise ValueError(
                f"Unknown optimizer {optimizer!r}; expected one of {sorted(_BY_NAME)} or an "
                "optimizer instance."
            )
        rate = DEFAULT_LEARNING_RATES[optimizer] if learning_rate is None else learning_rate
        return cls(learning_rate=rate)
    if isinstance(optimizer, type) and issubclass(optimizer, Optimizer):
        return optimizer() if learning_rate is None else optimizer(learning_rate=learning_rate)
    if callable(getattr(optimizer, "apply_gradients", None)):
        return KerasOptimizer(optimizer)
    if callable(optimizer):
        return get(optimizer(), learning_rate)
    raise TypeError(
        f"optimizer={optimizer!r} is not supported; expected a name such as 'Adagrad', a "
        "trainer.optimizers.Optimizer, or a Keras optimizer instance."
    )
