"""Small model_fns and data shared by the trainer tests."""

import numpy as np
import tensorflow as tf

import trainer

RNG = np.random.default_rng(0)
X = RNG.normal(size=(256, 3)).astype(np.float32)
TRUE_W = np.array([1.5, -2.0, 0.5], np.float32)
Y = (X @ TRUE_W + 0.3).astype(np.float32)
Y_CLASS = (Y > 0.3).astype(np.int64)


def linear_model_fn(features, labels, mode, params):
    """y = x.w + b with SGD; exports regress + predict signatures."""
    x = tf.cast(features["x"], tf.float32)
    w = tf.Variable(lambda: tf.zeros([3, 1]), name="linear/weights")
    b = tf.Variable(lambda: tf.zeros([1]), name="linear/bias")
    y = tf.squeeze(tf.matmul(x, w) + b, -1)
    if mode == trainer.ModeKeys.PREDICT:
        return trainer.EstimatorSpec(mode, predictions={"y": y}, export_outputs={
            "serving_default": trainer.export.RegressionOutput(y),
            "predict": trainer.export.PredictOutput({"y": y})})
    loss = tf.reduce_mean(tf.square(y - labels))
    metrics = {"mse": trainer.metrics.mean_squared_error(labels, y)}
    if mode == trainer.ModeKeys.EVAL:
        return trainer.EstimatorSpec(mode, loss=loss, eval_metric_ops=metrics)
    opt = trainer.optimizers.SGD(params.get("learning_rate", 0.1))
    return trainer.EstimatorSpec(mode, loss=loss,
                                 train_op=opt.minimize(loss, global_step=trainer.get_global_step()))


def train_input_fn(batch_size=32):
    return tf.data.Dataset.from_tensor_slices(({"x": X}, Y)).repeat().batch(batch_size)


def eval_input_fn(batch_size=50):
    return tf.data.Dataset.from_tensor_slices(({"x": X}, Y)).batch(batch_size)


def predict_input_fn(batch_size=50):
    return tf.data.Dataset.from_tensor_slices({"x": X}).batch(batch_size)


def classifier_model_fn(features, labels, mode, params):
    """Logistic regression with Keras layers, Adagrad, and a classify signature."""
    x = tf.cast(features["x"], tf.float32)
    hidden = tf.keras.layers.Dense(8, activation="relu")(x)
    logits = tf.squeeze(tf.keras.layers.Dense(1)(hidden), -1)
    prob = tf.sigmoid(logits)
    if mode == trainer.ModeKeys.PREDICT:
        scores = tf.stack([1 - prob, prob], axis=1)
        classes = tf.tile(tf.constant([["0", "1"]]), [tf.shape(prob)[0], 1])
        return trainer.EstimatorSpec(mode, predictions={"prob": prob, "logits": logits},
                                     export_outputs={
                                         "serving_default": trainer.export.ClassificationOutput(scores, classes),
                                         "predict": trainer.export.PredictOutput({"prob": prob})})
    labels_f = tf.cast(labels, tf.float32)
    loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels_f, logits=logits))
    if mode == trainer.ModeKeys.EVAL:
        return trainer.EstimatorSpec(mode, loss=loss, eval_metric_ops={
            "auc": trainer.metrics.auc(labels, prob),
            "accuracy": trainer.metrics.accuracy(labels, tf.cast(prob > 0.5, tf.int64))})
    opt = trainer.optimizers.Adagrad(0.3)
    return trainer.EstimatorSpec(mode, loss=loss,
                                 train_op=opt.minimize(loss, global_step=trainer.get_global_step()))


def classifier_train_input_fn():
    return tf.data.Dataset.from_tensor_slices(({"x": X}, Y_CLASS)).repeat().batch(32)


def classifier_eval_input_fn():
    return tf.data.Dataset.from_tensor_slices(({"x": X}, Y_CLASS)).batch(64)


class LossRecorder(trainer.SessionRunHook):
    """Keeps the (reduced) loss of every step."""

    def __init__(self):
        self.losses = []

    def before_run(self, run_context):
        return trainer.SessionRunArgs("loss")

    def after_run(self, run_context, run_values):
        self.losses.append(float(run_values.results))
