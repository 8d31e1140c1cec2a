"""Serving input receivers: how a SavedModel's requests become features.

A ``serving_input_receiver_fn`` declares its request tensors with
`placeholder` (TF2 has no graph placeholders to feed) and returns a
`ServingInputReceiver` of ``features`` computed from them. The exporter calls
it once to learn the request tensors, then again inside each signature's
`tf.function`, where every `placeholder` is that signature's input.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator

import tensorflow as tf

__all__ = [
    "ServingInputReceiver",
    "TensorServingInputReceiver",
    "placeholder",
    "build_parsing_serving_input_receiver_fn",
    "build_raw_serving_input_receiver_fn",
]

_local = threading.local()
_TENSORS = (tf.Tensor, tf.SparseTensor, tf.RaggedTensor)


class ServingInputReceiver:
    """Features for the model plus the request tensors they come from.

    Args:
        features: a dict of name -> Tensor (a single Tensor becomes ``{'feature': t}``).
        receiver_tensors: the request tensors made with `placeholder`, as a dict
            (a single Tensor becomes ``{'input': t}``).
        receiver_tensors_alternatives: accepted for compatibility; not exported.
    """

    def __init__(self, features, receiver_tensors, receiver_tensors_alternatives=None):
        del receiver_tensors_alternatives
        if isinstance(features, _TENSORS):
            features = {"feature": features}
        self.features = _check_dict("features", features)
        if isinstance(receiver_tensors, tf.Tensor):
            receiver_tensors = {"input": receiver_tensors}
        self.receiver_tensors = _check_dict("receiver_tensors", receiver_tensors)


class TensorServingInputReceiver(ServingInputReceiver):
    """Like `ServingInputReceiver`, but the model_fn gets ``features`` as one Tensor."""

    def __init__(self, features, receiver_tensors, receiver_tensors_alternatives=None):
        if not isinstance(features, _TENSORS):
            raise ValueError(
                f"TensorServingInputReceiver got features={features!r}; expected a single Tensor."
            )
        super().__init__({"feature": features}, receiver_tensors, receiver_tensors_alternatives)
        self.features = features


def _check_dict(name, value):
    if not isinstance(value, dict) or not value:
        raise ValueError(
            f"ServingInputReceiver got {name}={value!r}; expected a non-empty dict of "
            "string -> Tensor."
        )
    for key, tensor in value.items():
        if not isinstance(key, str):
            raise ValueError(f"ServingInputReceiver {name} keys must be strings; got {key!r}.")
        if not isinstance(tensor, _TENSORS):
            raise ValueError(
                f"ServingInputReceiver got {name}[{key!r}]={tensor!r}; expected a Tensor."
            )
    return dict(value)


class _Session:
    """Either records placeholders (discovery) or hands out signature inputs."""

    def __init__(self, supply=None):
        self.specs: list[tf.TensorSpec] = []
        self.made: list[tf.Tensor] = []
        self.supply = supply

    def make(self, dtype, shape, name):
        index = len(self.specs)
        self.specs.append(tf.TensorSpec(shape, dtype, name=name))
        if self.supply is None:
            tensor = tf.raw_ops.Placeholder(dtype=dtype, shape=tf.TensorShape(shape))
        else:
            tensor = self.supply[index]
        self.made.append(tensor)
        return tensor


@contextlib.contextmanager
def receiver_session(supply=None) -> Iterator[_Session]:
    session = _Session(supply)
    previous = getattr(_local, "session", None)
    _local.session = session
    try:
        yield session
    finally:
        _local.session = previous


def placeholder(dtype, shape=None, name=None) -> tf.Tensor:
    """A request tensor of a serving signature (TF2's replacement for tf.placeholder).

    Only valid inside a ``serving_input_receiver_fn`` called by
    `Estimator.export_saved_model`.
    """
    session = getattr(_local, "session", None)
    if session is None:
        raise ValueError(
            "trainer.export.placeholder is only valid inside a serving_input_receiver_fn "
            "that Estimator.export_saved_model is calling."
        )
    return session.make(tf.as_dtype(dtype), shape, name)


def build_parsing_serving_input_receiver_fn(feature_spec, default_batch_size=None):
    """A receiver that parses serialized tf.Examples with ``feature_spec``.

    The request tensor is a string vector under the key ``examples``.

    Example:
        >>> fn = build_parsing_serving_input_receiver_fn(
        ...     {"x": tf.io.FixedLenFeature([1], tf.float32)})
        >>> callable(fn)
        True
    """
    if not isinstance(feature_spec, dict) or not feature_spec:
        raise ValueError(
            f"build_parsing_serving_input_receiver_fn got feature_spec={feature_spec!r}; "
            "expected a dict such as trainer.feature_column.make_parse_example_spec(columns)."
        )

    def serving_input_receiver_fn():
        serialized = placeholder(tf.string, [default_batch_size], name="input_example_tensor")
        features = tf.io.parse_example(serialized, feature_spec)
        return ServingInputReceiver(features, {"examples": serialized})

    return serving_input_receiver_fn


def build_raw_serving_input_receiver_fn(features, default_batch_size=None):
    """A receiver whose request tensors are the features themselves.

    Args:
        features: dict of name -> Tensor or `tf.TensorSpec` (its shape after the
            batch dimension and dtype are used).
    """
    if not isinstance(features, dict) or not features:
        raise ValueError(
            f"build_raw_serving_input_receiver_fn got features={features!r}; expected a dict "
            "of name -> Tensor or tf.TensorSpec."
        )

    def serving_input_receiver_fn():
        received = {}
        for key, value in sorted(features.items()):
            shape = [default_batch_size] + list(tf.TensorShape(value.shape).as_list()[1:])
            received[key] = placeholder(value.dtype, shape, name=key)
        return ServingInputReceiver(dict(received), received)

    return serving_input_receiver_fn
