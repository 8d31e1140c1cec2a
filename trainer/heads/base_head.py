"""`Head`: owns a model's loss, metrics, predictions and export outputs.

A canned estimator (or a custom `model_fn`) computes logits and hands them to
`Head.create_estimator_spec`, which returns the `EstimatorSpec` for the mode,
as in tf.estimator's heads (KDD'17 §3).

Example (a custom model_fn):
    >>> # head = trainer.heads.BinaryClassHead()
    >>> # logits = trainer.layers.dense(net, head.logits_dimension)
    >>> # return head.create_estimator_spec(features, mode, logits, labels,
    >>> #                                   optimizer=trainer.optimizers.Adagrad(0.05))
"""

from __future__ import annotations

import tensorflow as tf

from trainer import _context
from trainer.estimator_spec import EstimatorSpec
from trainer.heads.keys import MetricKeys, PredictionKeys, Reduction
from trainer.metrics import streaming
from trainer.mode_keys import ModeKeys

__all__ = ["Head"]

_DEFAULT_KEY = tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY


class Head:
    """Base class. Subclasses implement `_unweighted_loss`, `predictions`,
    `_metric_objects`/`_update_metrics` and `_export_outputs`.

    Args:
        weight_column: feature key (or numeric column) of per-example weights.
        loss_reduction: `Reduction.SUM_OVER_BATCH_SIZE` (default) or `Reduction.SUM`.
        loss_fn: optional ``loss_fn(labels, logits)`` -> per-example loss.
        name: suffix for metric keys and the name of this head in a `MultiHead`.
    """

    logits_dimension: int = 1

    def __init__(self, *, weight_column=None, loss_reduction=Reduction.SUM_OVER_BATCH_SIZE,
                 loss_fn=None, name=None):
        if loss_reduction not in Reduction.ALL:
            raise ValueError(
                f"{type(self).__name__} got loss_reduction={loss_reduction!r}; expected one of "
                f"{Reduction.ALL} (trainer.heads.Reduction)."
            )
        if loss_fn is not None and not callable(loss_fn):
            raise TypeError(f"{type(self).__name__} got loss_fn={loss_fn!r}; expected a callable.")
        self.weight_column = weight_column
        self.loss_reduction = loss_reduction
        self.loss_fn = loss_fn
        self.name = name

    # -- loss ---------------------------------------------------------------------
    def _weights(self, features, batch_shape_like):
        if self.weight_column is None:
            return tf.ones_like(batch_shape_like[:, :1], tf.float32)
        key = getattr(self.weight_column, "key", self.weight_column)
        if key not in features:
            raise ValueError(
                f"{type(self).__name__}: weight_column {key!r} is not among the features "
                f"{sorted(features)}."
            )
        weights = tf.cast(features[key], tf.float32)
        if isinstance(weights, tf.SparseTensor):
            weights = tf.sparse.to_dense(weights)
        return tf.reshape(weights, [-1, 1])

    def _unweighted_loss(self, labels, logits):
        """Per-example loss ``[batch, k]`` from processed labels."""
        raise NotImplementedError

    def _process_labels(self, labels):
        raise NotImplementedError

    @tf.autograph.experimental.do_not_convert
    def loss(self, labels, logits, features=None, mode=None, regularization_losses=None):
        """The training loss (a scalar), with the head's reduction and weights."""
        del mode
        logits = self._check_logits(logits)
        labels = self._process_labels(self._check_labels(labels))
        return self._reduced_loss(labels, logits, features or {}, regularization_losses)[0]

    def _reduced_loss(self, labels, logits, features, regularization_losses):
        if self.loss_fn is not None:
            unweighted = tf.convert_to_tensor(self.loss_fn(labels=labels, logits=logits))
            if unweighted.shape.rank == 1:
                unweighted = unweighted[:, None]
        else:
            unweighted = self._unweighted_loss(labels, logits)
        unweighted = tf.cast(unweighted, tf.float32)
        weights = self._weights(features, logits)
        weighted = unweighted * weights
        total = tf.reduce_sum(weighted)
        if self.loss_reduction == Reduction.SUM_OVER_BATCH_SIZE:
            loss = total / tf.cast(tf.size(weighted), tf.float32)
        else:
            loss = total
        if regularization_losses:
            loss += tf.add_n([tf.cast(r, tf.float32) for r in regularization_losses])
        return loss, unweighted, weights

    # -- the spec -------------------------------------------------------------------
    @tf.autograph.experimental.do_not_convert
    def create_estimator_spec(self, features, mode, logits, labels=None, optimizer=None,
                              trainable_variables=None, train_op_fn=None, update_ops=None,
                              regularization_losses=None):
        """Returns the `EstimatorSpec` for ``mode`` (tf.estimator's head API).

        In TRAIN mode give an ``optimizer`` (its ``minimize`` is called with the
        global step) or a ``train_op_fn(loss)``.
        """
        del update_ops
        logits = self._check_logits(logits)
        predictions = self.predictions(logits)
        if mode == ModeKeys.PREDICT:
            return EstimatorSpec(mode, predictions=predictions,
                                 export_outputs=self._export_outputs(predictions))
        if labels is None:
            raise ValueError(
                f"{type(self).__name__}.create_estimator_spec in mode={mode!r} got labels=None; "
                "the input_fn must return (features, labels)."
            )
        processed = self._process_labels(self._check_labels(labels))
        loss, unweighted, weights = self._reduced_loss(processed, logits, features,
                                                       regularization_losses)
        if mode == ModeKeys.EVAL:
            metrics = self._eval_metrics(processed, logits, predictions, unweighted, weights,
                                         regularization_losses)
            return EstimatorSpec(mode, predictions=predictions, loss=loss, eval_metric_ops=metrics)
        tf.summary.scalar(self._key(MetricKeys.LOSS_MEAN),
                          tf.math.divide_no_nan(tf.reduce_sum(unweighted * weights),
                                                tf.reduce_sum(weights * tf.ones_like(unweighted))))
        train_op = self._train_op(loss, optimizer, trainable_variables, train_op_fn, mode)
        return EstimatorSpec(mode, predictions=predictions, loss=loss, train_op=train_op)

    def _train_op(self, loss, optimizer, trainable_variables, train_op_fn, mode):
        if (optimizer is None) == (train_op_fn is None):
            raise ValueError(
                f"{type(self).__name__}.create_estimator_spec in mode={mode!r} needs exactly one "
                "of optimizer and train_op_fn."
            )
        if optimizer is not None:
            from trainer import optimizers

            return optimizers.get(optimizer).minimize(
                loss, global_step=_context.get_global_step(), var_list=trainable_variables)
        return train_op_fn(loss)

    # -- metrics ------------------------------------------------------------------------
    def _key(self, key: str) -> str:
        return f"{key}/{self.name}" if self.name else key

    def _eval_metrics(self, labels, logits, predictions, unweighted, weights, regularization_losses):
        metrics = {}
        mean_loss = streaming.Mean(name="average_loss")
        mean_loss.update_state(unweighted, weights=weights * tf.ones_like(unweighted))
        metrics[self._key(MetricKeys.LOSS_MEAN)] = mean_loss
        if regularization_losses:
            reg = streaming.Mean(name="regularization_loss")
            reg.update_state(tf.add_n([tf.cast(r, tf.float32) for r in regularization_losses]))
            metrics[self._key(MetricKeys.LOSS_REGULARIZATION)] = reg
        for key, metric in self._update_metrics(labels, logits, predictions, weights).items():
            metrics[self._key(key)] = metric
        return metrics

    def _update_metrics(self, labels, logits, predictions, weights) -> dict:
        raise NotImplementedError

    # -- predictions and export -----------------------------------------------------------
    @tf.autograph.experimental.do_not_convert
    def predictions(self, logits, keys=None) -> dict:
        raise NotImplementedError

    def _export_outputs(self, predictions) -> dict:
        raise NotImplementedError

    # -- checks -------------------------------------------------------------------------------
    def _check_logits(self, logits):
        logits = tf.convert_to_tensor(logits)
        if logits.shape.rank == 1 and self.logits_dimension == 1:
            logits = logits[:, None]
        if logits.shape.rank != 2 or (logits.shape[-1] is not None
                                      and logits.shape[-1] != self.logits_dimension):
            raise ValueError(
                f"{type(self).__name__} got logits with shape {logits.shape}; expected "
                f"[batch_size, {self.logits_dimension}] (logits_dimension)."
            )
        return tf.cast(logits, tf.float32)

    def _check_labels(self, labels):
        if isinstance(labels, dict):
            if len(labels) != 1:
                raise ValueError(
                    f"{type(self).__name__} got a dict of labels {sorted(labels)}; expected one "
                    "Tensor (use a MultiHead for several)."
                )
            labels = next(iter(labels.values()))
        if isinstance(labels, tf.SparseTensor):
            labels = tf.sparse.to_dense(labels)
        labels = tf.convert_to_tensor(labels)
        if labels.shape.rank == 1:
            labels = labels[:, None]
        return labels


def class_strings(label_vocabulary, n_classes):
    """The class names: the vocabulary, or '0', '1', ... as strings."""
    if label_vocabulary is not None:
        return tf.constant(list(label_vocabulary))
    return tf.strings.as_string(tf.range(n_classes, dtype=tf.int64))


def all_classes(names, n_classes, logits):
    """``{all_class_ids, all_classes}``: every class id and name, once per example."""
    batch = tf.shape(logits)[0]
    return {PredictionKeys.ALL_CLASS_IDS: tf.tile(tf.range(n_classes, dtype=tf.int64)[None, :], [batch, 1]),
            PredictionKeys.ALL_CLASSES: tf.tile(names[None, :], [batch, 1])}


def classification_outputs(predictions):
    """The export outputs of a classification head: classify (twice) and predict."""
    from trainer.export.export_output import ClassificationOutput, PredictOutput

    classification = ClassificationOutput(scores=predictions[PredictionKeys.PROBABILITIES],
                                          classes=predictions[PredictionKeys.ALL_CLASSES])
    return {"serving_default": classification, "classification": classification,
            "predict": PredictOutput(predictions)}


def vocabulary_ids(labels, label_vocabulary, head_name):
    """Maps string labels to ids with an in-graph search (no lookup table resource)."""
    vocab = tf.constant(list(label_vocabulary))
    matches = tf.equal(labels[..., None], vocab)
    found = tf.reduce_any(matches, axis=-1)
    check = tf.debugging.Assert(
        tf.reduce_all(found),
        [f"{head_name}: a label is not in label_vocabulary {list(label_vocabulary)}; first "
         "unknown label:", tf.boolean_mask(labels, ~found)[:1]])
    with tf.control_dependencies([check]):
        return tf.argmax(tf.cast(matches, tf.int32), axis=-1, output_type=tf.int64)


def check_label_ids(ids, n_classes, head_name):
    """Raises at the first label id outside [0, n_classes).

    Only the range test runs on every batch; the first bad label is picked out in
    the `tf.cond` branch taken when the test fails.
    """
    bad = (ids < 0) | (ids >= n_classes)
    ok = tf.logical_not(tf.reduce_any(bad))

    def failed():
        check = tf.debugging.Assert(
            ok,
            [f"{head_name}: labels must be integer class ids in [0, {n_classes}); first bad "
             "label:", tf.boolean_mask(ids, bad)[:1],
             "(use label_vocabulary for string labels)"])
        with tf.control_dependencies([check]):
            return tf.identity(ids)

    return tf.cond(ok, lambda: tf.identity(ids), failed)


def predictions_subset(predictions: dict, keys):
    if keys is None:
        return predictions
    missing = [k for k in keys if k not in predictions]
    if missing:
        raise ValueError(f"Unknown prediction keys {missing}; available: {sorted(predictions)}.")
    return {k: predictions[k] for k in keys}


__all__ += ["PredictionKeys"]
