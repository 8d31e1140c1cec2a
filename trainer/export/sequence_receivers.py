"""Serving receivers for sequence models (RNN estimators).

* `build_sequence_example_serving_input_receiver_fn` parses serialized
  `tf.train.SequenceExample`s: context features from each one's ``context``,
  sequence features from its ``feature_lists`` (one `tf.train.Feature` per
  step). A sequence feature becomes a `tf.RaggedTensor` ``[batch, (steps),
  (values)]``, which the sequence feature columns read directly.
* `build_raw_sequence_serving_input_receiver_fn` takes the features
  themselves: context features as they are, sequence features padded to
  ``[batch, T, ...]`` plus one ``sequence_length`` vector saying how many
  steps of each row are real (the padding values are never read).
"""

from __future__ import annotations

import tensorflow as tf

from trainer.export.receivers import ServingInputReceiver, placeholder

__all__ = [
    "SEQUENCE_LENGTH",
    "build_raw_sequence_serving_input_receiver_fn",
    "build_sequence_example_serving_input_receiver_fn",
    "sequence_feature_list_spec",
]

#: The request key of the raw sequence receiver's ``[batch]`` lengths.
SEQUENCE_LENGTH = "sequence_length"

_RECEIVER_FN = "build_sequence_example_serving_input_receiver_fn"


def sequence_feature_list_spec(sequence_feature_spec) -> dict:
    """Turns a `make_parse_example_spec` spec of sequence columns into a feature-list spec.

    A `tf.io.VarLenFeature` (what sequence columns declare for tf.Examples)
    becomes a `tf.io.RaggedFeature` of the same dtype: ``[batch, (steps),
    (values)]``. `tf.io.RaggedFeature` and `tf.io.FixedLenSequenceFeature`
    entries are kept.

    Example:
        >>> sequence_feature_list_spec({"t": tf.io.VarLenFeature(tf.int64)})["t"].dtype
        tf.int64
    """
    if not isinstance(sequence_feature_spec, dict) or not sequence_feature_spec:
        raise ValueError(
            f"{_RECEIVER_FN} got sequence_feature_spec={sequence_feature_spec!r}; expected a "
            "non-empty dict, e.g. make_parse_example_spec(sequence_feature_columns).")
    spec = {}
    for key, feature in sequence_feature_spec.items():
        if isinstance(feature, tf.io.VarLenFeature):
            spec[key] = tf.io.RaggedFeature(feature.dtype, row_splits_dtype=tf.int64)
        elif isinstance(feature, (tf.io.RaggedFeature, tf.io.FixedLenSequenceFeature)):
            spec[key] = feature
        else:
            raise ValueError(
                f"{_RECEIVER_FN} got sequence_feature_spec[{key!r}]={feature!r}; expected "
                "tf.io.VarLenFeature, RaggedFeature or FixedLenSequenceFeature. How to fix: "
                "keep non-sequence features in context_feature_spec.")
    return spec


def build_sequence_example_serving_input_receiver_fn(context_feature_spec,
                                                     sequence_feature_spec,
                                                     default_batch_size=None):
    """A receiver that parses serialized `tf.train.SequenceExample`s.

    The request tensor is a string vector under the key ``sequence_examples``.

    Args:
        context_feature_spec: Spec of the ``context`` features, e.g.
            ``make_parse_example_spec(context_feature_columns)``; may be None or {}.
        sequence_feature_spec: Spec of the ``feature_lists``, e.g.
            ``make_parse_example_spec(sequence_feature_columns)``; see
            `sequence_feature_list_spec`.
        default_batch_size: Static batch size of the request, or None.

    Returns:
        A ``serving_input_receiver_fn`` for `Estimator.export_saved_model`.

    Example:
        >>> from trainer.feature_column import (make_parse_example_spec, numeric_column,
        ...     sequence_numeric_column)
        >>> fn = build_sequence_example_serving_input_receiver_fn(
        ...     make_parse_example_spec([numeric_column("c")]),
        ...     make_parse_example_spec([sequence_numeric_column("x")]))
        >>> callable(fn)
        True
    """
    if context_feature_spec is None:
        context_feature_spec = {}
    if not isinstance(context_feature_spec, dict):
        raise ValueError(
            f"{_RECEIVER_FN} got context_feature_spec={context_feature_spec!r}; expected a dict "
            "(or None), e.g. make_parse_example_spec(context_feature_columns).")
    feature_lists = sequence_feature_list_spec(sequence_feature_spec)
    both = sorted(set(context_feature_spec) & set(feature_lists))
    if both:
        raise ValueError(
            f"{_RECEIVER_FN} got keys {both} in both context_feature_spec and "
            "sequence_feature_spec; expected each feature in one of them.")

    def serving_input_receiver_fn():
        serialized = placeholder(tf.string, [default_batch_size],
                                 name="input_sequence_example_tensor")
        context, sequences, _ = tf.io.parse_sequence_example(
            serialized, context_features=context_feature_spec or None,
            sequence_features=feature_lists)
        features = dict(context)
        features.update(sequences)
        return ServingInputReceiver(features, {"sequence_examples": serialized})

    return serving_input_receiver_fn


def build_raw_sequence_serving_input_receiver_fn(context_features, sequence_features,
                                                 default_batch_size=None):
    """A receiver whose requests carry padded sequences and their lengths.

    Each sequence feature is a request tensor ``[batch, T] + step shape``,
    padded after each row's end; the request key ``sequence_length``
    (``[batch]`` int64) gives the real number of steps of each row, shared by
    all sequence features. The model sees ``tf.RaggedTensor``s, so padding
    never reaches the network.

    Args:
        context_features: Dict of name -> `tf.TensorSpec` (or Tensor) with a
            batch dimension, e.g. ``tf.TensorSpec([None, 1], tf.float32)``; may be None.
        sequence_features: Dict of name -> `tf.TensorSpec` ``[None, None, ...]``.
        default_batch_size: Static batch size of the request, or None.

    Example:
        >>> fn = build_raw_sequence_serving_input_receiver_fn(
        ...     {"c": tf.TensorSpec([None, 1], tf.float32)},
        ...     {"t": tf.TensorSpec([None, None], tf.int64)})
        >>> callable(fn)
        True
    """
    name = "build_raw_sequence_serving_input_receiver_fn"
    context_features = context_features or {}
    for arg, value in (("context_features", context_features),
                       ("sequence_features", sequence_features)):
        if not isinstance(value, dict) or (arg == "sequence_features" and not value):
            raise ValueError(
                f"{name} got {arg}={value!r}; expected a dict of name -> tf.TensorSpec.")
    for key, spec in sequence_features.items():
        if tf.TensorShape(spec.shape).rank is None or tf.TensorShape(spec.shape).rank < 2:
            raise ValueError(
                f"{name} got sequence_features[{key!r}] of shape {spec.shape}; expected "
                "[batch, T] or [batch, T, ...], e.g. tf.TensorSpec([None, None], tf.int64).")
    clash = sorted((set(context_features) & set(sequence_features))
                   | ({SEQUENCE_LENGTH} & (set(context_features) | set(sequence_features))))
    if clash:
        raise ValueError(
            f"{name} got the keys {clash} twice (or named {SEQUENCE_LENGTH!r}, the lengths' "
            "key); expected each feature once. How to fix: rename the feature.")

    def serving_input_receiver_fn():
        received, features = {}, {}
        for key, spec in sorted(context_features.items()):
            shape = [default_batch_size] + tf.TensorShape(spec.shape).as_list()[1:]
            received[key] = features[key] = placeholder(spec.dtype, shape, name=key)
        length = placeholder(tf.int64, [default_batch_size], name=SEQUENCE_LENGTH)
        received[SEQUENCE_LENGTH] = length
        for key, spec in sorted(sequence_features.items()):
            shape = [default_batch_size, None] + tf.TensorShape(spec.shape).as_list()[2:]
            received[key] = placeholder(spec.dtype, shape, name=key)
            features[key] = tf.RaggedTensor.from_tensor(received[key], lengths=length)
        return ServingInputReceiver(features, received)

    return serving_input_receiver_fn
