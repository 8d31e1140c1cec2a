"""Taxi wide & deep: trainer.DNNLinearCombinedClassifier next to the same network in Keras.

Data: the bundled Chicago taxi CSV (data/taxi/data.csv), label
``tips > 0.2 * fare``, a fixed 2:1 train/eval split. Features are prepared as
the pipeline's Transform step would hand them to the trainer: z-scored
numerics, 10 quantile buckets of the coordinates, vocabulary ids of the
strings, and the categorical ids (hour, day, month, census tracts, community
areas) as in the TFX taxi example.

* wide part: every id column (linear weights, FTRL);
* deep part: the z-scored numerics plus an 8-dim embedding of every id column,
  hidden units [100, 70, 50, 25] (Adagrad);
* batch 256, 6000 steps.

The Keras model is the same network (per-column 1-dim embeddings summed for
the wide part) trained with `model.fit` and one Adagrad optimizer. Prints one
JSON line: train examples/s for both (steady state after 100 steps, and end to
end including tracing and checkpoints) and their ratio, eval AUC (the head's
200-threshold streaming metric, as tf.estimator reported it, and the exact
value from scikit-learn) and accuracy.

    python benchmarks/taxi_wide_deep.py [--steps 6000]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

import trainer  # noqa: E402
from trainer import feature_column as fc  # noqa: E402

DATA = pathlib.Path(__file__).resolve().parents[1] / "data" / "taxi" / "data.csv"
DENSE_KEYS = ["trip_miles", "fare", "trip_seconds"]
BUCKET_KEYS = ["pickup_latitude", "pickup_longitude", "dropoff_latitude", "dropoff_longitude"]
CATEGORICAL = {"trip_start_hour": 24, "trip_start_day": 31, "trip_start_month": 12,
               "pickup_census_tract": 2000, "dropoff_census_tract": 2000,
               "pickup_community_area": 80, "dropoff_community_area": 80}
VOCAB_KEYS = ["payment_type", "company"]
NUM_BUCKETS = 10
OOV = 10


def prepare(path=DATA, seed=0):
    """Returns (train, eval) dicts of transformed columns and the id-column sizes."""
    frame = pd.read_csv(path)
    label = (frame["tips"] > 0.2 * frame["fare"]).astype(np.int64).to_numpy()
    is_eval = np.random.default_rng(seed).random(len(frame)) < 1 / 3
    train_rows = ~is_eval
    columns, sizes = {}, {}
    for key in DENSE_KEYS:
        values = frame[key].fillna(0).astype(np.float64).to_numpy()
        mean, std = values[train_rows].mean(), values[train_rows].std() or 1.0
        columns[key] = ((values - mean) / std).astype(np.float32)
    for key in BUCKET_KEYS:
        values = frame[key].fillna(0).astype(np.float64).to_numpy()
        bounds = np.unique(np.quantile(values[train_rows], np.linspace(0, 1, NUM_BUCKETS + 1)[1:-1]))
        columns[key] = np.searchsorted(bounds, values, side="right").astype(np.int64)
        sizes[key] = len(bounds) + 1
    for key, size in CATEGORICAL.items():
        values = frame[key].fillna(0).astype(np.int64).to_numpy()
        columns[key] = np.where((values >= 0) & (values < size), values, 0)
        sizes[key] = size
    for key in VOCAB_KEYS:
        values = frame[key].fillna("").astype(str).to_numpy()
        vocab = pd.Series(values[train_rows]).value_counts().index[:1000].tolist()
        index = {v: i for i, v in enumerate(vocab)}
        columns[key] = np.array([index.get(v, len(vocab) + hash(v) % OOV) for v in values], np.int64)
        sizes[key] = len(vocab) + OOV
    train = ({k: v[train_rows] for k, v in columns.items()}, label[train_rows])
    evaluation = ({k: v[is_eval] for k, v in columns.items()}, label[is_eval])
    return train, evaluation, sizes


def input_fn(data, batch_size, repeat):
    """Shuffled batches gathered from in-memory columns (vectorized, cheap per step)."""
    tensors = tf.nest.map_structure(tf.constant, data)
    rows = len(tf.nest.flatten(data)[0])

    def fn():
        index = tf.data.Dataset.range(rows)
        if repeat:
            index = index.shuffle(rows, seed=1, reshuffle_each_iteration=True).repeat()
        index = index.batch(batch_size)
        gather = lambda i: tf.nest.map_structure(lambda c: tf.gather(c, i), tensors)  # noqa: E731
        return index.map(gather, num_parallel_calls=1).prefetch(tf.data.AUTOTUNE)
    return fn


WARMUP_STEPS = 100


class StepTimer(trainer.SessionRunHook):
    """Wall time of the steps after the first WARMUP_STEPS (steady state)."""

    def __init__(self):
        self.first_step = self.first_time = self.last_step = self.last_time = None

    def before_run(self, run_context):
        return trainer.SessionRunArgs("global_step")

    def after_run(self, run_context, run_values):
        step = int(run_values.results)
        if self.first_time is None and step >= WARMUP_STEPS:
            self.first_step, self.first_time = step, time.perf_counter()
        self.last_step, self.last_time = step, time.perf_counter()

    def steps_per_sec(self):
        return (self.last_step - self.first_step) / (self.last_time - self.first_time)


class KerasStepTimer(tf.keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.start = self.end = None
        self.count = 0

    def on_train_batch_end(self, batch, logs=None):
        self.count += 1
        if self.count == WARMUP_STEPS:
            self.start = time.perf_counter()
        self.end = time.perf_counter()

    def steps_per_sec(self):
        return (self.count - WARMUP_STEPS) / (self.end - self.start)


def estimator_columns(sizes):
    ids = [fc.categorical_column_with_identity(k, n) for k, n in sizes.items()]
    wide = ids
    deep = [fc.numeric_column(k) for k in DENSE_KEYS] + [fc.embedding_column(c, 8) for c in ids]
    return wide, deep


def run_estimator(train, evaluation, sizes, steps, batch_size, steps_per_loop):
    wide, deep = estimator_columns(sizes)
    config = trainer.RunConfig(steps_per_loop=steps_per_loop, save_checkpoints_steps=10 ** 9,
                               log_step_count_steps=None, save_summary_steps=1000,
                               tf_random_seed=1)
    with tempfile.TemporaryDirectory() as model_dir:
        est = trainer.DNNLinearCombinedClassifier(
            model_dir=model_dir, linear_feature_columns=wide, dnn_feature_columns=deep,
            dnn_hidden_units=[100, 70, 50, 25], config=config)
        timer = StepTimer()
        started = time.perf_counter()
        est.train(input_fn(train, batch_size, True), steps=steps, hooks=[timer])
        elapsed = time.perf_counter() - started
        metrics = est.evaluate(input_fn(evaluation, 1024, False))
        scores = np.array([p["logistic"][0] for p in est.predict(input_fn(evaluation[0], 1024, False))])
    return {"steady": timer.steps_per_sec() * batch_size, "end_to_end": steps * batch_size / elapsed,
            "auc_metric": float(metrics["auc"]), "auc_exact": float(roc_auc_score(evaluation[1], scores)),
            "accuracy": float(metrics["accuracy"])}


def run_keras(train, evaluation, sizes, steps, batch_size):
    keras = tf.keras
    inputs = {k: keras.Input((), name=k, dtype="float32") for k in DENSE_KEYS}
    inputs.update({k: keras.Input((), name=k, dtype="int64") for k in sizes})
    wide = [keras.layers.Flatten()(keras.layers.Embedding(n, 1)(inputs[k])) for k, n in sizes.items()]
    deep = [keras.layers.Reshape((1,))(inputs[k]) for k in DENSE_KEYS]
    deep += [keras.layers.Flatten()(keras.layers.Embedding(n, 8)(inputs[k])) for k, n in sizes.items()]
    net = keras.layers.Concatenate()(deep)
    for units in [100, 70, 50, 25]:
        net = keras.layers.Dense(units, activation="relu")(net)
    logits = keras.layers.Add()([keras.layers.Dense(1)(net), keras.layers.Add()(wide)])
    model = keras.Model(inputs, logits)
    model.compile(optimizer=keras.optimizers.Adagrad(0.05),
                  loss=keras.losses.BinaryCrossentropy(from_logits=True))
    timer = KerasStepTimer()
    started = time.perf_counter()
    model.fit(input_fn(train, batch_size, True)(), steps_per_epoch=steps, epochs=1, verbose=0,
              callbacks=[timer])
    elapsed = time.perf_counter() - started
    scores = model.predict(input_fn(evaluation[0], 1024, False)(), verbose=0).reshape(-1)
    labels = evaluation[1]
    return {"steady": timer.steps_per_sec() * batch_size, "end_to_end": steps * batch_size / elapsed,
            "auc_exact": float(roc_auc_score(labels, scores)),
            "accuracy": float(np.mean((scores > 0) == labels))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--batch_size", type=int, default=256)
    args = parser.parse_args(argv)
    tf.keras.utils.set_random_seed(1)
    train, evaluation, sizes = prepare()
    keras = run_keras(train, evaluation, sizes, args.steps, args.batch_size)
    est = run_estimator(train, evaluation, sizes, args.steps, args.batch_size, 1)
    print(json.dumps({
        "benchmark": "taxi_wide_deep", "steps": args.steps, "batch_size": args.batch_size,
        "train_rows": int(len(train[1])), "eval_rows": int(len(evaluation[1])),
        "estimator_examples_per_sec": round(est["steady"]),
        "estimator_examples_per_sec_end_to_end": round(est["end_to_end"]),
        "estimator_auc": round(est["auc_metric"], 4), "estimator_auc_exact": round(est["auc_exact"], 4),
        "estimator_accuracy": round(est["accuracy"], 4),
        "keras_fit_examples_per_sec": round(keras["steady"]),
        "keras_fit_examples_per_sec_end_to_end": round(keras["end_to_end"]),
        "keras_auc_exact": round(keras["auc_exact"], 4), "keras_accuracy": round(keras["accuracy"], 4),
        "ratio_estimator_vs_keras": round(est["steady"] / keras["steady"], 3),
        "ratio_estimator_vs_keras_end_to_end": round(est["end_to_end"] / keras["end_to_end"], 3),
        "targets": {"auc": 0.94, "throughput_ratio": 1.2},
    }))


if __name__ == "__main__":
    main()
