"""A serving receiver that parses `tf.train.SequenceExample`s (for RNN estimators).

Context features are read from each SequenceExample's ``context``; sequence
features from its ``feature_lists``, one `tf.train.Feature` per step. A
sequence feature becomes a `tf.RaggedTensor` ``[batch, (steps), (values)]``,
which the sequence feature columns read directly.
"""

from __future__ import annotations

import tensorflow as tf

from trainer.export.receivers import ServingInputReceiver, placeholder

__all__ = ["build_sequence_example_serving_input_receiver_fn", "sequence_feature_list_spec"]

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
