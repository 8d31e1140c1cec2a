"""components/trainer/warm_start.py without training: the row map between two vocabularies, and
when a base Model's architecture lets a canned model warm-start from it. (Re-indexing a real
checkpoint: tests/pipeline/test_retraining.py.)"""

from __future__ import annotations

import dataclasses

from components.artifacts import Model
from components.feature_spec import FeatureSpec, Label, Numeric, Vocabulary
from components.trainer import CannedEstimatorConfig
from components.trainer.warm_start import architecture, row_map, why_not_warm_start

SPEC = FeatureSpec(features=(Numeric("fare"), Vocabulary("company", num_oov_buckets=2)),
                   label=Label("big_tipper"))
CONFIG = CannedEstimatorConfig("DNNLinearCombinedClassifier", feature_spec=SPEC,
                               kwargs={"dnn_hidden_units": [8], "dnn_optimizer": "Adagrad"})


def test_rows_follow_their_tokens_new_tokens_get_none_and_oov_rows_stay_oov():
    old, new = ["a", "b", "c"], ["c", "d", "a"]
    assert row_map(old, new, num_oov_buckets=2, old_size=5) == [2, None, 0, 3, 4]
    assert row_map(["a"], ["a", "b"], num_oov_buckets=1, old_size=1) == [0, None, None]  # no old OOV row


def test_a_base_of_the_same_architecture_is_warm_started_from():
    base = Model(uri="/m", id=3, properties={"architecture": architecture(CONFIG)})
    assert why_not_warm_start(base, CONFIG) is None
    other_optimizer = dataclasses.replace(CONFIG, kwargs={"dnn_hidden_units": [8], "dnn_optimizer": "SGD"},
                                          batch_size=16, random_seed=3)
    assert why_not_warm_start(base, other_optimizer) is None  # no trainable variable changes


def test_another_architecture_or_none_recorded_means_a_cold_start():
    base = Model(uri="/m", id=3, properties={"architecture": architecture(CONFIG)})
    wider = dataclasses.replace(CONFIG, kwargs={"dnn_hidden_units": [16]})
    assert why_not_warm_start(base, wider) == "base Model 3 has another kwargs"
    more_features = dataclasses.replace(CONFIG, feature_spec=dataclasses.replace(
        SPEC, features=SPEC.features + (Numeric("trip_miles"),)), estimator="DNNClassifier")
    assert why_not_warm_start(base, more_features) == "base Model 3 has another estimator and feature_spec"
    assert why_not_warm_start(Model(uri="/m", id=4), CONFIG) == (
        "base Model 4 records no architecture (not trained by the canned Trainer)")
