"""Taxi boosted trees: trainer's BoostedTreesClassifier next to scikit-learn's HistGradientBoosting.

Data: the bundled Chicago taxi CSV prepared by `taxi_data.py` (label ``tips > 0.2 * fare``,
the fixed 2:1 train/eval split and the same transformed features as `taxi_wide_deep.py`).

Both models see the same rows and the same binning: every feature is ordinal, cut at up to
``--bins`` quantiles of its training values (HistGradientBoosting bins its inputs the same
way, ``max_bins``); for trainer each feature is a ``bucketized_column`` with those
boundaries. Both grow ``--trees`` trees of depth ``--depth`` with learning rate
``--learning_rate`` on the whole training set per layer (``n_batches_per_layer=1``,
``train_in_memory=True``, as a user of tf.estimator would for data that fits in memory);
HGB gets ``max_depth`` and no early stopping. Prints one JSON line: both eval AUCs
(scikit-learn's exact ROC AUC on the predicted probabilities), both training times and their
ratio (trainer / scikit-learn).

    python benchmarks/boosted_trees.py [--trees 100] [--depth 6] [--learning_rate 0.1] [--bins 64]
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
from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

import trainer  # noqa: E402
from trainer import feature_column as fc  # noqa: E402
from trainer.canned.boosted_trees import BoostedTreesClassifier  # noqa: E402

from taxi_data import prepare  # noqa: E402


def quantile_boundaries(values, bins):
    """Up to ``bins - 1`` distinct cut points at the quantiles of ``values`` (midpoints for ids)."""
    cuts = np.unique(np.quantile(values.astype(np.float64), np.linspace(0, 1, bins + 1)[1:-1]))
    if len(cuts) == 0:
        cuts = np.array([values.min() + 0.5])
    return [float(c) for c in cuts]


def as_float(columns):
    return {k: v.astype(np.float32) for k, v in columns.items()}


def run_trainer(train, evaluation, args):
    features, labels = as_float(train[0]), train[1]
    columns = [fc.bucketized_column(fc.numeric_column(k), quantile_boundaries(v, args.bins))
               for k, v in sorted(features.items())]
    config = trainer.RunConfig(save_checkpoints_steps=10 ** 9, log_step_count_steps=None,
                               save_summary_steps=10 ** 9)
    with tempfile.TemporaryDirectory() as model_dir:
        est = BoostedTreesClassifier(columns, n_batches_per_layer=1, model_dir=model_dir,
                                     n_trees=args.trees, max_depth=args.depth,
                                     learning_rate=args.learning_rate, train_in_memory=True,
                                     config=config)
        started = time.perf_counter()
        est.train(lambda: tf.data.Dataset.from_tensors((features, labels)).repeat(), steps=10 ** 6)
        elapsed = time.perf_counter() - started
        data = as_float(evaluation[0])
        scores = np.array([p["logistic"][0] for p in est.predict(
            lambda: tf.data.Dataset.from_tensor_slices(data).batch(4096))])
        steps = int(est.get_variable_value("global_step"))
    return {"auc": float(roc_auc_score(evaluation[1], scores)), "seconds": elapsed, "steps": steps}


def run_sklearn(train, evaluation, args):
    keys = sorted(train[0])
    x = np.stack([train[0][k] for k in keys], axis=1).astype(np.float64)
    model = HistGradientBoostingClassifier(max_iter=args.trees, max_depth=args.depth,
                                           learning_rate=args.learning_rate,
                                           max_bins=min(args.bins, 255), max_leaf_nodes=None,
                                           early_stopping=False, random_state=0)
    started = time.perf_counter()
    model.fit(x, train[1])
    elapsed = time.perf_counter() - started
    x_eval = np.stack([evaluation[0][k] for k in keys], axis=1).astype(np.float64)
    scores = model.predict_proba(x_eval)[:, 1]
    return {"auc": float(roc_auc_score(evaluation[1], scores)), "seconds": elapsed}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--learning_rate", type=float, default=0.1)
    parser.add_argument("--bins", type=int, default=64)
    args = parser.parse_args(argv)
    train, evaluation, _ = prepare()
    ours = run_trainer(train, evaluation, args)
    peer = run_sklearn(train, evaluation, args)
    print(json.dumps({
        "benchmark": "boosted_trees_taxi", "trees": args.trees, "depth": args.depth,
        "learning_rate": args.learning_rate, "bins": args.bins,
        "train_rows": int(len(train[1])), "eval_rows": int(len(evaluation[1])),
        "estimator_steps": ours["steps"],
        "estimator_auc": round(ours["auc"], 4), "sklearn_hgb_auc": round(peer["auc"], 4),
        "estimator_train_seconds": round(ours["seconds"], 2),
        "sklearn_hgb_train_seconds": round(peer["seconds"], 2),
        "time_ratio_estimator_vs_sklearn": round(ours["seconds"] / peer["seconds"], 2),
        "targets": {"auc": 0.947, "time_ratio": 2.0},
    }))


if __name__ == "__main__":
    main()
