"""MirroredStrategy on two logical CPU devices against one device, in a process of its own.

Logical devices must be configured before TensorFlow first touches its devices, so the
test (`tests/trainer/test_mirrored.py`) runs this file as a child process; it prints one
JSON line of measured differences, and the test compares them with its tolerances.

Usage: python tests/trainer/mirrored_check.py WORKDIR
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402

import trainer  # noqa: E402
from tests.trainer.distributed_models import taxi_data, taxi_input_fn, wide_deep as _wide_deep  # noqa: E402
from tests.trainer.models import LossRecorder  # noqa: E402

GLOBAL_BATCH = 64
STEPS = 30


_MIRRORED = []


def mirrored() -> tf.distribute.MirroredStrategy:
    """One strategy for the whole process: TensorFlow's collective keys are per strategy
    object, and two MirroredStrategy objects in one process reuse the same keys."""
    if not _MIRRORED:
        _MIRRORED.append(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    return _MIRRORED[0]


# --------------------------------------------------------------- a custom model_fn (Keras layers)

def keras_model_fn(features, labels, mode):
    hidden = keras.layers.Dense(16, activation="relu", name="hidden",
                                kernel_initializer=keras.initializers.GlorotUniform(seed=1))
    out = keras.layers.Dense(3, name="logits", kernel_initializer=keras.initializers.GlorotUniform(seed=2))
    logits = out(hidden(features["x"]))
    predictions = {"probabilities": tf.nn.softmax(logits), "class_ids": tf.argmax(logits, axis=1)}
    if mode == trainer.ModeKeys.PREDICT:
        return trainer.EstimatorSpec(mode, predictions=predictions, export_outputs={
            "serving_default": trainer.export.PredictOutput(predictions)})
    loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))
    accuracy = trainer.metrics.Accuracy()
    accuracy.update_state(labels, predictions["class_ids"])
    train_op = None
    if mode == trainer.ModeKeys.TRAIN:
        train_op = trainer.optimizers.Adagrad(0.1).minimize(loss, trainer.get_global_step())
    return trainer.EstimatorSpec(mode, loss=loss, train_op=train_op, predictions=predictions,
                                 eval_metric_ops={"accuracy": accuracy})


def iris_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(GLOBAL_BATCH * 4, 4)).astype(np.float32)
    y = (np.argmax(x[:, :3] + 0.3 * x[:, 3:], axis=1)).astype(np.int64)
    return x, y


def custom_input_fn(x, y, repeat=True):
    def input_fn():
        ds = tf.data.Dataset.from_tensor_slices(({"x": x}, y)).batch(GLOBAL_BATCH, drop_remainder=True)
        return ds.repeat() if repeat else ds
    return input_fn


# --------------------------------------------------------------- comparisons

def max_rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-3))) if a.size else 0.0


def weights_diff(est_a, est_b):
    names = est_a.get_variable_names()
    assert names == est_b.get_variable_names(), (names, est_b.get_variable_names())
    return max(max_rel(est_a.get_variable_value(n), est_b.get_variable_value(n)) for n in names)


def run_pair(make, input_fn, eval_input_fn, workdir, name):
    single = make(os.path.join(workdir, f"{name}-single"), None)
    mirror = make(os.path.join(workdir, f"{name}-mirrored"), mirrored())
    losses = {}
    for key, est in (("single", single), ("mirrored", mirror)):
        recorder = LossRecorder()
        est.train(input_fn, steps=STEPS, hooks=[recorder])
        losses[key] = recorder.losses
    result = {
        "steps": [len(losses["single"]), len(losses["mirrored"])],
        "loss_rel": max_rel(losses["mirrored"], losses["single"]),
        "weights_rel": weights_diff(mirror, single),
        "global_step": [int(single.get_variable_value("global_step")),
                        int(mirror.get_variable_value("global_step"))],
    }
    ev_single, ev_mirror = single.evaluate(eval_input_fn), mirror.evaluate(eval_input_fn)
    result["eval"] = {k: [float(ev_single[k]), float(ev_mirror[k])] for k in ev_single}
    # Evaluate again: the program is reused (restored, metric state reset), not rebuilt.
    again = mirror.evaluate(eval_input_fn)
    result["eval_again_equal"] = all(np.allclose(again[k], ev_mirror[k]) for k in ev_mirror)
    pred_single = [p["probabilities"] for p in single.predict(eval_input_fn)]
    pred_mirror = [p["probabilities"] for p in mirror.predict(eval_input_fn)]
    result["predict_rows"] = [len(pred_single), len(pred_mirror)]
    result["predict_rel"] = max_rel(np.stack(pred_mirror), np.stack(pred_single))
    return single, mirror, result


def custom(workdir):
    def make(model_dir, strategy):
        config = trainer.RunConfig(model_dir=model_dir, tf_random_seed=3, train_distribute=strategy,
                                   eval_distribute=strategy, log_step_count_steps=None)
        return trainer.Estimator(keras_model_fn, config=config)

    x, y = iris_data()
    single, mirror, result = run_pair(make, custom_input_fn(x, y), custom_input_fn(x, y, repeat=False),
                                      workdir, "custom")
    # Export under the strategy's config: the same serving answers as the single-device export.
    receiver = trainer.export.build_raw_serving_input_receiver_fn(
        {"x": tf.TensorSpec([None, 4], tf.float32)})
    outputs = []
    for est in (single, mirror):
        path = est.export_saved_model(os.path.join(workdir, "exports"), receiver).decode()
        loaded = tf.saved_model.load(path)
        outputs.append(loaded.signatures["serving_default"](x=tf.constant(x[:8]))["probabilities"].numpy())
    result["export_rel"] = max_rel(outputs[1], outputs[0])
    return result


def checkpoint_moves(workdir):
    """10 mirrored steps then 10 single ones, and the reverse, against 20 single ones."""
    x, y = iris_data()

    def make(model_dir, strategy):
        config = trainer.RunConfig(model_dir=model_dir, tf_random_seed=3, train_distribute=strategy,
                                   log_step_count_steps=None)
        return trainer.Estimator(keras_model_fn, config=config)

    reference = make(os.path.join(workdir, "moves-ref"), None)
    reference.train(custom_input_fn(x, y), steps=20)
    diffs = {}
    for order in (("mirrored", "single"), ("single", "mirrored")):
        model_dir = os.path.join(workdir, "moves-" + "-".join(order))
        for part in order:
            est = make(model_dir, mirrored() if part == "mirrored" else None)
            # The same 20 batches as the reference: skip the ones the first part trained on.
            done = int(est.get_variable_value("global_step")) if est.latest_checkpoint() else 0
            est.train(lambda done=done: custom_input_fn(x, y)().skip(done), steps=10)
        diffs["then".join(order)] = weights_diff(est, reference)
    return diffs


def errors(workdir):
    """Messages for input that two replicas cannot share."""
    x, y = iris_data()
    messages = {}
    cases = {
        "unbatched": lambda: tf.data.Dataset.from_tensor_slices(({"x": x}, y)).repeat(),
        "odd_batch": lambda: tf.data.Dataset.from_tensor_slices(({"x": x}, y)).batch(
            5, drop_remainder=True).repeat(),
    }
    for name, fn in cases.items():
        config = trainer.RunConfig(model_dir=os.path.join(workdir, "errors-" + name),
                                   train_distribute=mirrored(), log_step_count_steps=None)
        try:
            trainer.Estimator(keras_model_fn, config=config).train(fn, steps=1)
            messages[name] = None
        except (ValueError, TypeError) as e:
            messages[name] = str(e)
    return messages


def main(workdir):
    result = {"custom": custom(workdir), "errors": errors(workdir)}
    features, labels = taxi_data()
    _, _, result["wide_deep"] = run_pair(lambda d, s: _wide_deep(d, s, steps=STEPS, eval_distribute=s),
                                         taxi_input_fn(features, labels),
                                         taxi_input_fn(features, labels, repeat=False), workdir, "wd")
    result["checkpoint_moves"] = checkpoint_moves(workdir)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
