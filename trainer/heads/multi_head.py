"""`MultiHead`: several heads on one network (multi-task learning)."""

from __future__ import annotations

import tensorflow as tf

from trainer.estimator_spec import EstimatorSpec
from trainer.export.export_output import PredictOutput
from trainer.heads.base_head import Head
from trainer.heads.keys import MetricKeys
from trainer.mode_keys import ModeKeys

__all__ = ["MultiHead"]


class MultiHead(Head):
    """Combines named heads; the loss is the weighted sum of theirs.

    Logits are a dict ``{head.name: logits}`` or one tensor that is split in
    head order by each head's ``logits_dimension``. Labels are a dict by head
    name. Predictions are keyed ``'<head name>/<key>'``; metrics keep each
    head's keys with its name as suffix; signatures are the first head's
    ``serving_default`` plus ``'<head name>'`` for each head and ``predict``.
    """

    def __init__(self, heads, head_weights=None):
        heads = list(heads)
        if not heads:
            raise ValueError("MultiHead got heads=[]; expected at least one head.")
        names = [h.name for h in heads]
        if any(n is None for n in names) or len(set(names)) != len(names):
            raise ValueError(f"MultiHead needs every head to have a unique name; got {names}.")
        if head_weights is not None and len(head_weights) != len(heads):
            raise ValueError(
                f"MultiHead got {len(head_weights)} head_weights for {len(heads)} heads."
            )
        super().__init__()
        self.heads = heads
        self.head_weights = list(head_weights) if head_weights is not None else [1.0] * len(heads)
        self.logits_dimension = sum(h.logits_dimension for h in heads)

    def _split_logits(self, logits):
        if isinstance(logits, dict):
            missing = [h.name for h in self.heads if h.name not in logits]
            if missing:
                raise ValueError(f"MultiHead logits have no entry for heads {missing}.")
            return {h.name: logits[h.name] for h in self.heads}
        parts = tf.split(logits, [h.logits_dimension for h in self.heads], axis=-1)
        return {h.name: part for h, part in zip(self.heads, parts)}

    def _labels_for(self, labels, head):
        if not isinstance(labels, dict) or head.name not in labels:
            raise ValueError(
                f"MultiHead expects labels as a dict by head name; head {head.name!r} has none "
                f"(got {sorted(labels) if isinstance(labels, dict) else type(labels).__name__})."
            )
        return labels[head.name]

    @tf.autograph.experimental.do_not_convert
    def predictions(self, logits, keys=None):
        split = self._split_logits(logits)
        predictions = {}
        for head in self.heads:
            for key, value in head.predictions(split[head.name]).items():
                predictions[f"{head.name}/{key}"] = value
        return predictions if keys is None else {k: predictions[k] for k in keys}

    @tf.autograph.experimental.do_not_convert
    def loss(self, labels, logits, features=None, mode=None, regularization_losses=None):
        split = self._split_logits(logits)
        total = tf.add_n([w * head.loss(self._labels_for(labels, head), split[head.name], features, mode)
                          for head, w in zip(self.heads, self.head_weights)])
        if regularization_losses:
            total += tf.add_n(list(regularization_losses))
        return total

    @tf.autograph.experimental.do_not_convert
    def create_estimator_spec(self, features, mode, logits, labels=None, optimizer=None,
                              trainable_variables=None, train_op_fn=None, update_ops=None,
                              regularization_losses=None):
        split = self._split_logits(logits)
        if mode == ModeKeys.PREDICT:
            specs = [h.create_estimator_spec(features, mode, split[h.name]) for h in self.heads]
            predictions = {}
            export_outputs = {}
            for head, spec in zip(self.heads, specs):
                predictions.update({f"{head.name}/{k}": v for k, v in spec.predictions.items()})
                export_outputs[head.name] = spec.export_outputs["serving_default"]
            export_outputs["serving_default"] = specs[0].export_outputs["serving_default"]
            export_outputs["predict"] = PredictOutput(predictions)
            return EstimatorSpec(mode, predictions=predictions, export_outputs=export_outputs)
        if labels is None:
            raise ValueError(f"MultiHead.create_estimator_spec in mode={mode!r} got labels=None.")
        losses, metrics, predictions = [], {}, {}
        for head, weight in zip(self.heads, self.head_weights):
            spec = head.create_estimator_spec(features, ModeKeys.EVAL, split[head.name],
                                              self._labels_for(labels, head))
            losses.append(weight * spec.loss)
            metrics.update(spec.eval_metric_ops)
            metrics[f"{MetricKeys.LOSS}/{head.name}"] = _Constant(spec.loss)
            predictions.update({f"{head.name}/{k}": v for k, v in spec.predictions.items()})
        loss = tf.add_n(losses)
        if regularization_losses:
            loss += tf.add_n([tf.cast(r, tf.float32) for r in regularization_losses])
        if mode == ModeKeys.EVAL:
            return EstimatorSpec(mode, predictions=predictions, loss=loss, eval_metric_ops=metrics)
        train_op = self._train_op(loss, optimizer, trainable_variables, train_op_fn, mode)
        return EstimatorSpec(mode, predictions=predictions, loss=loss, train_op=train_op)


class _Constant:
    """A per-head batch loss reported alongside the metrics (its last value)."""

    def __init__(self, value):
        self._value = value
        self.variables = []

    def update_state(self, *args, **kwargs):
        return self._value

    def result(self):
        return self._value
