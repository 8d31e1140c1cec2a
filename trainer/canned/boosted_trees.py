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
import itertools

import numpy as np
import tensorflow as tf

from trainer.canned import _common
from trainer.canned._tree_ensemble import Ensemble, Features, LayerTrainer, LogitCache, StopWhenComplete
from trainer.estimator_spec import EstimatorSpec
from trainer.heads import BinaryClassHead, RegressionHead
from trainer.mode_keys import ModeKeys

__all__ = ["BoostedTreesClassifier", "BoostedTreesRegressor", "BoostedTreesEstimator"]

PRUNING_MODES = ("none", "pre", "post")
# The dense layout holds 2**(max_depth+1)-1 nodes per tree; past this many nodes in all the
# variables (and the statistics of the deepest layer) outgrow memory.
MAX_TOTAL_NODES = 2 ** 24
BIAS_KEY = "bias"
DFC_KEY = "dfc"
_DFC_TENSOR_KEY = "dfc_per_feature"


class BoostedTreesEstimator(_common.CannedEstimator):
    """Gradient-boosted trees with any single head (tf.estimator.BoostedTreesEstimator).

    Args:
        feature_columns: ``numeric_column``s, ``bucketized_column``s and ``indicator_column``s.
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
        features = Features(feature_columns, caller, max(2, int(np.ceil(1.0 / quantile_sketch_epsilon))))
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
            ensemble = Ensemble(hp["n_trees"], hp["depth"], self._features, head.logits_dimension)
        buckets = self._features(features, ensemble.boundaries)
        if mode == ModeKeys.TRAIN:
            # The growing tree: where each example sits in it, and the logits around it.
            current = tf.reshape(tf.minimum(ensemble.finished, hp["n_trees"] - 1), [1])
            if self._in_memory:
                leaf, depth, _ = ensemble.walk(buckets, current)
                growing = tf.cast(ensemble.finished < hp["n_trees"], tf.float32)
                logits = (ensemble.bias + LogitCache(ensemble).logits_of_finished(buckets)
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
            return LayerTrainer(ensemble, hp, self._features).train_op(buckets, node_depth, node, g, h, numeric)

        spec = head.create_estimator_spec(features, mode, logits, labels, train_op_fn=train_op_fn)
        hook = StopWhenComplete(ensemble, hp["n_trees"], hp["depth"], hp["n_batches"])
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
        predictions = iter(self.predict(input_fn, predict_keys=keys, hooks=hooks,
                                        checkpoint_path=checkpoint_path))
        # The model_fn reads the flag while the first prediction builds the program (cached under
        # these keys); it is off again before anything is yielded, so a predict() or an export
        # made while this generator is suspended gets no explanations.
        self._explain = True
        try:
            first = next(predictions, None)
        finally:
            self._explain = False
        if first is None:
            return
        for prediction in itertools.chain([first], predictions):
            values = prediction.pop(_DFC_TENSOR_KEY)
            order = sorted(range(len(values)), key=lambda i: (-abs(values[i]), i))
            prediction[DFC_KEY] = collections.OrderedDict(
                (self._features.names[i], float(values[i])) for i in order)
            yield prediction

    def _head_prediction_keys(self):
        probe = self.head.predictions(tf.zeros([1, self.head.logits_dimension]))
        return sorted(probe)


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
