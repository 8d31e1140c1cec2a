"""Canned estimators given no optimizer (or one by name only) train as tf.estimator 2.15 did.

tests/data/tf_estimator_2_15_canned/ holds, per case, a checkpoint written by the real
tf.estimator 2.15 after 5 steps, the losses of 3 more steps from it and every trainable
weight after them (make_fixture.py there). The same estimator built with ``trainer``
(imports changed, nothing else) resumes from that checkpoint: equal losses and weights mean
equal default optimizers and learning rates (DNN: Keras's default rate for the named
optimizer, Adagrad 0.001 and SGD 0.01; linear: Ftrl 0.2).
"""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

import trainer
from tests.trainer import models
from trainer import feature_column as fc

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "..", "data", "tf_estimator_2_15_canned")
CAT = fc.categorical_column_with_identity("c", 4)
DNN = dict(hidden_units=[3], feature_columns=[fc.numeric_column("x"), fc.embedding_column(CAT, 2)])
LINEAR = dict(feature_columns=[CAT, fc.numeric_column("x")])
CASES = {
    "dnn_classifier": (trainer.DNNClassifier, DNN),
    "dnn_regressor": (trainer.DNNRegressor, DNN),
    "dnn_classifier_sgd": (trainer.DNNClassifier, dict(DNN, optimizer="SGD")),
    "linear_classifier": (trainer.LinearClassifier, LINEAR),
    "linear_regressor": (trainer.LinearRegressor, LINEAR),
    # 1/sqrt(30) < 0.2: the rate tells 'Ftrl' by name (0.2) from optimizer=None (the capped one).
    "linear_classifier_30_columns": (trainer.LinearClassifier,
                                     dict(feature_columns=[fc.numeric_column(f"x{i}") for i in range(30)])),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_three_steps_from_the_tf_estimator_checkpoint_match(case, tmp_path):
    with open(os.path.join(FIXTURE, "expected.json")) as f:
        expected = json.load(f)[case]
    data = np.load(os.path.join(FIXTURE, "data.npz"))
    shutil.copytree(os.path.join(FIXTURE, case), tmp_path / "model")
    cls, kwargs = CASES[case]
    estimator = cls(model_dir=str(tmp_path / "model"), **kwargs)
    labels = data["y"].astype(np.float32) if "regressor" in case else data["y"]

    x = data["x"]
    features = {"x": x, "c": data["c"], **{f"x{i}": x * (i + 1) / 30 for i in range(30)}}

    def input_fn():
        return tf.data.Dataset.from_tensor_slices((features, labels)).repeat().batch(16)

    losses = models.LossRecorder()
    estimator.train(input_fn, steps=3, hooks=[losses])
    assert estimator.get_variable_value("global_step") == 8
    # tf.estimator's LOSSES collection: the batch mean (classifier) or the per-example losses
    # (regressor), whose mean is the reported loss. float32 math on the same values: 1e-5.
    np.testing.assert_allclose(losses.losses, [np.mean(v[0]) for v in expected["next_losses"]], rtol=1e-5)
    for name, value in expected["weights_after_3_steps"].items():
        np.testing.assert_allclose(estimator.get_variable_value(name), value, rtol=1e-4, atol=1e-6, err_msg=name)
