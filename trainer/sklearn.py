"""scikit-learn style wrappers of the canned estimators, as in the TF.Learn paper.

Each wrapper follows scikit-learn's estimator rules: the constructor only
stores its arguments (so `get_params`, `set_params` and `sklearn.clone`
round-trip them, and `GridSearchCV` can tune ``hidden_units``, ``steps``,
``batch_size`` or ``learning_rate``); `fit` returns ``self``; fitted state lives
in attributes ending in ``_``. ``X`` is a numpy array or a pandas DataFrame;
without ``feature_columns`` the columns are inferred with
`infer_real_valued_columns_from_input`.

Every `fit` trains a fresh model in a new directory: a temporary one (deleted
when the wrapper is garbage-collected) or a new subdirectory of ``model_dir``.

Example:
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = DNNClassifier(hidden_units=[10], steps=200, random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.8
    True
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref

import numpy as np
import tensorflow as tf
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from trainer import canned, optimizers
from trainer.heads.keys import PredictionKeys
from trainer.inputs import numpy_input_fn
# Shared with trainer.learn (which does not need scikit-learn).
from trainer.learn._data import (ARRAY_FEATURE_KEY, infer_real_valued_columns_from_input,
                                 is_dataframe, is_numeric)
from trainer.run_config import RunConfig

__all__ = [
    "ARRAY_FEATURE_KEY", "infer_real_valued_columns_from_input", "LinearClassifier",
    "LinearRegressor", "DNNClassifier", "DNNRegressor", "DNNLinearCombinedClassifier",
    "DNNLinearCombinedRegressor",
]

_PREDICT_BATCH = 1024
_is_dataframe = is_dataframe
_is_numeric = is_numeric


def _check_positive_int(value, name, caller):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{caller} got {name}={value!r}; expected an int > 0.")
    return int(value)


class _CannedWrapper(BaseEstimator):
    """Shared `fit`/`predict` plumbing; subclasses define `__init__` and `_canned_estimator`."""

    _is_classifier = False

    def __getstate__(self):
        state = dict(super().__getstate__())
        state.pop("_finalizer", None)  # not picklable; a copy does not own the directory
        return state

    # -- subclass hook ---------------------------------------------------------
    def _canned_estimator(self, columns, n_outputs, config):
        raise NotImplementedError

    # -- fit ---------------------------------------------------------------------
    def fit(self, X, y, steps=None, batch_size=None):
        """Trains a fresh model on ``X``, ``y``; returns self.

        Args:
            X: array of shape [n_samples, n_features] or a DataFrame.
            y: labels, one per row (classes of any type for classifiers).
            steps: overrides the ``steps`` constructor parameter for this fit.
            batch_size: overrides the ``batch_size`` constructor parameter.
        """
        caller = f"{type(self).__name__}.fit"
        steps = _check_positive_int(self.steps if steps is None else steps, "steps", caller)
        batch_size = _check_positive_int(self.batch_size if batch_size is None else batch_size,
                                         "batch_size", caller)
        if y is None:
            raise ValueError(f"{caller} got y=None; expected one label per row of X.")
        self._remember_inputs(X)
        features = self._features(X, caller)
        labels, n_outputs = self._encode_labels(np.asarray(y), caller)
        n_rows = len(next(iter(features.values())))
        if len(labels) != n_rows:
            raise ValueError(
                f"{caller} got X with {n_rows} rows and y with {len(labels)}; expected one label "
                "per row."
            )
        columns = (list(self.feature_columns) if self.feature_columns is not None
                   else infer_real_valued_columns_from_input(self._inferable(features)))
        config = self._config(caller)
        self.estimator_ = self._canned_estimator(columns, n_outputs, config)
        input_fn = numpy_input_fn(features, labels, batch_size=batch_size, num_epochs=None,
                                  shuffle=True, queue_capacity=max(n_rows, 1))
        self.estimator_.train(input_fn, steps=steps)
        self.model_dir_ = self.estimator_.model_dir
        return self

    def _config(self, caller):
        config = self.config if self.config is not None else RunConfig()
        if not isinstance(config, RunConfig):
            raise TypeError(f"{caller} got config={self.config!r}; expected a trainer.RunConfig.")
        parent = self.model_dir or config.model_dir
        if parent:
            os.makedirs(parent, exist_ok=True)
        fit_dir = tempfile.mkdtemp(prefix="fit-" if parent else "sklearn-", dir=parent)
        previous = self.__dict__.pop("_finalizer", None)
        if previous is not None:  # a refit replaces the previous temporary model
            previous()
        if not parent:  # ours alone: delete it with the wrapper (or at the next fit)
            self._finalizer = weakref.finalize(self, shutil.rmtree, fit_dir, True)
        changes = {"model_dir": fit_dir}
        if self.random_state is not None:
            changes["tf_random_seed"] = int(self.random_state)
        return config.replace(**changes)

    def _optimizer(self, optimizer, learning_rate, name="optimizer", rate_name="learning_rate",
                   default_rate=None):
        """The optimizer argument for the canned estimator (a name without a rate gets
        ``default_rate``, else the canned estimator's default)."""
        if learning_rate is None and (default_rate is None or not isinstance(optimizer, str)):
            return optimizer
        learning_rate = default_rate if learning_rate is None else learning_rate
        if not isinstance(optimizer, str):
            raise ValueError(
                f"{type(self).__name__} got {rate_name}={learning_rate!r} with {name}="
                f"{optimizer!r}; a learning rate goes with an optimizer name. How to fix: pass "
                f"{name}='Adam' (or another name), or set the rate on the optimizer instance."
            )
        optimizers.get(optimizer, learning_rate)  # fails early on a bad name or rate
        # A factory: each trace gets its own optimizer object.
        return lambda: optimizers.get(optimizer, learning_rate)

    # -- inputs ---------------------------------------------------------------------
    def _remember_inputs(self, X):
        if _is_dataframe(X):
            self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
            self.n_features_in_ = len(X.columns)
        else:
            array = np.asarray(X)
            if array.ndim != 2:
                raise ValueError(
                    f"{type(self).__name__}.fit got X with shape {array.shape}; expected a 2-D "
                    "array [n_samples, n_features]. How to fix: X.reshape(-1, 1) for one feature."
                )
            if hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
            self.n_features_in_ = array.shape[1]

    def _features(self, X, caller):
        if _is_dataframe(X):
            inferred = self.feature_columns is None
            return {str(c): _column_values(X[c].values, as_float=inferred) for c in X.columns}
        array = np.asarray(X)
        if array.ndim != 2:
            raise ValueError(f"{caller} got X with shape {array.shape}; expected a 2-D array.")
        if array.shape[1] != self.n_features_in_:
            raise ValueError(
                f"{caller} got X with {array.shape[1]} features; the model was fitted with "
                f"{self.n_features_in_}. How to fix: pass the same columns as in fit."
            )
        if not _is_numeric(array):
            raise ValueError(f"{caller} got X of dtype {array.dtype}; expected numbers. How to "
                             "fix: encode the values as numbers, or pass a DataFrame with "
                             "feature_columns.")
        return {ARRAY_FEATURE_KEY: array.astype(np.float32)}

    def _inferable(self, features):
        if set(features) == {ARRAY_FEATURE_KEY} and not hasattr(self, "feature_names_in_"):
            return features[ARRAY_FEATURE_KEY]
        return features

    def _predictions(self, X, key):
        check_is_fitted(self, "estimator_")
        caller = f"{type(self).__name__}.predict"
        if hasattr(self, "feature_names_in_"):
            if not _is_dataframe(X):
                raise ValueError(
                    f"{caller} got a {type(X).__name__}; the model was fitted on a DataFrame "
                    f"with columns {list(self.feature_names_in_)}. How to fix: pass a DataFrame."
                )
            missing = sorted(set(self.feature_names_in_) - {str(c) for c in X.columns})
            if missing:
                raise ValueError(f"{caller} got a DataFrame without columns {missing}.")
            X = X[[c for c in X.columns if str(c) in set(self.feature_names_in_)]]
        features = self._features(X, caller)
        n_rows = len(next(iter(features.values())))
        input_fn = numpy_input_fn(features, batch_size=max(1, min(n_rows, _PREDICT_BATCH)),
                                  num_epochs=1, shuffle=False)
        batches = [batch[key] for batch in self.estimator_.predict(
            input_fn, predict_keys=[key], yield_single_examples=False)]
        return np.concatenate(batches, axis=0)


def _column_values(values, *, as_float):
    array = np.asarray(values)
    if array.dtype.kind == "O":
        return array.astype(str)
    if as_float or array.dtype.kind == "f":
        return array.astype(np.float32)
    return array


class _ClassifierWrapper(ClassifierMixin, _CannedWrapper):
    _is_classifier = True

    def _encode_labels(self, y, caller):
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        if y.ndim != 1:
            raise ValueError(f"{caller} got y with shape {y.shape}; expected one class per row.")
        n_classes = self.n_classes
        if n_classes is not None and (isinstance(n_classes, bool)
                                      or not isinstance(n_classes, (int, np.integer))
                                      or n_classes < 2):
            raise ValueError(f"{type(self).__name__} got n_classes={n_classes!r}; expected an "
                             "int >= 2 or None (None: the classes seen in y).")
        seen = np.unique(y)
        if n_classes is not None and len(seen) > n_classes:
            raise ValueError(
                f"{caller} got y with {len(seen)} classes {seen.tolist()[:20]} but "
                f"n_classes={n_classes}. How to fix: n_classes={len(seen)}, or check the labels.")
        if (n_classes is not None and y.dtype.kind in "iu"
                and seen.min() >= 0 and seen.max() < n_classes):
            # TF.Learn's convention: labels are class ids 0..n_classes-1, all of them classes
            # even if some do not occur in this y.
            self.classes_ = np.arange(n_classes, dtype=y.dtype)
            return y.astype(np.int64), int(n_classes)
        if n_classes is not None and len(seen) != n_classes:
            raise ValueError(
                f"{caller} got y with {len(seen)} classes {seen.tolist()[:20]} but "
                f"n_classes={n_classes}; labels other than the ids 0..{n_classes - 1} must "
                "all occur in y. How to fix: pass n_classes=None, or integer class ids.")
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"{caller} got y with a single class {self.classes_.tolist()}; a classifier "
                "needs at least 2 classes. How to fix: check the labels (and the split)."
            )
        return encoded.astype(np.int64), len(self.classes_)

    def predict(self, X):
        """Returns the most likely class of each row, from ``classes_``."""
        class_ids = self._predictions(X, PredictionKeys.CLASS_IDS)
        return self.classes_[class_ids.reshape(-1)]

    def predict_proba(self, X):
        """Returns class probabilities, shape [n_samples, n_classes] (``classes_`` order)."""
        return self._predictions(X, PredictionKeys.PROBABILITIES)


class _RegressorWrapper(RegressorMixin, _CannedWrapper):
    def _encode_labels(self, y, caller):
        if y.ndim not in (1, 2) or not _is_numeric(y):
            raise ValueError(f"{caller} got y with shape {y.shape} and dtype {y.dtype}; "
                             "expected numbers, shape [n_samples] or [n_samples, n_targets].")
        self._one_target = y.ndim == 1
        return y.astype(np.float32), 1 if y.ndim == 1 else y.shape[1]

    def predict(self, X):
        """Returns predictions, shape [n_samples] (or [n_samples, n_targets])."""
        values = self._predictions(X, PredictionKeys.PREDICTIONS)
        return values.reshape(-1) if self._one_target else values


# TF.Learn's DNN estimators trained a named optimizer at 0.05 (tf.estimator 2.x: Keras's
# default, 0.001 for Adagrad); the linear and wide & deep defaults are the same in both.
TF_LEARN_DNN_LEARNING_RATE = 0.05


def _labels_arg(wrapper, n_outputs):
    return {"n_classes": n_outputs} if wrapper._is_classifier else {"label_dimension": n_outputs}


class _Linear:
    def _canned_estimator(self, columns, n_outputs, config):
        cls = canned.LinearClassifier if self._is_classifier else canned.LinearRegressor
        return cls(columns, optimizer=self._optimizer(self.optimizer, self.learning_rate),
                   config=config, **_labels_arg(self, n_outputs))


class _DNN:
    def _canned_estimator(self, columns, n_outputs, config):
        cls = canned.DNNClassifier if self._is_classifier else canned.DNNRegressor
        return cls(list(self.hidden_units), columns,
                   optimizer=self._optimizer(self.optimizer, self.learning_rate,
                                             default_rate=TF_LEARN_DNN_LEARNING_RATE),
                   activation_fn=self.activation_fn, dropout=self.dropout,
                   batch_norm=self.batch_norm, config=config, **_labels_arg(self, n_outputs))


class _Combined:
    def _canned_estimator(self, columns, n_outputs, config):
        cls = (canned.DNNLinearCombinedClassifier if self._is_classifier
               else canned.DNNLinearCombinedRegressor)
        linear = columns if self.linear_feature_columns is None else self.linear_feature_columns
        return cls(linear_feature_columns=list(linear), dnn_feature_columns=columns,
                   dnn_hidden_units=list(self.hidden_units),
                   linear_optimizer=self._optimizer(self.linear_optimizer,
                                                    self.linear_learning_rate,
                                                    "linear_optimizer", "linear_learning_rate"),
                   dnn_optimizer=self._optimizer(self.optimizer, self.learning_rate),
                   dnn_activation_fn=self.activation_fn, dnn_dropout=self.dropout,
                   config=config, **_labels_arg(self, n_outputs))


_COMMON_ARGS = """        feature_columns: trainer.feature_column columns; None infers real-valued
            ones from X (`infer_real_valued_columns_from_input`).
        n_classes (classifiers): None takes the classes seen in ``y``; an int
            checks them: integer labels in [0, n_classes) are class ids (all
            n_classes are classes, as in TF.Learn), other labels must number
            exactly n_classes.
        optimizer: an optimizer name ('Adagrad', 'Adam', 'Ftrl', ...) or instance.
        learning_rate: the rate for a named optimizer; None keeps TF.Learn's default for a
            DNN (0.05, as these wrappers' TF.Learn originals), tf.estimator's otherwise.
        steps: training steps per `fit`.
        batch_size: examples per training step.
        model_dir: parent directory of each fit's model_dir (None: a temporary one).
        random_state: seeds TensorFlow (``RunConfig.tf_random_seed``).
        config: a `trainer.RunConfig` for everything else.
"""


class LinearClassifier(_Linear, _ClassifierWrapper):
    __doc__ = ("""Logistic/softmax regression; `trainer.LinearClassifier` in scikit-learn form.

    Args:
""" + _COMMON_ARGS + """
    Example:
        >>> clf = LinearClassifier(steps=100).fit(np.eye(2), ["a", "b"])
        >>> clf.classes_.tolist()
        ['a', 'b']
    """)

    def __init__(self, feature_columns=None, *, n_classes=None, optimizer="Ftrl",
                 learning_rate=None, steps=200, batch_size=32, model_dir=None, random_state=None,
                 config=None):
        self.feature_columns = feature_columns
        self.n_classes = n_classes
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.steps = steps
        self.batch_size = batch_size
        self.model_dir = model_dir
        self.random_state = random_state
        self.config = config


class LinearRegressor(_Linear, _RegressorWrapper):
    __doc__ = ("""Least-squares regression; `trainer.LinearRegressor` in scikit-learn form.

    Args:
""" + _COMMON_ARGS + """
    Example:
        >>> reg = LinearRegressor(steps=50).fit(np.ones((4, 1)), np.ones(4))
        >>> reg.predict(np.ones((1, 1))).shape
        (1,)
    """)

    def __init__(self, feature_columns=None, *, optimizer="Ftrl", learning_rate=None, steps=200,
                 batch_size=32, model_dir=None, random_state=None, config=None):
        self.feature_columns = feature_columns
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.steps = steps
        self.batch_size = batch_size
        self.model_dir = model_dir
        self.random_state = random_state
        self.config = config


_DNN_ARGS = """        hidden_units: sizes of the hidden layers, e.g. (10, 10).
        activation_fn, dropout, batch_norm: as for `trainer.DNNClassifier`.
""" + _COMMON_ARGS


class DNNClassifier(_DNN, _ClassifierWrapper):
    __doc__ = ("""A feed-forward classifier; `trainer.DNNClassifier` in scikit-learn form.

    Args:
""" + _DNN_ARGS + """
    Example:
        >>> from sklearn.pipeline import Pipeline
        >>> from sklearn.preprocessing import StandardScaler
        >>> pipe = Pipeline([("scale", StandardScaler()), ("clf", DNNClassifier([10]))])
    """)

    def __init__(self, hidden_units=(10,), feature_columns=None, *, n_classes=None,
                 optimizer="Adagrad", learning_rate=None, activation_fn=tf.nn.relu, dropout=None,
                 batch_norm=False, steps=200, batch_size=32, model_dir=None, random_state=None,
                 config=None):
        self.hidden_units = hidden_units
        self.feature_columns = feature_columns
        self.n_classes = n_classes
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.activation_fn = activation_fn
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.steps = steps
        self.batch_size = batch_size
        self.model_dir = model_dir
        self.random_state = random_state
        self.config = config


class DNNRegressor(_DNN, _RegressorWrapper):
    __doc__ = ("""A feed-forward regressor; `trainer.DNNRegressor` in scikit-learn form.

    Args:
""" + _DNN_ARGS + """
    Example:
        >>> reg = DNNRegressor([8], steps=20).fit(np.ones((4, 2)), np.ones(4))
        >>> reg.predict(np.ones((3, 2))).shape
        (3,)
    """)

    def __init__(self, hidden_units=(10,), feature_columns=None, *, optimizer="Adagrad",
                 learning_rate=None, activation_fn=tf.nn.relu, dropout=None, batch_norm=False,
                 steps=200, batch_size=32, model_dir=None, random_state=None, config=None):
        self.hidden_units = hidden_units
        self.feature_columns = feature_columns
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.activation_fn = activation_fn
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.steps = steps
        self.batch_size = batch_size
        self.model_dir = model_dir
        self.random_state = random_state
        self.config = config


_COMBINED_INTRO = """
    ``feature_columns`` feed the deep part and, unless ``linear_feature_columns``
    is given, the linear part too. ``optimizer``/``learning_rate`` are the deep
    part's; ``linear_optimizer``/``linear_learning_rate`` the linear part's.
"""


class DNNLinearCombinedClassifier(_Combined, _ClassifierWrapper):
    __doc__ = ("""Wide & deep classifier in scikit-learn form.
""" + _COMBINED_INTRO
               + "\n    Args:\n" + _DNN_ARGS.replace(", batch_norm", ""))

    def __init__(self, hidden_units=(10,), feature_columns=None, *, n_classes=None,
                 linear_feature_columns=None, optimizer="Adagrad", learning_rate=None,
                 linear_optimizer="Ftrl",
                 linear_learning_rate=None, activation_fn=tf.nn.relu, dropout=None, steps=200,
                 batch_size=32, model_dir=None, random_state=None, config=None):
        self.hidden_units = hidden_units
        self.feature_columns = feature_columns
        self.n_classes = n_classes
        self.linear_feature_columns = linear_feature_columns
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.linear_optimizer = linear_optimizer
        self.linear_learning_rate = linear_learning_rate
        self.activation_fn = activation_fn
        self.dropout = dropout
        self.steps = steps
        self.batch_size = batch_size
        self.model_dir = model_dir
        self.random_state = random_state
        self.config = config


class DNNLinearCombinedRegressor(_Combined, _RegressorWrapper):
    __doc__ = ("""Wide & deep regressor in scikit-learn form.
""" + _COMBINED_INTRO
               + "\n    Args:\n" + _DNN_ARGS.replace(", batch_norm", ""))

    def __init__(self, hidden_units=(10,), feature_columns=None, *, linear_feature_columns=None,
                 optimizer="Adagrad", learning_rate=None, linear_optimizer="Ftrl",
                 linear_learning_rate=None, activation_fn=tf.nn.relu, dropout=None, steps=200,
                 batch_size=32, model_dir=None, random_state=None, config=None):
        self.hidden_units = hidden_units
        self.feature_columns = feature_columns
        self.linear_feature_columns = linear_feature_columns
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.linear_optimizer = linear_optimizer
        self.linear_learning_rate = linear_learning_rate
        self.activation_fn = activation_fn
        self.dropout = dropout
        self.steps = steps
        self.batch_size = batch_size
        self.model_dir = model_dir
        self.random_state = random_state
        self.config = config
