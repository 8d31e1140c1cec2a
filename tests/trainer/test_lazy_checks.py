"""Per-step checks that explain a failure only when it happens, and the dense lookup's gradient.

The id-range check of identity columns and the label check of the classification
heads compute their error detail (the first bad value) in the `tf.cond` branch
taken on failure; these tests run them traced (as the Estimator's step does) and
check that valid batches pass and bad ones still fail with the same message.
The dense single-id lookup zeroes missing ids with a custom gradient; it must
give exactly `tf.where`'s values and gradients.
"""

import numpy as np
import pytest
import tensorflow as tf

from trainer.feature_column import inputs
from trainer.feature_column.lookup import combine_lookup
from trainer.heads.base_head import check_label_ids


def _ids_check(missing):
    @tf.function
    def check(ids):
        return inputs.assert_ids_in_range(ids, key="user", column_fn="categorical_column_with_identity",
                                          num_buckets=5, how_to_fix="How to fix: ...", missing=missing)
    return check


def test_id_range_check_passes_valid_ids_and_names_the_first_bad_one_when_traced():
    check = _ids_check(missing=-1)
    np.testing.assert_array_equal(check(tf.constant([0, 4, -1], tf.int64)), [0, 4, -1])
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"categorical_column_with_identity `user` got id=7; expected ids in \[0, 5\)\. "
                             r"How to fix"):
        check(tf.constant([1, 7, 9, -1], tf.int64))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"got id=-2"):
        check(tf.constant([1, -2], tf.int64))
    strict = _ids_check(missing=None)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"got id=-1"):
        strict(tf.constant([3, -1], tf.int64))
    np.testing.assert_array_equal(strict(tf.constant([3, 0], tf.int64)), [3, 0])


def test_label_check_passes_valid_labels_and_names_the_first_bad_one_when_traced():
    check = tf.function(lambda ids: check_label_ids(ids, 3, "MultiClassHead"))
    np.testing.assert_array_equal(check(tf.constant([0, 2, 1], tf.int64)), [0, 2, 1])
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"MultiClassHead: labels must be integer class ids in \[0, 3\); first bad label:.*5"):
        check(tf.constant([1, 5, -1], tf.int64))


def test_dense_lookup_values_and_gradients_equal_tf_where_exactly():
    table = tf.Variable(np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32))
    ids = tf.constant([2, -1, 5, 2, -1, 0], tf.int64)
    upstream = tf.constant(np.random.default_rng(1).normal(size=(6, 3)).astype(np.float32))

    @tf.function
    def ours():
        with tf.GradientTape() as tape:
            out = combine_lookup(table, None, dense_ids=ids, combiner="sum")
            loss = tf.reduce_sum(out * upstream)
        return out, tf.convert_to_tensor(tape.gradient(loss, table))

    @tf.function
    def reference():  # the formulation before the custom gradient
        with tf.GradientTape() as tape:
            present = ids >= 0
            vectors = tf.gather(table, tf.where(present, ids, tf.zeros_like(ids)))
            out = tf.where(present[:, None], vectors, tf.zeros_like(vectors))
            loss = tf.reduce_sum(out * upstream)
        return out, tf.convert_to_tensor(tape.gradient(loss, table))

    (out, grad), (ref_out, ref_grad) = ours(), reference()
    np.testing.assert_array_equal(out.numpy(), ref_out.numpy())
    np.testing.assert_array_equal(grad.numpy(), ref_grad.numpy())
    assert not out.numpy()[[1, 4]].any()
