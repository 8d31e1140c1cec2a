"""Training throughput: the same small DNN through trainer.Estimator and Keras `fit`.

Prints one JSON line with examples/s for each and their ratios (Estimator /
Keras), measured in the same run on the same tf.data input. The Estimator is
measured with tf.estimator's per-step hooks (steps_per_loop=1, the default)
and with RunConfig(steps_per_loop=50).

    python benchmarks/train_throughput.py [--steps 3000] [--batch_size 256]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import trainer  # noqa: E402

HIDDEN = [64, 32]
FEATURES = 20


def make_data(rows=65536, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, FEATURES)).astype(np.float32)
    w = rng.normal(size=(FEATURES,)).astype(np.float32)
    y = (x @ w + rng.normal(size=rows) > 0).astype(np.float32)
    return x, y


def dataset(x, y, batch_size):
    return tf.data.Dataset.from_tensor_slices((x, y)).repeat().batch(batch_size, drop_remainder=True).prefetch(4)


def model_fn(features, labels, mode, params):
    net = features
    for i, units in enumerate(HIDDEN):
        net = trainer.layers.dense(net, units, activation=tf.nn.relu, name=f"hiddenlayer_{i}")
    logits = tf.squeeze(trainer.layers.dense(net, 1, name="logits"), -1)
    loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))
    optimizer = trainer.optimizers.Adagrad(params["learning_rate"])
    return trainer.EstimatorSpec(mode, loss=loss,
                                 train_op=optimizer.minimize(loss, global_step=trainer.get_global_step()))


def time_estimator(x, y, steps, batch_size, steps_per_loop):
    config = trainer.RunConfig(steps_per_loop=steps_per_loop, save_checkpoints_steps=10 ** 9,
                               save_summary_steps=10 ** 9, log_step_count_steps=None)
    with tempfile.TemporaryDirectory() as model_dir:
        est = trainer.Estimator(model_fn, model_dir=model_dir, config=config,
                                params={"learning_rate": 0.05})
        started = time.perf_counter()
        est.train(lambda: dataset(x, y, batch_size), steps=steps)
        return steps * batch_size / (time.perf_counter() - started)


def time_keras(x, y, steps, batch_size):
    inputs = tf.keras.Input((FEATURES,))
    net = inputs
    for units in HIDDEN:
        net = tf.keras.layers.Dense(units, activation="relu")(net)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(1)(net))
    model.compile(optimizer=tf.keras.optimizers.Adagrad(0.05),
                  loss=tf.keras.losses.BinaryCrossentropy(from_logits=True))
    started = time.perf_counter()
    model.fit(dataset(x, y, batch_size), steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * batch_size / (time.perf_counter() - started)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch_size", type=int, default=256)
    args = parser.parse_args(argv)
    x, y = make_data()
    # Warm up TensorFlow's kernels and the input pipeline once for both.
    time_keras(x, y, 50, args.batch_size)
    time_estimator(x, y, 50, args.batch_size, 1)
    keras = time_keras(x, y, args.steps, args.batch_size)
    estimator = time_estimator(x, y, args.steps, args.batch_size, 1)
    looped = time_estimator(x, y, args.steps, args.batch_size, 50)
    print(json.dumps({
        "benchmark": "train_throughput",
        "model": f"DNN {HIDDEN}, {FEATURES} features, Adagrad",
        "steps": args.steps, "batch_size": args.batch_size,
        "keras_fit_examples_per_sec": round(keras),
        "estimator_examples_per_sec": round(estimator),
        "estimator_steps_per_loop_50_examples_per_sec": round(looped),
        "ratio_estimator_vs_keras": round(estimator / keras, 3),
        "ratio_estimator_steps_per_loop_50_vs_keras": round(looped / keras, 3),
        "tensorflow": tf.__version__, "cpus": os.cpu_count(), "machine": platform.machine(),
    }))


if __name__ == "__main__":
    main()
