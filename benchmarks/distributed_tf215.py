"""The tf.estimator 2.15 peer of `distributed.py`'s single-process figures (one JSON line on stdout).

tf.estimator cannot be installed next to TensorFlow 2.21, so this runs in its own
environment and imports only `taxi_data.py`, never the project:

    python3.11 -m venv /tmp/tf215
    /tmp/tf215/bin/pip install "tensorflow-cpu==2.15.*" "tensorflow-estimator==2.15.*" pandas scikit-learn
    python benchmarks/distributed.py --tf215 /tmp/tf215/bin/python

It times what `distributed_child.py single` times, the same way: the taxi wide &
deep (same columns, hidden units, batch 256) and the iris DNN (hidden 10-20-10,
batch 32) with tf.estimator's default RunConfig (its standard hooks, one
session.run per step), steady state after the first 100 steps, by a hook that
fetches nothing, plus the whole ``train`` call.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
WARMUP_STEPS = 100

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from taxi_data import DENSE_KEYS, input_fn, prepare  # noqa: E402


class CallTimer(tf.estimator.SessionRunHook):
    """A timestamp after every session.run (one step each under tf.estimator)."""

    def __init__(self):
        self.stamps = []

    def after_run(self, run_context, run_values):
        self.stamps.append(time.perf_counter())


def time_train(est, fn, steps, batch_size):
    hook = CallTimer()
    started = time.perf_counter()
    est.train(fn, steps=steps, hooks=[hook])
    elapsed = time.perf_counter() - started
    stamps = hook.stamps[WARMUP_STEPS - 1:]
    per_sec = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    return {"examples_per_sec": per_sec * batch_size, "ms_per_step": 1000 / per_sec,
            "examples_per_sec_end_to_end": steps * batch_size / elapsed, "train_call_s": elapsed}


def iris_input_fn(batch_size):
    from sklearn.datasets import load_iris
    iris = load_iris()
    features = {f"x{i}": iris.data[:, i].astype(np.float32) for i in range(4)}
    labels = iris.target.astype(np.int64)

    def fn():
        ds = tf.data.Dataset.from_tensor_slices((features, labels))
        return ds.shuffle(150, seed=1, reshuffle_each_iteration=True).repeat().batch(batch_size)
    return fn


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--iris_steps", type=int, default=2000)
    parser.add_argument("--batch_size", type=int, default=256)
    args = parser.parse_args(argv)
    tf.keras.utils.set_random_seed(1)
    train, _, sizes = prepare()
    fc = tf.feature_column
    ids = [fc.categorical_column_with_identity(k, n) for k, n in sizes.items()]
    deep = [fc.numeric_column(k) for k in DENSE_KEYS] + [fc.embedding_column(c, 8) for c in ids]
    config = tf.estimator.RunConfig(tf_random_seed=1)  # defaults: the standard hooks
    result = {"tensorflow": tf.__version__}
    with tempfile.TemporaryDirectory() as root:
        est = tf.estimator.DNNLinearCombinedClassifier(
            model_dir=os.path.join(root, "taxi"), linear_feature_columns=ids, dnn_feature_columns=deep,
            dnn_hidden_units=[100, 70, 50, 25], config=config)
        result["taxi"] = time_train(est, input_fn(train, args.batch_size, True), args.steps, args.batch_size)
        print(f"[tf215] taxi: {result['taxi']}", file=sys.stderr, flush=True)
        iris = tf.estimator.DNNClassifier(
            hidden_units=[10, 20, 10], feature_columns=[fc.numeric_column(f"x{i}") for i in range(4)],
            n_classes=3, model_dir=os.path.join(root, "iris"), config=config)
        result["iris"] = time_train(iris, iris_input_fn(32), args.iris_steps, 32)
        print(f"[tf215] iris: {result['iris']}", file=sys.stderr, flush=True)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
