"""The migration corpus: tf.estimator programs in the shape of TensorFlow's tutorials and guides
(programs.py) run with only their imports changed, or fail with the one line that says what to
change (docs/migration.md's promise)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.trainer.migration import programs


def test_premade_estimators(tmp_path):
    result = programs.premade_estimators(str(tmp_path))
    assert {"accuracy", "average_loss", "loss", "global_step"} <= set(result["eval"])
    assert result["eval"]["global_step"] == 500
    assert len(result["predictions"]) == 3 and all(0 <= c < 3 for c in result["predictions"])
    # tf.estimator 2.x's default (Adagrad 0.001) learns slowly, as it did there (the tutorial's
    # 5000 steps reached 0.53): the loss falls, whatever the (unseeded) initialization.
    assert result["eval"]["loss"] < result["first"]["loss"]


def test_linear_model_with_a_float_feature_in_a_crossed_column(tmp_path):
    result = programs.linear_model(str(tmp_path))
    # 10 epochs of 320 rows in batches of 32 (unseeded shuffles). 7 runs: AUC 0.898-0.915 and
    # accuracy 0.70-0.86 on the 80 eval rows, whose majority class is 0.575.
    assert result["eval"]["global_step"] == 100
    assert result["eval"]["auc"] > 0.8 and result["eval"]["accuracy"] > result["eval"]["accuracy_baseline"]


def test_a_tf1_optimizer_says_what_to_change_and_the_changed_program_runs(tmp_path):
    with pytest.raises(TypeError, match=r"tf.compat.v1.train.AdagradOptimizer cannot see the Estimator's "
                                        r"variables.*trainer.optimizers.Adagrad\(learning_rate\).*"
                                        r"trainer.get_global_step\(\)"):
        programs.tf1_model_fn(str(tmp_path / "tf1"))
    result = programs.tf1_model_fn_as_the_message_says(str(tmp_path / "fixed"))
    assert result["eval"]["loss"] < 0.1  # y = 2x + 1 is linear: 400 steps fit it


def test_keras_model_to_estimator_with_the_input_layers_name(tmp_path):
    result = programs.keras_model_to_estimator(str(tmp_path))
    assert result["eval"]["global_step"] == 300 and np.isfinite(result["eval"]["loss"])


def test_custom_estimator_with_a_schedule_add_metrics_and_hooks(tmp_path):
    result = programs.custom_estimator_with_hooks_and_schedule(str(tmp_path))
    assert result["eval"]["global_step"] == 400
    assert result["eval"]["accuracy"] > 0.85  # a linear boundary; 5 runs of 400 steps: 0.994-1.0
    assert 0.2 < result["eval"]["positive_rate"] < 0.8  # the data's is 0.48; 5 runs: 0.479-0.484


def test_numpy_input_fn_and_warm_start(tmp_path):
    result = programs.numpy_input_fn_and_warm_start(str(tmp_path))
    assert result["first"]["global_step"] == 300
    # Warm-started from a converged model, then one SGD step (its gradient is ~0 there): the
    # first model's weights, not the zeros of a cold start.
    np.testing.assert_allclose(result["warm_weights"], result["first_weights"], atol=0.3)
    assert np.abs(result["first_weights"]).max() > 1.0


def test_mirrored_strategy(tmp_path):
    result = programs.mirrored_strategy(str(tmp_path))
    # Adam at Keras's 0.001, 200 steps, unseeded: 5 runs gave 0.83-0.97 (chance: 0.5).
    assert result["eval"]["global_step"] == 200 and result["eval"]["accuracy"] > 0.7
