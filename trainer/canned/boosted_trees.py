"""Gradient-boosted trees (tf.estimator's BoostedTreesClassifier/Regressor/Estimator).

Training follows tf.estimator's layer-by-layer schedule: every training step consumes one
batch; the gradient and hessian statistics of the loss (taken from the head) are summed per
(node, feature, bucket) over ``n_batches_per_layer`` batches; then one layer of the current
tree grows (the best split of every leaf at the deepest level, by the second-order gain with
``l1``/``l2``/``tree_complexity``/``min_node_weight``); a child's value is its parent's plus
``learning_rate`` times its Newton step. A tree is complete at ``max_depth`` or when no leaf
of a layer splits; training stops by itself (a hook requests the stop) once ``n_trees`` trees
are complete. ``center_bias=True`` first moves a bias by Newton steps until it settles.

Why plain TensorFlow ops and not ``tf.raw_ops.BoostedTrees*``: TensorFlow 2.21 still declares
those ops but registers no kernels for them (they left with tf.estimator; calling
``BoostedTreesAggregateStats`` or ``BoostedTreesEnsembleResourceHandleOp`` fails with "no
registered kernels"). So the ensemble is dense tensors in ordinary variables, in a
complete-binary-tree layout (node ``i`` has children ``2i+1`` and ``2i+2``), per tree:

* ``boosted_trees/node_feature`` [n_trees, nodes] int32: the split's feature index, -1 at a leaf;
* ``boosted_trees/node_threshold`` [n_trees, nodes] int32: go left when bucket <= threshold;
* ``boosted_trees/node_value`` [n_trees, nodes, logits_dimension]: a node's value (a leaf's
  is its output; an inner node keeps its value from before its split, for explanations and
  post-pruning);
* ``boosted_trees/node_gain`` [n_trees, nodes]: the split's gain (feature importances);

plus a bias and the schedule (finished trees, current layer, batches seen, accumulated
statistics). They checkpoint by name like any variable, so training resumes from model_dir,
and prediction is a vectorized walk (``max_depth`` gathers over all trees at once) with
standard ops only: the SavedModel serves in TF Serving, ``python -m serving`` or TF Lite.

Features: ``bucketized_column`` (each element one feature, its buckets the split points),
``indicator_column`` of a categorical column (each id a binary feature, as tf.estimator did)
and ``numeric_column``: as tf.estimator 2.x, the first ``n_batches_per_layer`` training steps
find its boundaries (about ``1 / quantile_sketch_epsilon`` buckets) at the quantiles of up to
``QUANTILE_SAMPLE`` rows of those batches (an exact sample's quantiles, not a streaming
sketch: each batch gives its first rows, so shuffle the input); the boundaries are variables
too (``boosted_trees/quantile_boundaries``), checkpointed and exported with the trees.

Example:
    >>> # from trainer.feature_column import bucketized_column, numeric_column
    >>> # x = bucketized_column(numeric_column("x"), [0.0, 1.0, 2.0])
    >>> # est = BoostedTreesClassifier([x], n_batches_per_layer=1, n_trees=10, max_depth=2)
    >>> # est.train(input_fn, steps=1000)   # returns once 10 trees are complete
"""

from __future__ import annotations

import collections

import numpy as np
import tensorflow as tf

from trainer.canned import _common
from trainer.estimator_spec import EstimatorSpec
from trainer.feature_column.base import FeatureCache
from trainer.feature_column.bucketized import BucketizedColumn
from trainer.feature_column.indicator import IndicatorColumn
from trainer.feature_column.numeric import NumericColumn
from trainer.heads import BinaryClassHead, RegressionHead
from trainer.heads.keys import PredictionKeys
from trainer.hooks.session_run_hook import SessionRunHook
from trainer.mode_keys import ModeKeys
from trainer.variables import local_variables

__all__ = ["BoostedTreesClassifier", "BoostedTreesRegressor", "BoostedTreesEstimator"]

PRUNING_MODES = ("none", "pre", "post")
# The dense layout holds 2**(max_depth+1)-1 nodes per tree; past this many nodes in all the
# variables (and the statistics of the deepest layer) outgrow memory.
MAX_TOTAL_NODES = 2 ** 24
# A split must improve the loss by more than this (statistics are per-example means, so this
# is far above float32 round-off of a zero gain and far below any real improvement).
MIN_GAIN = 1e-7
# center_bias: Newton steps on the bias continue until one moves it less than this.
BIAS_TOLERANCE = 1e-3
# Numeric columns: boundaries come from up to this many rows of the first
# n_batches_per_layer batches (each batch gives an equal share, its first rows).
QUANTILE_SAMPLE = 20000
BIAS_KEY = "bias"
DFC_KEY = "dfc"
_DFC_TENSOR_KEY = "dfc_per_feature"


class _Features:
    """The columns as one int32 matrix of bucket indices [batch, n_features].

    A numeric column's elements are bucketized at ``quantile_buckets - 1`` boundaries that
    training computes from the data (`_Trainer._collect_quantiles`).
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


def _newton_step(g, h, l1, l2):
    """The leaf weight minimising the second-order loss with l1/l2: -soft(g, l1) / (h + l2)."""
    shrunk = tf.sign(g) * tf.maximum(tf.abs(g) - l1, 0.0)
    return -tf.math.divide_no_nan(shrunk, h + l2)


def _score(g, h, l1, l2):
    """The loss decrease of a leaf with statistics (g, h), summed over the logits."""
    shrunk = tf.maximum(tf.abs(g) - l1, 0.0)
    return tf.reduce_sum(tf.math.divide_no_nan(tf.square(shrunk), h + l2), axis=-1)


class _Ensemble:
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


class _Cache:
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


class _StopWhenComplete(SessionRunHook):
    """Requests the stop once every tree is complete; never lets a run step past that point."""

    def __init__(self, ensemble, n_trees, max_depth, n_batches):
        self._e, self._n_trees, self._depth, self._n = ensemble, n_trees, max_depth, n_batches

    def _done(self):
        return int(self._e.finished.numpy()) >= self._n_trees

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


class BoostedTreesEstimator(_common.CannedEstimator):
    """Gradient-boosted trees with any single head (tf.estimator.BoostedTreesEstimator).

    Args:
        feature_columns: ``bucketized_column``s and ``indicator_column``s.
        n_batches_per_layer: Batches whose statistics grow one layer.
        head: A `trainer.heads` head (its loss gives the gradients and hessians).
        model_dir, config: As for any Estimator.
        weight_column: Must equal the head's ``weight_column`` (the head weighs the loss).
        n_trees, max_depth: The ensemble's size.
        learning_rate: Shrinks every leaf's Newton step.
        l1_regularization, l2_regularization: On leaf weights, per example (the statistics
            are per-example means over the layer's batches).
        tree_complexity: Subtracted from every split's gain.
        min_node_weight: The least mean hessian a child may have for its split to count.
        center_bias: First fit a bias by Newton steps (until one moves it < 1e-3).
        pruning_mode: ``'none'``; ``'pre'`` (no split whose gain minus tree_complexity is
            <= 0) or ``'post'`` (grow, then cut subtrees of negative gain); both need
            ``tree_complexity > 0``.
        quantile_sketch_epsilon: Numeric columns get ``ceil(1 / epsilon)`` buckets at the
            quantiles of the first ``n_batches_per_layer`` batches (see the module docstring).
        train_in_memory: True promises that every batch is the whole (same) data set; needs
            ``n_batches_per_layer=1`` (as in tf.estimator). Each step then walks only the
            growing tree: the finished trees' logits are cached per example.

    Example:
        >>> # est = BoostedTreesEstimator(columns, 1, head=trainer.heads.PoissonRegressionHead())
    """

    def __init__(self, feature_columns, n_batches_per_layer, head, model_dir=None,
                 weight_column=None, n_trees=100, max_depth=6, learning_rate=0.1,
                 l1_regularization=0.0, l2_regularization=0.0, tree_complexity=0.0,
                 min_node_weight=0.0, config=None, center_bias=False, pruning_mode="none",
                 quantile_sketch_epsilon=0.01, train_in_memory=False):
        caller = type(self).__name__
        feature_columns = _common.check_columns(feature_columns, caller)
        if (isinstance(quantile_sketch_epsilon, bool) or not isinstance(quantile_sketch_epsilon, (int, float))
                or not 0 < quantile_sketch_epsilon < 1):
            raise ValueError(f"{caller} got quantile_sketch_epsilon={quantile_sketch_epsilon!r}; expected "
                             "a number in (0, 1), e.g. 0.01 (numeric columns get about 1/epsilon buckets).")
        features = _Features(feature_columns, caller, max(2, int(np.ceil(1.0 / quantile_sketch_epsilon))))
        _check_int(n_batches_per_layer, "n_batches_per_layer", caller)
        _check_int(n_trees, "n_trees", caller)
        _check_int(max_depth, "max_depth", caller)
        if n_trees * (2 ** (max_depth + 1) - 1) > MAX_TOTAL_NODES:
            raise NotImplementedError(
                f"{caller} got n_trees={n_trees} and max_depth={max_depth}: the dense tree layout "
                f"needs n_trees * (2**(max_depth+1) - 1) <= {MAX_TOTAL_NODES} nodes. How to fix: "
                "lower max_depth (each level doubles the nodes) or n_trees.")
        if not isinstance(learning_rate, (int, float)) or learning_rate <= 0:
            raise ValueError(f"{caller} got learning_rate={learning_rate!r}; expected a number > 0.")
        for name, value in (("l1_regularization", l1_regularization),
                            ("l2_regularization", l2_regularization),
                            ("tree_complexity", tree_complexity),
                            ("min_node_weight", min_node_weight)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{caller} got {name}={value!r}; expected a number >= 0.")
        if pruning_mode not in PRUNING_MODES:
            raise ValueError(f"{caller} got pruning_mode={pruning_mode!r}; expected one of "
                             f"{list(PRUNING_MODES)}.")
        if pruning_mode != "none" and tree_complexity <= 0:
            raise ValueError(
                f"{caller} got pruning_mode={pruning_mode!r} with tree_complexity={tree_complexity!r}; "
                "pruning needs tree_complexity > 0 (the least gain a split must bring). How to fix: "
                "pass e.g. tree_complexity=0.01, or pruning_mode='none'.")
        if train_in_memory and n_batches_per_layer != 1:
            raise ValueError(
                f"{caller} got train_in_memory=True with n_batches_per_layer={n_batches_per_layer}; "
                "in memory each batch is the whole data set. How to fix: n_batches_per_layer=1.")
        if getattr(head, "logits_dimension", None) is None:
            raise ValueError(f"{caller} got head={head!r}; expected a trainer.heads head.")
        if weight_column is not None and getattr(head, "weight_column", None) != weight_column:
            raise ValueError(
                f"{caller} got weight_column={weight_column!r}, but the head's weight_column is "
                f"{getattr(head, 'weight_column', None)!r}; the head weighs the loss. How to fix: "
                "give weight_column to the head.")
        init_args = dict(feature_columns=feature_columns, n_batches_per_layer=n_batches_per_layer,
                         head=head, weight_column=weight_column, n_trees=n_trees,
                         max_depth=max_depth, learning_rate=learning_rate,
                         l1_regularization=l1_regularization, l2_regularization=l2_regularization,
                         tree_complexity=tree_complexity, min_node_weight=min_node_weight,
                         center_bias=center_bias, pruning_mode=pruning_mode,
                         quantile_sketch_epsilon=quantile_sketch_epsilon,
                         train_in_memory=train_in_memory)
        self.head = head
        self._features = features
        self._hp = dict(n_batches=n_batches_per_layer, n_trees=n_trees, depth=max_depth,
                        lr=float(learning_rate), l1=float(l1_regularization),
                        l2=float(l2_regularization), complexity=float(tree_complexity),
                        min_weight=float(min_node_weight), center_bias=bool(center_bias),
                        pruning=pruning_mode)
        self._explain = False
        self._in_memory = bool(train_in_memory)

        def model_fn(features, labels, mode, config):
            if config is not None and (config.train_distribute is not None
                                       or config.eval_distribute is not None):
                raise NotImplementedError(
                    f"{caller} under RunConfig(train_distribute=/eval_distribute=) is not "
                    "supported: its statistics are not aggregated across replicas. Train it "
                    "without a strategy.")
            return self._build_model(features, labels, mode)

        super().__init__(model_fn, init_args=init_args, model_dir=model_dir, config=config)

    # -- the model ----------------------------------------------------------------------
    def _build_model(self, features, labels, mode):
        hp, head = self._hp, self.head
        with tf.name_scope("boosted_trees"):
            ensemble = _Ensemble(hp["n_trees"], hp["depth"], self._features, head.logits_dimension)
        buckets = self._features(features, ensemble.boundaries)
        if mode == ModeKeys.TRAIN:
            # The growing tree: where each example sits in it, and the logits around it.
            current = tf.reshape(tf.minimum(ensemble.finished, hp["n_trees"] - 1), [1])
            if self._in_memory:
                leaf, depth, _ = ensemble.walk(buckets, current)
                growing = tf.cast(ensemble.finished < hp["n_trees"], tf.float32)
                logits = (ensemble.bias + _Cache(ensemble).logits_of_finished(buckets)
                          + growing * ensemble.tree_sum(leaf, current))
                node, node_depth = leaf[:, 0], depth[:, 0]
            else:
                trees = ensemble.grown_trees()
                leaf, depth, _ = ensemble.walk(buckets, trees)
                logits = ensemble.bias + ensemble.tree_sum(leaf, trees)
                node, node_depth = tf.gather(leaf, current[0], axis=1), tf.gather(depth, current[0], axis=1)
        else:
            trees = ensemble.grown_trees()
            leaf, _, steps = ensemble.walk(buckets, trees)
            logits = ensemble.bias + ensemble.tree_sum(leaf, trees)
        if mode == ModeKeys.PREDICT:
            spec = head.create_estimator_spec(features, mode, logits)
            if not self._explain:
                return spec
            predictions = dict(spec.predictions)
            predictions.update(self._explanations(ensemble, trees, steps))
            return EstimatorSpec(mode, predictions=predictions, export_outputs=spec.export_outputs)
        if mode == ModeKeys.EVAL:
            return head.create_estimator_spec(features, mode, logits, labels)

        def train_op_fn(loss):
            del loss
            g, h = self._gradients(features, labels, logits)
            numeric = self._features.numeric_values(features) if self._features.numeric else None
            return _Trainer(ensemble, hp, self._features).train_op(buckets, node_depth, node, g, h, numeric)

        spec = head.create_estimator_spec(features, mode, logits, labels, train_op_fn=train_op_fn)
        hook = _StopWhenComplete(ensemble, hp["n_trees"], hp["depth"], hp["n_batches"])
        return EstimatorSpec(mode, predictions=spec.predictions, loss=spec.loss,
                             train_op=spec.train_op,
                             training_hooks=list(spec.training_hooks) + [hook])

    def _gradients(self, features, labels, logits):
        """Per-example gradient and diagonal hessian of the head's loss w.r.t. the logits."""
        logits = tf.stop_gradient(logits)
        with tf.GradientTape(persistent=True) as outer:
            outer.watch(logits)
            with tf.GradientTape() as inner:
                inner.watch(logits)
                loss = self.head.loss(labels, logits, features, ModeKeys.TRAIN)
            g = inner.gradient(loss, logits)
            columns = [g[:, j] for j in range(self.head.logits_dimension)]
        h = tf.stack([outer.gradient(c, logits)[:, j] for j, c in enumerate(columns)], axis=1)
        del outer
        return g, h

    def _explanations(self, ensemble, trees, steps):
        """bias and per-column directional feature contributions (bias + sum = prediction)."""
        before = tf.stack([ensemble.values_at(b, trees)[..., 0] for b, _, _ in steps], axis=2)
        after = tf.stack([ensemble.values_at(a, trees)[..., 0] for _, a, _ in steps], axis=2)
        feature = tf.stack([f for _, _, f in steps], axis=2)  # [batch, trees, depth]
        batch = tf.shape(before)[0]
        delta = tf.reshape(after - before, tf.stack([batch, -1]))  # tree by tree, root first
        column = tf.gather(tf.constant(self._features.column_of, tf.int32),
                           tf.maximum(tf.reshape(feature, tf.stack([batch, -1])), 0))
        bias = tf.fill(tf.stack([batch]), ensemble.bias[0])
        if isinstance(self.head, BinaryClassHead):
            # As tf.estimator: contributions to the probability of the positive class, each
            # the change of sigmoid(logit) along the path.
            path = tf.sigmoid(bias[:, None] + tf.cumsum(delta, axis=1))
            start = tf.sigmoid(bias)
            delta = path - tf.concat([start[:, None], path[:, :-1]], axis=1)
            bias = start
        contributions = tf.reduce_sum(
            tf.one_hot(column, len(self._features.names)) * delta[..., None], axis=1)
        return {BIAS_KEY: bias, _DFC_TENSOR_KEY: contributions}

    # -- public extras ---------------------------------------------------------------------
    def experimental_feature_importances(self, normalize=False):
        """Gain-based importances per feature column, highest first (an OrderedDict).

        Each split's gain is credited to its column; ``normalize=True`` divides by the total.
        """
        prefix = self._require_checkpoint("experimental_feature_importances")
        feature = tf.train.load_variable(prefix, "boosted_trees/node_feature")
        gain = tf.train.load_variable(prefix, "boosted_trees/node_gain")
        names = self._features.names
        totals = np.zeros(len(names))
        inner = feature >= 0
        np.add.at(totals, np.asarray(self._features.column_of)[feature[inner]], gain[inner])
        if normalize:
            total = totals.sum()
            if total <= 0:
                raise ValueError(
                    f"{type(self).__name__}.experimental_feature_importances(normalize=True): the "
                    "trees have no split of positive gain, so there is nothing to normalize. "
                    "How to fix: train longer, or call it with normalize=False.")
            totals = totals / total
        order = sorted(range(len(names)), key=lambda i: (-totals[i], names[i]))
        return collections.OrderedDict((names[i], float(totals[i])) for i in order)

    def experimental_predict_with_explanations(self, input_fn, predict_keys=None, hooks=None,
                                               checkpoint_path=None):
        """Yields predictions with ``bias`` and ``dfc`` (an OrderedDict column -> contribution).

        ``bias + sum(dfc.values())`` is the prediction: the probability of class 1 for a
        binary classifier (as tf.estimator gave), the predicted value for a regressor.
        """
        caller = f"{type(self).__name__}.experimental_predict_with_explanations"
        plain_regression = (isinstance(self.head, RegressionHead)
                            and getattr(self.head, "inverse_link_fn", None) is None)
        if self.head.logits_dimension != 1 or not (isinstance(self.head, BinaryClassHead) or plain_regression):
            raise NotImplementedError(
                f"{caller} supports binary classification and one-dimensional regression without a "
                f"link function only (as tf.estimator); this head is {type(self.head).__name__} "
                f"with logits_dimension={self.head.logits_dimension}. How to fix: use "
                "experimental_feature_importances, or predict without explanations.")
        if isinstance(predict_keys, str):
            predict_keys = [predict_keys]
        keys = None if predict_keys is None else list(predict_keys) + [BIAS_KEY, _DFC_TENSOR_KEY]
        if keys is None:
            # Every head prediction plus the explanations (a distinct program from predict's).
            keys = list(self._head_prediction_keys()) + [BIAS_KEY, _DFC_TENSOR_KEY]
        self._explain = True
        try:
            for prediction in self.predict(input_fn, predict_keys=keys, hooks=hooks,
                                           checkpoint_path=checkpoint_path):
                values = prediction.pop(_DFC_TENSOR_KEY)
                order = sorted(range(len(values)), key=lambda i: (-abs(values[i]), i))
                prediction[DFC_KEY] = collections.OrderedDict(
                    (self._features.names[i], float(values[i])) for i in order)
                yield prediction
        finally:
            self._explain = False

    def _head_prediction_keys(self):
        probe = self.head.predictions(tf.zeros([1, self.head.logits_dimension]))
        return sorted(probe)


class _Trainer:
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
            return _true(e.boundaries.assign(cuts), e.quantiles_ready.assign(True), e.batches.assign(0),
                         e.sample.assign(tf.zeros_like(e.sample)))

        return tf.cond(seen >= hp["n_batches"], boundaries, lambda: tf.constant(False))

    def _center(self, g, h):
        e, hp = self.e, self.hp
        added = e.bias_stats.assign_add(tf.concat([tf.reduce_sum(g, 0), tf.reduce_sum(h, 0)], 0))
        with tf.control_dependencies([added]):
            seen = e.batches.assign_add(1)

        def apply():
            stats = e.bias_stats.read_value() / hp["n_batches"]
            delta = _newton_step(stats[:e.dim], stats[e.dim:], hp["l1"], hp["l2"])
            return _true(e.bias.assign_add(delta),
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
        raw = _score(gl, hl, l1, l2) + _score(gr, hr, l1, l2) - _score(gt, ht, l1, l2)
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
        wl = _newton_step(tf.gather_nd(gl, pick), tf.gather_nd(hl, pick), l1, l2)
        wr = _newton_step(tf.gather_nd(gr, pick), tf.gather_nd(hr, pick), l1, l2)
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
                    return _true(e.finished.assign_add(1), e.layer.assign(0))

            moved = tf.cond(complete, finish, lambda: _true(e.layer.assign_add(1)))
        return _true(moved, *reset)

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


def _true(*ops):
    with tf.control_dependencies(list(ops)):
        return tf.constant(True)


def _check_int(value, name, caller):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{caller} got {name}={value!r}; expected an int >= 1.")


class BoostedTreesClassifier(BoostedTreesEstimator):
    """Boosted trees for classification (tf.estimator.BoostedTreesClassifier).

    ``n_classes > 2`` grows a vector of class logits per leaf (diagonal hessian); the
    explanations (``experimental_predict_with_explanations``) are binary only.

    Example:
        >>> from trainer.feature_column import bucketized_column, numeric_column
        >>> x = bucketized_column(numeric_column("x"), [0.0, 1.0])
        >>> BoostedTreesClassifier([x], n_batches_per_layer=1, n_classes=3).head.logits_dimension
        3
    """

    def __init__(self, feature_columns, n_batches_per_layer, model_dir=None, n_classes=2,
                 weight_column=None, label_vocabulary=None, n_trees=100, max_depth=6,
                 learning_rate=0.1, l1_regularization=0.0, l2_regularization=0.0,
                 tree_complexity=0.0, min_node_weight=0.0, config=None, center_bias=False,
                 pruning_mode="none", quantile_sketch_epsilon=0.01, train_in_memory=False):
        head = _common.classification_head(n_classes, weight_column, label_vocabulary,
                                           _common.DEFAULT_REDUCTION, type(self).__name__)
        super().__init__(feature_columns, n_batches_per_layer, head, model_dir=model_dir,
                         n_trees=n_trees, max_depth=max_depth, learning_rate=learning_rate,
                         l1_regularization=l1_regularization, l2_regularization=l2_regularization,
                         tree_complexity=tree_complexity, min_node_weight=min_node_weight,
                         config=config, center_bias=center_bias, pruning_mode=pruning_mode,
                         quantile_sketch_epsilon=quantile_sketch_epsilon,
                         train_in_memory=train_in_memory)
        self._init_args.pop("head")
        self._init_args.update(n_classes=n_classes, weight_column=weight_column,
                               label_vocabulary=label_vocabulary)


class BoostedTreesRegressor(BoostedTreesEstimator):
    """Boosted trees for regression (tf.estimator.BoostedTreesRegressor).

    Example:
        >>> from trainer.feature_column import bucketized_column, numeric_column
        >>> x = bucketized_column(numeric_column("x"), [0.0, 1.0])
        >>> BoostedTreesRegressor([x], n_batches_per_layer=1).head.logits_dimension
        1
    """

    def __init__(self, feature_columns, n_batches_per_layer, model_dir=None, label_dimension=1,
                 weight_column=None, n_trees=100, max_depth=6, learning_rate=0.1,
                 l1_regularization=0.0, l2_regularization=0.0, tree_complexity=0.0,
                 min_node_weight=0.0, config=None, center_bias=False, pruning_mode="none",
                 quantile_sketch_epsilon=0.01, train_in_memory=False):
        head = _common.regression_head(label_dimension, weight_column, _common.DEFAULT_REDUCTION)
        super().__init__(feature_columns, n_batches_per_layer, head, model_dir=model_dir,
                         n_trees=n_trees, max_depth=max_depth, learning_rate=learning_rate,
                         l1_regularization=l1_regularization, l2_regularization=l2_regularization,
                         tree_complexity=tree_complexity, min_node_weight=min_node_weight,
                         config=config, center_bias=center_bias, pruning_mode=pruning_mode,
                         quantile_sketch_epsilon=quantile_sketch_epsilon,
                         train_in_memory=train_in_memory)
        self._init_args.pop("head")
        self._init_args.update(label_dimension=label_dimension, weight_column=weight_column)
