"""Sequence feature columns and SequenceFeatures on hand-made inputs with known outputs."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest
import tensorflow as tf

from trainer import feature_column as fc


def _ragged(rows, dtype=tf.int64):
    return tf.ragged.constant(rows, dtype=dtype)


def _constant_init(table):
    return lambda shape, dtype=tf.float32: tf.constant(table, dtype)


def test_sequence_numeric_pads_with_default_and_counts_steps():
    x = fc.sequence_numeric_column("x", default_value=-1.0)
    values, length = fc.SequenceFeatures([x])({"x": _ragged([[1.0, 2.0, 3.0], [4.0], []],
                                                           tf.float32)})
    assert values.shape == (3, 3, 1)
    np.testing.assert_array_equal(values.numpy()[..., 0],
                                  [[1, 2, 3], [4, -1, -1], [-1, -1, -1]])
    np.testing.assert_array_equal(length.numpy(), [3, 1, 0])


def test_sequence_numeric_with_shape_groups_values_into_steps_and_normalizes():
    x = fc.sequence_numeric_column("x", shape=(2,), normalizer_fn=lambda v: v * 10.0)
    sparse = tf.sparse.from_dense(tf.constant([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 0.0, 0.0]]))
    values, length = fc.SequenceFeatures([x])({"x": sparse})
    np.testing.assert_allclose(values.numpy(), [[[10, 20], [30, 40]], [[50, 60], [0, 0]]])
    np.testing.assert_array_equal(length.numpy(), [2, 1])


def test_dense_input_has_every_step_present_even_zeros():
    x = fc.sequence_numeric_column("x")
    values, length = fc.SequenceFeatures([x])({"x": tf.constant([[0.0, 0.0], [1.0, 0.0]])})
    np.testing.assert_array_equal(length.numpy(), [2, 2])
    ids = fc.indicator_column(fc.sequence_categorical_column_with_identity("d", 2))
    values, length = fc.SequenceFeatures([ids])({"d": tf.constant([[0, 0], [1, 0]], tf.int64)})
    np.testing.assert_array_equal(length.numpy(), [2, 2])
    np.testing.assert_array_equal(values.numpy(), [[[1, 0], [1, 0]], [[0, 1], [1, 0]]])


def test_identity_indicator_per_step_and_several_ids_per_step():
    day = fc.indicator_column(fc.sequence_categorical_column_with_identity("day", 3))
    values, length = fc.SequenceFeatures([day])({"day": _ragged([[2, 0], [1]])})
    np.testing.assert_array_equal(values.numpy(),
                                  [[[0, 0, 1], [1, 0, 0]], [[0, 1, 0], [0, 0, 0]]])
    np.testing.assert_array_equal(length.numpy(), [2, 1])
    # A SequenceExample feature list may hold several ids per step: [batch, (steps), (ids)].
    values, length = fc.SequenceFeatures([day])({"day": _ragged([[[0, 0, 2], [1]], [[2]]])})
    np.testing.assert_array_equal(values.numpy(),
                                  [[[2, 0, 1], [0, 1, 0]], [[0, 0, 1], [0, 0, 0]]])
    np.testing.assert_array_equal(length.numpy(), [2, 1])


def test_embedding_of_sequence_looks_up_each_step():
    table = [[0.0, 0.0], [1.0, 10.0], [2.0, 20.0], [3.0, 30.0]]
    word = fc.embedding_column(fc.sequence_categorical_column_with_identity("w", 4), 2,
                               initializer=_constant_init(table))
    values, length = fc.SequenceFeatures([word])({"w": _ragged([[3, 1], [2]])})
    np.testing.assert_allclose(values.numpy(), [[[3, 30], [1, 10]], [[2, 20], [0, 0]]])
    np.testing.assert_array_equal(length.numpy(), [2, 1])
    # Several ids in one step combine with the column's combiner ('mean').
    values, _ = fc.SequenceFeatures([word])({"w": _ragged([[[1, 3]], [[2]]])})
    np.testing.assert_allclose(values.numpy(), [[[2, 20]], [[2, 20]]])


def test_vocabulary_and_hash_columns_give_the_non_sequence_ids_per_step(tmp_path):
    words = fc.sequence_categorical_column_with_vocabulary_list("s", ["a", "b"],
                                                                num_oov_buckets=1)
    values, _ = fc.SequenceFeatures([fc.indicator_column(words)])(
        {"s": tf.ragged.constant([["b", "zzz"], ["a"]])})
    np.testing.assert_array_equal(values.numpy(),
                                  [[[0, 1, 0], [0, 0, 1]], [[1, 0, 0], [0, 0, 0]]])
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("a\nb\n")
    from_file = fc.sequence_categorical_column_with_vocabulary_file("s", str(vocab))
    values, _ = fc.SequenceFeatures([fc.indicator_column(from_file)])(
        {"s": tf.ragged.constant([["b", "a"]])})
    np.testing.assert_array_equal(values.numpy(), [[[0, 1], [1, 0]]])
    hashed = fc.sequence_categorical_column_with_hash_bucket("h", 5)
    values, _ = fc.SequenceFeatures([fc.indicator_column(hashed)])(
        {"h": tf.ragged.constant([["x", "y"]])})
    expected = tf.strings.to_hash_bucket_fast(["x", "y"], 5).numpy()
    np.testing.assert_array_equal(values.numpy()[0].argmax(axis=1), expected)


def test_columns_concatenate_sorted_by_name():
    a = fc.sequence_numeric_column("a")
    b = fc.indicator_column(fc.sequence_categorical_column_with_identity("b", 2))
    values, length = fc.SequenceFeatures([b, a])({"a": _ragged([[5.0, 6.0]], tf.float32),
                                                    "b": _ragged([[1, 0]])})
    # 'a' sorts before 'b_indicator'.
    np.testing.assert_array_equal(values.numpy(), [[[5, 0, 1], [6, 1, 0]]])
    np.testing.assert_array_equal(length.numpy(), [2])


def test_columns_with_different_lengths_fail_naming_them():
    a = fc.sequence_numeric_column("a")
    b = fc.sequence_numeric_column("b")
    with pytest.raises(tf.errors.InvalidArgumentError, match="'a' and 'b' with different"):
        fc.SequenceFeatures([a, b])({"a": _ragged([[1.0, 2.0]], tf.float32),
                                     "b": _ragged([[1.0]], tf.float32)})


def test_parse_example_spec_and_parsed_examples_feed_the_layer():
    x = fc.sequence_numeric_column("x")
    w = fc.embedding_column(fc.sequence_categorical_column_with_identity("w", 4), 2)
    spec = fc.make_parse_example_spec([x, w])
    assert spec == {"x": tf.io.VarLenFeature(tf.float32), "w": tf.io.VarLenFeature(tf.int64)}
    examples = []
    for xs, ws in (([1.0, 2.0], [1, 2]), ([3.0], [3])):
        examples.append(tf.train.Example(features=tf.train.Features(feature={
            "x": tf.train.Feature(float_list=tf.train.FloatList(value=xs)),
            "w": tf.train.Feature(int64_list=tf.train.Int64List(value=ws)),
        })).SerializeToString())
    values, length = fc.SequenceFeatures([x, w])(tf.io.parse_example(examples, spec))
    assert values.shape == (2, 2, 3)
    np.testing.assert_array_equal(length.numpy(), [2, 1])
    # "w_embedding" (2 wide) sorts before "x".
    np.testing.assert_array_equal(values.numpy()[:, :, 2], [[1, 2], [3, 0]])


@pytest.mark.parametrize("column", [
    fc.sequence_numeric_column("x", shape=(2,), default_value=1.5, dtype=tf.int64),
    fc.sequence_categorical_column_with_identity("i", 4, default_value=0),
    fc.sequence_categorical_column_with_hash_bucket("h", 7, dtype=tf.int64),
    fc.sequence_categorical_column_with_vocabulary_list("v", ["a", "b"], num_oov_buckets=2),
    fc.embedding_column(fc.sequence_categorical_column_with_identity("e", 4), 3, combiner="sum"),
    fc.indicator_column(fc.sequence_categorical_column_with_vocabulary_list("v", [3, 4])),
], ids=lambda c: type(c).__name__)
def test_config_round_trip(column):
    config = fc.serialize(column)
    assert fc.deserialize(config) == column
    assert type(column).from_config(column.to_config()) == column


def test_vocabulary_file_config_round_trip(tmp_path):
    vocab = tmp_path / "v.txt"
    vocab.write_text("a\nb\n")
    column = fc.sequence_categorical_column_with_vocabulary_file("s", str(vocab))
    assert fc.deserialize(fc.serialize(column)) == column


def test_sequence_column_in_dense_features_or_linear_model_is_refused():
    emb = fc.embedding_column(fc.sequence_categorical_column_with_identity("w", 4), 2)
    with pytest.raises(ValueError, match="DenseFeatures got the sequence column 'w_embedding'"):
        fc.DenseFeatures([emb])
    with pytest.raises(ValueError, match="LinearModel got the sequence column 'x'.*SequenceFeatures"):
        fc.LinearModel([fc.sequence_numeric_column("x")])
    with pytest.raises(ValueError, match="LinearModel got the sequence column 'w'"):
        fc.LinearModel([fc.sequence_categorical_column_with_identity("w", 4)])


def test_non_sequence_column_in_sequence_features_is_refused():
    with pytest.raises(ValueError, match="SequenceFeatures got the non-sequence column 'a'"):
        fc.SequenceFeatures([fc.numeric_column("a")])
    with pytest.raises(TypeError, match="SequenceFeatures got the column"):
        fc.SequenceFeatures([fc.sequence_categorical_column_with_identity("w", 4)])


def test_argument_errors():
    with pytest.raises(ValueError, match="already a sequence column"):
        fc.SequenceCategoricalColumn(fc.sequence_categorical_column_with_identity("w", 4))
    with pytest.raises(TypeError, match="default_value=.*one number"):
        fc.sequence_numeric_column("x", default_value=[1.0, 2.0])
    with pytest.raises(ValueError, match="sequence_numeric_column got dtype=string"):
        fc.sequence_numeric_column("x", dtype=tf.string)
    with pytest.raises(ValueError, match="positive ints"):
        fc.sequence_numeric_column("x", shape=(0,))
    with pytest.raises(TypeError, match="string values for key 'x'"):
        fc.SequenceFeatures([fc.sequence_numeric_column("x")])(
            {"x": tf.ragged.constant([["a"]])})
    with pytest.raises(ValueError, match="concatenate_context_input got"):
        fc.concatenate_context_input(tf.ones([2]), tf.ones([2, 3, 1]))


def test_context_concatenation_repeats_the_context_at_every_step():
    out = fc.concatenate_context_input(tf.constant([[7.0], [8.0]]), tf.zeros([2, 3, 1]))
    np.testing.assert_array_equal(out.numpy()[:, :, 1], [[7, 7, 7], [8, 8, 8]])


def test_layer_traces_in_tf_function_with_one_set_of_variables():
    word = fc.embedding_column(fc.sequence_categorical_column_with_identity("w", 4), 2)
    layer = fc.SequenceFeatures([word])
    fn = tf.function(lambda rt: layer({"w": rt}))
    first, _ = fn(_ragged([[1, 2]]))
    second, _ = fn(_ragged([[1, 2, 3], [0]]))
    np.testing.assert_allclose(first.numpy()[0], second.numpy()[0, :2])
    assert [v.name for v in layer.trainable_variables] == [
        "sequence_features/w_embedding/embedding_weights:0"]


@pytest.mark.parametrize("name", ["trainer.feature_column.sequence",
                                  "trainer.feature_column.sequence_features",
                                  "trainer.export.sequence_receivers"])
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
