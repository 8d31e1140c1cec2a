"""Input functions from in-memory data, in the spirit of TF.Learn's data feeders.

`numpy_input_fn` and `pandas_input_fn` keep tf.estimator's signatures and
return input functions that build a `tf.data.Dataset`.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

__all__ = ["numpy_input_fn", "pandas_input_fn"]


def _check_common(caller, batch_size, num_epochs, shuffle):
    if not isinstance(shuffle, bool):
        raise ValueError(
            f"{caller} got shuffle={shuffle!r}; it must be given explicitly as True or False "
            "(True for training, False for evaluation and prediction)."
        )
    if not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ValueError(f"{caller} got batch_size={batch_size!r}; expected an int > 0.")
    if num_epochs is not None and (not isinstance(num_epochs, (int, np.integer)) or num_epochs <= 0):
        raise ValueError(f"{caller} got num_epochs={num_epochs!r}; expected an int > 0 or None.")


def _to_array(value):
    array = np.asarray(value)
    if array.dtype == object:
        array = array.astype(str)
    return array


def _dataset(features, labels, batch_size, num_epochs, shuffle, queue_capacity, seed=None):
    structure = features if labels is None else (features, labels)
    dataset = tf.data.Dataset.from_tensor_slices(structure)
    if shuffle:
        dataset = dataset.shuffle(max(int(queue_capacity), 1), seed=seed,
                                  reshuffle_each_iteration=True)
    dataset = dataset.repeat(num_epochs)
    return dataset.batch(int(batch_size)).prefetch(tf.data.AUTOTUNE)


def numpy_input_fn(x, y=None, batch_size=128, num_epochs=1, shuffle=None, queue_capacity=1000,
                   num_threads=1):
    """Returns an input_fn feeding dicts of numpy arrays.

    Args:
        x: a dict of feature name -> array (or a single array, fed as is).
        y: labels: an array or a dict of arrays, or None.
        batch_size: examples per batch (the last batch may be smaller).
        num_epochs: passes over the data; None repeats forever.
        shuffle: required; whether to shuffle (within ``queue_capacity``).
        queue_capacity: the shuffle buffer size.
        num_threads: accepted for compatibility (tf.data parallelizes itself).

    Example:
        >>> fn = numpy_input_fn({"x": np.arange(4.0)}, np.arange(4.0), batch_size=2, shuffle=False)
        >>> features, labels = next(iter(fn()))
        >>> features["x"].numpy().tolist()
        [0.0, 1.0]
    """
    del num_threads
    _check_common("numpy_input_fn", batch_size, num_epochs, shuffle)
    if isinstance(x, dict):
        features = {k: _to_array(v) for k, v in x.items()}
        if not features:
            raise ValueError("numpy_input_fn got x={}; expected at least one feature.")
    else:
        features = _to_array(x)
    labels = None if y is None else (
        {k: _to_array(v) for k, v in y.items()} if isinstance(y, dict) else _to_array(y))
    if isinstance(features, dict) and isinstance(labels, dict):
        overlap = sorted(set(features) & set(labels))
        if overlap:
            raise ValueError(f"numpy_input_fn: keys {overlap} are in both x and y; rename one.")
    lengths = {f"x[{k!r}]": len(v) for k, v in features.items()} if isinstance(features, dict) \
        else {"x": len(features)}
    if labels is not None:
        lengths.update({f"y[{k!r}]": len(v) for k, v in labels.items()} if isinstance(labels, dict)
                       else {"y": len(labels)})
    if len(set(lengths.values())) != 1:
        raise ValueError(
            f"numpy_input_fn got arrays of different lengths {lengths}; every array needs one "
            "row per example."
        )

    def input_fn():
        return _dataset(features, labels, batch_size, num_epochs, shuffle, queue_capacity)

    return input_fn


def pandas_input_fn(x, y=None, batch_size=128, num_epochs=1, shuffle=None, queue_capacity=1000,
                    num_threads=1, target_column="target"):
    """Returns an input_fn feeding a pandas DataFrame (and a Series of labels).

    Args:
        x: a `pandas.DataFrame`; each column becomes a feature.
        y: a `pandas.Series` or `DataFrame` of labels with the same index, or None.
        target_column: the name labels would take; it must not be a column of x.

    Example:
        >>> import pandas as pd
        >>> fn = pandas_input_fn(pd.DataFrame({"a": [1, 2]}), pd.Series([0, 1]), shuffle=False)
        >>> sorted(next(iter(fn()))[0])
        ['a']
    """
    del num_threads
    import pandas as pd

    _check_common("pandas_input_fn", batch_size, num_epochs, shuffle)
    if not isinstance(x, pd.DataFrame):
        raise TypeError(f"pandas_input_fn got x of type {type(x).__name__}; expected a DataFrame.")
    if y is not None:
        if target_column in x.columns:
            raise ValueError(
                f"pandas_input_fn: target_column={target_column!r} is also a column of x; "
                "pass another target_column."
            )
        if not x.index.equals(y.index):
            raise ValueError(
                "pandas_input_fn: the indexes of x and y differ; align them, e.g. "
                "y = y.reindex(x.index)."
            )
    features = {str(c): _to_array(x[c].values) for c in x.columns}
    labels = None
    if y is not None:
        labels = ({str(c): _to_array(y[c].values) for c in y.columns}
                  if isinstance(y, pd.DataFrame) else _to_array(y.values))

    def input_fn():
        return _dataset(features, labels, batch_size, num_epochs, shuffle, queue_capacity)

    return input_fn
