"""TF.Learn's canned estimators (``tf.contrib.learn.DNNClassifier`` and friends).

Each holds the matching `trainer` canned estimator and takes TF.Learn's
arguments: ``weight_column_name`` (-> ``weight_column``), ``label_keys``
(-> ``label_vocabulary``), ``optimizer=None`` meaning TF.Learn's default
(Adagrad at 0.05 for DNNs, FTRL at min(0.2, 1/sqrt(#columns)) for linear
models). ``predict`` of a classifier yields classes, of a regressor scores.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from trainer import _calling, canned, optimizers
from trainer import estimator as core
from trainer.canned import _common
from trainer.heads.keys import PredictionKeys
from trainer.learn.estimator import Estimator, add_metrics

__all__ = ["DNNClassifier", "DNNRegressor", "LinearClassifier", "LinearRegressor",
           "DNNLinearCombinedClassifier", "DNNLinearCombinedRegressor"]

_DNN_LEARNING_RATE = 0.05     # TF.Learn's DNN default (Adagrad)
_LINEAR_LEARNING_RATE = 0.2   # TF.Learn's linear cap: min(0.2, 1/sqrt(#columns)) (FTRL)


def _unsupported(owner, **settings):
    defaults = {"gradient_clip_norm": None, "enable_centered_bias": False,
                "embedding_lr_multipliers": None, "input_layer_min_slice_size": None,
                "_joint_weights": False, "fix_global_step_increment_bug": False}
    for name, value in settings.items():
        if value != defaults[name]:
            raise NotImplementedError(
                f"{owner}({name}={value!r}) is not supported; leave it at "
                f"{defaults[name]!r}.")


def _optimizer(optimizer, default_name, default_rate):
    """None is TF.Learn's default optimizer; a name gets TF.Learn's default rate too (TF.Learn
    built a named optimizer at its own rate, not at tf.estimator 2.x's Keras defaults)."""
    if optimizer is None or isinstance(optimizer, str):
        name = default_name if optimizer is None else optimizer
        optimizers.get(name, default_rate)  # fails early on a bad name or rate
        return lambda: optimizers.get(name, default_rate)
    return optimizer


def _linear_rate(columns):
    return _common.linear_learning_rate(len(list(columns or [])), cap=_LINEAR_LEARNING_RATE)


class _CannedLearn(Estimator):
    """Shared plumbing: a `trainer` canned estimator as the core."""

    _array_as_dict = True
    _is_classifier = False

    def __init__(self, base, feature_engineering_fn):
        # Not Estimator.__init__: the core is the canned estimator itself.
        self._base = base
        self._params = None
        self._feature_engineering_fn = feature_engineering_fn
        self._core = self._make_core(None) if feature_engineering_fn is not None else base
        self._cores = {}

    def _make_core(self, metrics):
        base, engineer = self._base, self._feature_engineering_fn
        base_fn = base.model_fn
        base_args = _calling.fn_args(base_fn)
        default_key = self._default_prediction_key

        @tf.autograph.experimental.do_not_convert
        def model_fn(features, labels, mode, config):
            if engineer is not None:
                features, labels = engineer(features, labels)
            spec = _calling.call_model_fn(base_fn, base_args, features, labels, mode,
                                          base.params, config)
            return add_metrics(spec, metrics, labels, default_key)

        return core.Estimator(model_fn, model_dir=base.model_dir, config=base.config)

    def _needs_labels(self):
        return True

    def _remember_labels(self, labels):
        pass  # the head knows its labels

    def _remember_labels_of_input_fn(self, input_fn):
        pass

    def get_params(self) -> dict:
        return self._base.get_params()

    def _single_key(self, x, input_fn, batch_size, as_iterable, key, caller):
        fn, _ = self._predict_input(x, input_fn, batch_size, None, caller)
        batches = self._core.predict(fn, predict_keys=[key], yield_single_examples=False)
        if as_iterable:
            return (value for batch in batches for value in self._convert(key, batch[key]))
        values = [np.asarray(self._convert(key, batch[key])) for batch in batches]
        return np.concatenate(values, axis=0) if values else np.zeros((0,))

    def _convert(self, key, values):
        return values


class _Classifier(_CannedLearn):
    _is_classifier = True
    _default_prediction_key = PredictionKeys.CLASS_IDS

    def predict(self, x=None, input_fn=None, batch_size=None, outputs=None, as_iterable=True):
        """Classes of ``x``'s rows (class ids, or ``label_keys`` entries); with ``outputs``,
        a dict of those prediction keys (e.g. ``['probabilities', 'logits']``)."""
        if outputs is not None:
            return super().predict(x=x, input_fn=input_fn, batch_size=batch_size,
                                   outputs=outputs, as_iterable=as_iterable)
        return self.predict_classes(x=x, input_fn=input_fn, batch_size=batch_size,
                                    as_iterable=as_iterable)

    def predict_classes(self, x=None, input_fn=None, batch_size=None, as_iterable=True):
        """Predicted class of each row: an int id, or the ``label_keys`` string."""
        key = PredictionKeys.CLASSES if self._label_keys else PredictionKeys.CLASS_IDS
        return self._single_key(x, input_fn, batch_size, as_iterable, key,
                                f"{type(self).__name__}.predict_classes")

    def predict_proba(self, x=None, input_fn=None, batch_size=None, as_iterable=True):
        """Class probabilities of each row, shape [n_classes]."""
        return self._single_key(x, input_fn, batch_size, as_iterable,
                                PredictionKeys.PROBABILITIES,
                                f"{type(self).__name__}.predict_proba")

    def _convert(self, key, values):
        if key == PredictionKeys.CLASS_IDS:
            return values.reshape(-1).astype("int64")
        if key == PredictionKeys.CLASSES:
            return [v.decode() if isinstance(v, bytes) else v for v in values.reshape(-1)]
        return values


class _Regressor(_CannedLearn):
    _default_prediction_key = PredictionKeys.PREDICTIONS

    def predict(self, x=None, input_fn=None, batch_size=None, outputs=None, as_iterable=True):
        """Predicted values of ``x``'s rows; with ``outputs``, a dict of those keys."""
        if outputs is not None:
            return super().predict(x=x, input_fn=input_fn, batch_size=batch_size,
                                   outputs=outputs, as_iterable=as_iterable)
        return self.predict_scores(x=x, input_fn=input_fn, batch_size=batch_size,
                                   as_iterable=as_iterable)

    def predict_scores(self, x=None, input_fn=None, batch_size=None, as_iterable=True):
        """Predicted value of each row (a scalar, or [label_dimension] values)."""
        return self._single_key(x, input_fn, batch_size, as_iterable, PredictionKeys.PREDICTIONS,
                                f"{type(self).__name__}.predict_scores")

    def _convert(self, key, values):
        if values.ndim == 2 and values.shape[1] == 1 and self._label_dimension == 1:
            return values.reshape(-1)
        return values


class DNNClassifier(_Classifier):
    """TF.Learn's DNN classifier.

    Example (the TF.Learn paper's):
        >>> # classifier = learn.DNNClassifier(feature_columns=feature_columns,
        >>> #                                  hidden_units=[10, 20, 10], n_classes=3)
        >>> # classifier.fit(x_train, y_train, steps=200)
        >>> # predictions = list(classifier.predict(x_test, as_iterable=True))
    """

    def __init__(self, hidden_units, feature_columns, model_dir=None, n_classes=2,
                 weight_column_name=None, optimizer=None, activation_fn=tf.nn.relu, dropout=None,
                 gradient_clip_norm=None, enable_centered_bias=False, config=None,
                 feature_engineering_fn=None, embedding_lr_multipliers=None,
                 input_layer_min_slice_size=None, label_keys=None):
        _unsupported(type(self).__name__, gradient_clip_norm=gradient_clip_norm,
                     enable_centered_bias=enable_centered_bias,
                     embedding_lr_multipliers=embedding_lr_multipliers,
                     input_layer_min_slice_size=input_layer_min_slice_size)
        self._label_keys = label_keys
        base = canned.DNNClassifier(
            hidden_units, feature_columns, model_dir=model_dir, n_classes=n_classes,
            weight_column=weight_column_name, label_vocabulary=label_keys,
            optimizer=_optimizer(optimizer, "Adagrad", _DNN_LEARNING_RATE),
            activation_fn=activation_fn, dropout=dropout, config=config)
        super().__init__(base, feature_engineering_fn)


class DNNRegressor(_Regressor):
    """TF.Learn's DNN regressor."""

    def __init__(self, hidden_units, feature_columns, model_dir=None, weight_column_name=None,
                 optimizer=None, activation_fn=tf.nn.relu, dropout=None, gradient_clip_norm=None,
                 enable_centered_bias=False, config=None, feature_engineering_fn=None,
                 label_dimension=1, embedding_lr_multipliers=None,
                 input_layer_min_slice_size=None):
        _unsupported(type(self).__name__, gradient_clip_norm=gradient_clip_norm,
                     enable_centered_bias=enable_centered_bias,
                     embedding_lr_multipliers=embedding_lr_multipliers,
                     input_layer_min_slice_size=input_layer_min_slice_size)
        self._label_dimension = label_dimension
        base = canned.DNNRegressor(
            hidden_units, feature_columns, model_dir=model_dir, label_dimension=label_dimension,
            weight_column=weight_column_name,
            optimizer=_optimizer(optimizer, "Adagrad", _DNN_LEARNING_RATE),
            activation_fn=activation_fn, dropout=dropout, config=config)
        super().__init__(base, feature_engineering_fn)


class LinearClassifier(_Classifier):
    """TF.Learn's linear (logistic/softmax) classifier."""

    def __init__(self, feature_columns, model_dir=None, n_classes=2, weight_column_name=None,
                 optimizer=None, gradient_clip_norm=None, enable_centered_bias=False,
                 _joint_weight=False, config=None, feature_engineering_fn=None,
                 label_keys=None):
        _unsupported(type(self).__name__, gradient_clip_norm=gradient_clip_norm,
                     enable_centered_bias=enable_centered_bias, _joint_weights=_joint_weight)
        self._label_keys = label_keys
        base = canned.LinearClassifier(
            feature_columns, model_dir=model_dir, n_classes=n_classes,
            weight_column=weight_column_name, label_vocabulary=label_keys,
            optimizer=_optimizer(optimizer, "Ftrl", _linear_rate(feature_columns)), config=config)
        super().__init__(base, feature_engineering_fn)


class LinearRegressor(_Regressor):
    """TF.Learn's linear regressor."""

    def __init__(self, feature_columns, model_dir=None, weight_column_name=None, optimizer=None,
                 gradient_clip_norm=None, enable_centered_bias=False, label_dimension=1,
                 _joint_weights=False, config=None, feature_engineering_fn=None):
        _unsupported(type(self).__name__, gradient_clip_norm=gradient_clip_norm,
                     enable_centered_bias=enable_centered_bias, _joint_weights=_joint_weights)
        self._label_dimension = label_dimension
        base = canned.LinearRegressor(
            feature_columns, model_dir=model_dir, label_dimension=label_dimension,
            weight_column=weight_column_name,
            optimizer=_optimizer(optimizer, "Ftrl", _linear_rate(feature_columns)), config=config)
        super().__init__(base, feature_engineering_fn)


def _combined_args(owner, linear_feature_columns, linear_optimizer, dnn_optimizer,
                   gradient_clip_norm, enable_centered_bias, joint, embedding_lr_multipliers,
                   input_layer_min_slice_size, fix_global_step_increment_bug):
    _unsupported(owner, gradient_clip_norm=gradient_clip_norm,
                 enable_centered_bias=enable_centered_bias, _joint_weights=joint,
                 embedding_lr_multipliers=embedding_lr_multipliers,
                 input_layer_min_slice_size=input_layer_min_slice_size,
                 fix_global_step_increment_bug=fix_global_step_increment_bug)
    return (_optimizer(linear_optimizer, "Ftrl", _linear_rate(linear_feature_columns)),
            _optimizer(dnn_optimizer, "Adagrad", _DNN_LEARNING_RATE))


class DNNLinearCombinedClassifier(_Classifier):
    """TF.Learn's wide & deep classifier."""

    def __init__(self, model_dir=None, n_classes=2, weight_column_name=None,
                 linear_feature_columns=None, linear_optimizer=None, _joint_linear_weights=False,
                 dnn_feature_columns=None, dnn_optimizer=None, dnn_hidden_units=None,
                 dnn_activation_fn=tf.nn.relu, dnn_dropout=None, gradient_clip_norm=None,
                 enable_centered_bias=False, config=None, feature_engineering_fn=None,
                 embedding_lr_multipliers=None, input_layer_min_slice_size=None,
                 label_keys=None, fix_global_step_increment_bug=False):
        linear_opt, dnn_opt = _combined_args(
            type(self).__name__, linear_feature_columns, linear_optimizer, dnn_optimizer,
            gradient_clip_norm, enable_centered_bias, _joint_linear_weights,
            embedding_lr_multipliers, input_layer_min_slice_size, fix_global_step_increment_bug)
        self._label_keys = label_keys
        base = canned.DNNLinearCombinedClassifier(
            model_dir=model_dir, linear_feature_columns=linear_feature_columns,
            linear_optimizer=linear_opt, dnn_feature_columns=dnn_feature_columns,
            dnn_optimizer=dnn_opt, dnn_hidden_units=dnn_hidden_units,
            dnn_activation_fn=dnn_activation_fn, dnn_dropout=dnn_dropout, n_classes=n_classes,
            weight_column=weight_column_name, label_vocabulary=label_keys, config=config)
        super().__init__(base, feature_engineering_fn)


class DNNLinearCombinedRegressor(_Regressor):
    """TF.Learn's wide & deep regressor."""

    def __init__(self, model_dir=None, weight_column_name=None, linear_feature_columns=None,
                 linear_optimizer=None, _joint_linear_weights=False, dnn_feature_columns=None,
                 dnn_optimizer=None, dnn_hidden_units=None, dnn_activation_fn=tf.nn.relu,
                 dnn_dropout=None, gradient_clip_norm=None, enable_centered_bias=False,
                 label_dimension=1, config=None, feature_engineering_fn=None,
                 embedding_lr_multipliers=None, input_layer_min_slice_size=None):
        linear_opt, dnn_opt = _combined_args(
            type(self).__name__, linear_feature_columns, linear_optimizer, dnn_optimizer,
            gradient_clip_norm, enable_centered_bias, _joint_linear_weights,
            embedding_lr_multipliers, input_layer_min_slice_size, False)
        self._label_dimension = label_dimension
        base = canned.DNNLinearCombinedRegressor(
            model_dir=model_dir, linear_feature_columns=linear_feature_columns,
            linear_optimizer=linear_opt, dnn_feature_columns=dnn_feature_columns,
            dnn_optimizer=dnn_opt, dnn_hidden_units=dnn_hidden_units,
            dnn_activation_fn=dnn_activation_fn, dnn_dropout=dnn_dropout,
            label_dimension=label_dimension, weight_column=weight_column_name, config=config)
        super().__init__(base, feature_engineering_fn)

