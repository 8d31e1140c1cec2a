"""LinearModel / linear_model: weighted sums with each sparse_combiner."""

import numpy as np
import pytest
import tensorflow as tf

from trainer import feature_column as fc


def built(model, features):
    model(features)
    return model


SPARSE = tf.SparseTensor(indices=[[0, 0], [0, 1], [0, 2], [1, 0]],
                         values=tf.constant([0, 2, 2, 1], tf.int64), dense_shape=[2, 3])
W = np.array([[1.0], [10.0], [100.0]], np.float32)


@pytest.mark.parametrize("combiner,expected", [
    ("sum", [[1 + 100 + 100 + 0.5], [10 + 0.5]]),
    ("mean", [[(1 + 100 + 100) / 3 + 0.5], [10 + 0.5]]),
    ("sqrtn", [[(1 + 100 + 100) / np.sqrt(3) + 0.5], [10 + 0.5]]),
])
def test_sparse_combiners_on_multivalued_sparse_input(combiner, expected):
    col = fc.categorical_column_with_identity("s", 3)
    model = built(fc.LinearModel([col], sparse_combiner=combiner), {"s": SPARSE})
    model.state.get_variable("s", "weights").assign(W)
    model.bias.assign([0.5])
    np.testing.assert_allclose(model({"s": SPARSE}).numpy(), expected, rtol=1e-6)


def test_weighted_mean_uses_weights():
    col = fc.weighted_categorical_column(fc.categorical_column_with_identity("s", 3), "w")
    features = {"s": tf.constant([[0, 2]]), "w": tf.constant([[1.0, 3.0]])}
    model = built(fc.LinearModel([col], sparse_combiner="mean"), features)
    model.state.get_variable(col.name, "weights").assign(W)
    np.testing.assert_allclose(model(features).numpy(), [[(1 * 1 + 3 * 100) / 4]])


def test_dense_and_categorical_columns_with_units_and_keys():
    price = fc.numeric_column("price", shape=(2,))
    day = fc.categorical_column_with_identity("day", 3)
    age = fc.bucketized_column(fc.numeric_column("age"), [30.0])
    features = {"price": tf.constant([[1.0, 2.0]]), "day": tf.constant([[2]]),
                "age": tf.constant([[40.0]])}
    model = built(fc.LinearModel([price, day, age], units=2), features)
    names = sorted(v.name for v in model.variables)
    assert names == ["linear_model/age_bucketized/weights:0", "linear_model/bias_weights:0",
                     "linear_model/day/weights:0", "linear_model/price/weights:0"]
    model.state.get_variable("price", "weights").assign([[1.0, 0.0], [0.0, 1.0]])
    model.state.get_variable("day", "weights").assign([[0, 0], [0, 0], [5.0, 6.0]])
    model.state.get_variable("age_bucketized", "weights").assign([[0, 0], [7.0, 8.0]])
    model.bias.assign([0.25, 0.5])
    np.testing.assert_allclose(model(features).numpy(), [[1 + 5 + 7 + 0.25, 2 + 6 + 8 + 0.5]])


def test_linear_model_with_embedding_column():
    emb = fc.embedding_column(fc.categorical_column_with_identity("i", 3), 2)
    model = built(fc.LinearModel([emb]), {"i": tf.constant([[1]])})
    assert sorted(v.name for v in model.variables) == [
        "linear_model/bias_weights:0", "linear_model/i_embedding/embedding_weights:0",
        "linear_model/i_embedding/weights:0"]
    model.state.get_variable("i_embedding", "weights").assign([[1.0], [1.0]])
    table = model.state.get_variable("i_embedding", "embedding_weights").numpy()
    np.testing.assert_allclose(model({"i": tf.constant([[1]])}).numpy(), [[table[1].sum()]],
                               rtol=1e-6)


def test_functional_linear_model_cols_to_vars():
    col = fc.categorical_column_with_identity("s", 3)
    cols_to_vars = {}
    out = fc.linear_model({"s": SPARSE}, [col], units=1, cols_to_vars=cols_to_vars)
    np.testing.assert_array_equal(out.numpy(), [[0.0], [0.0]])
    assert [v.shape for v in cols_to_vars[col]] == [(3, 1)]
    assert [v.shape for v in cols_to_vars["bias"]] == [(1,)]


def test_linear_model_argument_errors():
    col = fc.categorical_column_with_identity("s", 3)
    with pytest.raises(ValueError, match=r"LinearModel got sparse_combiner='max'; expected one "
                                         r"of \['sum', 'mean', 'sqrtn'\]"):
        fc.LinearModel([col], sparse_combiner="max")
    with pytest.raises(ValueError, match=r"LinearModel got units=0; expected an int >= 1"):
        fc.LinearModel([col], units=0)
    with pytest.raises(TypeError, match=r"LinearModel got units='2'; expected an int"):
        fc.LinearModel([col], units="2")
    with pytest.raises(TypeError, match=r"LinearModel got the column 'x'; expected a "
                                        r"categorical or dense column"):
        fc.LinearModel(["x"])
    with pytest.raises(ValueError, match=r"LinearModel got name='linear model'"):
        fc.LinearModel([col], name="linear model")
