"""Models and data shared by the distributed-training checks (no device set-up here).

The taxi wide & deep: the first rows of the bundled CSV, a few wide (identity, vocabulary,
crossed) and deep (numeric, embedding, indicator) columns, and a global batch of 64.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

import trainer
from trainer import feature_column as fc

GLOBAL_BATCH = 64


TAXI_CSV = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "data", "taxi", "data.csv")


def taxi_data():
    import pandas as pd

    frame = pd.read_csv(TAXI_CSV).head(GLOBAL_BATCH * 4)
    features = {
        "trip_miles": frame["trip_miles"].fillna(0).astype(np.float32).to_numpy()[:, None],
        "fare": frame["fare"].fillna(0).astype(np.float32).to_numpy()[:, None],
        "trip_start_hour": frame["trip_start_hour"].fillna(0).astype(np.int64).to_numpy()[:, None],
        "payment_type": frame["payment_type"].fillna("").astype(str).to_numpy()[:, None],
        "company": frame["company"].fillna("").astype(str).to_numpy()[:, None],
    }
    labels = (frame["tips"].fillna(0) > 0.2 * frame["fare"].fillna(0)).astype(np.int64).to_numpy()
    return features, labels


def taxi_columns():
    hour = fc.categorical_column_with_identity("trip_start_hour", 24, default_value=0)
    payment = fc.categorical_column_with_vocabulary_list(
        "payment_type", ["Cash", "Credit Card", "No Charge", "Dispute", "Unknown"])
    company = fc.categorical_column_with_hash_bucket("company", 50)
    wide = [hour, payment, fc.crossed_column([hour, payment], 100)]
    deep = [fc.numeric_column("trip_miles"), fc.numeric_column("fare"),
            fc.embedding_column(company, 4), fc.indicator_column(payment)]
    return wide, deep


def taxi_input_fn(features, labels, repeat=True):
    def input_fn():
        ds = tf.data.Dataset.from_tensor_slices((features, labels)).batch(GLOBAL_BATCH, drop_remainder=True)
        return ds.repeat() if repeat else ds
    return input_fn


def wide_deep(model_dir, strategy, *, steps, eval_distribute=None):
    """Taxi wide & deep, seeded, checkpointing every ``steps``."""
    wide, deep = taxi_columns()
    config = trainer.RunConfig(model_dir=model_dir, tf_random_seed=7, train_distribute=strategy,
                               eval_distribute=eval_distribute, save_checkpoints_steps=steps,
                               log_step_count_steps=None)
    return trainer.DNNLinearCombinedClassifier(
        linear_feature_columns=wide, dnn_feature_columns=deep, dnn_hidden_units=[8, 4],
        linear_optimizer=trainer.optimizers.Ftrl(0.05), dnn_optimizer=trainer.optimizers.Adagrad(0.05),
        config=config)
