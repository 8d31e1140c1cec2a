"""embedding_column and shared_embeddings: combiners, weights, sharing."""

import numpy as np
import pytest
import tensorflow as tf

from trainer import feature_column as fc

TABLE = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0], [-1.0, 4.0]], np.float32)


def table_init(shape, dtype=tf.float32):
    assert tuple(shape) == TABLE.shape
    return tf.constant(TABLE, dtype)


IDS = {"i": tf.constant([[0, 2, -1], [1, -1, -1], [-1, -1, -1]])}


@pytest.mark.parametrize("combiner,expected", [
    ("sum", [[4.0, 3.0], [0.0, 2.0], [0.0, 0.0]]),
    ("mean", [[2.0, 1.5], [0.0, 2.0], [0.0, 0.0]]),
    ("sqrtn", [[4.0 / np.sqrt(2), 3.0 / np.sqrt(2)], [0.0, 2.0], [0.0, 0.0]]),
])
def test_embedding_combiners(combiner, expected):
    col = fc.embedding_column(fc.categorical_column_with_identity("i", 4), 2,
                              combiner=combiner, initializer=table_init)
    np.testing.assert_allclose(fc.DenseFeatures([col])(IDS).numpy(), expected, rtol=1e-6)


def test_weighted_embedding_mean():
    weighted = fc.weighted_categorical_column(fc.categorical_column_with_identity("i", 4), "w")
    col = fc.embedding_column(weighted, 2, combiner="mean", initializer=table_init)
    features = {"i": tf.constant([[0, 3]]), "w": tf.constant([[1.0, 3.0]])}
    expected = (1.0 * TABLE[0] + 3.0 * TABLE[3]) / 4.0
    np.testing.assert_allclose(fc.DenseFeatures([col])(features).numpy(), [expected])


def test_embedding_max_norm_clips_each_vector():
    col = fc.embedding_column(fc.categorical_column_with_identity("i", 4), 2,
                              combiner="sum", initializer=table_init, max_norm=1.0)
    out = fc.DenseFeatures([col])({"i": tf.constant([[2]])}).numpy()
    np.testing.assert_allclose(out, [TABLE[2] / np.linalg.norm(TABLE[2])], rtol=1e-6)


def test_embedding_default_initializer_stddev_and_variable():
    col = fc.embedding_column(fc.categorical_column_with_identity("i", 500), 4)
    layer = fc.DenseFeatures([col], name="input_layer")
    layer({"i": tf.constant([[1]])})
    (table,) = layer.trainable_variables
    assert table.name == "input_layer/i_embedding/embedding_weights:0"
    assert table.shape == (500, 4)
    values = table.numpy()
    assert np.all(np.abs(values) <= 2 * 0.5 + 1e-6)  # truncated at 2 stddev, stddev=1/sqrt(4)
    assert 0.3 < values.std() < 0.5


def test_embedding_not_trainable():
    col = fc.embedding_column(fc.categorical_column_with_identity("i", 4), 2, trainable=False)
    layer = fc.DenseFeatures([col])
    layer({"i": tf.constant([[1]])})
    assert layer.trainable_variables == () and len(layer.variables) == 1


def test_shared_embeddings_share_one_table():
    a = fc.categorical_column_with_identity("a", 4)
    b = fc.categorical_column_with_identity("b", 4)
    ea, eb = fc.shared_embeddings([a, b], 2, initializer=table_init, combiner="sum")
    assert ea.shared_embedding_collection_name == "a_b_shared_embedding"
    layer = fc.DenseFeatures([eb, ea], name="input_layer")
    out = layer({"a": tf.constant([[0]]), "b": tf.constant([[3]])}).numpy()
    np.testing.assert_allclose(out, [np.concatenate([TABLE[0], TABLE[3]])])
    assert [v.name for v in layer.variables] == ["a_b_shared_embedding/embedding_weights:0"]


def test_shared_embeddings_custom_name_and_errors():
    a = fc.categorical_column_with_identity("a", 4)
    (ea,) = fc.shared_embeddings([a], 3, shared_embedding_collection_name="tokens")
    assert ea.name == "a_shared_embedding"
    with pytest.raises(ValueError, match=r"shared_embeddings got columns with different "
                                         r"num_buckets \{'a': 4, 'b': 5\}"):
        fc.shared_embeddings([a, fc.categorical_column_with_identity("b", 5)], 2)
    c = fc.categorical_column_with_identity("c", 4)
    (x,) = fc.shared_embeddings([a], 3, shared_embedding_collection_name="tokens")
    (y,) = fc.shared_embeddings([c], 2, shared_embedding_collection_name="tokens")
    with pytest.raises(ValueError, match=r"shared_embeddings collection 'tokens' got shape "
                                         r"\(4, 2\); expected \(4, 3\)"):
        fc.DenseFeatures([x, y])({"a": tf.constant([[0]]), "c": tf.constant([[1]])})


class UnhashableInit:
    def __eq__(self, other):
        return isinstance(other, UnhashableInit)

    __hash__ = None

    def __call__(self, shape, dtype=tf.float32):
        return tf.ones(shape, dtype)


def test_embedding_with_unhashable_initializer_object():
    col = fc.embedding_column(fc.categorical_column_with_identity("i", 3), 2,
                              initializer=UnhashableInit())
    out = fc.DenseFeatures([col])({"i": tf.constant([[0, 2]])}).numpy()
    np.testing.assert_allclose(out, [[1.0, 1.0]])


SINGLE = [2, -1, 0, 3, 1]


@pytest.mark.parametrize("combiner", ["sum", "mean", "sqrtn"])
@pytest.mark.parametrize("max_norm", [None, 1.5])
@pytest.mark.parametrize("shape", [[5], [5, 1]])
def test_dense_single_id_inputs_match_the_sparse_path_values_and_gradients(combiner, max_norm, shape):
    """[batch] and [batch, 1] ids take a dense shortcut; it must equal the sparse path, -1 included."""
    dense = {"i": tf.reshape(tf.constant(SINGLE, tf.int64), shape)}
    rows = [r for r, v in enumerate(SINGLE) if v >= 0]
    sparse = {"i": tf.SparseTensor([[r, 0] for r in rows], [SINGLE[r] for r in rows], [5, 1])}
    results = []
    for features in (dense, sparse):
        embedding = fc.embedding_column(fc.categorical_column_with_identity("i", 4), 2, combiner=combiner,
                                        initializer=table_init, max_norm=max_norm)
        wide = fc.LinearModel([fc.categorical_column_with_identity("i", 4)], sparse_combiner=combiner)
        layer = fc.DenseFeatures([embedding])
        with tf.GradientTape(persistent=True) as tape:
            deep_out = layer(features)
            wide_out = wide(features)
            weights = wide.variables_by_column()
            wide.bias.assign([0.0])
            loss = tf.reduce_sum(deep_out * [[1.0, 2.0]]) + tf.reduce_sum(wide_out * tf.range(5.0)[:, None])
        table = layer.variables[0]
        linear = next(v for vs in weights.values() for v in vs if v is not wide.bias)
        grads = [tf.convert_to_tensor(g) for g in tape.gradient(loss, [table, linear])]
        results.append((deep_out.numpy(), wide_out.numpy(), [g.numpy() for g in grads]))
    (d1, w1, g1), (d2, w2, g2) = results
    np.testing.assert_allclose(d1, d2, rtol=1e-6)
    np.testing.assert_allclose(w1, w2, rtol=1e-6)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert not d1[1].any()  # -1: no id, zeros


def test_dense_single_id_out_of_range_fails_and_default_value_keeps_missing():
    col = fc.categorical_column_with_identity("i", 4)
    layer = fc.DenseFeatures([fc.indicator_column(col)])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"`i` got id=7; expected ids in \[0, 4\)"):
        layer({"i": tf.constant([1, 7, -1], tf.int64)})
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"`i` got id=-2"):
        layer({"i": tf.constant([-2], tf.int64)})
    defaulted = fc.DenseFeatures([fc.indicator_column(fc.categorical_column_with_identity("i", 4, default_value=0))])
    np.testing.assert_array_equal(defaulted({"i": tf.constant([[7], [-1], [3]], tf.int64)}).numpy(),
                                  [[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]])
