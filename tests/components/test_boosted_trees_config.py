"""The pipeline's canned config builds BoostedTreesClassifier/Regressor from a FeatureSpec."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from components.feature_spec import Bucketized, FeatureSpec, Hashed, Label, Numeric
from components.trainer.canned_config import (NUMERIC_Z_BUCKETS, CannedEstimatorConfig, boosted_trees_columns,
                                              build_estimator)
from components.trainer.hyperparameters import apply_hyperparameters, check_hyperparameter
from trainer import feature_column as fc
from trainer.canned.boosted_trees import BoostedTreesClassifier, BoostedTreesRegressor

# No Vocabulary feature: the columns need no transform graph (its path is never read).
SPEC = FeatureSpec(features=(Numeric("fare"), Bucketized("miles", num_buckets=4), Hashed("company", 8)),
                   label=Label("big_tipper"))
NO_GRAPH = "/nonexistent/transform_graph"


def test_columns_are_bucketized_z_scores_and_indicators():
    columns = {c.name: c for c in boosted_trees_columns(SPEC, NO_GRAPH)}
    assert set(columns) == {"fare_bucketized", "miles_indicator", "company_indicator"}
    fare = columns["fare_bucketized"]
    assert len(fare.boundaries) == NUMERIC_Z_BUCKETS - 1
    np.testing.assert_allclose(fare.boundaries[NUMERIC_Z_BUCKETS // 2 - 1], 0.0, atol=1e-9)  # the median
    assert isinstance(columns["miles_indicator"], fc.IndicatorColumn)
    assert columns["miles_indicator"].categorical_column.num_buckets == 4


def test_config_builds_and_trains_a_classifier(tmp_path):
    config = CannedEstimatorConfig("BoostedTreesClassifier", feature_spec=SPEC, kwargs={"n_trees": 2, "max_depth": 2})
    est = build_estimator(config, NO_GRAPH, model_dir=str(tmp_path))
    assert isinstance(est, BoostedTreesClassifier) and est.get_params()["n_batches_per_layer"] == 1
    rng = np.random.default_rng(0)
    fare = rng.normal(size=200).astype(np.float32)
    features = {"fare": fare, "miles": rng.integers(0, 4, 200), "company": rng.integers(0, 8, 200)}
    labels = (fare > 0.5).astype(np.int64)
    est.train(lambda: tf.data.Dataset.from_tensors((features, labels)).repeat(), steps=100)
    assert est.get_variable_value("global_step") == 4  # 2 trees x 2 layers, then it stops
    assert next(iter(est.experimental_feature_importances())) == "fare_bucketized"
    with pytest.raises(ValueError, match="warm_start_from"):
        build_estimator(config, NO_GRAPH, model_dir=str(tmp_path / "w"), warm_start_from=str(tmp_path))


def test_hyperparameters_set_the_tree_arguments():
    config = CannedEstimatorConfig("BoostedTreesRegressor", feature_spec=SPEC)
    tuned = apply_hyperparameters(config, {"learning_rate": 0.3, "n_trees": 20, "max_depth": 3, "batch_size": 128})
    assert tuned.kwargs == {"learning_rate": 0.3, "n_trees": 20, "max_depth": 3}
    assert tuned.batch_size == 128
    assert isinstance(build_estimator(tuned, NO_GRAPH, model_dir=None), BoostedTreesRegressor)
    with pytest.raises(ValueError, match="'hidden_units' does not apply to BoostedTreesRegressor"):
        check_hyperparameter("hidden_units", "BoostedTreesRegressor")
    with pytest.raises(ValueError, match="'n_trees' does not apply to DNNClassifier"):
        check_hyperparameter("n_trees", "DNNClassifier")


def test_yaml_model_section_selects_boosted_trees(tmp_path):
    import os

    from pipeline.yaml_spec import build_pipeline, load_spec

    taxi = os.path.join(os.path.dirname(__file__), "..", "..", "pipeline", "examples", "taxi.yaml")
    spec = load_spec(taxi, overrides=["model.estimator=BoostedTreesClassifier",
                                      "model.args={n_batches_per_layer: 4, n_trees: 50, max_depth: 4}"])
    p = build_pipeline(spec, root=str(tmp_path))
    canned = p.component("Trainer").parameters.canned
    assert canned.estimator == "BoostedTreesClassifier"
    assert canned.kwargs == {"n_batches_per_layer": 4, "n_trees": 50, "max_depth": 4}
    assert p.component("Evaluator").parameters.task == "classification"
    assert p.component("InfraValidator").parameters.request_kinds == ("classify", "predict")
