"""Combining embedding rows of sparse ids: the hot path of every categorical column.

Same results as `tf.nn.safe_embedding_lookup_sparse` (invalid ids and
non-positive weights dropped, empty rows give zeros, combiners 'sum', 'mean'
and 'sqrtn', optional ``max_norm``), computed with one `tf.gather` and
segment sums over the batch rows instead of filling empty rows and
de-duplicating ids, with static shapes (invalid entries get weight 0 rather
than being masked out): fewer kernels per column and step, which is what
dominates small models on CPU. The gradient is still sparse
(`tf.IndexedSlices`).
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["combine_lookup"]


def combine_lookup(table, id_tensor: tf.SparseTensor, weight_tensor=None, *, combiner="mean",
                   max_norm=None, dense_ids: tf.Tensor | None = None) -> tf.Tensor:
    """Returns ``[batch, dim]``: each row's ids looked up in ``table`` and combined.

    ``dense_ids`` (``[batch]``, ``-1`` = none; see `IdWeightPair`) takes a shortcut when
    there are no weights: with at most one id per row every combiner returns that id's
    row (or zeros), so one gather and a mask replace the segment sums.
    """
    if combiner not in ("sum", "mean", "sqrtn"):
        raise ValueError(f"combine_lookup got combiner={combiner!r}; expected 'sum', 'mean' or 'sqrtn'.")
    if dense_ids is not None and weight_tensor is None:
        # A missing id (negative) reads row 0, then its vector is zeroed.
        vectors = _rows(table, tf.maximum(dense_ids, 0), max_norm)
        return _zero_missing(vectors, (dense_ids >= 0)[:, None])
    ids = id_tensor.values
    rows = tf.cast(id_tensor.indices[:, 0], tf.int32)
    weights = (tf.ones_like(ids, dtype=tf.float32) if weight_tensor is None
               else tf.cast(weight_tensor.values, tf.float32))
    # Invalid entries get weight 0 and a harmless id instead of being masked out:
    # static shapes and far fewer ops per column than boolean masks.
    valid = ids >= 0 if weight_tensor is None else tf.logical_and(ids >= 0, weights > 0)
    weights = tf.where(valid, weights, 0.0)
    ids = tf.where(valid, ids, tf.zeros_like(ids))
    batch = tf.cast(id_tensor.dense_shape[0], tf.int32)
    total = tf.math.unsorted_segment_sum(_rows(table, ids, max_norm) * weights[:, None], rows, batch)
    if combiner == "sum":
        return total
    if combiner == "mean":
        norm = tf.math.unsorted_segment_sum(weights, rows, batch)
    else:
        norm = tf.sqrt(tf.math.unsorted_segment_sum(tf.square(weights), rows, batch))
    return tf.math.divide_no_nan(total, norm[:, None])


@tf.custom_gradient
def _zero_missing(vectors: tf.Tensor, present: tf.Tensor):
    """``where(present, vectors, 0)`` whose gradient is ``where(present, dy, 0)``.

    The same values as `tf.where`'s own gradient, without its broadcasting
    reduction (shape, broadcast-args, sum and reshape kernels per lookup and step:
    the batch dimension is unknown when the step is traced).
    """
    zero = tf.zeros([], vectors.dtype)

    def grad(dy):
        return tf.where(present, dy, zero), None

    return tf.where(present, vectors, zero), grad


def _rows(table, ids: tf.Tensor, max_norm) -> tf.Tensor:
    """``table[ids]`` as float32, each row clipped to ``max_norm`` if given."""
    vectors = tf.gather(table, ids)
    if max_norm is not None:
        vectors = tf.clip_by_norm(vectors, max_norm, axes=[1])
    return tf.cast(vectors, tf.float32)
