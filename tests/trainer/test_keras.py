"""trainer.keras.model_to_estimator: training, compiled metrics, warm start, export, errors."""

import doctest
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import trainer
from trainer import keras as tk

RNG = np.random.default_rng(0)
X = RNG.normal(size=(256, 3)).astype(np.float32)
Y_BIN = (X @ np.array([1.0, -1.0, 0.5], np.float32) > 0).astype(np.int64)
Y_REG = (X @ np.array([1.5, -2.0, 0.5], np.float32) + 0.3).astype(np.float32)


def train_fn(y, batch=32):
    return lambda: tf.data.Dataset.from_tensor_slices(({"x": X}, y)).repeat().batch(batch)


def eval_fn(y):
    return lambda: tf.data.Dataset.from_tensor_slices(({"x": X}, y)).batch(64)


def predict_fn():
    return tf.data.Dataset.from_tensor_slices({"x": X}).batch(64)


def classifier(optimizer=None, metrics=("accuracy",)):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,), name="x"),
                              keras.layers.Dense(8, activation="relu", name="hidden"),
                              keras.layers.Dense(2, activation="softmax", name="probs")])
    model.compile(optimizer=optimizer or keras.optimizers.Adam(0.05),
                  loss="sparse_categorical_crossentropy", metrics=list(metrics))
    return model


def predictions(estimator, key, **kwargs):
    return np.concatenate([b[key] for b in estimator.predict(
        predict_fn, yield_single_examples=False, **kwargs)])


def test_sequential_classifier_learns_and_reports_compiled_metrics(tmp_path):
    # 'accuracy' maps to trainer.metrics; the cross-entropy metric runs as a Keras object.
    model = classifier(metrics=["accuracy", keras.metrics.SparseCategoricalCrossentropy(name="xent")])
    est = tk.model_to_estimator(model, model_dir=str(tmp_path))
    before = est.evaluate(eval_fn(Y_BIN),
                          checkpoint_path=os.path.join(str(tmp_path), "keras", "keras_model.ckpt-0"))
    est.train(train_fn(Y_BIN), steps=150)
    after = est.evaluate(eval_fn(Y_BIN))
    assert set(after) >= {"loss", "accuracy", "xent", "global_step"}
    assert after["loss"] < before["loss"] and after["accuracy"] > 0.9
    # Before training, the estimator's loss and metric equal Keras' own on the same weights.
    keras_loss, keras_acc, keras_xent = model.evaluate(X, Y_BIN, verbose=0)
    np.testing.assert_allclose(before["loss"], keras_loss, rtol=1e-4)
    np.testing.assert_allclose(before["accuracy"], keras_acc, rtol=1e-4)
    np.testing.assert_allclose(before["xent"], keras_xent, rtol=1e-4)
    assert {"global_step", "hidden/kernel", "hidden/kernel/Adam", "hidden/kernel/Adam_1",
            "probs/bias"} <= set(est.get_variable_names())


def test_predictions_match_keras_with_the_same_weights(tmp_path):
    model = classifier()
    est = tk.model_to_estimator(model, model_dir=str(tmp_path))
    warm = os.path.join(str(tmp_path), "keras", "keras_model.ckpt-0")
    np.testing.assert_allclose(predictions(est, "probs", checkpoint_path=warm),
                               model.predict(X, verbose=0), rtol=1e-5, atol=1e-6)
    est.train(train_fn(Y_BIN), steps=20)
    # Load the trained values back into the Keras model by their store keys.
    keys = tk.keras_variable_names(model)
    for key, weight in zip(keys, model.weights):
        weight.assign(est.get_variable_value(key))
    np.testing.assert_allclose(predictions(est, "probs"), model.predict(X, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_functional_regressor_with_named_output_mapped_sgd_and_export(tmp_path):
    keras.utils.set_random_seed(1)
    inputs = keras.Input((3,), name="x")
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    out = keras.layers.Dense(1, name="value")(hidden)
    model = keras.Model(inputs, out)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="mse",
                  metrics=["mae", "mse"])
    est = tk.model_to_estimator(model, model_dir=str(tmp_path / "m"))
    est.train(train_fn(Y_REG), steps=300)
    result = est.evaluate(eval_fn(Y_REG))
    assert result["mse"] < 0.2 and result["mae"] < 0.4
    np.testing.assert_allclose(result["loss"], result["mse"], rtol=0.05)
    assert any(n.endswith("/Momentum") for n in est.get_variable_names())  # mapped, TF1 slots
    receiver = trainer.export.build_raw_serving_input_receiver_fn(
        {"x": tf.TensorSpec([None, 3], tf.float32)})
    path = est.export_saved_model(str(tmp_path / "export"), receiver).decode()
    loaded = tf.saved_model.load(path)
    served = loaded.signatures["serving_default"](x=tf.constant(X[:5]))
    np.testing.assert_allclose(served["value"].numpy(), predictions(est, "value")[:5], rtol=1e-5)


def test_unmapped_keras_optimizer_is_wrapped_and_trains(tmp_path):
    model = classifier(optimizer=keras.optimizers.Nadam(0.05))
    est = tk.model_to_estimator(model, model_dir=str(tmp_path))
    est.train(train_fn(Y_BIN), steps=100)
    assert est.evaluate(eval_fn(Y_BIN))["accuracy"] > 0.85
    est.train(train_fn(Y_BIN), steps=10)  # resumes: the optimizer's state restores by name
    assert est.evaluate(eval_fn(Y_BIN))["global_step"] == 110


def test_multi_input_multi_output_and_loss_weights(tmp_path):
    keras.utils.set_random_seed(2)
    a, b = keras.Input((2,), name="a"), keras.Input((1,), name="b")
    merged = keras.layers.Concatenate()([a, b])
    reg = keras.layers.Dense(1, name="reg")(merged)
    cls = keras.layers.Dense(1, activation="sigmoid", name="cls")(merged)
    model = keras.Model({"a": a, "b": b}, {"reg": reg, "cls": cls})
    model.compile(optimizer=keras.optimizers.Adam(0.05),
                  loss={"reg": "mse", "cls": "binary_crossentropy"},
                  loss_weights={"reg": 1.0, "cls": 0.5}, metrics={"cls": ["accuracy", keras.metrics.AUC(name="auc")]})
    est = tk.model_to_estimator(model, model_dir=str(tmp_path))
    features = {"a": X[:, :2], "b": X[:, 2:]}
    labels = {"reg": Y_REG, "cls": Y_BIN.astype(np.float32)}
    data = tf.data.Dataset.from_tensor_slices((features, labels))
    est.train(lambda: data.repeat().batch(32), steps=200)
    result = est.evaluate(lambda: data.batch(64))
    assert result["cls_accuracy"] > 0.85 and result["cls_auc"] > 0.9
    out = next(est.predict(lambda: data.batch(8)))
    assert set(out) == {"reg", "cls"}


def test_model_from_path_and_single_tensor_features(tmp_path):
    model = classifier()
    path = str(tmp_path / "model.keras")
    model.save(path)
    est = tk.model_to_estimator(keras_model_path=path, model_dir=str(tmp_path / "m"))
    est.train(lambda: tf.data.Dataset.from_tensor_slices((X, Y_BIN)).repeat().batch(32), steps=5)
    out = next(est.predict(lambda: tf.data.Dataset.from_tensor_slices(X).batch(4)))
    assert out["probs"].shape == (2,)


def test_tf_keras_model(tmp_path):
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    model = tf_keras.Sequential([tf_keras.Input((3,), name="x"),
                                 tf_keras.layers.Dense(8, activation="relu", name="h"),
                                 tf_keras.layers.Dense(2, activation="softmax", name="p")])
    model.compile(tf_keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    assert tk.keras_variable_names(model) == ["h/kernel", "h/bias", "p/kernel", "p/bias"]
    est = tk.model_to_estimator(model, model_dir=str(tmp_path))
    warm = os.path.join(str(tmp_path), "keras", "keras_model.ckpt-0")
    np.testing.assert_allclose(predictions(est, "p", checkpoint_path=warm),
                               model.predict(X, verbose=0), rtol=1e-5, atol=1e-6)
    est.train(train_fn(Y_BIN), steps=100)
    assert est.evaluate(eval_fn(Y_BIN))["accuracy"] > 0.9


def test_errors(tmp_path):
    with pytest.raises(ValueError, match=r"expected exactly one of them"):
        tk.model_to_estimator()
    uncompiled = keras.Sequential([keras.Input((3,), name="x"), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match=r"uncompiled model .*How to fix: call model.compile"):
        tk.model_to_estimator(uncompiled)
    with pytest.raises(TypeError, match=r"expected a keras.Model"):
        tk.model_to_estimator(object())
    model = classifier()
    with pytest.raises(ValueError, match=r"checkpoint_format='h5'; expected one of"):
        tk.model_to_estimator(model, checkpoint_format="h5")
    with pytest.raises(TypeError, match=r"config='x'; expected a trainer.RunConfig"):
        tk.model_to_estimator(model, config="x")
    class Sub(keras.Model):
        def __init__(self, units=2):
            super().__init__()
            self.dense = keras.layers.Dense(units)

        def call(self, x):
            return self.dense(x)

    sub = Sub()
    sub.compile("adam", "mse")
    with pytest.raises(ValueError, match=r"(no get_config|no known inputs)"):
        tk.model_to_estimator(sub)
    unbuilt = keras.Sequential([keras.layers.Dense(1)])
    unbuilt.compile("adam", "mse")
    with pytest.raises(ValueError, match=r"no known inputs.*keras.Input"):
        tk.model_to_estimator(unbuilt)
    a, b = keras.Input((1,), name="a"), keras.Input((1,), name="b")
    two = keras.Model([a, b], keras.layers.Add()([a, b]))
    two.compile("adam", "mse")
    est2 = tk.model_to_estimator(two, model_dir=str(tmp_path / "two"))
    with pytest.raises(ValueError, match=r"inputs \['a', 'b'\]; the input_fn gave one tensor"):
        est2.train(lambda: tf.data.Dataset.from_tensor_slices((X[:, :1], Y_REG)).batch(8), steps=1)
    est = tk.model_to_estimator(model, model_dir=str(tmp_path))
    bad = lambda: tf.data.Dataset.from_tensor_slices(({"z": X}, Y_BIN)).batch(8)  # noqa: E731
    with pytest.raises(ValueError, match=r"lack the Keras model's inputs; expected a key from each of \[\['x'"):
        est.train(bad, steps=1)


def test_docstring_examples_run():
    assert doctest.testmod(tk, optionflags=doctest.ELLIPSIS).failed == 0


def test_sequential_input_keyed_as_tf_keras_named_it(tmp_path):
    # The migration guides build Sequential([Dense(..., input_shape=...)]) and feed
    # {"dense_input": x}: tf.keras 2's name. Keras 3 calls that input "keras_tensor".
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.layers.Input((3,)), keras.layers.Dense(8, activation="relu", name="dense"),
                              keras.layers.Dense(2, activation="softmax", name="probs")])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
    est = tk.model_to_estimator(model, model_dir=str(tmp_path))
    data = lambda: tf.data.Dataset.from_tensor_slices(({"dense_input": X}, Y_BIN)).repeat().batch(32)  # noqa: E731
    est.train(data, steps=5)
    assert est.get_variable_value("global_step") == 5
    wrong = lambda: tf.data.Dataset.from_tensor_slices(({"features": X}, Y_BIN)).batch(32)  # noqa: E731
    with pytest.raises(ValueError, match=r"expected a key from each of \[\['.*', 'dense_input'"):
        est.evaluate(wrong)
