"""In-memory data (numpy arrays, DataFrames, dicts) for TF.Learn's ``x``/``y`` arguments.

TF.Learn fed ``x`` and ``y`` through its "data feeders"; here they become a
`trainer.numpy_input_fn`: shuffled and repeated for ``fit``, one pass in order
for ``evaluate`` and ``predict``. This module does not need scikit-learn.
"""

from __future__ import annotations

import numpy as np

from trainer import feature_column as fc
from trainer.inputs import numpy_input_fn

__all__ = ["ARRAY_FEATURE_KEY", "DEFAULT_BATCH_SIZE", "infer_real_valued_columns_from_input"]

# The feature key a plain array x is fed under when the model needs a dict (canned
# estimators, feature columns). TF.Learn used ""; a key must be non-empty here.
ARRAY_FEATURE_KEY = "x"
DEFAULT_BATCH_SIZE = 32  # TF.Learn's default batch size for x/y


def is_dataframe(x) -> bool:
    return type(x).__name__ == "DataFrame" and hasattr(x, "columns")


def is_numeric(array) -> bool:
    return np.asarray(array).dtype.kind in "biuf"


def infer_real_valued_columns_from_input(x):
    """Returns real-valued feature columns describing ``x`` (TF.Learn's function).

    A DataFrame gets one ``numeric_column`` per column (named ``str(column)``);
    a dict of arrays one per key, shaped like a row; an array one column
    ``numeric_column("x", shape=[n_features])``.

    Example:
        >>> [c.shape for c in infer_real_valued_columns_from_input(np.zeros((5, 4)))]
        [(4,)]
    """
    if is_dataframe(x):
        bad = [str(c) for c in x.columns if not is_numeric(x[c].values)]
        if bad:
            raise ValueError(
                f"infer_real_valued_columns_from_input got DataFrame columns {bad} that are not "
                "numeric. How to fix: encode them as numbers, or pass feature_columns= with "
                "categorical columns for them."
            )
        return [fc.numeric_column(str(c)) for c in x.columns]
    if isinstance(x, dict):
        if not x:
            raise ValueError("infer_real_valued_columns_from_input got x={}; expected features.")
        return [fc.numeric_column(str(k), shape=_row_shape(np.asarray(v), k)) for k, v in x.items()]
    array = np.asarray(x)
    if not is_numeric(array):
        raise ValueError(
            f"infer_real_valued_columns_from_input got an array of dtype {array.dtype}; expected "
            "numbers. How to fix: encode the values as numbers first."
        )
    return [fc.numeric_column(ARRAY_FEATURE_KEY, shape=_row_shape(array, "x"))]


def _row_shape(array, name):
    if array.ndim == 0:
        raise ValueError(f"infer_real_valued_columns_from_input got a scalar for {name!r}; "
                         "expected one row per example.")
    shape = array.shape[1:] or (1,)
    if 0 in shape:
        raise ValueError(f"infer_real_valued_columns_from_input got {name!r} with shape "
                         f"{array.shape}; expected at least one feature.")
    return tuple(int(d) for d in shape)


def _as_array(value, name, caller):
    if hasattr(value, "values") and not isinstance(value, np.ndarray):  # a pandas Series
        value = value.values
    array = np.asarray(value)
    if array.ndim == 0:
        raise ValueError(f"{caller} got {name} that is a scalar; expected one row per example.")
    if array.dtype.kind == "O":
        array = array.astype(str)
    elif array.dtype == np.float64:
        array = array.astype(np.float32)  # TF.Learn fed float64 data as float32
    return array


def features_from_x(x, caller, *, as_dict):
    """``x`` as what the input_fn yields: a dict of arrays, or the array itself.

    ``as_dict``: wrap a plain array as ``{"x": array}`` (for feature columns).
    """
    if is_dataframe(x):
        if len(x.columns) == 0:
            raise ValueError(f"{caller} got x=DataFrame without columns; expected features.")
        return {str(c): _as_array(x[c].values, f"x[{c!r}]", caller) for c in x.columns}
    if isinstance(x, dict):
        if not x:
            raise ValueError(f"{caller} got x={{}}; expected at least one feature.")
        return {str(k): _as_array(v, f"x[{k!r}]", caller) for k, v in x.items()}
    array = _as_array(x, "x", caller)
    return {ARRAY_FEATURE_KEY: array} if as_dict else array


def labels_from_y(y, caller):
    if isinstance(y, dict):
        return {str(k): _as_array(v, f"y[{k!r}]", caller) for k, v in y.items()}
    if is_dataframe(y):
        if len(y.columns) == 1:
            return _as_array(y[y.columns[0]].values, "y", caller)
        return _as_array(y.values, "y", caller)
    return _as_array(y, "y", caller)


def num_rows(structure):
    if isinstance(structure, dict):
        return {k: len(v) for k, v in structure.items()}
    return len(structure)


def check_lengths(features, labels, caller):
    """One row per example everywhere; otherwise a one-line error naming the arguments."""
    rows = num_rows(features)
    lengths = ({f"x[{k!r}]": n for k, n in rows.items()} if isinstance(rows, dict) else {"x": rows})
    if labels is not None:
        label_rows = num_rows(labels)
        lengths.update({f"y[{k!r}]": n for k, n in label_rows.items()}
                       if isinstance(label_rows, dict) else {"y": label_rows})
    if len(set(lengths.values())) > 1:
        if set(lengths) == {"x", "y"}:
            raise ValueError(
                f"{caller} got x with {lengths['x']} rows and y with {lengths['y']}; expected one "
                "label per row of x.")
        raise ValueError(f"{caller} got arrays of different lengths {lengths}; expected one row "
                         "per example in every array of x and y.")
    n = next(iter(lengths.values()))
    if n == 0:
        raise ValueError(f"{caller} got x with no rows; expected at least one example.")
    return n


def check_positive_int(value, name, caller, *, allow_none=True):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{caller} got {name}={value!r}; expected an int > 0"
                         + (" or None." if allow_none else "."))
    return int(value)


def input_fn_from_xy(x, y, input_fn, *, caller, batch_size, training, need_y, as_dict):
    """Resolves TF.Learn's ``x``/``y``/``input_fn`` triple into one input_fn.

    Returns ``(input_fn, labels_array_or_None)``.
    """
    batch_size = check_positive_int(batch_size, "batch_size", caller)
    if input_fn is not None:
        if x is not None or y is not None:
            raise ValueError(f"{caller} got input_fn and x/y; give either input_fn or x (and y).")
        if batch_size is not None:
            raise ValueError(f"{caller} got input_fn and batch_size={batch_size}; batch_size "
                             "applies to x/y only. How to fix: batch inside the input_fn.")
        if not callable(input_fn):
            raise TypeError(f"{caller} got input_fn={input_fn!r}; expected a callable.")
        return input_fn, None
    if x is None:
        raise ValueError(f"{caller} got neither x nor input_fn; give x (and y) or input_fn.")
    if y is None and need_y:
        raise ValueError(f"{caller} got x without y; expected y, one label per row of x.")
    features = features_from_x(x, caller, as_dict=as_dict)
    labels = None if y is None else labels_from_y(y, caller)
    n = check_lengths(features, labels, caller)
    batch_size = batch_size or DEFAULT_BATCH_SIZE
    if training:
        fn = numpy_input_fn(features, labels, batch_size=batch_size, num_epochs=None,
                            shuffle=True, queue_capacity=max(n, 1))
    else:
        fn = numpy_input_fn(features, labels, batch_size=batch_size, num_epochs=1, shuffle=False)
    return fn, labels
