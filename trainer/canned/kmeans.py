"""KMeansClustering: k-means as an Estimator (tf.estimator.experimental.KMeans's API).

The cluster centers are one non-trainable variable, ``clusters`` ([num_clusters, dims]),
set from the first training batch (random rows, k-means++, given centers, or a function)
and then moved by each training step:

* ``use_mini_batch=True`` (default): mini-batch k-means (Sculley, 2010). Each center keeps
  the number of points ever assigned to it (``cluster_counts``); after
  ``mini_batch_steps_per_iteration`` steps, a center moves to the running mean of every
  point assigned to it so far (``c += (sum - n * c) / count``).
* ``use_mini_batch=False``: Lloyd's algorithm; the input_fn is expected to yield the whole
  data set per step (or per ``mini_batch_steps_per_iteration`` steps): each center moves
  to the mean of the points assigned to it; a center with no point stays.

The loss is the sum over the batch of each point's distance to its nearest center
(squared Euclidean, or cosine distance ``1 - cos``). Predictions: ``cluster_index`` and
``all_distances`` (to every center). Evaluation: ``loss`` (mean per batch) and ``score``
(the sum over every batch of one pass).

Example:
    >>> # km = KMeansClustering(num_clusters=3, use_mini_batch=False)
    >>> # km.train(lambda: tf.data.Dataset.from_tensors(points).repeat(10), steps=10)
    >>> # km.cluster_centers(); list(km.predict_cluster_index(input_fn))
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from trainer import feature_column as fc
from trainer._context import get_global_step
from trainer.canned import _common
from trainer.estimator_spec import EstimatorSpec
from trainer.export.export_output import PredictOutput
from trainer.metrics import streaming
from trainer.metrics.functional import MetricOp
from trainer.mode_keys import ModeKeys

__all__ = ["KMeansClustering"]


class _Sum(streaming.Metric):
    """The sum of ``values`` over all batches (the ``score`` metric)."""

    def __init__(self, name="score"):
        super().__init__(name)
        self.total = self.add_state("total")

    def update_state(self, values, weights=None):
        del weights
        with tf.control_dependencies([self.total.assign_add(tf.reduce_sum(tf.cast(values, tf.float32)))]):
            return self.result()

    def result(self):
        return self.total.read_value()


def _distances(points, centers, metric):
    """[batch, k] distances from each point to each center."""
    if metric == KMeansClustering.COSINE_DISTANCE:
        p = tf.math.l2_normalize(points, axis=1)
        c = tf.math.l2_normalize(centers, axis=1)
        return 1.0 - tf.matmul(p, c, transpose_b=True)
    squared = (tf.reduce_sum(tf.square(points), axis=1, keepdims=True)
               - 2.0 * tf.matmul(points, centers, transpose_b=True)
               + tf.reduce_sum(tf.square(centers), axis=1)[None, :])
    return tf.maximum(squared, 0.0)  # rounding can take a zero distance below 0


def _random_rows(points, k, seed):
    order = tf.argsort(tf.random.stateless_uniform([tf.shape(points)[0]], seed=seed))
    return tf.gather(points, order[:k])


def _kmeans_plus_plus(points, k, seed, retries, metric):
    """k-means++ over ``points``: each new center is the best of ``2 + retries`` draws with
    probability proportional to the distance to the nearest chosen center."""
    n = tf.shape(points)[0]
    first = tf.random.stateless_uniform([], seed=seed, maxval=n, dtype=tf.int32)
    centers = tf.TensorArray(points.dtype, size=k, element_shape=points.shape[1:])
    centers = centers.write(0, points[first])
    nearest = _distances(points, points[first][None, :], metric)[:, 0]
    candidates_per_step = 2 + retries

    def body(i, centers, nearest):
        logits = tf.math.log(tf.maximum(nearest, 1e-30))[None, :]
        draws = tf.random.stateless_categorical(logits, candidates_per_step,
                                                seed=tf.stack([seed[0], seed[1] + i]))[0]
        # Each candidate's potential: the sum of the nearest distances once it is added.
        with_candidate = tf.minimum(nearest[None, :],
                                    tf.transpose(_distances(points, tf.gather(points, draws), metric)))
        best = tf.argmin(tf.reduce_sum(with_candidate, axis=1))
        return i + 1, centers.write(i, points[draws[best]]), with_candidate[best]

    _, centers, _ = tf.while_loop(lambda i, *_: i < k, body, (tf.constant(1), centers, nearest))
    return centers.stack()


class KMeansClustering(_common.CannedEstimator):
    """K-means clustering (tf.estimator.experimental.KMeans / tf.contrib KMeansClustering).

    Args:
        num_clusters: The number of clusters (k >= 1).
        model_dir, config: As for any Estimator.
        initial_clusters: ``'random'`` (k distinct rows of the first batch), ``'kmeans_plus_plus'``
            (k-means++ over the first batch), an array of shape [k, dims], or a function
            ``f(inputs, num_clusters)`` returning the initial centers as a tensor.
        distance_metric: ``'squared_euclidean'`` or ``'cosine'``.
        seed: Seed of the random initializations (default ``config.tf_random_seed``, else 0).
        use_mini_batch: Mini-batch k-means (True) or Lloyd's full-batch algorithm (False).
        mini_batch_steps_per_iteration: Steps whose assignments are accumulated before the
            centers move.
        kmeans_plus_plus_num_retries: Extra candidates drawn per k-means++ center.
        relative_tolerance: Not supported (raises NotImplementedError): stop with ``steps``
            or ``max_steps``, or a hook.
        feature_columns: Dense feature columns turning a features dict into points; without
            them the features must be one float tensor [batch, dims] (or a dict of one).
    """

    RANDOM_INIT = "random"
    KMEANS_PLUS_PLUS_INIT = "kmeans_plus_plus"
    SQUARED_EUCLIDEAN_DISTANCE = "squared_euclidean"
    COSINE_DISTANCE = "cosine"
    ALL_DISTANCES = "all_distances"
    CLUSTER_INDEX = "cluster_index"
    SCORE = "score"
    LOSS_OP_NAME = "kmeans_loss"
    CLUSTER_CENTERS_VAR_NAME = "clusters"

    def __init__(self, num_clusters, model_dir=None, initial_clusters=RANDOM_INIT,
                 distance_metric=SQUARED_EUCLIDEAN_DISTANCE, seed=None, use_mini_batch=True,
                 mini_batch_steps_per_iteration=1, kmeans_plus_plus_num_retries=2,
                 relative_tolerance=None, config=None, feature_columns=None):
        caller = type(self).__name__
        if isinstance(num_clusters, bool) or not isinstance(num_clusters, (int, np.integer)) or num_clusters < 1:
            raise ValueError(f"{caller} got num_clusters={num_clusters!r}; expected an int >= 1.")
        k = int(num_clusters)
        if distance_metric not in (self.SQUARED_EUCLIDEAN_DISTANCE, self.COSINE_DISTANCE):
            raise ValueError(f"{caller} got distance_metric={distance_metric!r}; expected "
                             f"{self.SQUARED_EUCLIDEAN_DISTANCE!r} or {self.COSINE_DISTANCE!r}.")
        if isinstance(initial_clusters, str):
            if initial_clusters not in (self.RANDOM_INIT, self.KMEANS_PLUS_PLUS_INIT):
                raise ValueError(f"{caller} got initial_clusters={initial_clusters!r}; expected "
                                 f"{self.RANDOM_INIT!r}, {self.KMEANS_PLUS_PLUS_INIT!r}, an array of "
                                 "shape [num_clusters, dims] or a function (inputs, num_clusters) -> centers.")
            given = None
        elif callable(initial_clusters):
            given = None
        else:
            given = np.asarray(initial_clusters, dtype=np.float32)
            if given.ndim != 2 or given.shape[0] != k:
                raise ValueError(f"{caller} got initial_clusters of shape {given.shape}; expected "
                                 f"[num_clusters={k}, dims].")
        if (isinstance(mini_batch_steps_per_iteration, bool) or not isinstance(mini_batch_steps_per_iteration, int)
                or mini_batch_steps_per_iteration < 1):
            raise ValueError(f"{caller} got mini_batch_steps_per_iteration={mini_batch_steps_per_iteration!r}; "
                             "expected an int >= 1.")
        if not isinstance(kmeans_plus_plus_num_retries, int) or kmeans_plus_plus_num_retries < 0:
            raise ValueError(f"{caller} got kmeans_plus_plus_num_retries={kmeans_plus_plus_num_retries!r}; "
                             "expected an int >= 0.")
        if relative_tolerance is not None:
            raise NotImplementedError(
                f"{caller}(relative_tolerance=...) is not supported: stop training with steps / "
                "max_steps or a SessionRunHook that requests a stop.")
        if feature_columns is not None:
            feature_columns = _common.check_columns(feature_columns, caller)
        init_args = dict(num_clusters=k, initial_clusters=initial_clusters, distance_metric=distance_metric,
                         seed=seed, use_mini_batch=use_mini_batch,
                         mini_batch_steps_per_iteration=mini_batch_steps_per_iteration,
                         kmeans_plus_plus_num_retries=kmeans_plus_plus_num_retries,
                         relative_tolerance=relative_tolerance, feature_columns=feature_columns)
        steps_per_iteration = mini_batch_steps_per_iteration

        def model_fn(features, mode, config):  # unsupervised: no labels
            if config is not None and (config.train_distribute is not None or config.eval_distribute is not None):
                raise NotImplementedError(
                    f"{caller} under RunConfig(train_distribute=/eval_distribute=) is not supported: "
                    "its center updates are not aggregated across replicas. Train it without a strategy.")
            points = self._points(features, feature_columns, caller)
            dims = points.shape[-1]
            if dims is None:
                raise ValueError(f"{caller}: the features' last dimension is unknown; give the input "
                                 "a static number of columns (e.g. numeric_column(shape=d)).")
            if given is not None and given.shape[1] != dims:
                raise ValueError(f"{caller} got initial_clusters with {given.shape[1]} columns, but the "
                                 f"features have {dims}.")
            clusters = tf.Variable(lambda: tf.zeros([k, dims]), trainable=False,
                                   name=self.CLUSTER_CENTERS_VAR_NAME)
            initialized = tf.Variable(lambda: tf.constant(False), trainable=False,
                                      name="clusters_initialized")
            counts = tf.Variable(lambda: tf.zeros([k]), trainable=False, name="cluster_counts")
            sums = tf.Variable(lambda: tf.zeros([k, dims]), trainable=False, name="accumulated_sums")
            batch_counts = tf.Variable(lambda: tf.zeros([k]), trainable=False, name="accumulated_counts")

            if mode == ModeKeys.TRAIN:
                ready = self._initialize(points, clusters, initialized, k, config, caller)
                with tf.control_dependencies([ready]):
                    centers = clusters.read_value()
            else:
                centers = clusters.read_value()
            distances = _distances(points, centers, distance_metric)
            index = tf.argmin(distances, axis=1)
            nearest = tf.reduce_min(distances, axis=1)
            loss = tf.reduce_sum(nearest, name=self.LOSS_OP_NAME)
            predictions = {self.ALL_DISTANCES: distances, self.CLUSTER_INDEX: index}
            if mode == ModeKeys.PREDICT:
                return EstimatorSpec(mode, predictions=predictions,
                                     export_outputs={"serving_default": PredictOutput(predictions)})
            if mode == ModeKeys.EVAL:
                score = _Sum(self.SCORE)
                mean_loss = streaming.Mean("loss")
                return EstimatorSpec(mode, loss=loss, predictions=predictions, eval_metric_ops={
                    self.SCORE: MetricOp(score.result(), score.update_state(nearest)),
                    "loss": MetricOp(mean_loss.result(), mean_loss.update_state(loss))})
            global_step = get_global_step()
            one_hot = tf.one_hot(index, k, dtype=points.dtype)
            with tf.control_dependencies([ready]):
                accumulate = tf.group(sums.assign_add(tf.matmul(one_hot, points, transpose_a=True)),
                                      batch_counts.assign_add(tf.reduce_sum(one_hot, axis=0)))
            with tf.control_dependencies([accumulate]):
                # The iteration ends after this step: move the centers, clear the accumulators.
                ends = tf.equal((global_step + 1) % steps_per_iteration, 0)

                def move():
                    n, s = batch_counts.read_value(), sums.read_value()
                    old = clusters.read_value()
                    if use_mini_batch:
                        total = counts.read_value() + n
                        step = tf.math.divide_no_nan(s - n[:, None] * old, total[:, None])
                        new = old + step
                        updates = [counts.assign(total)]
                    else:
                        new = tf.where((n > 0)[:, None], tf.math.divide_no_nan(s, n[:, None]), old)
                        updates = []
                    with tf.control_dependencies([clusters.assign(new), *updates]):
                        return tf.group(sums.assign(tf.zeros_like(s)), batch_counts.assign(tf.zeros_like(n)))

                moved = tf.cond(ends, lambda: _as_true(move()), lambda: tf.constant(False))
            with tf.control_dependencies([moved]):
                train_op = global_step.assign_add(1)
            return EstimatorSpec(mode, loss=loss, train_op=train_op, predictions=predictions)

        self._num_clusters = k
        self._given = given
        self._initial = initial_clusters
        self._metric = distance_metric
        self._seed = seed
        self._retries = kmeans_plus_plus_num_retries
        super().__init__(model_fn, init_args=init_args, model_dir=model_dir, config=config)

    @staticmethod
    def _points(features, feature_columns, caller):
        if feature_columns is not None:
            with tf.name_scope("input_from_feature_columns"):
                return fc.DenseFeatures(feature_columns, name="input_layer")(features)
        if isinstance(features, dict):
            if len(features) != 1:
                raise ValueError(
                    f"{caller} got features {sorted(features)}; without feature_columns the features "
                    "must be one tensor [batch, dims] (or a dict holding one). How to fix: pass "
                    "feature_columns=[numeric_column(name, shape=d), ...].")
            (features,) = features.values()
        if isinstance(features, (tf.SparseTensor, tf.RaggedTensor)):
            raise ValueError(f"{caller} got a {type(features).__name__}; expected a dense float tensor "
                             "[batch, dims]. How to fix: densify it, or pass feature_columns.")
        points = tf.cast(features, tf.float32)
        if points.shape.rank == 1:
            points = points[:, None]
        if points.shape.rank != 2:
            raise ValueError(f"{caller} got features of shape {points.shape}; expected [batch, dims].")
        return points

    def _initialize(self, points, clusters, initialized, k, config, caller):
        """An op that sets the centers from this batch once; True after it ran."""
        seed_value = self._seed if self._seed is not None else (
            config.tf_random_seed if config is not None and config.tf_random_seed is not None else 0)
        seed = tf.constant([int(seed_value), 0], tf.int32)

        def initial_centers():
            if self._given is not None:
                return tf.constant(self._given)
            if callable(self._initial):
                return tf.cast(tf.convert_to_tensor(self._initial(points, k)), tf.float32)
            message = (f"{caller}: the first training batch has fewer rows than num_clusters={k}, so "
                       f"initial_clusters={self._initial!r} cannot pick {k} centers from it. How to fix: "
                       "use a batch size >= num_clusters, or pass initial_clusters as an array")
            if points.shape[0] is not None and points.shape[0] < k:
                raise ValueError(f"{message} (the batch has {points.shape[0]} rows).")
            enough = tf.debugging.assert_greater_equal(tf.shape(points)[0], k, message=message)
            with tf.control_dependencies([enough]):
                if self._initial == self.KMEANS_PLUS_PLUS_INIT:
                    return _kmeans_plus_plus(points, k, seed, self._retries, self._metric)
                return _random_rows(points, k, seed)

        def initialize():
            centers = tf.ensure_shape(initial_centers(), clusters.shape)
            with tf.control_dependencies([clusters.assign(centers)]):
                return _as_true(initialized.assign(True))

        return tf.cond(initialized.read_value(), lambda: tf.constant(True), initialize)

    def cluster_centers(self) -> np.ndarray:
        """The centers in the newest checkpoint, [num_clusters, dims]."""
        return self.get_variable_value(self.CLUSTER_CENTERS_VAR_NAME)

    def predict_cluster_index(self, input_fn):
        """Yields the index of each example's nearest center."""
        for prediction in self.predict(input_fn, predict_keys=[self.CLUSTER_INDEX]):
            yield prediction[self.CLUSTER_INDEX]

    def transform(self, input_fn):
        """Yields each example's distances to every center (the ``all_distances`` prediction)."""
        for prediction in self.predict(input_fn, predict_keys=[self.ALL_DISTANCES]):
            yield prediction[self.ALL_DISTANCES]

    def score(self, input_fn):
        """The sum of each example's distance to its nearest center, over one pass of input_fn.

        tf.estimator evaluated one batch (``steps=1``); an input_fn yielding the whole data set
        as one batch (as its examples did) gives the same number. Unlike scikit-learn's
        ``score``, it is not negated.
        """
        return self.evaluate(input_fn)[self.SCORE]


def _as_true(op):
    with tf.control_dependencies([op]):
        return tf.constant(True)
