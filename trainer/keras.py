"""`model_to_estimator`: a compiled Keras model becomes a `trainer.Estimator`.

As in tf.estimator (KDD'17), the Keras model is only a description: the
`model_fn` rebuilds it from its config inside every trace, so its variables
are created through the Estimator's `VariableStore` under the layers' names
(``dense/kernel``, ``out/bias``). The loss and metrics come from ``compile``;
the optimizer is mapped to `trainer.optimizers` by class name (SGD, Momentum,
Adam, Adagrad, RMSprop, Ftrl) and any other Keras optimizer is re-created from
its config and wrapped. The model's current weights are written to
``<model_dir>/keras/keras_model.ckpt-0`` and the Estimator warm-starts from
them, so training starts where the Keras model is.

Example:
    >>> import keras
    >>> model = keras.Sequential([keras.Input((2,), name="x"), keras.layers.Dense(1, name="y")])
    >>> model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    >>> est = model_to_estimator(model)
    >>> sorted(keras_variable_names(model))
    ['y/bias', 'y/kernel']
"""

from __future__ import annotations

import copy
import os
import re
import tempfile

import tensorflow as tf

from trainer import checkpoints, metrics, optimizers
from trainer._context import get_global_step
from trainer.estimator import GLOBAL_STEP, Estimator
from trainer.estimator_spec import EstimatorSpec
from trainer.export import PredictOutput
from trainer.mode_keys import ModeKeys
from trainer.run_config import RunConfig
from trainer.variables import VariableStore
from trainer.warm_starting import WarmStartSettings

__all__ = ["model_to_estimator", "keras_variable_names"]

_CHECKPOINT_FORMATS = ("checkpoint", "saver")
_WARM_START_DIR = "keras"
_WARM_START_BASENAME = "keras_model.ckpt"


def model_to_estimator(keras_model=None, keras_model_path=None, custom_objects=None,
                       model_dir=None, config=None, checkpoint_format="checkpoint"):
    """Returns a `trainer.Estimator` that trains, evaluates and exports ``keras_model``.

    Args:
        keras_model: a compiled Keras model (Sequential or functional).
        keras_model_path: or a path to a saved ``.keras`` model (compiled).
        custom_objects: custom layers/losses/metrics for rebuilding the model.
        model_dir: the Estimator's model_dir (a temporary one if not given).
        config: a `trainer.RunConfig`.
        checkpoint_format: 'checkpoint' or 'saver'; both write name-based
            checkpoints keyed by layer paths (see docs/migration.md).

    The input_fn yields features keyed by the model's input names (or one
    tensor for a single-input model) and labels as Keras' ``fit`` takes them
    (a dict keyed by output name for several outputs). Predictions are keyed
    by output name.

    Example:
        >>> import keras
        >>> m = keras.Sequential([keras.Input((3,), name="x"), keras.layers.Dense(2)])
        >>> m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        >>> isinstance(model_to_estimator(m), Estimator)
        True
    """
    model = _resolve_model(keras_model, keras_model_path, custom_objects)
    if checkpoint_format not in _CHECKPOINT_FORMATS:
        raise ValueError(
            f"model_to_estimator got checkpoint_format={checkpoint_format!r}; expected one of "
            f"{list(_CHECKPOINT_FORMATS)}."
        )
    if config is not None and not isinstance(config, RunConfig):
        raise TypeError(f"model_to_estimator got config={config!r}; expected a trainer.RunConfig.")
    spec = _KerasSpec(model, custom_objects)
    model_dir = model_dir or (config.model_dir if config else None) or tempfile.mkdtemp(
        prefix="keras-estimator-")
    warm_start = None
    if checkpoints.latest_checkpoint(model_dir) is None and model.weights:
        warm_start = _save_keras_weights(model, spec, model_dir)
    return Estimator(spec.model_fn, model_dir=model_dir, config=config,
                     warm_start_from=warm_start)


def keras_variable_names(keras_model, custom_objects=None) -> list[str]:
    """The store keys (checkpoint names) of ``keras_model.weights``, in order."""
    return _KerasSpec(keras_model, custom_objects).variable_keys()


def _resolve_model(keras_model, keras_model_path, custom_objects):
    import keras

    if (keras_model is None) == (keras_model_path is None):
        raise ValueError(
            "model_to_estimator got keras_model="
            f"{type(keras_model).__name__ if keras_model is not None else None} and "
            f"keras_model_path={keras_model_path!r}; expected exactly one of them."
        )
    if keras_model_path is not None:
        keras_model = keras.models.load_model(keras_model_path, custom_objects=custom_objects)
    if not hasattr(keras_model, "get_config") or not hasattr(keras_model, "weights"):
        raise TypeError(
            f"model_to_estimator got keras_model={keras_model!r}; expected a keras.Model."
        )
    if getattr(keras_model, "optimizer", None) is None or getattr(keras_model, "loss", None) is None:
        raise ValueError(
            f"model_to_estimator got an uncompiled model {keras_model.name!r}. How to fix: call "
            "model.compile(optimizer=..., loss=..., metrics=...) first."
        )
    return keras_model


def _variable(weight) -> tf.Variable:
    """The tf.Variable behind a Keras 3 variable (tf_keras weights already are one)."""
    return weight if isinstance(weight, tf.Variable) else weight.value


class _KerasSpec:
    """Everything the model_fn needs, read eagerly from the compiled model once."""

    def __init__(self, model, custom_objects):
        import keras

        self.custom_objects = dict(custom_objects or {})
        self.model_class = type(model)
        try:
            self.model_config = model.get_config()
            if not self.model_config:
                raise NotImplementedError
        except NotImplementedError as error:
            raise ValueError(
                f"model_to_estimator got model {model.name!r} of class {type(model).__name__}, "
                "which has no get_config(). How to fix: build it as a Sequential or functional "
                "model, or implement get_config()/from_config()."
            ) from error
        self.input_names = [t.name for t in tf.nest.flatten(model.inputs)] if _built(model) else []
        if not self.input_names:
            raise ValueError(
                f"model_to_estimator got model {model.name!r} with no known inputs. How to fix: "
                "start it with keras.Input(shape, name=...) so it is built."
            )
        # Each input may also be keyed as tf.keras 2 named it: a Sequential model's input was
        # "<first layer>_input" ("dense_input"), where Keras 3 names the tensor "keras_tensor"
        # and its layer "input_layer", names no user wrote.
        self.input_aliases = {name: [name] for name in self.input_names}
        if isinstance(model, keras.Sequential) and len(self.input_names) == 1:
            layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
            aliases = self.input_aliases[self.input_names[0]]
            aliases += [a for a in ([f"{layers[0].name}_input"] if layers else []) +
                        [layer.name for layer in getattr(model, "_layers", [])
                         if isinstance(layer, keras.layers.InputLayer)] if a not in aliases]
        self.dict_inputs = isinstance(getattr(model, "input", None), dict)
        self.output_names = list(getattr(model, "output_names", None) or [model.layers[-1].name])
        compile_config = model.get_compile_config() or {}
        self.losses = _per_output(model.loss, self.output_names, "loss")
        self.loss_weights = _per_output(compile_config.get("loss_weights"), self.output_names,
                                        "loss_weights", default=1.0)
        self.metrics = _per_output(compile_config.get("metrics"), self.output_names, "metrics",
                                   default=None, flat_list_for_all=True)
        self.optimizer_factory = _optimizer_factory(model.optimizer)
        self._keras = keras

    # -- building -------------------------------------------------------------------
    def rebuild(self):
        if self.model_class.__module__.startswith("tf_keras"):
            import tf_keras

            scope = tf_keras.utils.custom_object_scope(self.custom_objects)
        else:
            scope = self._keras.saving.custom_object_scope(self.custom_objects)
        with scope:
            return self.model_class.from_config(copy.deepcopy(self.model_config))

    def variable_keys(self) -> list[str]:
        store, holder = VariableStore(), {}

        def build():
            with store.scope():
                holder["model"] = self.rebuild()
            return tf.constant(0)

        tf.function(build).get_concrete_function()
        return [store.key_of(_variable(w)) for w in holder["model"].weights]

    def model_inputs(self, features):
        if not isinstance(features, dict):
            if len(self.input_names) != 1:
                raise ValueError(
                    f"The Keras model has inputs {self.input_names}; the input_fn gave one "
                    "tensor. How to fix: yield a dict keyed by input name."
                )
            return features
        found = {n: next((a for a in self.input_aliases[n] if a in features), None) for n in self.input_names}
        missing = [self.input_aliases[n] for n, key in found.items() if key is None]
        if missing:
            raise ValueError(
                f"The input_fn's features {sorted(features)} lack the Keras model's inputs; "
                f"expected a key from each of {missing}. How to fix: key the features by the "
                "keras.Input names (or, for a Sequential model, '<first layer>_input' as tf.keras "
                "named it)."
            )
        if self.dict_inputs:
            return {n: features[found[n]] for n in self.input_names}
        values = [features[found[n]] for n in self.input_names]
        return values[0] if len(values) == 1 else values

    # -- the model_fn --------------------------------------------------------------------
    def model_fn(self, features, labels, mode):
        model = self.rebuild()
        outputs = model(self.model_inputs(features), training=mode == ModeKeys.TRAIN)
        outputs = _as_dict(outputs, self.output_names)
        if mode == ModeKeys.PREDICT:
            return EstimatorSpec(mode, predictions=outputs,
                                 export_outputs={"serving_default": PredictOutput(outputs)})
        labels = _as_dict(labels, self.output_names, what="labels")
        loss = tf.add_n([self.loss_weights[n] * _loss(self.losses[n], labels[n], outputs[n])
                         for n in self.output_names if self.losses[n] is not None])
        if model.losses:  # regularization, as Keras adds it
            loss += tf.add_n([tf.cast(x, loss.dtype) for x in model.losses])
        if mode == ModeKeys.EVAL:
            metric_ops = {}
            for name in self.output_names:
                prefix = f"{name}_" if len(self.output_names) > 1 else ""
                for entry in self.metrics[name] or []:
                    key, op = _metric(entry, labels[name], outputs[name], self._keras)
                    metric_ops[prefix + key] = op
            return EstimatorSpec(mode, loss=loss, eval_metric_ops=metric_ops)
        train_op = self.optimizer_factory().minimize(loss, global_step=get_global_step())
        return EstimatorSpec(mode, loss=loss, train_op=train_op)


def _built(model) -> bool:
    try:
        return bool(model.inputs)
    except (AttributeError, ValueError):
        return False


def _as_dict(values, names, what="outputs"):
    if isinstance(values, dict):
        return values
    flat = tf.nest.flatten(values)
    if len(flat) != len(names):
        raise ValueError(f"The Keras model has outputs {names}; got {len(flat)} {what}. How to "
                         f"fix: give {what} as a dict keyed by output name.")
    return dict(zip(names, flat))


def _per_output(value, names, argument, default=None, flat_list_for_all=False):
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise ValueError(f"model.compile got {argument} for {unknown}, which are not outputs "
                             f"of the model ({names}).")
        return {n: value.get(n, default) for n in names}
    if isinstance(value, (list, tuple)) and len(names) > 1 and not flat_list_for_all:
        return dict(zip(names, value))
    if isinstance(value, (list, tuple)) and len(names) > 1 and value and \
            all(isinstance(v, (list, tuple)) for v in value):
        return dict(zip(names, value))
    return {n: default if value is None else value for n in names}


def _loss(loss, label, output):
    import keras

    if isinstance(loss, str):
        loss = keras.losses.get(loss)
    if not _sparse_name(_name_of(loss)):
        if output.dtype.is_floating:
            label = tf.cast(label, output.dtype)
        # Keras' compile wraps a loss function so that (n,) labels meet (n, 1) outputs.
        if label.shape.rank == output.shape.rank - 1 and output.shape[-1] == 1:
            label = tf.expand_dims(label, -1)
    if isinstance(loss, keras.losses.Loss):
        return tf.cast(loss(label, output), tf.float32)
    return tf.reduce_mean(tf.cast(loss(label, output), tf.float32))


def _name_of(obj) -> str:
    return obj if isinstance(obj, str) else getattr(obj, "name", None) or getattr(obj, "__name__", "")


def _sparse_name(name) -> bool:
    return "sparse" in (name or "")


def _metric(entry, label, output, keras):
    """Maps a compiled metric to trainer.metrics; others run as Keras metric objects."""
    class_name = entry.get("class_name") if isinstance(entry, dict) else None
    config = entry.get("config", {}) if isinstance(entry, dict) else {}
    key = config.get("name") if isinstance(entry, dict) else entry
    kind = (class_name or entry).lower() if isinstance(class_name or entry, str) else ""
    kind = {"acc": "accuracy", "mse": "mean_squared_error", "mae": "mean_absolute_error",
            "rmse": "root_mean_squared_error", "meansquarederror": "mean_squared_error",
            "meanabsoluteerror": "mean_absolute_error", "binaryaccuracy": "binary_accuracy",
            "sparsecategoricalaccuracy": "sparse_categorical_accuracy",
            "categoricalaccuracy": "categorical_accuracy",
            "rootmeansquarederror": "root_mean_squared_error"}.get(kind, kind)
    if kind == "accuracy":
        kind = _accuracy_kind(label, output)
    if kind == "binary_accuracy":
        threshold = config.get("threshold", 0.5)
        return key, metrics.accuracy(tf.reshape(tf.cast(label, tf.int64), [-1]),
                                     tf.reshape(tf.cast(output > threshold, tf.int64), [-1]))
    if kind == "sparse_categorical_accuracy":
        return key, metrics.accuracy(tf.reshape(tf.cast(label, tf.int64), [-1]),
                                     tf.argmax(output, axis=-1))
    if kind == "categorical_accuracy":
        return key, metrics.accuracy(tf.argmax(label, -1), tf.argmax(output, axis=-1))
    simple = {"mean_squared_error": metrics.mean_squared_error,
              "mean_absolute_error": metrics.mean_absolute_error,
              "root_mean_squared_error": metrics.root_mean_squared_error}
    if kind in simple:
        label = tf.cast(tf.reshape(label, tf.shape(output)), output.dtype)
        return key, simple[kind](label, output)
    if kind == "auc" and config.get("curve", "ROC") == "ROC" and not config.get("multi_label"):
        scores = tf.sigmoid(output) if config.get("from_logits") else output
        return key, metrics.auc(tf.reshape(label, [-1]), tf.reshape(scores, [-1]),
                                num_thresholds=config.get("num_thresholds", 200))
    # Anything else: a fresh Keras metric object; its variables are per-evaluation state.
    metric = keras.metrics.deserialize(entry) if isinstance(entry, dict) else keras.metrics.get(entry)
    if not hasattr(metric, "update_state"):
        metric = keras.metrics.MeanMetricWrapper(metric, name=key)
    metric.update_state(label, output)
    return key or metric.name, metric


def _accuracy_kind(label, output) -> str:
    """Keras' choice for 'accuracy': binary, sparse or categorical, from the shapes."""
    if output.shape[-1] == 1:
        return "binary_accuracy"
    if label.shape.rank is not None and output.shape.rank is not None and \
            (label.shape.rank < output.shape.rank or label.shape[-1] == 1):
        return "sparse_categorical_accuracy"
    return "categorical_accuracy"


def _optimizer_factory(keras_optimizer):
    """Keras optimizer -> factory of a trainer optimizer (a fresh one per trace)."""
    import keras

    cfg = keras_optimizer.get_config()
    name = type(keras_optimizer).__name__
    lr = cfg.get("learning_rate")
    if isinstance(lr, dict):
        lr = keras.optimizers.schedules.deserialize(lr)
    elif not callable(lr):
        lr = float(lr)  # tf_keras reports numpy floats
    plain = not any(cfg.get(k) for k in ("weight_decay", "clipnorm", "global_clipnorm",
                                         "clipvalue", "use_ema", "amsgrad"))
    native = None
    if plain and name == "SGD":
        native = (lambda: optimizers.SGD(lr)) if not cfg.get("momentum") else (
            lambda: optimizers.Momentum(lr, cfg["momentum"], use_nesterov=cfg.get("nesterov", False)))
    elif plain and name == "Adam":
        native = lambda: optimizers.Adam(lr, cfg["beta_1"], cfg["beta_2"], cfg["epsilon"])  # noqa: E731
    elif plain and name == "Adagrad":
        native = lambda: optimizers.Adagrad(lr, cfg.get("initial_accumulator_value", 0.1))  # noqa: E731
    elif plain and name == "RMSprop":
        native = lambda: optimizers.RMSProp(lr, cfg["rho"], cfg["momentum"], cfg["epsilon"])  # noqa: E731
    elif plain and name == "Ftrl":
        native = lambda: optimizers.Ftrl(  # noqa: E731
            lr, cfg["learning_rate_power"], cfg["initial_accumulator_value"],
            cfg["l1_regularization_strength"], cfg["l2_regularization_strength"],
            l2_shrinkage_regularization_strength=cfg["l2_shrinkage_regularization_strength"])
    if native is not None:
        return native
    optimizer_class = type(keras_optimizer)
    return lambda: optimizers.get(optimizer_class.from_config(copy.deepcopy(cfg)))


def _save_keras_weights(model, spec, model_dir) -> WarmStartSettings:
    """Writes the model's weights under their store keys; returns the warm start."""
    keys = spec.variable_keys()
    values = {key: _variable(w) for key, w in zip(keys, model.weights)}
    # A global step of 0 lets predict/evaluate(checkpoint_path=...) read this checkpoint too.
    values[GLOBAL_STEP] = tf.Variable(0, dtype=tf.int64)
    prefix = checkpoints.save(values, os.path.join(model_dir, _WARM_START_DIR), 0,
                              basename=_WARM_START_BASENAME)
    return WarmStartSettings(prefix, vars_to_warm_start=[re.escape(k) + "$" for k in keys])
