"""The tree ensemble behind `trainer.canned.boosted_trees`: its variables, the walk, training.

See that module's docstring for the layout and the schedule. Everything here is plain
TensorFlow ops (TF 2.21 has no kernels for the ``BoostedTrees*`` ops).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from trainer.feature_column.base import FeatureCache
from trainer.feature_column.bucketized import BucketizedColumn
from trainer.feature_column.indicator import IndicatorColumn
from trainer.feature_column.numeric import NumericColumn
from trainer.hooks.session_run_hook import SessionRunHook
from trainer.variables import local_variables

# A split must improve the loss by more than this (statistics are per-example means, so this
# is far above float32 round-off of a zero gain and far below any real improvement).
MIN_GAIN = 1e-7
# center_bias: Newton steps on the bias continue until one moves it less than this.
BIAS_TOLERANCE = 1e-3
# Numeric columns: boundaries come from up to this many rows of the first
# n_batches_per_layer batches (each batch gives an equal share, its first rows).
QUANTILE_SAMPLE = 20000

class Features:
    """The columns as one int32 matrix of bucket indices [batch, n_features].

    A numeric column's elements are bucketized at ``quantile_buckets - 1`` boundaries that
    training computes from the data (`LayerTrainer._collect_quantiles`).
    """

    def __init__(self, columns, caller, quantile_buckets):
        self.columns = columns
        self.buckets = []  # per feature: its number of buckets
        self.column_of = []  # per feature: index into columns
        self.numeric = 0  # how many features are numeric elements
        for i, column in enumerate(columns):
            if isinstance(column, NumericColumn):
                if len(column.shape) > 1:
                    raise ValueError(
                        f"{caller} got numeric_column {column.name!r} of shape {column.shape}; boosted "
                        "trees take scalar or one-dimensional numeric columns. How to fix: reshape it.")
                n, b = (column.shape[0] if column.shape else 1), quantile_buckets
                self.numeric += n
            elif isinstance(column, BucketizedColumn):
                n, b = column._elements, len(column.boundaries) + 1
            elif isinstance(column, IndicatorColumn):
                n, b = column.categorical_column.num_buckets, 2
            else:
                raise ValueError(
                    f"{caller} got feature column {column.name!r} of type {type(column).__name__}; "
                    "boosted trees take numeric_column, bucketized_column and indicator_column. How "
                    "to fix: use indicator_column(categorical_column) for ids, numeric_column or "
                    "bucketized_column for numbers.")
            self.buckets += [b] * n
            self.column_of += [i] * n
        self.count = len(self.buckets)
        self.max_quantile_buckets = quantile_buckets
        self.max_buckets = max(self.buckets)
        self.names = [c.name for c in columns]

    def numeric_values(self, features):
        """The numeric columns' values [batch, numeric features] (None without any)."""
        cache = FeatureCache(features)
        parts = [tf.reshape(cache.get(c, None), [-1, c.shape[0] if c.shape else 1])
                 for c in self.columns if isinstance(c, NumericColumn)]
        return tf.concat(parts, axis=1) if parts else None

    def __call__(self, features, boundaries=None):
        """Bucket indices; ``boundaries`` [numeric features, quantile_buckets - 1] if any."""
        cache = FeatureCache(features)
        numeric = None
        if self.numeric:
            values = tf.transpose(self.numeric_values(features))  # [features, batch]
            numeric = tf.transpose(tf.searchsorted(boundaries, values, side="right", out_type=tf.int32))
        parts, start = [], 0
        for column in self.columns:
            if isinstance(column, NumericColumn):
                width = column.shape[0] if column.shape else 1
                parts.append(numeric[:, start:start + width])
                start += width
                continue
            value = cache.get(column, None)
            if isinstance(column, IndicatorColumn):
                value = tf.minimum(value, 1.0)  # present or not
            parts.append(tf.cast(value, tf.int32))
        return tf.concat(parts, axis=1)


def newton_step(g, h, l1, l2):
    """The leaf weight minimising the second-order loss with l1/l2: -soft(g, l1) / (h + l2)."""
    shrunk = tf.sign(g) * tf.maximum(tf.abs(g) - l1, 0.0)
    return -tf.math.divide_no_nan(shrunk, h + l2)


def gain_score(g, h, l1, l2):
    """The loss decrease of a leaf with statistics (g, h), summed over the logits."""
    shrunk = tf.maximum(tf.abs(g) - l1, 0.0)
    return tf.reduce_sum(tf.math.divide_no_nan(tf.square(shrunk), h + l2), axis=-1)


class Ensemble:
    """The ensemble's variables (created in the model_fn, under ``boosted_trees/``)."""

    def __init__(self, n_trees, max_depth, features, logits_dimension):
        self.n_trees, self.depth, self.dim = n_trees, max_depth, logits_dimension
        self.nodes = 2 ** (max_depth + 1) - 1
        self.layer_nodes = 2 ** (max_depth - 1)  # the most leaves one layer splits
        f, b = features.count, features.max_buckets
        self.shape_stats = [self.layer_nodes, f, b, 2 * logits_dimension]
        t, n, d = n_trees, self.nodes, logits_dimension

        def var(name, value, dtype=None):
            return tf.Variable(value, trainable=False, name=name, dtype=dtype)

        self.feature = var("node_feature", lambda: tf.fill([t, n], -1))
        self.threshold = var("node_threshold", lambda: tf.zeros([t, n], tf.int32))
        self.value = var("node_value", lambda: tf.zeros([t, n, d]))
        self.gain = var("node_gain", lambda: tf.zeros([t, n]))
        self.bias = var("bias", lambda: tf.zeros([d]))
        self.finished = var("finished_trees", lambda: tf.constant(0))
        self.layer = var("current_layer", lambda: tf.constant(0))
        self.batches = var("batches_in_layer", lambda: tf.constant(0))
        self.bias_centered = var("bias_centered", lambda: tf.constant(False))
        self.stats = var("layer_stats", lambda: tf.zeros(self.shape_stats))
        self.bias_stats = var("bias_stats", lambda: tf.zeros([2 * d]))
        if features.numeric:
            k = features.max_quantile_buckets - 1
            self.boundaries = var("quantile_boundaries", lambda: tf.zeros([features.numeric, k]))
            self.sample = var("quantile_sample", lambda: tf.zeros([QUANTILE_SAMPLE, features.numeric]))
            self.sampled = var("quantile_sample_rows", lambda: tf.constant(0))
            self.quantiles_ready = var("quantiles_ready", lambda: tf.constant(False))
        else:
            self.boundaries = None

    def grown_trees(self):
        """The trees that may hold splits: the finished ones and the one growing."""
        return tf.range(tf.minimum(self.finished + 1, self.n_trees))

    def walk(self, buckets, trees):
        """Each example's path through the trees ``trees`` (int32 ids [k]).

        Returns (leaf [batch, k], depth [batch, k], steps) where ``steps`` holds, per
        level, (node before, node after, feature) [batch, k] each.
        """
        batch = tf.shape(buckets)[0]
        offsets = trees * self.nodes
        flat_feature = tf.reshape(self.feature, [-1])
        flat_threshold = tf.reshape(self.threshold, [-1])
        flat_buckets = tf.reshape(buckets, [-1])
        rows = tf.range(batch)[:, None] * tf.shape(buckets)[1]
        node = tf.zeros(tf.stack([batch, tf.size(trees)]), tf.int32)
        depth = tf.zeros_like(node)
        steps = []
        for _ in range(self.depth):
            index = node + offsets
            feature = tf.gather(flat_feature, index)
            threshold = tf.gather(flat_threshold, index)
            x = tf.gather(flat_buckets, rows + tf.maximum(feature, 0))
            inner = feature >= 0
            child = 2 * node + 1 + tf.cast(x > threshold, tf.int32)
            after = tf.where(inner, child, node)
            steps.append((node, after, feature))
            depth += tf.cast(inner, tf.int32)
            node = after
        return node, depth, steps

    def values_at(self, node, trees):
        """Node values [batch, k, dim] of the node [batch, k] of each tree in ``trees``."""
        return tf.gather(tf.reshape(self.value, [-1, self.dim]), node + trees * self.nodes)

    def tree_sum(self, leaf, trees):
        return tf.reduce_sum(self.values_at(leaf, trees), axis=1)


class LogitCache:
    """train_in_memory: the logits of the finished trees per example, so a step walks one tree.

    Valid while every batch is the same data set (tf.estimator's contract for
    ``train_in_memory=True``); it is per-process state (not checkpointed) and is rebuilt by
    one walk of all finished trees after a restore or a change of batch size.
    """

    def __init__(self, ensemble):
        self.e = ensemble
        with local_variables():
            self.logits = tf.Variable(lambda: tf.zeros([0, ensemble.dim]), trainable=False,
                                      shape=tf.TensorShape([None, ensemble.dim]), name="cached_logits")
            self.trees = tf.Variable(lambda: tf.constant(-1), trainable=False, name="cached_trees")

    def logits_of_finished(self, buckets):
        e = self.e
        finished = e.finished.read_value()
        size_ok = tf.equal(tf.shape(self.logits)[0], tf.shape(buckets)[0])

        def rebuild():
            trees = tf.range(finished)
            leaf, _, _ = e.walk(buckets, trees)
            return e.tree_sum(leaf, trees)

        def add_last():
            trees = tf.reshape(finished - 1, [1])
            leaf, _, _ = e.walk(buckets, trees)
            return self.logits.read_value() + e.tree_sum(leaf, trees)

        def refresh():
            value = tf.cond(size_ok & (self.trees >= 0) & tf.equal(self.trees, finished - 1),
                            add_last, rebuild)
            with tf.control_dependencies([self.logits.assign(value), self.trees.assign(finished)]):
                return tf.identity(value)

        return tf.cond(size_ok & tf.equal(self.trees, finished), self.logits.read_value, refresh)


class StopWhenComplete(SessionRunHook):
    """Requests the stop once every tree is complete; never lets a run step past that point."""

    def __init__(self, ensemble, n_trees, max_depth, n_batches):
        self._e, self._n_trees, self._depth, self._n = ensemble, n_trees, max_depth, n_batches

    def _done(self):
        return int(self._e.finished.numpy()) >= self._n_trees

    def after_create_session(self, session, coord):
        del coord
        if self._done():  # nothing left to grow: the loop takes no step at all
            session.limit_steps(session.global_step)

    def steps_until_needed(self, global_step):
        del global_step
        if self._done():
            return 1
        # A lower bound: trees may end early and bias centering adds steps, never removes.
        layers = (self._n_trees - int(self._e.finished.numpy())) * self._depth - int(self._e.layer.numpy())
        return max(1, layers * self._n - int(self._e.batches.numpy()))

    def after_run(self, run_context, run_values):
        if self._done():
            run_context.request_stop()


class LayerTrainer:
    """The train_op: bias centering, statistics, one layer's splits, tree completion."""

    def __init__(self, ensemble, hp, features):
        self.e, self.hp = ensemble, hp
        self.bucket_counts = tf.constant(features.buckets, tf.int32)

    def train_op(self, buckets, depth, node, g, h, numeric=None):
        """``node``/``depth`` [batch]: each example's leaf in the growing tree and its depth;
        ``numeric``: the numeric columns' values (None without any)."""
        e, hp = self.e, self.hp

        def boost():
            if not hp["center_bias"]:
                return self._grow(buckets, depth, node, g, h)
            return tf.cond(e.bias_centered, lambda: self._grow(buckets, depth, node, g, h),
                           lambda: self._center(g, h))

        step = boost
        if numeric is not None:
            # First the numeric columns' boundaries (no tree grows on unbucketized values).
            step = lambda: tf.cond(e.quantiles_ready, boost,  # noqa: E731
                                   lambda: self._collect_quantiles(numeric))
        return tf.cond(e.finished < hp["n_trees"], step, lambda: tf.constant(False))

    def _collect_quantiles(self, values):
        """Keeps this batch's share of rows; after n_batches_per_layer batches sets the boundaries."""
        e, hp = self.e, self.hp
        share = -(-QUANTILE_SAMPLE // hp["n_batches"])
        rows = values[:share]
        start = e.sampled.read_value()
        index = start + tf.range(tf.shape(rows)[0])
        kept = e.sample.scatter_nd_update(index[:, None], rows)
        with tf.control_dependencies([kept]):
            count = e.sampled.assign_add(tf.shape(rows)[0])
            seen = e.batches.assign_add(1)

        def boundaries():
            filled = tf.sort(e.sample[:count], axis=0)  # [count, features]
            k = e.boundaries.shape[1]
            # Boundary j at the (j / (k + 1)) quantile; ties make empty buckets, which never split.
            at = (tf.range(1, k + 1) * count) // (k + 1)
            cuts = tf.transpose(tf.gather(filled, tf.minimum(at, count - 1)))
            return true_after(e.boundaries.assign(cuts), e.quantiles_ready.assign(True), e.batches.assign(0),
                         e.sample.assign(tf.zeros_like(e.sample)))

        return tf.cond(seen >= hp["n_batches"], boundaries, lambda: tf.constant(False))

    def _center(self, g, h):
        e, hp = self.e, self.hp
        added = e.bias_stats.assign_add(tf.concat([tf.reduce_sum(g, 0), tf.reduce_sum(h, 0)], 0))
        with tf.control_dependencies([added]):
            seen = e.batches.assign_add(1)

        def apply():
            stats = e.bias_stats.read_value() / hp["n_batches"]
            delta = newton_step(stats[:e.dim], stats[e.dim:], hp["l1"], hp["l2"])
            return true_after(e.bias.assign_add(delta),
                         e.bias_centered.assign(tf.reduce_max(tf.abs(delta)) < BIAS_TOLERANCE),
                         e.bias_stats.assign(tf.zeros_like(stats)), e.batches.assign(0))

        return tf.cond(seen >= hp["n_batches"], apply, lambda: tf.constant(False))

    def _grow(self, buckets, depth, node, g, h):
        e, hp = self.e, self.hp
        tree, layer = e.finished.read_value(), e.layer.read_value()
        active = tf.equal(depth, layer)
        m, f, b, _ = e.shape_stats
        offset = node - (2 ** layer - 1)
        segments = (offset[:, None] * f + tf.range(f)[None, :]) * b + buckets
        # bincount with weights: a per-(node, feature, bucket) sum, ~2x faster on CPU than
        # unsorted_segment_sum here. Examples not at this layer's leaves add zeros to bucket 0.
        segments = tf.reshape(tf.where(active[:, None], segments, 0), [-1])
        keep = tf.cast(active, tf.float32)[:, None]
        sums = []
        for column in tf.unstack(tf.concat([g, h], axis=1) * keep, axis=1):
            weights = tf.reshape(tf.broadcast_to(column[:, None], tf.shape(buckets)), [-1])
            sums.append(tf.math.bincount(segments, weights=weights, minlength=m * f * b,
                                         maxlength=m * f * b))
        summed = tf.stack(sums, axis=1)
        added = e.stats.assign_add(tf.reshape(summed, e.shape_stats))
        with tf.control_dependencies([added]):
            seen = e.batches.assign_add(1)
        return tf.cond(seen >= hp["n_batches"], lambda: self._split(tree, layer),
                       lambda: tf.constant(False))

    def _split(self, tree, layer):
        e, hp = self.e, self.hp
        m, f, b, _ = e.shape_stats
        stats = e.stats.read_value() / hp["n_batches"]
        g, h = stats[..., :e.dim], stats[..., e.dim:]
        gl, hl = tf.cumsum(g, axis=2), tf.cumsum(h, axis=2)  # left: buckets <= threshold
        gt, ht = gl[:, :, -1:], hl[:, :, -1:]
        gr, hr = gt - gl, ht - hl
        l1, l2 = hp["l1"], hp["l2"]
        raw = gain_score(gl, hl, l1, l2) + gain_score(gr, hr, l1, l2) - gain_score(gt, ht, l1, l2)
        gain = raw - hp["complexity"]
        left_weight, right_weight = tf.reduce_sum(hl, -1), tf.reduce_sum(hr, -1)
        usable = tf.range(b)[None, :] < (self.bucket_counts - 1)[:, None]  # [f, b]
        valid = (usable[None] & (left_weight > 0) & (right_weight > 0)
                 & (left_weight >= hp["min_weight"]) & (right_weight >= hp["min_weight"]))
        valid &= (gain > 0) if hp["pruning"] == "pre" else (raw > MIN_GAIN)
        flat = tf.reshape(tf.where(valid, gain, -np.inf), [m, f * b])
        best = tf.argmax(flat, axis=1, output_type=tf.int32)
        best_gain = tf.reduce_max(flat, axis=1)
        nodes = 2 ** layer - 1 + tf.range(m)
        splits = tf.math.is_finite(best_gain) & (tf.range(m) < 2 ** layer)
        pick = tf.stack([tf.range(m), best // b, best % b], axis=1)
        wl = newton_step(tf.gather_nd(gl, pick), tf.gather_nd(hl, pick), l1, l2)
        wr = newton_step(tf.gather_nd(gr, pick), tf.gather_nd(hr, pick), l1, l2)
        parent = tf.gather(e.value[tree], nodes)
        sel = tf.where(splits)[:, 0]
        at = lambda ids: tf.stack([tf.fill(tf.shape(ids), tree), ids], axis=1)  # noqa: E731
        split_nodes = tf.gather(nodes, sel)
        children = tf.concat([2 * split_nodes + 1, 2 * split_nodes + 2], axis=0)
        child_values = tf.concat([tf.gather(parent + hp["lr"] * wl, sel),
                                  tf.gather(parent + hp["lr"] * wr, sel)], axis=0)
        updates = [
            e.feature.scatter_nd_update(at(split_nodes), tf.gather(best // b, sel)),
            e.threshold.scatter_nd_update(at(split_nodes), tf.gather(best % b, sel)),
            e.gain.scatter_nd_update(at(split_nodes), tf.gather(best_gain, sel)),
            e.value.scatter_nd_update(at(children), child_values),
        ]
        with tf.control_dependencies(updates):
            complete = tf.logical_or(layer + 1 >= hp["depth"], tf.size(sel) == 0)
            reset = [e.stats.assign(tf.zeros(e.shape_stats)), e.batches.assign(0)]

            def finish():
                ops = [self._post_prune(tree)] if hp["pruning"] == "post" else []
                with tf.control_dependencies(ops):
                    return true_after(e.finished.assign_add(1), e.layer.assign(0))

            moved = tf.cond(complete, finish, lambda: true_after(e.layer.assign_add(1)))
        return true_after(moved, *reset)

    def _post_prune(self, tree):
        """Bottom up: an inner node whose children are leaves and whose gain < 0 becomes a leaf."""
        e = self.e
        feature, gain = e.feature[tree], e.gain[tree]
        for level in reversed(range(e.depth)):
            ids = tf.range(2 ** level - 1, 2 ** (level + 1) - 1)
            leaves = (tf.gather(feature, 2 * ids + 1) < 0) & (tf.gather(feature, 2 * ids + 2) < 0)
            cut = (tf.gather(feature, ids) >= 0) & leaves & (tf.gather(gain, ids) < 0)
            index = ids[:, None]
            feature = tf.tensor_scatter_nd_update(feature, index,
                                                  tf.where(cut, -1, tf.gather(feature, ids)))
            gain = tf.tensor_scatter_nd_update(gain, index, tf.where(cut, 0.0, tf.gather(gain, ids)))
        row = tf.stack([tree])[:, None]
        return tf.group(e.feature.scatter_nd_update(row, feature[None]),
                        e.gain.scatter_nd_update(row, gain[None]))


def true_after(*ops):
    with tf.control_dependencies(list(ops)):
        return tf.constant(True)
