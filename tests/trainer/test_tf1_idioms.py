"""TF1 idioms inside tf.estimator code: each runs, or fails with one line naming the replacement
(docs/migration.md's table)."""

import numpy as np
import pytest
import tensorflow as tf

import trainer
from tests.trainer import models


def make(tmp_path, model_fn):
    return trainer.Estimator(model_fn, model_dir=str(tmp_path / "model"))


def test_a_tf1_optimizer_names_its_replacement(tmp_path):
    def model_fn(features, labels, mode):
        spec = models.linear_model_fn(features, labels, mode, {})
        optimizer = tf.compat.v1.train.MomentumOptimizer(0.1, momentum=0.9)
        return spec._replace(train_op=optimizer.minimize(spec.loss, global_step=tf.compat.v1.train.get_global_step()))

    with pytest.raises(TypeError, match=r"tf.compat.v1.train.MomentumOptimizer cannot see the Estimator's "
                                        r"variables.*How to fix: use trainer.optimizers.Momentum\(learning_rate\)"
                                        r".minimize\(loss, global_step=trainer.get_global_step\(\)\)"):
        make(tmp_path, model_fn).train(models.train_input_fn, steps=1)


def test_tf1_layers_name_their_replacement_and_keras_layers_train(tmp_path):
    def tf1_layers(features, labels, mode):
        tf.compat.v1.layers.dense(features["x"], 4)
        return models.linear_model_fn(features, labels, mode, {})

    # Keras 3 has no tf.compat.v1.layers; under tf_keras (tf.keras once tensorflow_transform was
    # imported first) they exist but fail in a traced model_fn: the same message either way.
    with pytest.raises(TypeError, match=r"tf.compat.v1.layers.dense cannot run in an Estimator's model_fn: "
                                        r".* How to fix: use trainer.layers.dense"):
        make(tmp_path / "v1", tf1_layers).train(models.train_input_fn, steps=1)

    import keras  # Keras 3 itself: tf.keras is tf_keras once tensorflow_transform was imported

    def keras_layers(features, labels, mode):  # what the message proposes
        hidden = keras.layers.Dense(4, activation="relu", name="hidden")(features["x"])
        hidden = keras.layers.Dropout(0.1)(hidden, training=mode == trainer.ModeKeys.TRAIN)
        y = keras.layers.Dense(1, name="out")(keras.layers.Flatten()(hidden))[:, 0]
        loss = tf.reduce_mean(tf.square(y - labels))
        train_op = trainer.optimizers.SGD(0.05).minimize(loss, global_step=trainer.get_global_step())
        return trainer.EstimatorSpec(mode, loss=loss, train_op=train_op)

    est = make(tmp_path / "keras", keras_layers)
    first = est.train(models.train_input_fn, steps=1).evaluate(models.eval_input_fn)["loss"]
    last = est.train(models.train_input_fn, steps=200).evaluate(models.eval_input_fn)["loss"]
    assert {"hidden/kernel", "out/kernel"} <= set(est.get_variable_names())
    assert last < first / 4  # a linear target: 200 SGD steps remove most of the error


def test_tf1_metrics_equal_the_numpy_value(tmp_path):
    def model_fn(features, labels, mode):
        spec = models.linear_model_fn(features, labels, mode, {})
        if mode != trainer.ModeKeys.EVAL:
            return spec
        y = tf.squeeze(tf.matmul(features["x"], tf.ones([3, 1])), -1)
        above = tf.cast(labels > 0, tf.int64)
        return spec._replace(eval_metric_ops={
            "accuracy": tf.compat.v1.metrics.accuracy(above, tf.cast(y > 0, tf.int64)),
            "mae": tf.compat.v1.metrics.mean_absolute_error(labels, y)})

    est = make(tmp_path, model_fn)
    est.train(models.train_input_fn, steps=2)
    result = est.evaluate(models.eval_input_fn)
    y = models.X.sum(axis=1)
    assert result["accuracy"] == pytest.approx(np.mean((models.Y > 0) == (y > 0)), abs=1e-6)
    assert result["mae"] == pytest.approx(np.mean(np.abs(models.Y - y)), rel=1e-5)


def test_tf_estimator_hooks_run_per_step_and_can_stop(tmp_path):
    class Losses(tf.compat.v1.train.SessionRunHook):  # tf.estimator.SessionRunHook is this class
        def begin(self):
            self.values, self.ended = [], False

        def before_run(self, run_context):
            return tf.compat.v1.train.SessionRunArgs({"loss": "loss", "step": "global_step"})

        def after_run(self, run_context, run_values):
            self.values.append((int(run_values.results["step"]), float(run_values.results["loss"])))
            if len(self.values) == 7:
                run_context.request_stop()

        def end(self, session):
            self.ended = True

    hook = Losses()
    est = make(tmp_path, models.linear_model_fn)
    est.train(models.train_input_fn, steps=50, hooks=[hook])
    assert [step for step, _ in hook.values] == list(range(1, 8)) and hook.ended
    assert est.get_variable_value("global_step") == 7
    assert hook.values[-1][1] < hook.values[0][1]

    spec = trainer.TrainSpec(models.train_input_fn, max_steps=9, hooks=[Losses()])
    assert spec.hooks[0].hook.__class__ is Losses  # adapted, not refused

    class Feeds(tf.compat.v1.train.SessionRunHook):
        def before_run(self, run_context):
            return tf.compat.v1.train.SessionRunArgs("loss", feed_dict={"x:0": 1.0})

    with pytest.raises(ValueError, match="SessionRunArgs with a feed_dict; TF2 has no feeding"):
        est.train(models.train_input_fn, steps=1, hooks=[Feeds()])
    with pytest.raises(TypeError, match=r"hooks must subclass trainer.SessionRunHook \(or tf.estimator's"):
        est.train(models.train_input_fn, steps=1, hooks=[object()])
