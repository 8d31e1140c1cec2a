"""Calling user functions (model_fn, input_fn) with the arguments they accept."""

from __future__ import annotations

import inspect
import re

import numpy as np
import tensorflow as tf

from trainer.estimator_spec import EstimatorSpec
from trainer.mode_keys import ModeKeys

_MODEL_FN_ARGS = ("features", "labels", "mode", "params", "config")
_INPUT_FN_ARGS = ("mode", "params", "config", "input_context")


def fn_args(fn) -> tuple[str, ...]:
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # builtins, some C callables
        return ()
    return tuple(name for name, p in parameters.items()
                 if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def check_model_fn(model_fn) -> tuple[str, ...]:
    """Validates ``model_fn``'s signature; returns the arguments it takes."""
    if not callable(model_fn):
        raise TypeError(f"Estimator got model_fn={model_fn!r}; expected a callable.")
    args = fn_args(model_fn)
    if "features" not in args:
        raise ValueError(
            f"Estimator got a model_fn with arguments {args}; it must take 'features' "
            f"(and any of {_MODEL_FN_ARGS[1:]})."
        )
    unexpected = [a for a in args if a not in _MODEL_FN_ARGS and
                  inspect.signature(model_fn).parameters[a].default is inspect.Parameter.empty]
    if unexpected:
        raise ValueError(
            f"Estimator got a model_fn with unexpected arguments {unexpected}; it may only take "
            f"{_MODEL_FN_ARGS} (give other values through params)."
        )
    return args


def call_model_fn(model_fn, args, features, labels, mode, params, config) -> EstimatorSpec:
    kwargs = {"features": features}
    if "labels" in args:
        kwargs["labels"] = labels
    elif labels is not None and mode != ModeKeys.PREDICT:
        raise ValueError(
            "The model_fn does not take 'labels', but the input_fn returned labels. Add a "
            "labels argument to the model_fn or return features only from the input_fn."
        )
    for name, value in (("mode", mode), ("params", params), ("config", config)):
        if name in args:
            kwargs[name] = value
    try:
        spec = model_fn(**kwargs)
    except Exception as error:  # noqa: BLE001 - re-raised unchanged unless a TF1 API caused it
        hint = tf1_hint(error)
        if hint is None:
            raise
        raise TypeError(hint) from error
    if not isinstance(spec, EstimatorSpec):
        raise TypeError(
            f"model_fn must return a trainer.EstimatorSpec; in mode={mode!r} it returned "
            f"{type(spec).__name__}: {spec!r:.200}."
        )
    if spec.mode != mode:
        raise ValueError(
            f"model_fn was called with mode={mode!r} but returned an EstimatorSpec with "
            f"mode={spec.mode!r}; pass the mode argument through."
        )
    return spec


# tf.compat.v1.train optimizers -> this project's (same math and slot names).
TF1_OPTIMIZERS = {"AdagradOptimizer": "Adagrad", "AdamOptimizer": "Adam", "FtrlOptimizer": "Ftrl",
                  "RMSPropOptimizer": "RMSProp", "GradientDescentOptimizer": "SGD",
                  "MomentumOptimizer": "Momentum"}


def tf1_hint(error: BaseException) -> str | None:
    """One line naming the replacement when a model_fn failed inside a TF1 API with no TF2 life.

    ``tf.compat.v1.train.*Optimizer`` finds no variables (TF1's graph collections are gone)
    and ``tf.compat.v1.layers.*`` needs Keras 2; anything else gives None.
    """
    message = str(error)
    if "No variables to optimize" in message:
        names = [type(frame.f_locals.get("self")).__name__ for frame in _frames(error)]
        found = next((name for name in names if name in TF1_OPTIMIZERS), None)
        used = f"tf.compat.v1.train.{found}" if found else "A tf.compat.v1.train optimizer"
        replacement = (f"trainer.optimizers.{TF1_OPTIMIZERS[found]}" if found else
                       "the nearest of trainer.optimizers.Adagrad/Adam/Ftrl/RMSProp/SGD/Momentum")
        return (f"{used} cannot see the Estimator's variables: TF1's graph collections do not exist in "
                f"TF2. How to fix: use {replacement}(learning_rate).minimize(loss, "
                "global_step=trainer.get_global_step()), or a Keras optimizer; use "
                "trainer.get_global_step() in place of tf.compat.v1.train.get_global_step() "
                "(docs/migration.md).")
    match = re.search(r"`(\w+)` is not available with Keras 3", message)
    legacy = [frame for frame in _frames(error) if "legacy_tf_layers" in frame.f_code.co_filename]
    if match or legacy:
        # Keras 3 has no tf.compat.v1.layers; under tf_keras (TF_USE_LEGACY_KERAS=1) they exist
        # but keep their variables TF1's way, which a traced model_fn cannot reuse.
        name = match.group(1) if match else next(
            (f.f_code.co_name for f in legacy if not f.f_code.co_name.startswith("_")), "*")
        return (f"tf.compat.v1.layers.{name} cannot run in an Estimator's model_fn: Keras 3 (TF 2.21's) has "
                "no tf.compat.v1.layers, and tf_keras's keep their variables TF1's way. How to fix: "
                "use trainer.layers.dense / trainer.layers.batch_normalization (same variable names), "
                "or Keras 3 layer objects (import keras) such as keras.layers.Dense(units)(x), Flatten()(x) "
                "and Dropout(rate)(x, training=mode == ModeKeys.TRAIN), whose variables the Estimator "
                "tracks (docs/migration.md).")
    return None


def _frames(error: BaseException):
    traceback = error.__traceback__
    while traceback is not None:
        yield traceback.tb_frame
        traceback = traceback.tb_next


def call_input_fn(input_fn, mode, params, config, *, caller: str,
                  input_context=None) -> tf.data.Dataset:
    """Calls ``input_fn`` and returns a Dataset of ``features`` or ``(features, labels)``."""
    if not callable(input_fn):
        raise TypeError(f"{caller} got input_fn={input_fn!r}; expected a callable.")
    args = fn_args(input_fn)
    kwargs = {}
    for name, value in (("mode", mode), ("params", params), ("config", config),
                        ("input_context", input_context)):
        if name in args:
            kwargs[name] = value
    result = input_fn(**kwargs)
    if isinstance(result, tf.data.Dataset):
        dataset = result
    elif isinstance(result, (tuple, list, dict, tf.Tensor, np.ndarray)):
        # TF1 style: tensors for one batch. Training repeats that batch forever, as a
        # TF1 graph re-evaluated its input tensors; eval/predict see it once.
        structure = tuple(result) if isinstance(result, list) else result
        try:
            dataset = tf.data.Dataset.from_tensors(structure)
        except (TypeError, ValueError) as e:
            raise TypeError(
                f"{caller}: input_fn returned {type(result).__name__} that cannot become "
                f"tensors ({e}). Return a tf.data.Dataset of (features, labels)."
            ) from None
        if mode == ModeKeys.TRAIN:
            dataset = dataset.repeat()
    else:
        raise TypeError(
            f"{caller}: input_fn returned {type(result).__name__}; expected a tf.data.Dataset "
            "whose elements are (features, labels) or features, e.g. "
            "tf.data.Dataset.from_tensor_slices((dict(x), y)).batch(32)."
        )
    check_element_spec(dataset.element_spec, mode, caller=caller)
    return dataset


def split_element(element_spec):
    """Returns (features_spec, labels_spec or None) for a dataset element."""
    if isinstance(element_spec, tuple):
        if len(element_spec) == 2:
            return element_spec
        if len(element_spec) == 1:
            return element_spec[0], None
    return element_spec, None


def check_element_spec(element_spec, mode, *, caller: str) -> None:
    if isinstance(element_spec, tuple) and len(element_spec) not in (1, 2):
        raise ValueError(
            f"{caller}: the input_fn's dataset yields tuples of {len(element_spec)} items; "
            "expected (features, labels) or features alone."
        )
    features, labels = split_element(element_spec)
    specs = (tf.TensorSpec, tf.SparseTensorSpec, tf.RaggedTensorSpec)
    if isinstance(features, dict):
        for key, value in features.items():
            if not isinstance(key, str):
                raise ValueError(f"{caller}: feature keys must be strings; got {key!r}.")
            if not isinstance(value, specs):
                raise ValueError(
                    f"{caller}: feature {key!r} is {value!r}; expected a Tensor, SparseTensor "
                    "or RaggedTensor."
                )
    elif not isinstance(features, specs):
        raise ValueError(
            f"{caller}: the input_fn's features are {features!r}; expected a dict of "
            "feature name -> Tensor (or a single Tensor)."
        )
    if labels is not None and not isinstance(labels, (dict, *specs)):
        raise ValueError(f"{caller}: labels are {labels!r}; expected a Tensor or dict of Tensors.")
