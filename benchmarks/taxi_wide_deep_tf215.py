"""The AUC reference for taxi_wide_deep.py: the real tf.estimator 2.15 on the same prepared data.

tf.estimator cannot be installed next to TensorFlow 2.21, so this runs in its own
environment (it imports only `taxi_data.py`, never the project):

    python3.11 -m venv /tmp/tf215
    /tmp/tf215/bin/pip install "tensorflow-cpu==2.15.*" "tensorflow-estimator==2.15.*" pandas scikit-learn
    /tmp/tf215/bin/python benchmarks/taxi_wide_deep_tf215.py --seeds 1,2,3 [--steps 1500,3000,6000]
    .venv/bin/python benchmarks/taxi_wide_deep.py --seeds 1,2,3 --auc_only [--steps 6000]

Same columns, hidden units, batch and tf.estimator's default optimizers as
`taxi_wide_deep.py`. Prints one JSON line: the eval AUC (scikit-learn, exact)
after each step count, per seed, and the mean over seeds.
``--save_initial DIR`` also keeps the seed's step-0 checkpoint: started from it
(``taxi_wide_deep.py --init_from DIR/model.ckpt-0``), the project's estimator
follows tf.estimator's training step for step (same AUC to 4 digits).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from taxi_data import DENSE_KEYS, input_fn, prepare  # noqa: E402


def run(seed: int, steps: list[int], save_initial: str | None) -> dict[int, float]:
    train, evaluation, sizes = prepare()
    fc = tf.feature_column
    ids = [fc.categorical_column_with_identity(k, n) for k, n in sizes.items()]
    deep = [fc.numeric_column(k) for k in DENSE_KEYS] + [fc.embedding_column(c, 8) for c in ids]
    model_dir = save_initial or tempfile.mkdtemp()
    config = tf.estimator.RunConfig(tf_random_seed=seed, save_checkpoints_steps=10 ** 9, keep_checkpoint_max=None,
                                    log_step_count_steps=None)
    estimator = tf.estimator.DNNLinearCombinedClassifier(
        model_dir=model_dir, linear_feature_columns=ids, dnn_feature_columns=deep,
        dnn_hidden_units=[100, 70, 50, 25], config=config)
    done, auc = 0, {}
    for target in steps:
        estimator.train(input_fn(train, 256, True), steps=target - done)
        done = target
        scores = np.array([p["logistic"][0] for p in estimator.predict(input_fn(evaluation[0], 1024, False))])
        auc[target] = round(float(roc_auc_score(evaluation[1], scores)), 4)
    return auc


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", default="6000", help="comma-separated step counts to evaluate at")
    parser.add_argument("--seeds", default="1", help="comma-separated tf_random_seed values")
    parser.add_argument("--save_initial", help="model_dir to keep (its model.ckpt-0 is the initial weights)")
    args = parser.parse_args(argv)
    steps = sorted(int(s) for s in args.steps.split(","))
    seeds = [int(s) for s in args.seeds.split(",")]
    per_seed = {seed: run(seed, steps, args.save_initial if len(seeds) == 1 else None) for seed in seeds}
    mean = {s: round(float(np.mean([per_seed[seed][s] for seed in seeds])), 4) for s in steps}
    print(json.dumps({"benchmark": "taxi_wide_deep_tf215", "tensorflow": tf.__version__,
                      "auc_by_seed": per_seed, "auc_mean": mean}))


if __name__ == "__main__":
    main()
