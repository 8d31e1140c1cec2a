"""The whole taxi pipeline (pipeline/examples/taxi_full_pipeline.py) on 300 rows: a model trained for
one step is NOT_BLESSED, so nothing is pushed, and the Pusher says why."""

from __future__ import annotations

import os

import pytest

from tests.components.test_trainer import taxi_slice


@pytest.mark.slow
def test_one_step_model_is_not_blessed_and_nothing_is_pushed(tmp_path):
    from pipeline import LocalRunner
    from pipeline.examples.taxi_full_pipeline import create_pipeline

    data = taxi_slice(tmp_path / "data")
    serving = tmp_path / "serving"
    result = LocalRunner().run(create_pipeline(root=str(tmp_path / "root"), data_root=data, on_anomaly="warn",
                                               train_steps=1, push_destination=str(serving),
                                               random_seed=7))
    assert set(result.states.values()) == {"COMPLETE"}
    blessing = result.outputs["Evaluator"]["blessing"].properties
    assert blessing["verdict"] == "NOT_BLESSED", blessing["metrics"]
    assert "auc on overall" in blessing["reason"] or "calibration on overall" in blessing["reason"]
    assert result.outputs["Evaluator"]["evaluation"].properties["metrics"]["example_count"] > 50
    assert result.outputs["InfraValidator"]["blessing"].properties["blessed"] is True
    pushed = result.outputs["Pusher"]["pushed_model"].properties
    assert pushed["pushed"] is False
    assert pushed["reason"].startswith("model_blessing")
    assert not os.path.exists(serving / "taxi")
    assert result.resolved["WarmStartResolver"] == {"model": []}  # nothing blessed yet: a cold start
    assert result.resolved["BaselineResolver"] == {"model": []}
    assert result.outputs["Trainer"]["model"].properties["base_model_id"] is None
