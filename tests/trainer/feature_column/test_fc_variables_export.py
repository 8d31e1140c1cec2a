"""Variable keys under VariableStore, eager use, and SavedModel export."""

import numpy as np
import pytest
import tensorflow as tf

from trainer import feature_column as fc
from trainer.variables import VariableStore


def columns():
    city = fc.categorical_column_with_vocabulary_list("city", ["paris", "rome", "oslo"],
                                                      num_oov_buckets=1)
    day = fc.categorical_column_with_identity("day", 7)
    shared_a, shared_b = fc.shared_embeddings(
        [fc.categorical_column_with_identity("q", 5), fc.categorical_column_with_identity("d", 5)],
        dimension=3)
    deep = [fc.numeric_column("age"), fc.embedding_column(city, 4), fc.indicator_column(day),
            shared_a, shared_b]
    wide = [city, fc.crossed_column([city, day], 11), fc.numeric_column("age")]
    return deep, wide


def features(batch=2):
    return {
        "age": tf.constant([[30.0], [40.0], [50.0]][:batch]),
        "city": tf.constant([["rome"], ["x"], ["oslo"]][:batch]),
        "day": tf.constant([[1], [6], [0]][:batch]),
        "q": tf.ragged.constant([[1, 2], [4], []][:batch], dtype=tf.int64),
        "d": tf.constant([[0], [3], [-1]][:batch]),
    }


EXPECTED_KEYS = [
    "dnn/d_q_shared_embedding/embedding_weights",
    "dnn/input_layer/city_embedding/embedding_weights",
    "linear/linear_model/age/weights",
    "linear/linear_model/bias_weights",
    "linear/linear_model/city/weights",
    "linear/linear_model/city_X_day/weights",
]


def test_model_fn_traced_twice_under_store_reuses_variables():
    store = VariableStore()
    deep, wide = columns()
    traces = []

    @tf.function
    def model_fn(feats):
        traces.append(1)
        with store.scope():
            with tf.name_scope("dnn"):
                net = fc.input_layer(feats, deep)
            with tf.name_scope("linear"):
                logits = fc.linear_model(feats, wide, units=1)
        return net, logits

    net1, _ = model_fn(features(2))
    keys_after_first = sorted(store.variables)
    ids_after_first = {k: id(v) for k, v in store.variables.items()}
    net2, logits = model_fn(features(3))  # new batch size -> retrace
    assert len(traces) >= 2  # tf.function also re-traces once after creating variables
    assert sorted(store.variables) == keys_after_first == EXPECTED_KEYS
    assert {k: id(v) for k, v in store.variables.items()} == ids_after_first
    assert net1.shape == (2, 1 + 4 + 7 + 3 + 3) and net2.shape == (3, 18)
    np.testing.assert_allclose(net1.numpy(), net2.numpy()[:2], rtol=1e-6)
    assert logits.shape == (3, 1)
    shapes = {k: tuple(v.shape) for k, v in store.variables.items()}
    assert shapes["dnn/d_q_shared_embedding/embedding_weights"] == (5, 3)
    assert shapes["linear/linear_model/city/weights"] == (4, 1)
    assert shapes["linear/linear_model/city_X_day/weights"] == (11, 1)


def test_two_layers_in_one_trace_share_shared_embedding_and_uniquify_layer_scope():
    store = VariableStore()
    a, b = fc.shared_embeddings([fc.categorical_column_with_identity("q", 5),
                                 fc.categorical_column_with_identity("d", 5)], 2)
    emb = fc.embedding_column(fc.categorical_column_with_identity("q", 5), 2)

    @tf.function
    def model_fn(feats):
        with store.scope():
            x = fc.input_layer(feats, [a, emb])
            y = fc.input_layer(feats, [b, emb])
        return x, y

    x, y = model_fn({"q": tf.constant([[1]]), "d": tf.constant([[1]])})
    model_fn({"q": tf.constant([[1], [2]]), "d": tf.constant([[1], [2]])})
    assert sorted(store.variables) == ["d_q_shared_embedding/embedding_weights",
                                       "input_layer/q_embedding/embedding_weights",
                                       "input_layer_1/q_embedding/embedding_weights"]
    # sorted: x = [q_embedding, q_shared_embedding], y = [d_shared_embedding, q_embedding].
    # Same id 1 in q and d and one shared table -> same vector; q_embedding is per layer.
    np.testing.assert_allclose(x.numpy()[:, 2:], y.numpy()[:, :2])
    assert not np.allclose(x.numpy()[:, :2], y.numpy()[:, 2:])


def test_eager_layer_without_store_and_same_instance_in_tf_function():
    deep, _ = columns()
    layer = fc.DenseFeatures(deep, name="input_layer")
    eager = layer(features(2)).numpy()
    names = sorted(v.name for v in layer.variables)
    assert names == ["d_q_shared_embedding/embedding_weights:0",
                     "input_layer/city_embedding/embedding_weights:0"]
    traced = tf.function(lambda f: layer(f))(features(2)).numpy()
    np.testing.assert_allclose(eager, traced, rtol=1e-6)
    assert len(layer.variables) == 2  # no new variables on the traced call


def test_layer_gradients_reach_embedding_and_linear_weights():
    deep, wide = columns()
    layer, linear = fc.DenseFeatures(deep), fc.LinearModel(wide)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(features(2))) + tf.reduce_sum(linear(features(2)))
    variables = layer.trainable_variables + linear.trainable_variables
    grads = tape.gradient(loss, variables)
    assert len(variables) == 6 and all(g is not None for g in grads)


def test_fresh_layer_built_inside_tf_function_without_store():
    layer = fc.DenseFeatures([fc.embedding_column(fc.categorical_column_with_identity("i", 4), 2)])
    fn = tf.function(lambda x: layer({"i": x}))
    first = fn(tf.constant([[1]]))
    second = fn(tf.constant([[1], [3]]))  # retrace: must not create variables again
    assert [v.name for v in layer.variables] == ["dense_features/i_embedding/embedding_weights:0"]
    np.testing.assert_allclose(first.numpy()[0], second.numpy()[0])
    np.testing.assert_allclose(second.numpy()[1], layer.variables[0].numpy()[3])


class Model(tf.Module):
    def __init__(self):
        super().__init__()
        deep, wide = columns()
        self.deep = fc.DenseFeatures(deep, name="input_layer")
        self.wide = fc.LinearModel(wide, units=1)

    @tf.function(input_signature=[{
        "age": tf.TensorSpec([None, 1], tf.float32),
        "city": tf.TensorSpec([None, 1], tf.string),
        "day": tf.TensorSpec([None, 1], tf.int32),
        "q": tf.RaggedTensorSpec([None, None], tf.int64),
        "d": tf.TensorSpec([None, 1], tf.int32),
    }])
    def serve(self, feats):
        return {"deep": self.deep(feats), "wide": self.wide(feats)}


def test_saved_model_export_and_reload_gives_identical_outputs(tmp_path):
    model = Model()
    model.wide.build()  # variables exist before the first call
    model.wide.state.get_variable("city", "weights").assign([[1.0], [2.0], [3.0], [4.0]])
    batch = features(3)
    before = model.serve(batch)
    tf.saved_model.save(model, str(tmp_path))
    loaded = tf.saved_model.load(str(tmp_path))
    after = loaded.serve(batch)
    for key in ("deep", "wide"):
        np.testing.assert_allclose(before[key].numpy(), after[key].numpy(), rtol=1e-6)
    np.testing.assert_allclose(after["wide"].numpy(), [[2.0], [4.0], [3.0]])  # city weights
    saved = [name for name, _ in tf.train.list_variables(str(tmp_path / "variables" / "variables"))
             if name.endswith("VARIABLE_VALUE")]
    assert len(saved) == 6  # 2 embedding tables + 3 linear weights + bias; no lookup tables


def test_checkpoint_round_trip_of_layer_variables(tmp_path):
    deep, _ = columns()
    first = fc.DenseFeatures(deep)
    out = first(features(2))
    path = tf.train.Checkpoint(layer=first).save(str(tmp_path / "ckpt"))
    second = fc.DenseFeatures(deep)
    second(features(2))
    tf.train.Checkpoint(layer=second).restore(path).assert_consumed()
    np.testing.assert_allclose(second(features(2)).numpy(), out.numpy())


def test_dense_features_errors():
    day = fc.categorical_column_with_identity("day", 7)
    with pytest.raises(TypeError, match=r"DenseFeatures got the column .*IdentityCategorical"
                                        r".*expected a dense column .* wrap a categorical "
                                        r"column in indicator_column or embedding_column"):
        fc.DenseFeatures([day])
    with pytest.raises(ValueError, match=r"DenseFeatures got feature_columns=\[\]; expected at "
                                         r"least one column"):
        fc.DenseFeatures([])
    with pytest.raises(TypeError, match=r"DenseFeatures got feature_columns='age'; expected a "
                                        r"list of feature columns"):
        fc.DenseFeatures("age")
    with pytest.raises(ValueError, match=r"DenseFeatures got two columns named 'age'"):
        fc.DenseFeatures([fc.numeric_column("age"), fc.numeric_column("age", shape=2)])
    with pytest.raises(ValueError, match=r"DenseFeatures got name='1layer'"):
        fc.DenseFeatures([fc.numeric_column("age")], name="1layer")
    with pytest.raises(TypeError, match=r"FeatureCache got features=list; expected a dict"):
        fc.DenseFeatures([fc.numeric_column("age")])([tf.constant([[1.0]])])


def test_columns_sorted_by_name_and_cols_to_output_tensors():
    b = fc.numeric_column("b")
    a = fc.numeric_column("a", shape=2)
    outputs = {}
    out = fc.input_layer({"a": tf.constant([[1.0, 2.0]]), "b": tf.constant([[3.0]])}, [b, a],
                         cols_to_output_tensors=outputs)
    np.testing.assert_array_equal(out.numpy(), [[1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(outputs[b].numpy(), [[3.0]])


def test_layer_state_errors():
    state = fc.LayerState("layer")
    with pytest.raises(ValueError, match=r"LayerState got no scope for layer 'layer'"):
        _ = state.layer_scope
    state.build()
    with pytest.raises(ValueError, match=r"Layer 'layer' got a request for variable 'x/w' that "
                                         r"was never created"):
        state.get_variable("x", "w")
