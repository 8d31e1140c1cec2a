"""Identity, hash bucket, vocabulary, weighted and crossed columns: ids and errors."""

import numpy as np
import pytest
import tensorflow as tf

from trainer import feature_column as fc


def ids_of(column, features):
    pair = column.get_sparse_tensors(fc.FeatureCache(features), None)
    return pair


def dense_ids(column, features, default=-9):
    pair = ids_of(column, features)
    return tf.sparse.to_dense(pair.id_tensor, default_value=default).numpy()


def indicator(column, features):
    return fc.DenseFeatures([fc.indicator_column(column)])(features).numpy()


# -- identity ------------------------------------------------------------------
def test_identity_drops_dense_missing_and_counts_multi_values():
    col = fc.categorical_column_with_identity("d", num_buckets=4)
    out = indicator(col, {"d": tf.constant([[0, 3, 3], [-1, -1, -1], [2, -1, 1]])})
    np.testing.assert_array_equal(out, [[1, 0, 0, 2], [0, 0, 0, 0], [0, 1, 1, 0]])


def test_identity_accepts_sparse_and_ragged():
    col = fc.categorical_column_with_identity("d", num_buckets=3)
    ragged = tf.ragged.constant([[2], [], [0, 1]], dtype=tf.int32)
    np.testing.assert_array_equal(indicator(col, {"d": ragged}),
                                  [[0, 0, 1], [0, 0, 0], [1, 1, 0]])
    sparse = tf.SparseTensor([[0, 1], [2, 0]], tf.constant([1, 2], tf.int64), [3, 2])
    np.testing.assert_array_equal(indicator(col, {"d": sparse}),
                                  [[0, 1, 0], [0, 0, 0], [0, 0, 1]])


def test_identity_out_of_range_error_names_key_first_bad_value_and_range():
    col = fc.categorical_column_with_identity("user", num_buckets=5)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"categorical_column_with_identity `user` got id=7; "
                             r"expected ids in \[0, 5\)\. How to fix"):
        indicator(col, {"user": tf.constant([[1, 7], [9, 2]])})


def test_identity_negative_sparse_id_is_an_error():
    col = fc.categorical_column_with_identity("user", num_buckets=5)
    sparse = tf.SparseTensor([[0, 0]], tf.constant([-3], tf.int64), [1, 1])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"got id=-3; expected ids in"):
        indicator(col, {"user": sparse})


def test_identity_error_raised_inside_tf_function():
    col = fc.categorical_column_with_identity("user", num_buckets=2)
    layer = fc.DenseFeatures([fc.indicator_column(col)])
    fn = tf.function(lambda x: layer({"user": x}))
    np.testing.assert_array_equal(fn(tf.constant([[1]])).numpy(), [[0, 1]])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"`user` got id=4"):
        fn(tf.constant([[4]]))


def test_identity_default_value_replaces_bad_ids():
    col = fc.categorical_column_with_identity("d", num_buckets=3, default_value=0)
    sparse = tf.SparseTensor([[0, 0], [1, 0]], tf.constant([5, -2], tf.int64), [2, 1])
    np.testing.assert_array_equal(dense_ids(col, {"d": sparse}), [[0], [0]])


def test_identity_rejects_string_input():
    col = fc.categorical_column_with_identity("d", num_buckets=3)
    with pytest.raises(TypeError, match=r"categorical_column_with_identity 'd' got a feature "
                                        r"of dtype string; expected an integer dtype"):
        indicator(col, {"d": tf.constant([["a"]])})


# -- hash bucket -----------------------------------------------------------------
def test_hash_bucket_equals_to_hash_bucket_fast():
    col = fc.categorical_column_with_hash_bucket("w", 100)
    words = tf.constant([["apple", "kiwi"], ["pear", ""]])
    expected = tf.strings.to_hash_bucket_fast(["apple", "kiwi", "pear"], 100).numpy()
    got = ids_of(col, {"w": words}).id_tensor
    np.testing.assert_array_equal(got.values.numpy(), expected)
    np.testing.assert_array_equal(got.indices.numpy(), [[0, 0], [0, 1], [1, 0]])


def test_hash_bucket_int_values_hashed_as_strings():
    col = fc.categorical_column_with_hash_bucket("n", 50, dtype=tf.int64)
    got = ids_of(col, {"n": tf.constant([[12], [345]])}).id_tensor.values.numpy()
    np.testing.assert_array_equal(got, tf.strings.to_hash_bucket_fast(["12", "345"], 50))


def test_hash_bucket_dtype_mismatch():
    col = fc.categorical_column_with_hash_bucket("w", 10)
    with pytest.raises(TypeError, match=r"got a feature of dtype int32; expected string"):
        indicator(col, {"w": tf.constant([[1]])})
    col_int = fc.categorical_column_with_hash_bucket("w", 10, dtype=tf.int64)
    with pytest.raises(TypeError, match=r"got a feature of dtype float32; expected an integer"):
        indicator(col_int, {"w": tf.constant([[1.0]])})


# -- vocabulary ------------------------------------------------------------------
def test_vocabulary_list_ids_and_default_oov():
    col = fc.categorical_column_with_vocabulary_list("c", ["red", "green", "blue"])
    out = dense_ids(col, {"c": tf.constant([["blue", "red"], ["pink", ""]])})
    np.testing.assert_array_equal(out, [[2, 0], [-1, -9]])  # pink -> -1, '' missing
    np.testing.assert_array_equal(
        indicator(col, {"c": tf.constant([["blue", "red"], ["pink", ""]])}),
        [[1, 0, 1], [0, 0, 0]])


def test_vocabulary_list_default_value():
    col = fc.categorical_column_with_vocabulary_list("c", ["a", "b"], default_value=1)
    np.testing.assert_array_equal(dense_ids(col, {"c": tf.constant([["zz"], ["a"]])}),
                                  [[1], [0]])


def test_vocabulary_list_oov_buckets_hash_like_tf():
    col = fc.categorical_column_with_vocabulary_list("c", ["a", "b"], num_oov_buckets=5)
    assert col.num_buckets == 7
    got = dense_ids(col, {"c": tf.constant([["b", "zebra", "yak"]])})
    oov = tf.strings.to_hash_bucket_fast(["zebra", "yak"], 5).numpy() + 2
    np.testing.assert_array_equal(got, [[1, *oov]])


def test_vocabulary_list_int_with_oov_buckets():
    col = fc.categorical_column_with_vocabulary_list("n", [10, 20, 30], num_oov_buckets=2)
    assert col.dtype == tf.int64
    got = dense_ids(col, {"n": tf.constant([[30, 10, 99]], tf.int32)})
    oov = tf.strings.to_hash_bucket_fast(["99"], 2).numpy()[0] + 3
    np.testing.assert_array_equal(got, [[2, 0, oov]])


def test_vocabulary_list_large_vocab_lookup_is_exact():
    vocab = [f"w{i}" for i in range(2000)]
    col = fc.categorical_column_with_vocabulary_list("w", vocab)
    got = dense_ids(col, {"w": tf.constant([["w1999", "w0", "w1000", "nope"]])})
    np.testing.assert_array_equal(got, [[1999, 0, 1000, -1]])


def test_vocabulary_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("red\ngreen\nblue\n")
    col = fc.categorical_column_with_vocabulary_file("c", str(path), num_oov_buckets=1)
    assert col.vocabulary_size == 3 and col.num_buckets == 4
    np.testing.assert_array_equal(dense_ids(col, {"c": tf.constant([["blue", "x"]])}),
                                  [[2, 3]])
    short = fc.categorical_column_with_vocabulary_file("c", str(path), vocabulary_size=2)
    np.testing.assert_array_equal(dense_ids(short, {"c": tf.constant([["blue", "green"]])}),
                                  [[-1, 1]])


def test_vocabulary_file_ints_and_errors(tmp_path):
    path = tmp_path / "ids.txt"
    path.write_text("7\n3\n")
    col = fc.categorical_column_with_vocabulary_file("n", str(path), dtype=tf.int64)
    np.testing.assert_array_equal(dense_ids(col, {"n": tf.constant([[3, 7, 5]])}), [[1, 0, -1]])
    big = fc.categorical_column_with_vocabulary_file("n", str(path), vocabulary_size=5,
                                                     dtype=tf.int64)
    with pytest.raises(ValueError, match=r"got vocabulary_size=5 for key 'n'; expected at most "
                                         r"the 2 lines"):
        dense_ids(big, {"n": tf.constant([[3]])})
    bad = tmp_path / "bad.txt"
    bad.write_text("1\nx\n")
    col = fc.categorical_column_with_vocabulary_file("n", str(bad), vocabulary_size=2,
                                                     dtype=tf.int64)
    with pytest.raises(ValueError, match=r"with a line that is not an int"):
        dense_ids(col, {"n": tf.constant([[3]])})


# -- weighted --------------------------------------------------------------------
def test_weighted_indicator_sums_weights_dense_and_ragged():
    ids = fc.categorical_column_with_identity("w", 3)
    col = fc.weighted_categorical_column(ids, "f")
    features = {"w": tf.constant([[0, 2, -1], [1, 1, -1]]),
                "f": tf.constant([[0.5, 2.0, 9.0], [1.0, 0.25, 9.0]])}
    np.testing.assert_allclose(indicator(col, features), [[0.5, 0, 2.0], [0, 1.25, 0]])
    ragged = {"w": tf.ragged.constant([[0, 2], [1]]),
              "f": tf.ragged.constant([[0.5, 2.0], [3.0]])}
    np.testing.assert_allclose(indicator(col, ragged), [[0.5, 0, 2.0], [0, 3.0, 0]])


def test_weighted_rejects_int_weights():
    col = fc.weighted_categorical_column(fc.categorical_column_with_identity("w", 3), "f")
    with pytest.raises(TypeError, match=r"weighted_categorical_column 'f' got weights of dtype "
                                        r"int32; expected floats"):
        indicator(col, {"w": tf.constant([[0]]), "f": tf.constant([[1]])})


# -- crossed ---------------------------------------------------------------------
def test_crossed_equals_sparse_cross_hashed():
    col = fc.crossed_column(["a", "b"], hash_bucket_size=1000)
    a = tf.constant([["x", "y"], ["z", "z"]])
    b = tf.constant([[1, 2], [3, 3]], tf.int64)
    got = ids_of(col, {"a": a, "b": b}).id_tensor
    expected = tf.sparse.cross_hashed([a, b], num_buckets=1000)
    np.testing.assert_array_equal(got.values.numpy(), expected.values.numpy())
    np.testing.assert_array_equal(got.indices.numpy(), expected.indices.numpy())


def test_crossed_with_hash_key_and_column_keys():
    vocab = fc.categorical_column_with_vocabulary_list("a", ["x", "y"])
    col = fc.crossed_column([vocab, "b"], hash_bucket_size=50, hash_key=7)
    features = {"a": tf.constant([["y"]]), "b": tf.constant([["q"]])}
    got = ids_of(col, features).id_tensor.values.numpy()
    expected = tf.sparse.cross_hashed([tf.constant([[1]], tf.int64), tf.constant([["q"]])],
                                      num_buckets=50, hash_key=7).values.numpy()
    np.testing.assert_array_equal(got, expected)


def test_crossed_nested_flattens_keys_and_name():
    inner = fc.crossed_column(["a", "b"], 10)
    outer = fc.crossed_column([inner, "c"], 20)
    assert outer.name == "a_X_b_X_c"
    features = {k: tf.constant([[k + "1"]]) for k in "abc"}
    got = ids_of(outer, features).id_tensor.values.numpy()
    expected = tf.sparse.cross_hashed([features["a"], features["b"], features["c"]],
                                      num_buckets=20).values.numpy()
    np.testing.assert_array_equal(got, expected)


def test_crossed_drops_missing_dense_values():
    col = fc.crossed_column(["a", "b"], 100)
    features = {"a": tf.constant([["x", ""]]), "b": tf.constant([[1, -1]])}
    got = ids_of(col, features).id_tensor.values.numpy()
    expected = tf.sparse.cross_hashed([tf.constant([["x"]]), tf.constant([[1]], tf.int64)],
                                      num_buckets=100).values.numpy()
    np.testing.assert_array_equal(got, expected)


def test_crossed_bucketized_key():
    age = fc.bucketized_column(fc.numeric_column("age"), [30.0])
    col = fc.crossed_column([age, "c"], 100)
    features = {"age": tf.constant([[40.0]]), "c": tf.constant([["q"]])}
    expected = tf.sparse.cross_hashed([tf.constant([[1]], tf.int64), tf.constant([["q"]])],
                                      num_buckets=100).values.numpy()
    np.testing.assert_array_equal(ids_of(col, features).id_tensor.values.numpy(), expected)


def test_rank3_categorical_input_is_flattened_per_example():
    col = fc.categorical_column_with_identity("d", 4)
    out = indicator(col, {"d": tf.constant([[[0, 1], [3, -1]]])})
    np.testing.assert_array_equal(out, [[1, 1, 0, 1]])


def test_missing_feature_and_bad_rank_errors():
    col = fc.categorical_column_with_identity("d", 4)
    with pytest.raises(ValueError, match=r"Feature column input got no feature 'd'"):
        indicator(col, {"x": tf.constant([[1]])})
    with pytest.raises(ValueError, match=r"categorical_column_with_identity 'd' got a feature "
                                         r"of shape \(\); expected a tensor of rank >= 1"):
        indicator(col, {"d": tf.constant(1)})
