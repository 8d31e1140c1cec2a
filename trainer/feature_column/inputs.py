"""Turning raw feature tensors into the shapes columns work with.

Categorical inputs become a rank-2 `tf.SparseTensor` ``[batch, n]``:

* a dense tensor drops its *missing* cells, ``-1`` for integers and ``''``
  for strings (what tf.feature_column did), and a rank-1 tensor is one value
  per example;
* a `tf.RaggedTensor` keeps its values (absent positions are missing);
* a `tf.SparseTensor` is used as given.

Inputs of rank > 2 are flattened to ``[batch, n]``.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = [
    "assert_ids_in_range",
    "categorical_input",
    "check_dtype",
    "dense_numeric_input",
    "single_id_input",
]


def categorical_input(value, *, key: str, column_fn: str) -> tf.SparseTensor:
    """Returns ``value`` as a rank-2 SparseTensor without missing values."""
    if isinstance(value, tf.RaggedTensor):
        value = value.to_sparse()
    if isinstance(value, tf.SparseTensor):
        return _to_rank2(value, key=key, column_fn=column_fn)
    rank = value.shape.rank
    if rank is None or rank == 0:
        raise ValueError(
            f"{column_fn} {key!r} got a feature of shape {value.shape}; expected a "
            "tensor of rank >= 1 (one row per example). How to fix: pass a [batch] "
            "or [batch, n] tensor."
        )
    if rank == 1:
        value = tf.expand_dims(value, -1)
    missing = tf.constant("" if value.dtype == tf.string else -1, dtype=value.dtype)
    indices = tf.where(tf.not_equal(value, missing))
    sparse = tf.SparseTensor(
        indices=indices,
        values=tf.gather_nd(value, indices),
        dense_shape=tf.shape(value, out_type=tf.int64),
    )
    return _to_rank2(sparse, key=key, column_fn=column_fn)


def single_id_input(value) -> tf.Tensor | None:
    """A dense ``[batch]`` or ``[batch, 1]`` input as ``[batch]``; None for any other input.

    Such an input holds at most one value per example (missing cells are ``-1`` or
    ``''``), so its ids can stay dense: `combine_lookup` then gathers rows directly
    instead of going through a SparseTensor (a handful of kernels instead of ~20).
    """
    if isinstance(value, (tf.SparseTensor, tf.RaggedTensor)) or value.shape.rank not in (1, 2):
        return None
    if value.shape.rank == 2:
        if value.shape[1] != 1:
            return None
        value = tf.squeeze(value, axis=1)
    return value


def _to_rank2(sparse: tf.SparseTensor, *, key: str, column_fn: str) -> tf.SparseTensor:
    rank = sparse.shape.rank
    if rank is None:
        rank = sparse.dense_shape.shape[0]
    if rank is None or rank == 0:
        raise ValueError(
            f"{column_fn} {key!r} got a sparse feature of unknown or zero rank; "
            "expected [batch, n]. How to fix: give the SparseTensor a static rank."
        )
    if rank == 1:
        return tf.sparse.expand_dims(sparse, -1)
    if rank == 2:
        return sparse
    batch = sparse.dense_shape[0]
    return tf.sparse.reshape(tf.sparse.reorder(sparse), tf.stack([batch, -1]))


def check_dtype(value, *, key: str, column_fn: str, dtype: tf.DType):
    """Checks the feature's dtype against the column's and casts ints to int64."""
    actual = value.dtype
    if dtype == tf.string:
        if actual != tf.string:
            raise TypeError(
                f"{column_fn} {key!r} got a feature of dtype {actual.name}; expected "
                "string. How to fix: feed strings or build the column with an integer "
                "dtype (e.g. dtype=tf.int64)."
            )
        return value
    if not actual.is_integer:
        raise TypeError(
            f"{column_fn} {key!r} got a feature of dtype {actual.name}; expected an "
            f"integer dtype like the column's {dtype.name}. How to fix: feed integer "
            "ids or build the column with dtype=tf.string."
        )
    if actual == tf.int64:
        return value
    if isinstance(value, tf.SparseTensor):
        return tf.SparseTensor(value.indices, tf.cast(value.values, tf.int64), value.dense_shape)
    return tf.cast(value, tf.int64)


def assert_ids_in_range(ids: tf.Tensor, *, key: str, column_fn: str,
                        num_buckets: int, how_to_fix: str, missing: int | None = None) -> tf.Tensor:
    """Fails at the first id outside ``[0, num_buckets)``; returns ``ids``.

    The error names the column, the first bad value and the valid range:
    ``categorical_column_with_identity `user` got id=7; expected ids in [0, 5).``
    (backquotes, because TF escapes quotes in graph-mode assertion messages).
    ``missing`` (e.g. -1 in dense single-id inputs) is accepted as well.

    Every step pays only for the range test (a few kernels); finding the first bad
    id and formatting the message happen in the branch of a `tf.cond` taken when
    the test fails, so a valid batch skips them.
    """
    if missing == -1:  # [-1, num_buckets): one comparison each side
        valid = tf.logical_and(ids >= -1, ids < num_buckets)
    else:
        valid = tf.logical_and(ids >= 0, ids < num_buckets)
        if missing is not None:
            valid = tf.logical_or(valid, tf.equal(ids, missing))
    ok = tf.reduce_all(valid)

    def passed():
        return tf.identity(ids)

    def failed():
        # argmin over [valid..., True] finds the first invalid position.
        first_bad = tf.argmin(tf.cast(tf.concat([valid, [True]], 0), tf.int32))
        padded = tf.concat([ids, tf.zeros([1], ids.dtype)], 0)
        message = tf.strings.format(
            f"{column_fn} `{key}` got id={{}}; expected ids in [0, {num_buckets}). {how_to_fix}",
            tf.gather(padded, first_bad),
        )
        check = tf.debugging.Assert(ok, [message], summarize=1)
        with tf.control_dependencies([check]):
            return tf.identity(ids)

    return tf.cond(ok, passed, failed)


def dense_numeric_input(value, *, key: str, shape: tuple[int, ...], default_value) -> tf.Tensor:
    """Returns a numeric feature as a dense ``[batch] + shape`` tensor.

    Dense inputs are reshaped. Sparse and ragged inputs are packed to the left
    per example and padded with ``default_value``; without a default every
    example must hold exactly ``prod(shape)`` values.
    """
    num_elements = 1
    for dim in shape:
        num_elements *= dim
    if isinstance(value, tf.SparseTensor):
        value = _to_rank2(value, key=key, column_fn="numeric_column")
        value = tf.RaggedTensor.from_sparse(tf.sparse.reorder(value))
    if isinstance(value, tf.RaggedTensor):
        if value.dtype == tf.string:
            raise _string_numeric_error(key)
        if value.ragged_rank > 1 or value.shape.rank != 2:
            value = value.merge_dims(1, -1)
        lengths = value.row_lengths()
        if default_value is None:
            ok = tf.reduce_all(tf.equal(lengths, num_elements))
            expectation = f"exactly {num_elements} values per example"
            fix = "Set default_value to pad short examples."
        else:
            ok = tf.reduce_all(lengths <= num_elements)
            expectation = f"at most {num_elements} values per example"
            fix = "Check the column's shape."
        bad = tf.concat([tf.boolean_mask(lengths, lengths != num_elements), [0]], 0)[0]
        message = tf.strings.format(
            f"numeric_column `{key}` got an example with {{}} values; expected "
            f"{expectation}. How to fix: {fix}",
            bad,
        )
        check = tf.debugging.Assert(ok, [message], summarize=1)
        with tf.control_dependencies([check]):
            packed = value.to_tensor(shape=[None, num_elements])
        if default_value is not None:
            defaults = tf.reshape(tf.cast(default_value, packed.dtype), [-1])
            defaults = tf.broadcast_to(defaults, [num_elements])
            present = tf.sequence_mask(lengths, num_elements)
            packed = tf.where(present, packed, defaults[tf.newaxis, :])
        value = packed
    if value.dtype == tf.string:
        raise _string_numeric_error(key)
    per_example = value.shape[1:]
    if value.shape.rank and per_example.is_fully_defined() and \
            per_example.num_elements() != num_elements:
        raise ValueError(
            f"numeric_column {key!r} got a feature of shape {value.shape}; expected "
            f"[batch] + {shape} ({num_elements} values per example). How to fix: set the "
            "column's shape to match the feature."
        )
    if value.shape.rank and per_example.is_fully_defined() and num_elements > 0:
        # Each example's values are known (checked above) to number num_elements, so -1
        # is the batch: one kernel instead of shape, slice, concat and reshape per step.
        return tf.reshape(value, [-1, *shape])
    batch = tf.shape(value)[0]
    return tf.reshape(value, tf.concat([[batch], tf.constant(list(shape), tf.int32, shape=[len(shape)])], 0))


def _string_numeric_error(key: str) -> TypeError:
    return TypeError(
        f"numeric_column {key!r} got a string feature; expected numbers. How to fix: "
        "parse the strings first (tf.strings.to_number) or use a categorical column."
    )
