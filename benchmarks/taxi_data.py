"""The taxi data as the wide & deep benchmarks feed it (shared by the trainer/Keras run and the
tf.estimator 2.15 reference run, so both see the same ids).

Label ``tips > 0.2 * fare``, a fixed 2:1 train/eval split. Features are prepared as
the pipeline's Transform step would hand them to the trainer: z-scored numerics,
10 quantile buckets of the coordinates, vocabulary ids of the strings, and the
categorical ids (hour, day, month, census tracts, community areas) as in the TFX
taxi example. Needs only numpy, pandas and TensorFlow (any 2.x).
"""

from __future__ import annotations

import pathlib
import zlib

import numpy as np
import pandas as pd
import tensorflow as tf

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
        # Most frequent first, ties by value; OOV values hashed with a stable hash (Python's
        # hash() changes per process), so every run and every peer sees the same ids.
        counts = pd.Series(values[train_rows]).value_counts()
        vocab = sorted(counts.index, key=lambda v: (-counts[v], v))[:1000]
        index = {v: i for i, v in enumerate(vocab)}
        columns[key] = np.array([index.get(v, len(vocab) + zlib.crc32(v.encode()) % OOV) for v in values],
                                np.int64)
        sizes[key] = len(vocab) + OOV
    train = ({k: v[train_rows] for k, v in columns.items()}, label[train_rows])
    evaluation = ({k: v[is_eval] for k, v in columns.items()}, label[is_eval])
    return train, evaluation, sizes


def input_fn(data, batch_size, repeat):
    """Shuffled batches gathered from in-memory columns (vectorized, cheap per step)."""
    rows = len(tf.nest.flatten(data)[0])

    def fn():  # constants made inside, so graph-mode callers (tf.estimator 2.15) can use it too
        tensors = tf.nest.map_structure(tf.constant, data)
        index = tf.data.Dataset.range(rows)
        if repeat:
            index = index.shuffle(rows, seed=1, reshuffle_each_iteration=True).repeat()
        index = index.batch(batch_size)
        gather = lambda i: tf.nest.map_structure(lambda c: tf.gather(c, i), tensors)  # noqa: E731
        return index.map(gather, num_parallel_calls=1).prefetch(tf.data.AUTOTUNE)
    return fn
