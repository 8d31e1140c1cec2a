"""numeric_column and bucketized_column: values, shapes and input kinds."""

import numpy as np
import pytest
import tensorflow as tf

from trainer import feature_column as fc


def dense(columns, features):
    return fc.DenseFeatures(columns)(features).numpy()


def test_numeric_values_shape_and_normalizer():
    x = fc.numeric_column("x", shape=(2,), normalizer_fn=lambda t: t * 2.0)
    out = dense([x], {"x": tf.constant([[1.0, 2.0], [3.0, 4.0]])})
    np.testing.assert_allclose(out, [[2.0, 4.0], [6.0, 8.0]])


def test_numeric_rank1_int_input_is_cast_to_float():
    out = fc.DenseFeatures([fc.numeric_column("x", dtype=tf.int64)])({"x": tf.constant([3, 5])})
    assert out.dtype == tf.float32
    np.testing.assert_allclose(out.numpy(), [[3.0], [5.0]])


def test_numeric_multidim_shape_is_flattened():
    x = fc.numeric_column("x", shape=(2, 2))
    out = dense([x], {"x": tf.reshape(tf.range(8, dtype=tf.float32), [2, 2, 2])})
    np.testing.assert_allclose(out, [[0, 1, 2, 3], [4, 5, 6, 7]])


def test_numeric_ragged_and_sparse_inputs_padded_with_default():
    x = fc.numeric_column("x", shape=(3,), default_value=-1.0)
    ragged = tf.ragged.constant([[1.0, 2.0], [3.0, 4.0, 5.0], []])
    np.testing.assert_allclose(dense([x], {"x": ragged}),
                               [[1, 2, -1], [3, 4, 5], [-1, -1, -1]])
    sparse = tf.SparseTensor([[0, 0], [1, 0], [1, 1]], [7.0, 8.0, 9.0], [2, 3])
    np.testing.assert_allclose(dense([x], {"x": sparse}), [[7, -1, -1], [8, 9, -1]])


def test_numeric_ragged_without_default_must_be_complete():
    x = fc.numeric_column("x", shape=(2,))
    np.testing.assert_allclose(dense([x], {"x": tf.ragged.constant([[1.0, 2.0]])}), [[1, 2]])
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"numeric_column `x` got an example with 1 values; expected "
                             r"exactly 2 values per example"):
        dense([x], {"x": tf.ragged.constant([[1.0, 2.0], [3.0]])})


def test_numeric_ragged_too_long_with_default():
    x = fc.numeric_column("x", shape=(1,), default_value=0.0)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"got an example with 2 values; expected at most 1"):
        dense([x], {"x": tf.ragged.constant([[1.0, 2.0]])})


def test_numeric_string_input_is_a_type_error():
    with pytest.raises(TypeError, match=r"numeric_column 'x' got a string feature"):
        dense([fc.numeric_column("x")], {"x": tf.constant([["1"]])})
    with pytest.raises(TypeError, match=r"numeric_column 'x' got a string feature"):
        dense([fc.numeric_column("x")], {"x": tf.ragged.constant([["1"]])})


def test_numeric_default_value_normalized_to_shape():
    assert fc.numeric_column("x", shape=(2,), default_value=1.5).default_value == (1.5, 1.5)
    assert fc.numeric_column("x", shape=2, default_value=[1, 2]).default_value == (1.0, 2.0)
    spec = fc.numeric_column("x", shape=(2,), default_value=0.0).parse_example_spec
    assert spec == {"x": tf.io.FixedLenFeature((2,), tf.float32, (0.0, 0.0))}


def test_bucketized_one_hot_matches_hand_computed():
    age = fc.bucketized_column(fc.numeric_column("age"), [18.0, 30.0, 65.0])
    out = dense([age], {"age": tf.constant([[5.0], [18.0], [40.0], [65.0], [99.0]])})
    expected = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1]])
    np.testing.assert_array_equal(out, expected)


def test_bucketized_multidim_dense_and_categorical_ids():
    col = fc.bucketized_column(fc.numeric_column("v", shape=(2,)), [0.0, 10.0])
    features = {"v": tf.constant([[-1.0, 10.0], [5.0, 3.0]])}
    out = dense([col], features)
    np.testing.assert_array_equal(out, [[1, 0, 0, 0, 0, 1], [0, 1, 0, 0, 1, 0]])
    assert col.num_buckets == 6
    ids = col.get_sparse_tensors(fc.FeatureCache(features), None).id_tensor
    # element j in bucket b -> j * 3 + b
    np.testing.assert_array_equal(tf.sparse.to_dense(ids).numpy(), [[0, 5], [1, 4]])


def test_bucketized_indicator_of_bucketized_equals_one_hot_ids():
    col = fc.bucketized_column(fc.numeric_column("v"), [1.0])
    out = dense([fc.indicator_column(col)], {"v": tf.constant([[0.0], [2.0]])})
    np.testing.assert_array_equal(out, [[1, 0], [0, 1]])


def test_numeric_static_shape_mismatch():
    with pytest.raises(ValueError, match=r"numeric_column 'x' got a feature of shape \(2, 3\); "
                                         r"expected \[batch\] \+ \(2,\)"):
        dense([fc.numeric_column("x", shape=(2,))], {"x": tf.zeros([2, 3])})


def test_scalar_shape_as_in_tf_estimator_and_tfx_taxi_module():
    # numeric_column(key, shape=()) is one scalar per example: its parse spec is a scalar, its
    # dense value one column, and it can be bucketized and crossed.
    x = fc.numeric_column("x", shape=())
    assert x.parse_example_spec == {"x": tf.io.FixedLenFeature((), tf.float32)}
    np.testing.assert_allclose(dense([x], {"x": tf.constant([1.5, -2.0])}), [[1.5], [-2.0]])
    buckets = fc.bucketized_column(x, [0.0, 1.0])
    np.testing.assert_allclose(dense([buckets], {"x": tf.constant([1.5, -2.0])}), [[0, 0, 1], [1, 0, 0]])
    parsed = tf.io.parse_example([tf.train.Example(features=tf.train.Features(feature={
        "x": tf.train.Feature(float_list=tf.train.FloatList(value=[0.5]))})).SerializeToString()],
        fc.make_parse_example_spec([buckets]))
    np.testing.assert_allclose(dense([buckets], parsed), [[0, 1, 0]])


def test_crossed_column_over_a_float_feature_crosses_its_int64_cast():
    # tf.estimator cast a float feature to int64 (toward zero) before crossing; the official
    # linear-model tutorial crosses the float 'age' column this way.
    cross = fc.indicator_column(fc.crossed_column(["age", "sex"], hash_bucket_size=1000))
    as_float = dense([cross], {"age": tf.constant([[37.9], [-2.5]]), "sex": tf.constant([["f"], ["m"]])})
    as_int = dense([cross], {"age": tf.constant([[37], [-2]], tf.int64), "sex": tf.constant([["f"], ["m"]])})
    np.testing.assert_array_equal(as_float, as_int)
    assert as_float.sum() == 2
