"""`EstimatorSpec`: everything a `model_fn` returns, checked per mode."""

from __future__ import annotations

import collections

import tensorflow as tf

from trainer.export.export_output import ExportOutput, PredictOutput
from trainer.mode_keys import ModeKeys

__all__ = ["EstimatorSpec"]

_DEFAULT_KEY = tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY
_TENSORS = (tf.Tensor, tf.SparseTensor, tf.RaggedTensor, tf.Variable)

_Fields = collections.namedtuple(
    "EstimatorSpec",
    [
        "mode",
        "predictions",
        "loss",
        "train_op",
        "eval_metric_ops",
        "export_outputs",
        "training_chief_hooks",
        "training_hooks",
        "scaffold",
        "evaluation_hooks",
        "prediction_hooks",
    ],
)


def _fail(field: str, mode, message: str):
    raise ValueError(f"EstimatorSpec in mode={mode!r} got {field}: {message}")


def _is_metric(value) -> bool:
    return callable(getattr(value, "update_state", None)) and callable(getattr(value, "result", None))


class EstimatorSpec(_Fields):
    """Ops and objects returned from a `model_fn` and passed to an `Estimator`.

    Which fields are required depends on the mode:

    * TRAIN: ``loss`` and ``train_op``.
    * EVAL: ``loss``; ``eval_metric_ops`` are optional.
    * PREDICT: ``predictions``; ``export_outputs`` default to a
      `PredictOutput` of the predictions under ``serving_default``.

    A wrong spec raises a `ValueError` naming the field and the mode.

    Example:
        >>> spec = EstimatorSpec(ModeKeys.PREDICT, predictions={"y": tf.constant([1.0])})
        >>> sorted(spec.export_outputs)
        ['serving_default']
    """

    def __new__(cls, mode, predictions=None, loss=None, train_op=None,
                eval_metric_ops=None, export_outputs=None, training_chief_hooks=None,
                training_hooks=None, scaffold=None, evaluation_hooks=None,
                prediction_hooks=None):
        if mode not in ModeKeys.ALL:
            raise ValueError(
                f"EstimatorSpec got mode={mode!r}; expected one of {ModeKeys.ALL} "
                "(use trainer.ModeKeys.TRAIN/EVAL/PREDICT)."
            )
        loss = _check_loss(loss, mode)
        predictions = _check_predictions(predictions, mode)
        if mode == ModeKeys.TRAIN and train_op is None:
            _fail("train_op=None", mode, "TRAIN mode needs a train_op, e.g. "
                  "optimizer.minimize(loss, global_step=trainer.get_global_step()).")
        eval_metric_ops = _check_metrics(eval_metric_ops or {}, mode)
        export_outputs = _check_export_outputs(export_outputs, predictions, mode)
        hooks = {}
        for name, value in (("training_chief_hooks", training_chief_hooks),
                            ("training_hooks", training_hooks),
                            ("evaluation_hooks", evaluation_hooks),
                            ("prediction_hooks", prediction_hooks)):
            hooks[name] = _check_hooks(name, value, mode)
        return super().__new__(
            cls, mode=mode, predictions=predictions, loss=loss, train_op=train_op,
            eval_metric_ops=eval_metric_ops, export_outputs=export_outputs,
            scaffold=scaffold, **hooks)


def _check_loss(loss, mode):
    if loss is None:
        if mode in (ModeKeys.TRAIN, ModeKeys.EVAL):
            _fail("loss=None", mode, f"{mode.upper()} mode needs a scalar loss tensor.")
        return None
    if not isinstance(loss, (tf.Tensor, tf.Variable)):
        try:
            loss = tf.convert_to_tensor(loss)
        except (TypeError, ValueError):
            _fail(f"loss={loss!r}", mode, "expected a scalar Tensor.")
    if not loss.dtype.is_floating:
        _fail(f"loss with dtype {loss.dtype.name}", mode, "expected a floating-point scalar.")
    shape = loss.shape
    if shape.rank == 1 and shape[0] == 1:
        loss = tf.reshape(loss, [])
    elif shape.rank != 0:
        _fail(f"loss with shape {shape}", mode,
              "expected a scalar; reduce it, e.g. with tf.reduce_mean(loss).")
    return loss


def _check_predictions(predictions, mode):
    if predictions is None:
        if mode == ModeKeys.PREDICT:
            _fail("predictions=None", mode, "PREDICT mode needs a Tensor or dict of Tensors.")
        return None
    if isinstance(predictions, dict):
        for key, value in predictions.items():
            if not isinstance(key, str):
                _fail(f"predictions key {key!r}", mode, "keys must be strings.")
            if not isinstance(value, _TENSORS):
                _fail(f"predictions[{key!r}]={value!r}", mode, "expected a Tensor.")
        return dict(predictions)
    if not isinstance(predictions, _TENSORS):
        _fail(f"predictions={predictions!r}", mode, "expected a Tensor or dict of Tensors.")
    return predictions


def _check_metrics(metrics, mode):
    if not isinstance(metrics, dict):
        _fail(f"eval_metric_ops={metrics!r}", mode, "expected a dict of name -> metric.")
    checked = {}
    for name, value in metrics.items():
        if not isinstance(name, str):
            _fail(f"eval_metric_ops key {name!r}", mode, "keys must be strings.")
        if _is_metric(value):
            checked[name] = value
        elif isinstance(value, tuple) and len(value) == 2:
            checked[name] = value
        else:
            _fail(f"eval_metric_ops[{name!r}]={value!r}", mode,
                  "expected a (value, update_op) pair, e.g. from trainer.metrics.accuracy, "
                  "or a metric object with update_state()/result().")
    return checked


def _check_export_outputs(export_outputs, predictions, mode):
    if export_outputs is None:
        if predictions is None:
            return None
        return {_DEFAULT_KEY: PredictOutput(predictions)}
    if not isinstance(export_outputs, dict) or not export_outputs:
        _fail(f"export_outputs={export_outputs!r}", mode,
              "expected a non-empty dict of signature name -> ExportOutput.")
    for key, value in export_outputs.items():
        if not isinstance(value, ExportOutput):
            _fail(f"export_outputs[{key!r}]={value!r}", mode,
                  "expected a ClassificationOutput, RegressionOutput or PredictOutput.")
    outputs = dict(export_outputs)
    if _DEFAULT_KEY not in outputs:
        if len(outputs) != 1:
            _fail(f"export_outputs with keys {sorted(outputs)}", mode,
                  f"several outputs were given and none is {_DEFAULT_KEY!r}; name the "
                  "default one 'serving_default'.")
        outputs[_DEFAULT_KEY] = next(iter(outputs.values()))
    return outputs


def _check_hooks(name, hooks, mode):
    from trainer.hooks.session_run_hook import as_hook

    checked = []
    for hook in tuple(hooks or ()):
        adapted = as_hook(hook)
        if adapted is None:
            _fail(f"{name} item {hook!r}", mode, "hooks must subclass trainer.SessionRunHook "
                  "(or tf.estimator's tf.compat.v1.train.SessionRunHook).")
        checked.append(adapted)
    return tuple(checked)
