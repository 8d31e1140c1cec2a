"""Taxi wide & deep: trainer.DNNLinearCombinedClassifier next to the same network in Keras.

Data: the bundled Chicago taxi CSV, prepared by `taxi_data.py` (label
``tips > 0.2 * fare``, a fixed 2:1 train/eval split, features as the pipeline's
Transform would hand them to the trainer).

* wide part: every id column (linear weights, FTRL);
* deep part: the z-scored numerics plus an 8-dim embedding of every id column,
  hidden units [100, 70, 50, 25] (Adagrad);
* tf.estimator's defaults (Adagrad 0.001, FTRL 0.005), batch 256, 6000 steps.

`taxi_wide_deep_tf215.py` trains the same model with the real tf.estimator 2.15
(in a separate environment) on the same prepared data, for the AUC reference.

The Keras model is the same network (per-column 1-dim embeddings summed for
the wide part) trained with `model.fit` and one Adagrad optimizer. Prints one
JSON line: train examples/s for both (steady state after 100 steps, and end to
end including tracing and checkpoints) and their ratio, eval AUC (the head's
200-threshold streaming metric, as tf.estimator reported it, and the exact
value from scikit-learn) and accuracy.

    python benchmarks/taxi_wide_deep.py [--steps 6000] [--seeds 1,2,3] [--auc_only] [--init_from CKPT]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

import trainer  # noqa: E402
from trainer import feature_column as fc  # noqa: E402

from taxi_data import DENSE_KEYS, input_fn, prepare  # noqa: E402

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


def run_estimator(train, evaluation, sizes, steps, batch_size, steps_per_loop, seed=1, init_from=None):
    wide, deep = estimator_columns(sizes)
    config = trainer.RunConfig(steps_per_loop=steps_per_loop, save_checkpoints_steps=10 ** 9,
                               log_step_count_steps=None, save_summary_steps=1000,
                               tf_random_seed=seed)
    with tempfile.TemporaryDirectory() as model_dir:
        est = trainer.DNNLinearCombinedClassifier(
            model_dir=model_dir, linear_feature_columns=wide, dnn_feature_columns=deep,
            dnn_hidden_units=[100, 70, 50, 25], config=config, warm_start_from=init_from)
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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--seeds", default="1", help="comma-separated tf_random_seed values (AUC mean over them)")
    parser.add_argument("--auc_only", action="store_true", help="skip the Keras peer (AUC over seeds only)")
    parser.add_argument("--init_from", help="start from this checkpoint (e.g. tf.estimator 2.15's model.ckpt-0)")
    args = parser.parse_args(argv)
    tf.keras.utils.set_random_seed(1)
    train, evaluation, sizes = prepare()
    seeds = [int(s) for s in args.seeds.split(",")]
    runs = [run_estimator(train, evaluation, sizes, args.steps, args.batch_size, 1, seed, args.init_from)
            for seed in seeds]
    est = runs[0]
    result = {
        "benchmark": "taxi_wide_deep", "steps": args.steps, "batch_size": args.batch_size,
        "train_rows": int(len(train[1])), "eval_rows": int(len(evaluation[1])),
        "estimator_auc": round(est["auc_metric"], 4), "estimator_auc_exact": round(est["auc_exact"], 4),
        "estimator_accuracy": round(est["accuracy"], 4),
        "estimator_auc_exact_by_seed": {seed: round(r["auc_exact"], 4) for seed, r in zip(seeds, runs)},
        "estimator_auc_exact_mean": round(float(np.mean([r["auc_exact"] for r in runs])), 4),
        "targets": {"auc": 0.94, "throughput_ratio": 1.2},
    }
    if not args.auc_only:
        keras = run_keras(train, evaluation, sizes, args.steps, args.batch_size)
        result.update({
            "estimator_examples_per_sec": round(est["steady"]),
            "estimator_examples_per_sec_end_to_end": round(est["end_to_end"]),
            "keras_fit_examples_per_sec": round(keras["steady"]),
            "keras_fit_examples_per_sec_end_to_end": round(keras["end_to_end"]),
            "keras_auc_exact": round(keras["auc_exact"], 4), "keras_accuracy": round(keras["accuracy"], 4),
            "ratio_estimator_vs_keras": round(est["steady"] / keras["steady"], 3),
            "ratio_estimator_vs_keras_end_to_end": round(est["end_to_end"] / keras["end_to_end"], 3),
        })
    print(json.dumps(result))


if __name__ == "__main__":
    main()
