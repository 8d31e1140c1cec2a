"""``tf.estimator.add_metrics``: an Estimator with extra evaluation metrics.

Example:
    >>> # def my_auc(labels, predictions):
    >>> #     return {"auc": trainer.metrics.auc(labels, predictions["logistic"])}
    >>> # estimator = trainer.add_metrics(estimator, my_auc)
"""

from __future__ import annotations

import inspect

from trainer import _calling
from trainer.estimator import Estimator
from trainer.estimator_spec import EstimatorSpec
from trainer.mode_keys import ModeKeys

__all__ = ["add_metrics"]

_METRIC_FN_ARGS = ("labels", "predictions", "features", "config")


def add_metrics(estimator: Estimator, metric_fn) -> Estimator:
    """Returns an Estimator over the same model_dir whose evaluation also reports ``metric_fn``'s metrics.

    Args:
        estimator: The Estimator to extend (canned or custom).
        metric_fn: Takes some of ``labels``, ``predictions`` (required), ``features`` and
            ``config`` by name and returns a dict of name -> metric: a ``(value, update_op)``
            pair (``trainer.metrics.*``) or a metric object with ``update_state``/``result``
            (a Keras metric). A name the model already reports is replaced, as in tf.estimator.

    Raises:
        TypeError: ``estimator`` is not an Estimator, or ``metric_fn`` is not callable.
        ValueError: ``metric_fn`` takes an argument other than the four above, or not
            ``predictions``.
    """
    if not isinstance(estimator, Estimator):
        raise TypeError(f"add_metrics got estimator={estimator!r}; expected a trainer.Estimator.")
    if not callable(metric_fn):
        raise TypeError(f"add_metrics got metric_fn={metric_fn!r}; expected a function.")
    args = list(inspect.signature(metric_fn).parameters)
    unknown = [a for a in args if a not in _METRIC_FN_ARGS]
    if unknown or "predictions" not in args:
        raise ValueError(
            f"add_metrics got a metric_fn taking {args}; it must take 'predictions' and may take "
            f"{[a for a in _METRIC_FN_ARGS if a != 'predictions']}, by those names.")
    inner, inner_args = estimator.model_fn, _calling.check_model_fn(estimator.model_fn)

    def model_fn(features, labels, mode, params, config):
        spec = _calling.call_model_fn(inner, inner_args, features, labels, mode, params, config)
        if mode != ModeKeys.EVAL:
            return spec
        if spec.predictions is None:
            raise ValueError("add_metrics: the model_fn's EVAL EstimatorSpec has no predictions for metric_fn. "
                             "How to fix: return EstimatorSpec(mode, predictions=..., loss=..., "
                             "eval_metric_ops=...) in EVAL mode too, as tf.estimator.add_metrics needed.")
        values = {"labels": labels, "predictions": spec.predictions, "features": features, "config": config}
        extra = metric_fn(**{a: values[a] for a in args})
        if not isinstance(extra, dict):
            raise TypeError(f"add_metrics: metric_fn returned {type(extra).__name__}; expected a dict of "
                            "name -> metric.")
        fields = spec._asdict()
        fields["eval_metric_ops"] = {**spec.eval_metric_ops, **extra}
        return EstimatorSpec(**fields)

    return Estimator(model_fn, config=estimator.config, params=estimator.params,
                     warm_start_from=estimator._warm_start_settings)
