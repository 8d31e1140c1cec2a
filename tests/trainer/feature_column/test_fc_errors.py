"""Every argument error names the argument, the value and the fix (one case per raise)."""

import numpy as np
import pytest
import tensorflow as tf

from trainer import feature_column as fc
from trainer.feature_column import vocabulary

ident = fc.categorical_column_with_identity("i", 4)
weighted = fc.weighted_categorical_column(ident, "w")

CASES = [
    # numeric_column
    (lambda: fc.numeric_column(3), TypeError, r"numeric_column got key=3; expected a string"),
    (lambda: fc.numeric_column(""), ValueError, r"numeric_column got key=''; expected a non-empty"),
    (lambda: fc.numeric_column("x", shape=(-1,)), ValueError,
     r"numeric_column got shape=\(-1,\) for key 'x'; expected positive ints\. How to fix"),
    (lambda: fc.numeric_column("x", shape=(2.5,)), TypeError,
     r"numeric_column got shape=\(2\.5,\) for key 'x'; expected an int or a tuple of ints"),
    (lambda: fc.numeric_column("x", dtype=tf.string), ValueError,
     r"numeric_column got dtype=string; expected a float or integer dtype for key 'x'"),
    (lambda: fc.numeric_column("x", dtype="nope"), TypeError,
     r"numeric_column got dtype='nope'; expected a TensorFlow dtype"),
    (lambda: fc.numeric_column("x", normalizer_fn=3), TypeError,
     r"numeric_column got normalizer_fn=3; expected a callable"),
    (lambda: fc.numeric_column("x", default_value="a"), TypeError,
     r"numeric_column got default_value='a' for key 'x'; expected numbers"),
    (lambda: fc.numeric_column("x", dtype=tf.int64, default_value=1.5), TypeError,
     r"default_value=1\.5 for key 'x'; expected integers compatible with dtype=int64"),
    (lambda: fc.numeric_column("x", shape=(2,), default_value=[1.0, 2.0, 3.0]), ValueError,
     r"numeric_column got default_value=\[1\.0, 2\.0, 3\.0\] for key 'x'; expected a scalar "
     r"or 2 values"),
    # bucketized_column
    (lambda: fc.bucketized_column(ident, [1.0]), TypeError,
     r"bucketized_column got source_column=.*; expected a NumericColumn"),
    (lambda: fc.bucketized_column(fc.numeric_column("x", shape=(2, 2)), [1.0]), ValueError,
     r"bucketized_column got a source_column of shape \(2, 2\); expected a scalar or one-dimensional"),
    (lambda: fc.bucketized_column(fc.numeric_column("x"), "abc"), TypeError,
     r"bucketized_column got boundaries='abc'; expected a list of numbers"),
    (lambda: fc.bucketized_column(fc.numeric_column("x"), [2.0, 1.0]), ValueError,
     r"bucketized_column got boundaries=\[2\.0, 1\.0\]; expected a non-empty, strictly "
     r"increasing list"),
    (lambda: fc.bucketized_column(fc.numeric_column("x"), []), ValueError,
     r"bucketized_column got boundaries=\[\]; expected a non-empty"),
    # identity / hash
    (lambda: fc.categorical_column_with_identity("i", 0), ValueError,
     r"categorical_column_with_identity got num_buckets=0 for key 'i'; expected an int >= 1"),
    (lambda: fc.categorical_column_with_identity("i", 2.0), TypeError,
     r"categorical_column_with_identity got num_buckets=2\.0 for key 'i'; expected an int"),
    (lambda: fc.categorical_column_with_identity("i", 3, default_value="0"), TypeError,
     r"categorical_column_with_identity got default_value='0' for key 'i'; expected an int"),
    (lambda: fc.categorical_column_with_identity("i", 3, default_value=3), ValueError,
     r"got default_value=3 for key 'i'; expected an id in \[0, 3\)"),
    (lambda: fc.categorical_column_with_hash_bucket("h", 0), ValueError,
     r"categorical_column_with_hash_bucket got hash_bucket_size=0 for key 'h'; expected an "
     r"int >= 1"),
    (lambda: fc.categorical_column_with_hash_bucket("h", 5, dtype=tf.float32), ValueError,
     r"categorical_column_with_hash_bucket got dtype=float32 for key 'h'; expected tf\.string "
     r"or an integer dtype"),
    # vocabulary list / file
    (lambda: fc.categorical_column_with_vocabulary_list("v", "abc"), TypeError,
     r"categorical_column_with_vocabulary_list got vocabulary_list='abc' for key 'v'; "
     r"expected a list"),
    (lambda: fc.categorical_column_with_vocabulary_list("v", []), ValueError,
     r"got an empty vocabulary_list for key 'v'"),
    (lambda: fc.categorical_column_with_vocabulary_list("v", ["a", 1]), TypeError,
     r"expected all strings or all ints"),
    (lambda: fc.categorical_column_with_vocabulary_list("v", ["a"], dtype=tf.int64), TypeError,
     r"got dtype=int64 with a vocabulary of strings for key 'v'; expected them to match"),
    (lambda: fc.categorical_column_with_vocabulary_list("v", ["a", "b", "a"]), ValueError,
     r"got a duplicate vocabulary value 'a' for key 'v'; expected distinct values"),
    (lambda: fc.categorical_column_with_vocabulary_list("v", ["a"], default_value=0,
                                                         num_oov_buckets=2), ValueError,
     r"got default_value=0 and num_oov_buckets=2 for key 'v'; expected only one of them"),
    (lambda: fc.categorical_column_with_vocabulary_list("v", ["a"], default_value=5), ValueError,
     r"got default_value=5 for key 'v'; expected -1 or an id in \[0, 1\)"),
    (lambda: fc.categorical_column_with_vocabulary_list("v", ["a"], default_value=None),
     TypeError, r"got default_value=None for key 'v'; expected an int"),
    (lambda: fc.categorical_column_with_vocabulary_list("v", ["a"], num_oov_buckets=-1),
     ValueError, r"got num_oov_buckets=-1 for key 'v'; expected an int >= 0"),
    (lambda: fc.categorical_column_with_vocabulary_file("v", ""), ValueError,
     r"categorical_column_with_vocabulary_file got vocabulary_file='' for key 'v'; expected a "
     r"non-empty path"),
    (lambda: fc.categorical_column_with_vocabulary_file("v", "/no/such/file"), ValueError,
     r"got vocabulary_file='/no/such/file' for key 'v', which does not exist"),
    # crossed
    (lambda: fc.crossed_column("ab", 5), TypeError, r"crossed_column got keys='ab'; expected a "
                                                    r"list"),
    (lambda: fc.crossed_column(["a"], 5), ValueError,
     r"crossed_column got keys=\['a'\]; expected at least 2 keys"),
    (lambda: fc.crossed_column(["a", fc.categorical_column_with_hash_bucket("h", 3)], 5),
     ValueError, r"crossed_column got a categorical_column_with_hash_bucket 'h' in keys"),
    (lambda: fc.crossed_column(["a", 3], 5), TypeError, r"crossed_column got keys item 3"),
    (lambda: fc.crossed_column(["a", weighted], 5), ValueError,
     r"crossed_column got the weighted column 'i_weighted_by_w' in keys"),
    (lambda: fc.crossed_column(["a", "b"], 0), ValueError,
     r"crossed_column got hash_bucket_size=0 for key 'a_X_b'; expected an int >= 1"),
    (lambda: fc.crossed_column(["a", "b"], 5, hash_key="k"), TypeError,
     r"crossed_column got hash_key='k'; expected an int or None"),
    # weighted / indicator
    (lambda: fc.weighted_categorical_column("i", "w"), TypeError,
     r"weighted_categorical_column got categorical_column='i'; expected a categorical column"),
    (lambda: fc.weighted_categorical_column(ident, ""), TypeError,
     r"weighted_categorical_column got weight_feature_key=''; expected a non-empty"),
    (lambda: fc.weighted_categorical_column(ident, "w", dtype=tf.int32), ValueError,
     r"weighted_categorical_column got dtype=int32; expected a float dtype"),
    (lambda: fc.indicator_column(fc.numeric_column("x")), TypeError,
     r"indicator_column got categorical_column=NumericColumn.*; expected a categorical column"),
    # embedding / shared
    (lambda: fc.embedding_column("i", 2), TypeError,
     r"embedding_column got categorical_column='i'; expected a categorical column"),
    (lambda: fc.embedding_column(ident, 0), ValueError,
     r"embedding_column got dimension=0; expected an int >= 1"),
    (lambda: fc.embedding_column(ident, "2"), TypeError,
     r"embedding_column got dimension='2'; expected an int"),
    (lambda: fc.embedding_column(ident, 2, combiner="max"), ValueError,
     r"embedding_column got combiner='max'; expected one of \['mean', 'sqrtn', 'sum'\]"),
    (lambda: fc.embedding_column(ident, 2, initializer=3), TypeError,
     r"embedding_column got initializer=3; expected a callable"),
    (lambda: fc.embedding_column(ident, 2, max_norm="1"), TypeError,
     r"embedding_column got max_norm='1'; expected a float or None"),
    (lambda: fc.embedding_column(ident, 2, max_norm=0.0), ValueError,
     r"embedding_column got max_norm=0\.0; expected a positive float"),
    (lambda: fc.embedding_column(ident, 2, trainable=1), TypeError,
     r"embedding_column got trainable=1; expected a bool"),
    (lambda: fc.embedding_column(ident, 2, ckpt_to_load_from="/ckpt"), ValueError,
     r"embedding_column got ckpt_to_load_from='/ckpt', tensor_name_in_ckpt=None; expected "
     r"None: loading a table from a checkpoint inside the column is not supported\. How to fix"),
    (lambda: fc.shared_embeddings(ident, 2), TypeError,
     r"shared_embeddings got categorical_columns=IdentityCategoricalColumn.*; expected a list"),
    (lambda: fc.shared_embeddings([], 2), ValueError,
     r"shared_embeddings got categorical_columns=\[\]; expected at least one column"),
    (lambda: fc.shared_embeddings(["i"], 2), TypeError,
     r"shared_embeddings got 'i' in categorical_columns; expected categorical columns"),
    (lambda: fc.shared_embeddings([ident], 2, shared_embedding_collection_name=""), TypeError,
     r"shared_embeddings got shared_embedding_collection_name=''; expected a non-empty"),
    (lambda: fc.shared_embeddings([ident], 2, tensor_name_in_ckpt="t"), ValueError,
     r"shared_embeddings got ckpt_to_load_from=None, tensor_name_in_ckpt='t'"),
    # feature cache / inputs
    (lambda: fc.FeatureCache({"x": tf.constant([1])}).get(3, None), TypeError,
     r"FeatureCache.get got key=3; expected a feature key \(str\) or a FeatureColumn"),
    (lambda: fc.FeatureCache({"x": object()}).get("x", None), TypeError,
     r"Feature 'x' got a value of type object that is not a tensor"),
    (lambda: fc.DenseFeatures([fc.indicator_column(ident)])(
        {"i": tf.SparseTensor(tf.zeros([0, 0], tf.int64), tf.zeros([0], tf.int64),
                              tf.zeros([0], tf.int64))}), ValueError,
     r"categorical_column_with_identity 'i' got a sparse feature of unknown or zero rank"),
]


@pytest.mark.parametrize("make,error,message", CASES,
                         ids=[f"case{i}" for i in range(len(CASES))])
def test_argument_errors(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_vocabulary_fingerprint_collision_is_reported(monkeypatch):
    vocabulary._sorted_keys.cache_clear()
    monkeypatch.setattr(vocabulary.tf.strings, "to_hash_bucket_fast",
                        lambda values, n: tf.zeros(tf.shape(values), tf.int64))
    column = fc.categorical_column_with_vocabulary_list("v", ["collide1", "collide2"])
    with pytest.raises(ValueError, match=r"two values with the same 63-bit fingerprint"):
        column.get_sparse_tensors(fc.FeatureCache({"v": tf.constant([["x"]])}), None)
    vocabulary._sorted_keys.cache_clear()


def test_vocabulary_list_accepts_numpy_values():
    column = fc.categorical_column_with_vocabulary_list("v", np.array([4, 2]))
    assert column.vocabulary_list == (4, 2) and column.dtype == tf.int64
