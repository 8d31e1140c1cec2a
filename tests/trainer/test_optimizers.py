import numpy as np
import pytest
import tensorflow as tf

import trainer
from tests.trainer import models


def train_with(tmp_path, optimizer, steps=150):
    def model_fn(features, labels, mode):
        x = tf.cast(features["x"], tf.float32)
        w = tf.Variable(lambda: tf.zeros([3, 1]), name="w")
        loss = tf.reduce_mean(tf.square(tf.squeeze(x @ w, -1) - labels))
        opt = trainer.optimizers.get(optimizer, 0.05 if isinstance(optimizer, str) else None)
        return trainer.EstimatorSpec(mode, loss=loss, train_op=opt.minimize(loss, trainer.get_global_step()))

    est = trainer.Estimator(model_fn, model_dir=str(tmp_path / str(optimizer)))
    est.train(models.train_input_fn, steps=steps)
    return est


@pytest.mark.parametrize("name, slots", [
    ("SGD", []), ("Adagrad", ["w/Adagrad"]), ("Adam", ["w/Adam", "w/Adam_1", "Adam/beta1_power"]),
    ("Ftrl", ["w/Ftrl", "w/Ftrl_1"]), ("RMSProp", ["w/RMSProp", "w/RMSProp_1"]),
])
def test_named_optimizers_learn_with_tf1_slot_names(tmp_path, name, slots):
    est = train_with(tmp_path, name)
    names = est.get_variable_names()
    for slot in slots:
        assert slot in names
    w = est.get_variable_value("w")[:, 0]
    assert np.linalg.norm(w - models.TRUE_W) < np.linalg.norm(models.TRUE_W) * 0.6


def test_adagrad_matches_hand_computed_update():
    store = trainer.variables.VariableStore()
    gs = store.get_or_create("global_step", lambda: tf.constant(0, tf.int64))
    with store.scope():
        var = tf.Variable(lambda: tf.constant([1.0, 2.0]), name="v")
        opt = trainer.optimizers.Adagrad(0.5)
        opt.apply_gradients([(tf.constant([0.1, -0.2]), var)], global_step=gs)
    accum = 0.1 + np.array([0.01, 0.04])
    np.testing.assert_allclose(var.numpy(), [1.0, 2.0] - 0.5 * np.array([0.1, -0.2]) / np.sqrt(accum), rtol=1e-6)
    assert int(gs.numpy()) == 1


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "Ftrl", "RMSProp", "Adam"])
def test_sparse_update_equals_dense(name):
    def run(sparse):
        store = trainer.variables.VariableStore()
        with store.scope():
            var = tf.Variable(lambda: tf.ones([4, 2]), name="emb")
            opt = trainer.optimizers.get(name, 0.1)
            values = tf.constant([[1.0, 2.0], [0.5, -1.0], [1.0, 1.0]])
            indices = tf.constant([0, 2, 0])  # duplicate index 0 is summed first
            grad = tf.IndexedSlices(values, indices, tf.constant([4, 2]))
            if not sparse:
                grad = tf.convert_to_tensor(grad)
            opt.apply_gradients([(grad, var)])
            opt.apply_gradients([(grad, var)])
        return var.numpy()

    sparse, dense = run(True), run(False)
    # Touched rows match the dense update; untouched rows are left alone by the sparse
    # kernels (a dense FTRL step would recompute them from empty accumulators, as TF1 did).
    np.testing.assert_allclose(sparse[[0, 2]], dense[[0, 2]], rtol=1e-5)
    np.testing.assert_array_equal(sparse[[1, 3]], np.ones([2, 2]))


def test_keras_optimizer_instance(tmp_path):
    est = train_with(tmp_path, tf.keras.optimizers.SGD(0.1), steps=100)
    assert np.linalg.norm(est.get_variable_value("w")[:, 0] - models.TRUE_W) < 0.5


def test_optimizer_errors():
    with pytest.raises(ValueError, match=r"Unknown optimizer 'Adadelta'"):
        trainer.optimizers.get("Adadelta")
    with pytest.raises(ValueError, match="learning_rate=-1"):
        trainer.optimizers.SGD(-1)
    with pytest.raises(ValueError, match="called outside a TRAIN-mode model_fn"):
        trainer.optimizers.SGD(0.1).minimize(tf.constant(1.0))


def test_optimizer_from_a_config_mapping():
    from trainer import optimizers

    adagrad = optimizers.get({"name": "Adagrad", "learning_rate": 0.05, "initial_accumulator_value": 0.5})
    assert isinstance(adagrad, optimizers.Adagrad)
    assert (adagrad.learning_rate, adagrad.initial_accumulator_value) == (0.05, 0.5)
    assert optimizers.get({"name": "Ftrl"}, learning_rate=0.2).learning_rate == 0.2  # estimator default
    with pytest.raises(ValueError, match=r"names no known optimizer; expected a 'name' among"):
        optimizers.get({"name": "Adamax"})
    with pytest.raises(ValueError, match=r"unexpected keyword argument 'lr'.*learning_rate"):
        optimizers.get({"name": "SGD", "lr": 0.1})


def test_a_train_op_built_in_every_mode_is_a_no_op_outside_train(tmp_path):
    # tf.estimator tolerated optimizer.minimize outside TRAIN (two of the TF2 migration guide's
    # snippets do it); here it builds nothing that could change the variables in EVAL/PREDICT.
    import types

    def model_fn(features, labels, mode, params):
        assert params.learning_rate == 0.1  # a non-dict params object reaches the model_fn as is
        w = tf.Variable(lambda: tf.zeros([3, 1]), name="w")
        y = tf.squeeze(tf.matmul(features["x"], w), -1)
        loss = tf.reduce_mean(tf.square(y - labels)) if labels is not None else tf.constant(0.0)
        train_op = trainer.optimizers.SGD(params.learning_rate).minimize(
            loss, global_step=trainer.get_global_step())
        return trainer.EstimatorSpec(mode, loss=loss, train_op=train_op, predictions={"y": y})

    params = types.SimpleNamespace(learning_rate=0.1)
    est = trainer.Estimator(model_fn, model_dir=str(tmp_path), params=params)
    assert est.params is params
    est.train(models.train_input_fn, steps=5)
    before = est.get_variable_value("w")
    metrics = est.evaluate(models.eval_input_fn)
    predictions = list(est.predict(models.predict_input_fn))
    np.testing.assert_array_equal(est.get_variable_value("w"), before)
    # Had a step run during EVAL, the loss would not be the checkpoint's: the mean of the
    # per-batch losses (batches of 50) at the trained weights, to float32 rounding.
    per_batch = [np.mean((models.X[i:i + 50] @ before[:, 0] - models.Y[i:i + 50]) ** 2)
                 for i in range(0, len(models.X), 50)]
    assert metrics["loss"] == pytest.approx(np.mean(per_batch), rel=1e-5)
    assert metrics["global_step"] == 5 and len(predictions) == len(models.X)


@pytest.mark.parametrize("kind", ["tf1_tensor", "keras_schedule"])
def test_decaying_learning_rates_as_tensors_and_schedules(tmp_path, kind):
    # lr 0.1 at step 0, then 1e-7: the first step moves the weights, the next four barely do.
    import keras

    def model_fn(features, labels, mode):
        w = tf.Variable(lambda: tf.zeros([3, 1]), name="w")
        y = tf.squeeze(tf.matmul(features["x"], w), -1)
        loss = tf.reduce_mean(tf.square(y - labels))
        step = trainer.get_global_step()
        if kind == "tf1_tensor":
            lr = tf.compat.v1.train.exponential_decay(0.1, step, decay_steps=1, decay_rate=1e-6)
        else:
            lr = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=1e-6)
        return trainer.EstimatorSpec(mode, loss=loss,
                                     train_op=trainer.optimizers.SGD(lr).minimize(loss, global_step=step))

    est = trainer.Estimator(model_fn, model_dir=str(tmp_path))
    est.train(models.train_input_fn, steps=1)
    first = est.get_variable_value("w")
    est.train(models.train_input_fn, steps=4)
    assert np.abs(first).max() > 1e-3  # the 0.1 step moved them
    # Four steps at <= 1e-7 with gradients of order 10 move a weight by < 1e-5.
    np.testing.assert_allclose(est.get_variable_value("w"), first, atol=1e-5)
