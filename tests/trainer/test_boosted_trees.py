"""BoostedTreesClassifier / Regressor / Estimator on small data with known answers."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
import tensorflow as tf

import trainer
from tests.server_process import predict_through_python_m_serving
from trainer import feature_column as fc
from trainer.canned.boosted_trees import (BoostedTreesClassifier, BoostedTreesEstimator,
                                          BoostedTreesRegressor)

ROOT = pathlib.Path(__file__).resolve().parents[2]
RNG = np.random.default_rng(7)
N = 400
X1 = RNG.uniform(0, 4, N).astype(np.float32)
X2 = RNG.uniform(0, 4, N).astype(np.float32)
X3 = RNG.uniform(0, 4, N).astype(np.float32)
CAT = RNG.choice(["a", "b", "c"], N)
BOUNDS = [1.0, 2.0, 3.0]
COLUMNS = [fc.bucketized_column(fc.numeric_column(k), BOUNDS) for k in ("x1", "x2")]
# A step function of two bucketized features: a depth-2 tree represents it exactly.
AND = ((X1 >= 2) & (X2 >= 1)).astype(np.int64)
STEP = (3.0 * (X1 >= 2) + 1.0 * (X2 >= 1)).astype(np.float32)
FEATURES = {"x1": X1, "x2": X2, "x3": X3, "cat": CAT}


def whole(labels, features=FEATURES, repeat=True):
    def fn():
        ds = tf.data.Dataset.from_tensors((features, labels))
        return ds.repeat() if repeat else ds
    return fn


def features_only(rows=slice(None)):
    return lambda: tf.data.Dataset.from_tensors({k: v[rows] for k, v in FEATURES.items()})


def predictions(est, key, rows=slice(None)):
    return np.stack([p[key] for p in est.predict(features_only(rows))])


def test_classifier_learns_a_step_function_and_stops_when_complete(tmp_path):
    est = BoostedTreesClassifier(COLUMNS, n_batches_per_layer=1, model_dir=str(tmp_path),
                                 n_trees=3, max_depth=2, learning_rate=0.5)
    est.train(whole(AND), steps=1000)
    # 3 trees of 2 layers, one batch per layer: training ends by itself after 6 steps.
    assert est.get_variable_value("global_step") == 6
    assert est.get_variable_value("boosted_trees/finished_trees") == 3
    metrics = est.evaluate(whole(AND, repeat=False))
    assert metrics["accuracy"] == 1.0
    np.testing.assert_array_equal(predictions(est, "class_ids")[:, 0], AND)
    # A complete model does not change when trained again.
    before = est.get_variable_value("boosted_trees/node_value")
    est.train(whole(AND), steps=10)
    np.testing.assert_array_equal(est.get_variable_value("boosted_trees/node_value"), before)
    assert est.get_variable_value("global_step") == 6  # not even a no-op step


def test_regressor_fits_a_step_function_exactly(tmp_path):
    est = BoostedTreesRegressor(COLUMNS, n_batches_per_layer=1, model_dir=str(tmp_path),
                                n_trees=1, max_depth=2, learning_rate=1.0)
    est.train(whole(STEP[:, None]), steps=100)
    # One tree, learning rate 1, no regularization: each leaf is the mean of its (constant)
    # labels; float32 sums of 400 values keep ~1e-6 relative error.
    np.testing.assert_allclose(predictions(est, "predictions")[:, 0], STEP, atol=1e-4)
    names = {"boosted_trees/node_feature", "boosted_trees/node_value", "global_step"}
    assert names <= {name for name, _ in tf.train.list_variables(str(tmp_path))}


def test_multiclass_leaves_are_vectors(tmp_path):
    labels = (X1 >= 2).astype(np.int64) + (X2 >= 3).astype(np.int64)
    est = BoostedTreesClassifier(COLUMNS, n_batches_per_layer=1, model_dir=str(tmp_path),
                                 n_classes=3, n_trees=5, max_depth=2, learning_rate=0.5)
    est.train(whole(labels), steps=100)
    np.testing.assert_array_equal(predictions(est, "class_ids")[:, 0], labels)


def test_indicator_columns_and_center_bias(tmp_path):
    labels = (CAT == "b").astype(np.int64)
    columns = [fc.indicator_column(fc.categorical_column_with_vocabulary_list("cat", ["a", "b", "c"]))]
    est = BoostedTreesClassifier(columns, n_batches_per_layer=1, model_dir=str(tmp_path),
                                 n_trees=2, max_depth=1, learning_rate=1.0, center_bias=True)
    est.train(whole(labels), steps=100)
    # Newton steps on the bias stop once one moves it < 1e-3: within 1e-2 of the log-odds.
    rate = labels.mean()
    np.testing.assert_allclose(est.get_variable_value("boosted_trees/bias")[0],
                               np.log(rate / (1 - rate)), atol=1e-2)
    np.testing.assert_array_equal(predictions(est, "class_ids")[:, 0], labels)


def test_resuming_mid_layer_equals_one_run(tmp_path):
    def build(directory):
        return BoostedTreesRegressor(COLUMNS, n_batches_per_layer=2, model_dir=str(directory),
                                     n_trees=3, max_depth=3, learning_rate=0.3, l2_regularization=0.1)

    one = build(tmp_path / "one")
    one.train(whole(STEP[:, None]), steps=1000)
    first = build(tmp_path / "two")
    first.train(whole(STEP[:, None]), steps=5)  # stops inside a layer (2 batches per layer)
    assert first.get_variable_value("boosted_trees/batches_in_layer") == 1
    build(tmp_path / "two").train(whole(STEP[:, None]), steps=1000)  # a new object: reloads
    two = build(tmp_path / "two")
    for name in ("node_feature", "node_threshold", "node_value", "node_gain"):
        # The same float32 operations in the same order: equal up to round-off.
        np.testing.assert_allclose(two.get_variable_value(f"boosted_trees/{name}"),
                                   one.get_variable_value(f"boosted_trees/{name}"), atol=1e-6)
    assert two.get_variable_value("global_step") == one.get_variable_value("global_step") == 18


def test_weights_equal_repeated_rows(tmp_path):
    repeat = np.arange(N) < 100
    doubled = {k: np.concatenate([v, v[repeat]]) for k, v in FEATURES.items()}
    noisy = STEP + RNG.normal(0, 0.5, N).astype(np.float32)
    weighted = dict(FEATURES, w=np.where(repeat, 2.0, 1.0).astype(np.float32))

    def build(directory, weight_column):
        return BoostedTreesRegressor(COLUMNS, n_batches_per_layer=1, model_dir=str(directory),
                                     weight_column=weight_column, n_trees=3, max_depth=2)

    a = build(tmp_path / "a", None)
    a.train(whole(np.concatenate([noisy, noisy[repeat]])[:, None], doubled), steps=100)
    b = build(tmp_path / "b", "w")
    b.train(whole(noisy[:, None], weighted), steps=100)
    # Weight 2 and a repeated row give the same sums (the batch-size scale cancels in every
    # Newton step and split choice); float32 round-off only.
    np.testing.assert_allclose(predictions(b, "predictions"), predictions(a, "predictions"), atol=1e-5)
    unweighted = build(tmp_path / "c", None)
    unweighted.train(whole(noisy[:, None]), steps=100)
    assert not np.allclose(predictions(unweighted, "predictions"), predictions(a, "predictions"), atol=1e-3)


def test_feature_importances_rank_the_strongest_feature_first(tmp_path):
    columns = [fc.bucketized_column(fc.numeric_column(k), BOUNDS) for k in ("x3", "x2", "x1")]
    labels = (2.0 * (X1 >= 2) + 0.5 * (X2 >= 3) + 0.01 * (X3 >= 1)).astype(np.float32)
    est = BoostedTreesRegressor(columns, n_batches_per_layer=1, model_dir=str(tmp_path),
                                n_trees=5, max_depth=2)
    est.train(whole(labels[:, None]), steps=100)
    importances = est.experimental_feature_importances(normalize=True)
    assert list(importances) == ["x1_bucketized", "x2_bucketized", "x3_bucketized"]
    assert importances["x1_bucketized"] > 0.8
    np.testing.assert_allclose(sum(importances.values()), 1.0, rtol=1e-6)
    raw = est.experimental_feature_importances()
    assert raw["x1_bucketized"] > raw["x2_bucketized"] > 0


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_explanations_add_up_to_the_prediction(tmp_path, kind):
    columns = COLUMNS + [fc.bucketized_column(fc.numeric_column("x3"), BOUNDS)]
    if kind == "classifier":
        est = BoostedTreesClassifier(columns, n_batches_per_layer=1, model_dir=str(tmp_path),
                                     n_trees=4, max_depth=3, center_bias=True)
        labels, key = AND, "probabilities"
    else:
        est = BoostedTreesRegressor(columns, n_batches_per_layer=1, model_dir=str(tmp_path),
                                    n_trees=4, max_depth=3, center_bias=True)
        labels, key = STEP[:, None], "predictions"
    est.train(whole(labels), steps=100)
    explained = list(est.experimental_predict_with_explanations(features_only(slice(0, 20))))
    plain = predictions(est, key, slice(0, 20))
    for row, expected in zip(explained, plain):
        assert set(row["dfc"]) == {c.name for c in columns}
        # bias + contributions telescope to the prediction; float32 sums of ~12 terms.
        np.testing.assert_allclose(row["bias"] + sum(row["dfc"].values()), expected[-1], atol=1e-5)
        np.testing.assert_allclose(row[key], expected)
    assert any(abs(v) > 0.01 for v in explained[0]["dfc"].values())

    # A predict() made while an explanation generator is suspended, on a fresh estimator (no
    # program cached yet), gets the plain predictions only.
    again = type(est)(columns, n_batches_per_layer=1, model_dir=str(tmp_path), n_trees=4, max_depth=3,
                      center_bias=True)
    generator = again.experimental_predict_with_explanations(features_only(slice(0, 20)))
    assert "dfc" in next(generator)
    assert "bias" not in next(iter(again.predict(features_only(slice(0, 20)))))
    assert len(list(generator)) == 19


def test_pruning_removes_splits_that_do_not_pay(tmp_path):
    for mode in ("pre", "post"):
        est = BoostedTreesRegressor(COLUMNS, n_batches_per_layer=1, model_dir=str(tmp_path / mode),
                                    n_trees=2, max_depth=2, tree_complexity=1e6, pruning_mode=mode)
        est.train(whole(STEP[:, None]), steps=100)
        assert (est.get_variable_value("boosted_trees/node_feature") == -1).all(), mode
        np.testing.assert_array_equal(predictions(est, "predictions"), 0.0)
    # A small complexity keeps the real splits.
    est = BoostedTreesRegressor(COLUMNS, n_batches_per_layer=1, model_dir=str(tmp_path / "small"),
                                n_trees=1, max_depth=2, learning_rate=1.0, tree_complexity=1e-3,
                                pruning_mode="post")
    est.train(whole(STEP[:, None]), steps=100)
    np.testing.assert_allclose(predictions(est, "predictions")[:, 0], STEP, atol=1e-4)


def test_argument_errors():
    with pytest.raises(ValueError, match="numeric_column 'x1' of shape \\(2, 2\\)"):
        BoostedTreesClassifier([fc.numeric_column("x1", shape=(2, 2))], n_batches_per_layer=1)
    with pytest.raises(ValueError, match="quantile_sketch_epsilon=0"):
        BoostedTreesClassifier(COLUMNS, 1, quantile_sketch_epsilon=0)
    with pytest.raises(ValueError, match="indicator_column"):
        BoostedTreesClassifier([fc.embedding_column(fc.categorical_column_with_identity("c", 3), 2)], 1)
    with pytest.raises(ValueError, match="n_batches_per_layer=0"):
        BoostedTreesClassifier(COLUMNS, n_batches_per_layer=0)
    with pytest.raises(ValueError, match="pruning_mode='pre'.*tree_complexity"):
        BoostedTreesRegressor(COLUMNS, 1, pruning_mode="pre")
    with pytest.raises(ValueError, match="pruning_mode='full'"):
        BoostedTreesRegressor(COLUMNS, 1, pruning_mode="full")
    with pytest.raises(ValueError, match="train_in_memory=True"):
        BoostedTreesRegressor(COLUMNS, 2, train_in_memory=True)
    with pytest.raises(ValueError, match="learning_rate=0"):
        BoostedTreesRegressor(COLUMNS, 1, learning_rate=0)
    with pytest.raises(ValueError, match="l2_regularization=-1"):
        BoostedTreesRegressor(COLUMNS, 1, l2_regularization=-1)
    with pytest.raises(NotImplementedError, match="max_depth=30"):
        BoostedTreesRegressor(COLUMNS, 1, max_depth=30)
    with pytest.raises(ValueError, match="weight_column='w'"):
        BoostedTreesEstimator(COLUMNS, 1, head=trainer.heads.RegressionHead(), weight_column="w")
    est = BoostedTreesRegressor(COLUMNS, 1, n_trees=7)
    assert est.get_params()["n_trees"] == 7 and "head" not in est.get_params()


def test_distribution_strategy_is_refused(tmp_path):
    config = trainer.RunConfig(train_distribute=tf.distribute.OneDeviceStrategy("/cpu:0"))
    est = BoostedTreesRegressor(COLUMNS, 1, model_dir=str(tmp_path), config=config)
    with pytest.raises(NotImplementedError, match="train_distribute"):
        est.train(whole(STEP[:, None]), steps=1)


def test_estimator_with_a_head_and_savedmodel_reload(tmp_path):
    head = trainer.heads.PoissonRegressionHead()
    counts = np.round(np.exp(STEP / 2)).astype(np.float32)[:, None]
    est = BoostedTreesEstimator(COLUMNS, 1, head=head, model_dir=str(tmp_path / "m"),
                                n_trees=5, max_depth=2, learning_rate=0.5)
    est.train(whole(counts), steps=100)
    expected = predictions(est, "predictions", slice(0, 8))
    receiver = trainer.export.build_raw_serving_input_receiver_fn(
        {"x1": tf.TensorSpec([None], tf.float32), "x2": tf.TensorSpec([None], tf.float32)})
    path = est.export_saved_model(str(tmp_path / "export"), receiver).decode()
    loaded = tf.saved_model.load(path)
    served = loaded.signatures["predict"](x1=tf.constant(X1[:8]), x2=tf.constant(X2[:8]))
    np.testing.assert_allclose(served["predictions"].numpy(), expected, rtol=1e-6)
    with pytest.raises(NotImplementedError, match="PoissonRegressionHead"):
        next(est.experimental_predict_with_explanations(features_only(slice(0, 2))))


def _served_classifier(tmp_path):
    est = BoostedTreesClassifier(COLUMNS, 1, model_dir=str(tmp_path / "model"), n_trees=5, max_depth=2)
    est.train(whole(AND), steps=100)
    spec = fc.make_parse_example_spec(COLUMNS)
    parsing = trainer.export.build_parsing_serving_input_receiver_fn(spec)
    path = est.export_saved_model(str(tmp_path / "served" / "bt"), parsing).decode()
    return est, path


def _examples(rows):
    return tf.constant([tf.train.Example(features=tf.train.Features(feature={
        "x1": tf.train.Feature(float_list=tf.train.FloatList(value=[X1[i]])),
        "x2": tf.train.Feature(float_list=tf.train.FloatList(value=[X2[i]]))})).SerializeToString()
        for i in rows])


@pytest.mark.slow
def test_parsing_export_serves_through_python_m_serving(tmp_path):
    est, path = _served_classifier(tmp_path)
    expected = predictions(est, "probabilities", slice(0, 6))
    loaded = tf.saved_model.load(path)
    np.testing.assert_allclose(loaded.signatures["serving_default"](inputs=_examples(range(6)))["scores"],
                               expected, rtol=1e-6)
    [answer] = predict_through_python_m_serving(
        {"bt": tmp_path / "served" / "bt"}, [("bt", "predict", {"examples": _examples(range(6))}, "probabilities")],
        cwd=ROOT)
    # The same SavedModel graph as predict's, on the same float32 inputs.
    np.testing.assert_allclose(answer, expected, atol=1e-6)


def test_train_in_memory_caches_logits_and_grows_the_same_trees(tmp_path):
    def build(directory, in_memory):
        return BoostedTreesClassifier(COLUMNS, n_batches_per_layer=1, model_dir=str(directory),
                                      n_trees=4, max_depth=2, center_bias=True,
                                      train_in_memory=in_memory)

    plain = build(tmp_path / "plain", False)
    plain.train(whole(AND), steps=1000)
    cached = build(tmp_path / "cached", True)
    cached.train(whole(AND), steps=3)
    build(tmp_path / "cached", True).train(whole(AND), steps=1000)  # the cache rebuilt after reload
    for name in ("node_feature", "node_threshold", "node_value", "bias"):
        # Cached and walked logits are the same float32 sums, in another order: round-off only.
        np.testing.assert_allclose(cached.get_variable_value(f"boosted_trees/{name}"),
                                   plain.get_variable_value(f"boosted_trees/{name}"), atol=1e-5)
    assert "boosted_trees/cached_logits" not in cached.get_variable_names()


def test_numeric_columns_are_bucketized_at_data_quantiles(tmp_path):
    labels = np.where(X1 > 1.3, 2.0, 0.0).astype(np.float32)[:, None]

    def build(directory):
        return BoostedTreesRegressor([fc.numeric_column("x1"), fc.numeric_column("x2")], n_batches_per_layer=2,
                                     model_dir=str(directory), n_trees=2, max_depth=1, learning_rate=1.0,
                                     quantile_sketch_epsilon=0.02)

    # Every batch is the whole data set, so a run resumed mid-phase sees the same batches (an
    # input_fn restarts from its first batch after a restore).
    batches = whole(labels)
    one = build(tmp_path / "one")
    one.train(batches, steps=1000)
    # 2 steps find the boundaries, then 2 trees x 1 layer x 2 batches.
    assert one.get_variable_value("global_step") == 6
    boundaries = one.get_variable_value("boosted_trees/quantile_boundaries")
    assert boundaries.shape == (2, 49)
    # The 25th of 49 boundaries is the median of U(0, 4) data: ~2 (sampling error ~0.1 at 400 rows).
    np.testing.assert_allclose(boundaries[:, 24], 2.0, atol=0.3)
    wrong = np.abs(predictions(one, "predictions")[:, 0] - labels[:, 0]) > 0.5
    # Only rows between the split's boundary and 1.3 can be wrong: 50 buckets of ~8 rows each.
    assert wrong.sum() <= 8
    two = build(tmp_path / "two")
    two.train(batches, steps=1)  # stops inside the quantile phase; resumes from its sample
    build(tmp_path / "two").train(batches, steps=1000)
    for name in ("quantile_boundaries", "node_feature", "node_threshold", "node_value"):
        np.testing.assert_allclose(two.get_variable_value(f"boosted_trees/{name}"),
                                   one.get_variable_value(f"boosted_trees/{name}"), atol=1e-6)
