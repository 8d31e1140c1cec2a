"""Prediction: streaming batches out of the compiled step, one example at a time."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from trainer import checkpoints
from trainer._session import TrainingSession, hooked_runs


def predict_loop(estimator, step, dataset, store, global_step, prefix, hooks, single):
    session = TrainingSession(model_dir=estimator.model_dir, store=store, global_step=global_step,
                              checkpoint_step=checkpoints.checkpoint_step(prefix))
    iterator = iter(dataset)
    runs = hooked_runs(session=session, hooks=hooks, steps_per_run=1,
                       run=lambda n, names: step.run(iterator, 1, names))
    for outputs, _ in runs:
        batch = tf.nest.map_structure(lambda t: np.asarray(t), outputs["predictions"])
        if single:
            yield from _unbatch(batch)
        else:
            yield batch


def _unbatch(batch):
    if not isinstance(batch, dict):
        yield from batch
        return
    sizes = {key: value.shape[0] if np.ndim(value) else None for key, value in batch.items()}
    distinct = {s for s in sizes.values()}
    if len(distinct) != 1 or None in distinct:
        raise ValueError(
            "Estimator.predict with yield_single_examples=True needs every prediction to have "
            f"the same batch size as its first dimension; got {sizes}. Pass "
            "yield_single_examples=False to get whole batches."
        )
    for i in range(distinct.pop()):
        yield {key: value[i] for key, value in batch.items()}


def select_predictions(predictions, keys):
    if keys is None:
        return predictions
    if not isinstance(predictions, dict):
        raise ValueError(
            f"Estimator.predict got predict_keys={keys!r}, but the model_fn's predictions are a "
            "single Tensor, not a dict."
        )
    missing = [k for k in keys if k not in predictions]
    if missing:
        raise ValueError(
            f"Estimator.predict got predict_keys={keys!r}; {missing} are not among the "
            f"predictions {sorted(predictions)}."
        )
    return {k: predictions[k] for k in keys}
