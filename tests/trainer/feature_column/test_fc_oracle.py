"""Outputs equal TF's own tf.feature_column + tf_keras DenseFeatures (used only as an oracle).

TF 2.21 still ships the (deprecated) tf.feature_column column definitions and
tf_keras ships DenseFeatures; if either is gone, these tests skip.
"""

import numpy as np
import pytest
import tensorflow as tf

from trainer import feature_column as fc

tf_keras = pytest.importorskip("tf_keras")
F = getattr(tf, "feature_column", None)
pytestmark = pytest.mark.skipif(F is None, reason="tf.feature_column is not available")

TABLE = np.arange(20, dtype=np.float32).reshape(10, 2) / 10.0


def table_init(shape, dtype=tf.float32, partition_info=None):
    del partition_info
    return tf.constant(TABLE[: shape[0], : shape[1]], dtype)


def build(lib, vocab_path, combiner):
    num = lib.numeric_column("n", shape=(2,))
    return [
        num,
        lib.bucketized_column(lib.numeric_column("m"), [0.0, 1.0, 5.0]),
        lib.indicator_column(lib.categorical_column_with_identity("i", 5)),
        lib.indicator_column(lib.categorical_column_with_vocabulary_list(
            "s", ["cat", "dog", "emu"], num_oov_buckets=3)),
        lib.indicator_column(lib.categorical_column_with_vocabulary_list("k", [10, 20, 30])),
        lib.indicator_column(lib.categorical_column_with_vocabulary_file(
            "f", vocab_path, num_oov_buckets=2)),
        lib.indicator_column(lib.categorical_column_with_hash_bucket("h", 7)),
        lib.indicator_column(lib.crossed_column(["s", "h"], 13)),
        lib.indicator_column(lib.weighted_categorical_column(
            lib.categorical_column_with_identity("w", 4), "ww")),
        lib.embedding_column(lib.categorical_column_with_identity("e", 10), 2,
                             combiner=combiner, initializer=table_init),
        lib.embedding_column(lib.categorical_column_with_hash_bucket("h", 10), 2,
                             combiner=combiner, initializer=table_init),
    ]


FEATURES = {
    "n": tf.constant([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]),
    "m": tf.constant([[-1.0], [1.0], [7.0]]),
    "i": tf.constant([[0, 4], [2, -1], [-1, -1]]),
    "s": tf.constant([["cat", "yak"], ["emu", "dog"], ["zebra", "cat"]]),
    "k": tf.constant([[10, 99], [30, 30], [20, 10]], tf.int64),
    "f": tf.constant([["b"], ["zz"], ["a"]]),
    "h": tf.constant([["p", "q"], ["r", "s"], ["t", "p"]]),
    "w": tf.constant([[0, 3], [1, -1], [2, 2]]),
    "ww": tf.constant([[0.5, 2.0], [1.5, 0.0], [1.0, 3.0]]),
    "e": tf.sparse.from_dense(  # drops the zeros: ids [1, 3], [9], []
        tf.constant([[1, 3, 0], [9, 0, 0], [0, 0, 0]], tf.int64)),
}


@pytest.mark.parametrize("combiner", ["mean", "sqrtn", "sum"])
def test_dense_features_match_tf_feature_column(tmp_path, combiner):
    vocab = tmp_path / "v.txt"
    vocab.write_text("a\nb\nc\n")
    features = dict(FEATURES)
    ours = fc.DenseFeatures(build(fc, str(vocab), combiner))(features).numpy()
    theirs = tf_keras.layers.DenseFeatures(build(F, str(vocab), combiner))(features).numpy()
    assert ours.shape == theirs.shape == (3, 2 + 4 + 5 + 6 + 3 + 5 + 7 + 13 + 4 + 2 + 2)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)
