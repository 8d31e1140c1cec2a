"""TF.Learn's `Estimator` (``tf.contrib.learn.Estimator``) on the trainer core.

A `learn.Estimator` holds a `trainer.Estimator` (`core_estimator`) and adds
TF.Learn's surface: ``fit(x, y, steps)``/``partial_fit``/``evaluate``/
``predict(as_iterable=...)`` on numpy or pandas data, ``model_fn`` signatures
``(features, targets[, mode[, params[, config]]])`` and ``model_fn`` results
given as the tuple ``(predictions, loss, train_op)`` or a `ModelFnOps`.
"""

from __future__ import annotations

import inspect
import logging

import numpy as np
import tensorflow as tf

from trainer import _calling, _context
from trainer import estimator as core
from trainer import optimizers
from trainer.estimator_spec import EstimatorSpec
from trainer.hooks.session_run_hook import as_hook
from trainer.learn import _data
from trainer.mode_keys import ModeKeys as _CoreModeKeys

__all__ = ["Estimator", "ModelFnOps", "ModeKeys", "optimize_loss"]

log = logging.getLogger("trainer")


class ModeKeys(_CoreModeKeys):
    """TF.Learn's mode names: ``INFER`` is ``PREDICT`` (both ``'infer'``)."""

    INFER = _CoreModeKeys.PREDICT


# Names a TF.Learn model_fn may take besides its first two positional (features, targets).
_KEYWORD_ARGS = ("mode", "params", "config", "model_dir")


def ModelFnOps(mode, predictions=None, loss=None, train_op=None, eval_metric_ops=None,
               output_alternatives=None, training_chief_hooks=None, training_hooks=None,
               scaffold=None):
    """TF.Learn's ``ModelFnOps``: returns the equivalent `trainer.EstimatorSpec`.

    ``output_alternatives`` is not supported (raises `NotImplementedError`);
    give ``export_outputs`` through an `EstimatorSpec` instead.
    """
    if output_alternatives is not None:
        raise NotImplementedError(
            "ModelFnOps(output_alternatives=...) is not supported. How to fix: return "
            "trainer.EstimatorSpec(..., export_outputs={name: trainer.export.PredictOutput(...)}).")
    if mode == ModeKeys.PREDICT and predictions is None:
        raise ValueError("ModelFnOps in mode='infer' got predictions=None; expected a Tensor or "
                         "dict of Tensors.")
    return EstimatorSpec(mode, predictions=predictions, loss=loss,
                         train_op=train_op if mode == ModeKeys.TRAIN else None,
                         eval_metric_ops=eval_metric_ops,
                         training_chief_hooks=training_chief_hooks,
                         training_hooks=training_hooks, scaffold=scaffold)


def optimize_loss(loss, global_step, learning_rate, optimizer, clip_gradients=None,
                  gradient_noise_scale=None, gradient_multipliers=None,
                  learning_rate_decay_fn=None, update_ops=None, variables=None, name=None,
                  summaries=None, colocate_gradients_with_ops=False,
                  increment_global_step=True):
    """TF.Learn's ``layers.optimize_loss``: one training step on ``loss``; returns the loss.

    ``optimizer`` is a name ('SGD', 'Adagrad', 'Adam', 'Ftrl', 'RMSProp',
    'Momentum'), a `trainer.optimizers` class or instance. ``clip_gradients``
    (a float) clips by global norm. Outside TRAIN mode (a ``(features, targets)``
    model_fn builds its train op in every mode) nothing is applied and the loss is
    returned as is, as TF.Learn's graph never ran the op there.
    """
    del name, summaries, colocate_gradients_with_ops
    for arg, value in (("gradient_noise_scale", gradient_noise_scale),
                       ("gradient_multipliers", gradient_multipliers),
                       ("learning_rate_decay_fn", learning_rate_decay_fn),
                       ("update_ops", update_ops)):
        if value is not None:
            raise NotImplementedError(f"optimize_loss({arg}=...) is not supported; leave it None.")
    context = _context.current()
    if context is None or context.tape is None:  # EVAL/PREDICT: no step to take
        return tf.identity(loss)
    opt = optimizers.get(optimizer, learning_rate)
    grads_and_vars = opt.compute_gradients(loss, var_list=variables)
    if clip_gradients is not None:
        if not isinstance(clip_gradients, (int, float)) or clip_gradients <= 0:
            raise NotImplementedError(
                f"optimize_loss(clip_gradients={clip_gradients!r}) is not supported; give a float "
                "> 0 (clip by global norm) or None.")
        grads, tvars = zip(*grads_and_vars)
        grads, _ = tf.clip_by_global_norm(list(grads), float(clip_gradients))
        grads_and_vars = list(zip(grads, tvars))
    step = global_step if increment_global_step else None
    op = opt.apply_gradients(grads_and_vars, global_step=step)
    with tf.control_dependencies([op]):
        return tf.identity(loss)


class _LegacyModelFn:
    """Calls a TF.Learn model_fn and turns what it returns into an `EstimatorSpec`.

    ``labels_spec`` (dtype, row shape) of the training labels: a ``(features,
    targets)`` model_fn without ``mode`` computes its loss in every mode, so in
    PREDICT it gets zeros of that shape, as TF.Learn fed it label placeholders.
    """

    def __init__(self, model_fn, params, feature_engineering_fn, owner):
        if not callable(model_fn):
            raise TypeError(f"{owner} got model_fn={model_fn!r}; expected a callable.")
        try:
            parameters = inspect.signature(model_fn).parameters
        except (TypeError, ValueError):
            raise TypeError(f"{owner} got model_fn={model_fn!r} whose signature cannot be read; "
                            "wrap it in a def.") from None
        positional = [n for n, p in parameters.items()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                      and n not in _KEYWORD_ARGS]
        if not positional:
            raise ValueError(
                f"{owner} got a model_fn with arguments {tuple(parameters)}; expected "
                "(features, targets[, mode[, params[, config]]]).")
        self.takes_labels = len(positional) >= 2
        extra = [n for n in positional[2:] if parameters[n].default is inspect.Parameter.empty]
        if extra:
            raise ValueError(
                f"{owner} got a model_fn with unexpected arguments {extra}; it may take "
                f"(features, targets) and then any of {_KEYWORD_ARGS}.")
        self.keywords = [n for n in _KEYWORD_ARGS if n in parameters]
        self.model_fn = model_fn
        self.params = params
        self.feature_engineering_fn = feature_engineering_fn
        self.labels_spec = None

    def __call__(self, features, labels, mode, config, metrics=None):
        if self.feature_engineering_fn is not None:
            features, labels = self.feature_engineering_fn(features, labels)
        if (labels is None and mode == ModeKeys.PREDICT and self.takes_labels
                and "mode" not in self.keywords and self.labels_spec is not None):
            labels = _zero_labels(features, *self.labels_spec)
        kwargs = {}
        values = {"mode": mode, "params": self.params, "config": config,
                  "model_dir": config.model_dir}
        for name in self.keywords:
            kwargs[name] = values[name]
        args = (features, labels) if self.takes_labels else (features,)
        result = self.model_fn(*args, **kwargs)
        spec = to_estimator_spec(result, mode)
        return add_metrics(spec, metrics, labels, None)


def _zero_labels(features, dtype, row_shape):
    first = tf.nest.flatten(features)[0]
    batch = tf.shape(first)[:1]
    return tf.zeros(tf.concat([batch, tf.constant(row_shape, tf.int32)], 0), dtype)


def to_estimator_spec(result, mode) -> EstimatorSpec:
    """An `EstimatorSpec` from a model_fn result: a spec, a ModelFnOps-like object or a tuple."""
    if isinstance(result, EstimatorSpec):
        return result
    if isinstance(result, tuple) and not hasattr(result, "_fields"):
        if len(result) != 3:
            raise ValueError(
                f"model_fn returned a tuple of {len(result)} items in mode={mode!r}; expected "
                "(predictions, loss, train_op), a trainer.EstimatorSpec or a learn.ModelFnOps.")
        predictions, loss, train_op = result
        if mode == ModeKeys.TRAIN:
            if loss is None or train_op is None:
                raise ValueError(
                    f"model_fn returned (predictions, loss={loss!r}, train_op={train_op!r}) in "
                    "mode='train'; training needs both loss and train_op.")
            return EstimatorSpec(mode, predictions=predictions, loss=loss, train_op=train_op)
        if mode == ModeKeys.EVAL:
            if loss is None:
                raise ValueError("model_fn returned (predictions, loss=None, train_op) in "
                                 "mode='eval'; evaluation needs the loss.")
            return EstimatorSpec(mode, predictions=predictions, loss=loss)
        if predictions is None:
            raise ValueError("model_fn returned (predictions=None, loss, train_op) in "
                             "mode='infer'; prediction needs the predictions.")
        return EstimatorSpec(mode, predictions=predictions)
    fields = ("predictions", "loss", "train_op", "eval_metric_ops")
    if all(hasattr(result, f) for f in fields):  # a ModelFnOps-like object
        if getattr(result, "output_alternatives", None) is not None:
            raise NotImplementedError(
                "model_fn returned output_alternatives, which are not supported. How to fix: "
                "return trainer.EstimatorSpec(..., export_outputs=...).")
        return EstimatorSpec(
            mode, predictions=result.predictions, loss=result.loss,
            train_op=result.train_op if mode == ModeKeys.TRAIN else None,
            eval_metric_ops=result.eval_metric_ops,
            training_chief_hooks=getattr(result, "training_chief_hooks", None),
            training_hooks=getattr(result, "training_hooks", None))
    raise TypeError(
        f"model_fn returned {type(result).__name__} in mode={mode!r}; expected the tuple "
        "(predictions, loss, train_op), a learn.ModelFnOps or a trainer.EstimatorSpec.")


def add_metrics(spec, metrics, labels, default_key):
    """Adds TF.Learn ``metrics`` ({name or (name, prediction_key): fn(predictions, labels)})."""
    if not metrics or spec.mode != ModeKeys.EVAL:
        return spec
    ops = dict(spec.eval_metric_ops)
    for key, fn in metrics.items():
        name, prediction_key = key if isinstance(key, tuple) else (key, None)
        predictions = spec.predictions
        if isinstance(predictions, dict):
            if prediction_key is None:
                prediction_key = default_key if len(predictions) > 1 else next(iter(predictions))
            if prediction_key not in predictions:
                raise ValueError(
                    f"evaluate got metrics key {key!r}; the predictions are a dict with keys "
                    f"{sorted(predictions)}; name the one to use: ({name!r}, '<prediction key>').")
            predictions = predictions[prediction_key]
        elif prediction_key is not None:
            raise ValueError(f"evaluate got metrics key {key!r}, but the predictions are a single "
                             "Tensor; use the name alone.")
        if predictions is None:
            raise ValueError(f"evaluate got metric {name!r}, but the model_fn returned no "
                             "predictions in mode='eval'.")
        if (isinstance(labels, tf.Tensor) and isinstance(predictions, tf.Tensor)
                and labels.shape.rank is not None and predictions.shape.rank is not None
                and predictions.shape.rank == labels.shape.rank + 1
                and predictions.shape[-1] == 1):
            predictions = tf.squeeze(predictions, -1)  # e.g. class_ids [batch, 1] vs labels [batch]
        ops[name] = fn(predictions, labels)
    return EstimatorSpec(spec.mode, predictions=spec.predictions, loss=spec.loss,
                         eval_metric_ops=ops, export_outputs=spec.export_outputs,
                         evaluation_hooks=spec.evaluation_hooks)


def _check_metrics(metrics, caller):
    if metrics is None:
        return None
    if not isinstance(metrics, dict):
        raise TypeError(f"{caller} got metrics={metrics!r}; expected a dict of name -> "
                        "fn(predictions, labels), e.g. {'accuracy': trainer.metrics.accuracy}.")
    for key, fn in metrics.items():
        ok_key = isinstance(key, str) or (isinstance(key, tuple) and len(key) == 2
                                          and all(isinstance(k, str) for k in key))
        if not ok_key:
            raise ValueError(f"{caller} got metrics key {key!r}; expected a name or a "
                             "(name, prediction_key) pair.")
        if not callable(fn):
            raise NotImplementedError(
                f"{caller} got metrics[{key!r}]={fn!r}; only callables fn(predictions, labels) are "
                "supported (not MetricSpec). How to fix: e.g. trainer.metrics.accuracy.")
    return dict(metrics)


def _check_hooks(hooks, name, caller):
    checked = []
    for hook in list(hooks or []):
        adapted = as_hook(hook)
        checked.append(adapted)
        if adapted is None:
            raise TypeError(
                f"{caller} got {name} item {hook!r}; only trainer.SessionRunHook objects are "
                "supported (TF.Learn's monitors are not). How to fix: write the monitor as a "
                "SessionRunHook, or use trainer.hooks (LoggingTensorHook, early stopping, ...).")
    return checked


class Estimator:
    """TF.Learn's Estimator: ``fit``/``evaluate``/``predict`` on arrays or input_fns.

    Args:
        model_fn: ``model_fn(features, targets)``, ``(features, targets, mode)``,
            ``(features, targets, mode, params)`` (any name for the first two;
            ``config`` and ``model_dir`` may be taken too), returning the tuple
            ``(predictions, loss, train_op)``, a `ModelFnOps` or a
            `trainer.EstimatorSpec`. ``x`` given as an array reaches it as a
            Tensor; a dict or DataFrame as a dict of Tensors.
        model_dir, config: as for `trainer.Estimator`.
        params: passed to the model_fn as ``params`` (any object).
        feature_engineering_fn: ``fn(features, labels) -> (features, labels)``
            applied before the model_fn.

    Example:
        >>> def my_model(features, target):
        ...     logits = tf.keras.layers.Dense(3, name="logits")(features)
        ...     loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        ...         labels=target, logits=logits))
        ...     train_op = optimize_loss(loss, None, learning_rate=0.1, optimizer="Adagrad")
        ...     return tf.argmax(logits, 1), loss, train_op
        >>> # Estimator(model_fn=my_model).fit(x_train, y_train, steps=1000)
    """

    _array_as_dict = False  # canned estimators need a dict of features (feature columns)
    _default_prediction_key = None

    def __init__(self, model_fn=None, model_dir=None, config=None, params=None,
                 feature_engineering_fn=None):
        if model_fn is None:
            raise ValueError("Estimator needs model_fn=...; for a canned model use "
                             "learn.DNNClassifier and friends.")
        self._legacy = _LegacyModelFn(model_fn, params, feature_engineering_fn,
                                      type(self).__name__)
        self._params = params
        self._core = core.Estimator(self._legacy_call(None), model_dir=model_dir, config=config)
        self._cores = {}

    def _legacy_call(self, metrics):
        legacy = self._legacy

        def model_fn(features, labels, mode, config):
            return legacy(features, labels, mode, config, metrics)

        return model_fn

    def _make_core(self, metrics):
        return core.Estimator(self._legacy_call(metrics), model_dir=self._core.model_dir,
                              config=self._core.config)

    def _core_for(self, metrics):
        """The core estimator for evaluating with ``metrics`` (one per distinct dict)."""
        if not metrics:
            return self._core
        key = tuple(sorted((repr(k), id(fn)) for k, fn in metrics.items()))
        if key not in self._cores:
            self._cores[key] = (self._make_core(metrics), metrics)  # keeps the fns alive
        return self._cores[key][0]

    # -- properties ----------------------------------------------------------------
    @property
    def core_estimator(self):
        """The `trainer.Estimator` underneath (for `trainer.train_and_evaluate`, exporters)."""
        return self._core

    @property
    def model_dir(self) -> str:
        return self._core.model_dir

    @property
    def config(self):
        return self._core.config

    @property
    def params(self):
        return self._params

    def latest_checkpoint(self):
        return self._core.latest_checkpoint()

    def get_variable_names(self):
        return self._core.get_variable_names()

    def get_variable_value(self, name):
        return self._core.get_variable_value(name)

    # -- fit -------------------------------------------------------------------------
    def fit(self, x=None, y=None, input_fn=None, steps=None, batch_size=None, monitors=None,
            max_steps=None):
        """Trains on ``x``/``y`` (shuffled, repeated) or ``input_fn``; returns self.

        ``steps`` is relative to the current global step, ``max_steps`` absolute;
        training resumes from the newest checkpoint in ``model_dir``.
        """
        caller = f"{type(self).__name__}.fit"
        steps = _data.check_positive_int(steps, "steps", caller)
        max_steps = _data.check_positive_int(max_steps, "max_steps", caller)
        if steps is not None and max_steps is not None:
            raise ValueError(f"{caller} got steps={steps} and max_steps={max_steps}; give at "
                             "most one.")
        if input_fn is None and steps is None and max_steps is None:
            raise ValueError(f"{caller} got x/y without steps or max_steps; x/y are repeated "
                             "forever while training, so give steps= (or max_steps=).")
        hooks = _check_hooks(monitors, "monitors", caller)
        fn, labels = _data.input_fn_from_xy(x, y, input_fn, caller=caller, batch_size=batch_size,
                                            training=True, need_y=self._needs_labels(),
                                            as_dict=self._array_as_dict)
        if input_fn is not None:
            self._remember_labels_of_input_fn(input_fn)
        else:
            self._remember_labels(labels)
        self._core.train(fn, hooks=hooks, steps=steps, max_steps=max_steps)
        return self

    def partial_fit(self, x=None, y=None, input_fn=None, steps=1, batch_size=None,
                    monitors=None):
        """Continues training for ``steps`` (default 1) more steps; returns self."""
        return self.fit(x=x, y=y, input_fn=input_fn, steps=steps, batch_size=batch_size,
                        monitors=monitors)

    def train(self, input_fn, hooks=None, steps=None, max_steps=None, saving_listeners=None):
        """`trainer.Estimator.train` (tf.estimator's name), for code that mixes both APIs."""
        self._core.train(input_fn, hooks=hooks, steps=steps, max_steps=max_steps,
                         saving_listeners=saving_listeners)
        return self

    def _needs_labels(self):
        return self._legacy.takes_labels

    def _remember_labels(self, labels):
        if labels is None or isinstance(labels, dict):
            return
        dtype = tf.as_dtype(labels.dtype)
        if dtype.is_floating or dtype.is_integer:
            self._legacy.labels_spec = (dtype, list(labels.shape[1:]))

    def _remember_labels_of_input_fn(self, input_fn):
        legacy = self._legacy
        if not legacy.takes_labels or "mode" in legacy.keywords or legacy.labels_spec is not None:
            return
        # Only the dataset's structure is read (nothing is iterated).
        dataset = _calling.call_input_fn(input_fn, ModeKeys.TRAIN, {}, self.config,
                                         caller=f"{type(self).__name__}.fit")
        _, labels = _calling.split_element(dataset.element_spec)
        if (isinstance(labels, tf.TensorSpec) and labels.shape.rank is not None
                and None not in labels.shape[1:]):
            legacy.labels_spec = (labels.dtype, [int(d) for d in labels.shape[1:]])

    # -- evaluate -------------------------------------------------------------------
    def evaluate(self, x=None, y=None, input_fn=None, feed_fn=None, batch_size=None, steps=None,
                 metrics=None, name=None, checkpoint_path=None, hooks=None, log_progress=True):
        """Evaluates on ``x``/``y`` (one pass, in order) or ``input_fn``; returns a dict.

        ``metrics``: ``{name: fn(predictions, labels)}`` (or ``{(name,
        prediction_key): fn}`` when the predictions are a dict), each fn
        returning a ``(value, update_op)`` pair or a metric object, e.g.
        ``trainer.metrics.accuracy``.
        """
        del log_progress
        caller = f"{type(self).__name__}.evaluate"
        if feed_fn is not None:
            raise NotImplementedError(f"{caller}(feed_fn=...) is not supported; pass the data as "
                                      "x/y or through an input_fn.")
        metrics = _check_metrics(metrics, caller)
        fn, _ = _data.input_fn_from_xy(x, y, input_fn, caller=caller, batch_size=batch_size,
                                       training=False, need_y=self._needs_labels(),
                                       as_dict=self._array_as_dict)
        estimator = self._core_for(metrics)
        return estimator.evaluate(fn, steps=_data.check_positive_int(steps, "steps", caller),
                                  hooks=_check_hooks(hooks, "hooks", caller),
                                  checkpoint_path=checkpoint_path, name=name)

    # -- predict ---------------------------------------------------------------------
    def predict(self, x=None, input_fn=None, batch_size=None, outputs=None, as_iterable=True,
                iterate_batches=False):
        """Predictions for ``x`` or ``input_fn``'s features.

        Returns a generator of one prediction per example (``as_iterable=True``,
        TF.Learn's default) or, with ``as_iterable=False``, all of them at once:
        an array, or a dict of arrays when the predictions are a dict.
        ``outputs`` keeps only those keys of a dict of predictions.
        """
        caller = f"{type(self).__name__}.predict"
        fn, keys = self._predict_input(x, input_fn, batch_size, outputs, caller)
        if iterate_batches:
            if not as_iterable:
                raise ValueError(f"{caller} got iterate_batches=True with as_iterable=False; "
                                 "batches are only yielded by an iterable.")
            return self._core.predict(fn, predict_keys=keys, yield_single_examples=False)
        if as_iterable:
            return self._core.predict(fn, predict_keys=keys)
        return _concatenate(self._core.predict(fn, predict_keys=keys, yield_single_examples=False))

    def _predict_input(self, x, input_fn, batch_size, outputs, caller):
        if outputs is not None:
            if isinstance(outputs, str) or not all(isinstance(o, str) for o in outputs):
                raise ValueError(f"{caller} got outputs={outputs!r}; expected a list of "
                                 "prediction keys.")
            outputs = list(outputs)
        fn, _ = _data.input_fn_from_xy(x, None, input_fn, caller=caller, batch_size=batch_size,
                                       training=False, need_y=False, as_dict=self._array_as_dict)
        return fn, outputs

    # -- export ----------------------------------------------------------------------
    def export_saved_model(self, export_dir_base, serving_input_receiver_fn, assets_extra=None,
                           as_text=False, checkpoint_path=None):
        """`trainer.Estimator.export_saved_model`; returns the export directory (bytes)."""
        return self._core.export_saved_model(export_dir_base, serving_input_receiver_fn,
                                             assets_extra=assets_extra, as_text=as_text,
                                             checkpoint_path=checkpoint_path)

    def export_savedmodel(self, export_dir_base, serving_input_fn,
                          default_output_alternative_key=None, assets_extra=None, as_text=False,
                          checkpoint_path=None, graph_rewrite_specs=None,
                          strip_default_attrs=None):
        """TF.Learn's name for `export_saved_model` (its extra arguments must stay None)."""
        for arg, value in (("default_output_alternative_key", default_output_alternative_key),
                           ("graph_rewrite_specs", graph_rewrite_specs),
                           ("strip_default_attrs", strip_default_attrs)):
            if value is not None:
                raise NotImplementedError(f"{type(self).__name__}.export_savedmodel({arg}=...) is "
                                          "not supported; leave it None.")
        return self.export_saved_model(export_dir_base, serving_input_fn,
                                       assets_extra=assets_extra, as_text=as_text,
                                       checkpoint_path=checkpoint_path)

    def export(self, *args, **kwargs):
        """TF.Learn's session-bundle ``export`` is not supported."""
        raise NotImplementedError(
            f"{type(self).__name__}.export (TF.Learn's session-bundle export) is not supported. "
            "How to fix: export_savedmodel(export_dir_base, serving_input_receiver_fn).")


def _concatenate(batches):
    batches = list(batches)
    if not batches:
        return np.zeros((0,))
    if isinstance(batches[0], dict):
        return {key: np.concatenate([b[key] for b in batches], axis=0) for key in batches[0]}
    return np.concatenate(batches, axis=0)
