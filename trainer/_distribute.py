"""Input under a `tf.distribute.Strategy`: which strategy a mode uses, and its datasets.

Global batch semantics (as in tf.estimator and Keras): the batch an ``input_fn``
returns is the *global* batch. With ``experimental_distribute_dataset`` each of
the ``N`` replicas gets ``1/N`` of every batch, in order (replica 0 the first
rows). An ``input_fn`` that takes ``input_context`` is called once per input
pipeline with a `tf.distribute.InputContext` and returns that pipeline's
dataset, batched per replica (``input_context.get_per_replica_batch_size``),
through ``strategy.distribute_datasets_from_function``.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from trainer import _calling
from trainer.mode_keys import ModeKeys


def strategy_for(config, mode: str) -> tf.distribute.Strategy | None:
    """The strategy ``mode`` runs under, or None for the default (one device, no wrapping).

    TRAIN uses ``train_distribute``; EVAL and PREDICT use ``eval_distribute``.
    """
    strategy = config.train_distribute if mode == ModeKeys.TRAIN else config.eval_distribute
    if strategy is None:
        return None
    field = "train_distribute" if mode == ModeKeys.TRAIN else "eval_distribute"
    if not isinstance(strategy, tf.distribute.Strategy):
        raise TypeError(
            f"RunConfig({field}={strategy!r}) is not a tf.distribute.Strategy. How to fix: pass "
            "e.g. tf.distribute.MirroredStrategy().")
    if isinstance(strategy, MULTI_WORKER) and mode != ModeKeys.TRAIN:
        raise NotImplementedError(
            f"RunConfig(eval_distribute={type(strategy).__name__}(...)) is not implemented yet: "
            "evaluate on one machine (the evaluator task, or eval_distribute=MirroredStrategy()).")
    if not isinstance(strategy, SUPPORTED):
        raise NotImplementedError(
            f"RunConfig({field}={type(strategy).__name__}(...)) is not implemented yet: the "
            f"Estimator runs under {', '.join(s.__name__ for s in SUPPORTED)} (one machine, any "
            "number of devices). See docs/distributed.md for what runs on a cluster today.")
    return strategy


# The strategies the Estimator's programs are tested under (tests/trainer/test_mirrored.py,
# tests/trainer/test_multi_worker.py); the multi-worker one for training only.
MULTI_WORKER = (tf.distribute.MultiWorkerMirroredStrategy,)
SUPPORTED = (tf.distribute.MirroredStrategy, *MULTI_WORKER)


def is_multi_worker(strategy) -> bool:
    """Whether ``strategy`` spans several worker processes (a TF_CONFIG cluster)."""
    if strategy is None or not isinstance(strategy, MULTI_WORKER):
        return False
    cluster = strategy.cluster_resolver.cluster_spec().as_dict()
    return sum(len(tasks) for kind, tasks in cluster.items() if kind in ("chief", "worker")) > 1


def stop_agreement(strategy):
    """A function ``any_stop(flag) -> bool`` that is True on every worker when any asks to stop.

    Workers step together, so a stop decision (a hook's request, NaN, the end of the data)
    taken by one worker alone would leave the others waiting in a collective.
    """
    @tf.function(autograph=False)
    def any_stop(flag):
        votes = strategy.run(lambda f: tf.cast(f, tf.int32), args=(flag,))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, votes, axis=None) > 0

    def agree(flag: bool) -> bool:
        with strategy.scope():
            return bool(any_stop(tf.constant(flag)))

    return agree


@dataclasses.dataclass
class Input:
    """What a loop iterates: a dataset (or distributed dataset) and one replica's element spec."""

    dataset: object
    element_spec: object


def make_input(input_fn, mode, params, config, *, caller: str, strategy, features_only=False) -> Input:
    """Calls ``input_fn`` (per input pipeline under a strategy) and distributes its data."""
    def prepare(dataset):
        if features_only:
            _, labels = _calling.split_element(dataset.element_spec)
            if labels is not None:
                dataset = dataset.map(lambda *element: element[0])
        return dataset

    if strategy is None:
        dataset = prepare(_calling.call_input_fn(input_fn, mode, params, config, caller=caller))
        return Input(dataset, dataset.element_spec)
    replicas = strategy.num_replicas_in_sync
    if "input_context" in _calling.fn_args(input_fn):
        specs = []

        def per_pipeline(context):
            dataset = prepare(_calling.call_input_fn(input_fn, mode, params, config, caller=caller,
                                                     input_context=context))
            specs.append(dataset.element_spec)
            return dataset

        distributed = strategy.distribute_datasets_from_function(per_pipeline)
        return Input(distributed, specs[0])
    dataset = prepare(_calling.call_input_fn(input_fn, mode, params, config, caller=caller))
    check_global_batch(dataset.element_spec, replicas, caller=caller, strategy=strategy)
    try:
        distributed = strategy.experimental_distribute_dataset(dataset)
    except (ValueError, TypeError, IndexError) as e:  # IndexError: a scalar (unbatched) element
        raise ValueError(
            f"{caller}: {type(strategy).__name__} cannot split the input_fn's dataset across "
            f"{replicas} replicas ({type(e).__name__}: {e}). How to fix: return a batched dataset of (features, labels) "
            "whose batch is the global batch (e.g. .batch(64) gives each of 2 replicas 32), or "
            "take input_context and batch with input_context.get_per_replica_batch_size(...)."
        ) from None
    return Input(distributed, _per_replica_spec(dataset.element_spec))


def check_global_batch(element_spec, replicas: int, *, caller: str, strategy) -> None:
    """A static global batch must divide across the replicas, or replicas would differ."""
    for spec in tf.nest.flatten(element_spec):
        shape = getattr(spec, "shape", None)
        if shape is None or shape.rank in (None, 0):
            continue
        batch = shape[0]
        if batch is not None and batch % replicas:
            raise ValueError(
                f"{caller}: the input_fn's batch of {batch} does not divide across the {replicas} "
                f"replicas of {type(strategy).__name__}. How to fix: use a global batch size that "
                f"is a multiple of {replicas} (e.g. {batch - batch % replicas or replicas}).")
        return


def _per_replica_spec(element_spec):
    """The spec of one replica's share: the batch dimension becomes unknown."""
    def relax(spec):
        if isinstance(spec, tf.TensorSpec) and spec.shape.rank:
            return tf.TensorSpec([None, *spec.shape[1:]], spec.dtype, spec.name)
        if isinstance(spec, tf.SparseTensorSpec) and spec.shape.rank:
            return tf.SparseTensorSpec([None, *spec.shape[1:]], spec.dtype)
        if isinstance(spec, tf.RaggedTensorSpec) and spec.shape.rank:
            return tf.RaggedTensorSpec([None, *spec.shape[1:]], spec.dtype, spec.ragged_rank,
                                       spec.row_splits_dtype)
        return spec

    return tf.nest.map_structure(relax, element_spec)
