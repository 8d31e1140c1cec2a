"""pipeline/examples/taxi_regression.yaml end to end, to a pushed model that answers Regress.

It runs on a 300-row slice of data/taxi/data.csv with 200 training steps (``overrides``
change the example's values, nothing else). The classification example, taxi.yaml, runs
through the CLI to a pushed model in test_taxi_e2e.py::test_taxi_yaml_cli_run.
"""

from __future__ import annotations

import csv
import glob
import json
import os

import numpy as np
import pytest

from tests.pipeline.e2e_helpers import ALL, MODEL_NODES, REPO, raw_feature_spec, serialized_examples

REGRESSION_YAML = os.path.join(REPO, "pipeline", "examples", "taxi_regression.yaml")
ROWS = 300


def taxi_slice(directory, *, rows=ROWS, blank_fare_rows=0) -> str:
    """The first ``rows`` rows of data/taxi/data.csv, plus copies of row 1 without a fare; returns the file."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(REPO, "data", "taxi", "data.csv"), encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        header, lines = reader.fieldnames, [next(reader) for _ in range(rows)]
    lines += [{**lines[0], "fare": ""} for _ in range(blank_fare_rows)]
    path = os.path.join(directory, "data.csv")
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, header)
        writer.writeheader()
        writer.writerows(lines)
    return path


@pytest.mark.slow
def test_regression_yaml_pushes_a_model_whose_regression_signature_matches_the_estimator(tmp_path):
    import tensorflow as tf
    import tensorflow_transform as tft

    from components.trainer.canned_config import build_estimator
    from pipeline import LocalRunner
    from pipeline.yaml_spec import build_pipeline, load_spec

    data, root = taxi_slice(tmp_path / "data", blank_fare_rows=1), str(tmp_path / "root")
    spec = load_spec(REGRESSION_YAML, overrides=[
        f"data.path={data}", "training.steps=200", "training.random_seed=1"])
    result = LocalRunner().run(build_pipeline(spec, root=root, beam_pipeline_args=["--direct_num_workers=1"]))
    assert result.executed == ALL + MODEL_NODES

    # The row without a target is quarantined by ExampleGen, not trained on as fare 0.
    examples = result.outputs["ExampleGen"]["examples"]
    assert examples.properties["quarantined"] == 1 and sum(examples.properties["row_counts"].values()) == ROWS
    with open(os.path.join(examples.uri, examples.properties["quarantine_file"]), encoding="utf-8") as f:
        bad = json.loads(f.readline())
    assert (bad["row"], bad["column"], bad["problem"]) == (ROWS + 2, "fare", "has no label value.")
    transform_graph = result.outputs["Transform"]["transform_graph"].uri
    assert tft.TFTransformOutput(transform_graph).transformed_feature_spec()["fare"].dtype == tf.float32

    blessing = result.outputs["Evaluator"]["blessing"].properties
    assert blessing["verdict"] == "BLESSED", blessing["reason"]
    assert blessing["metrics"]["mean_absolute_error"] <= 4.0 and blessing["metrics"]["example_count"] > 50
    assert result.outputs["InfraValidator"]["blessing"].properties["reason"].startswith("regress:")
    pushed = result.outputs["Pusher"]["pushed_model"].properties
    assert pushed["pushed"] is True
    assert os.path.dirname(pushed["pushed_destination"]) == os.path.join(root, "serving", "taxi_fare")

    raw_spec = raw_feature_spec(result.outputs["SchemaGen"]["schema"].schema_path)
    requests = serialized_examples(data, raw_spec, skip={"fare"})
    served = tf.saved_model.load(pushed["pushed_destination"]).signatures["regression"]
    outputs = served(inputs=tf.constant(requests))["outputs"].numpy()
    assert outputs.shape == (len(requests), 1) and np.all(np.isfinite(outputs))

    # The Estimator's own predictions: its final checkpoint, on the same rows transformed by the same graph.
    raw = tf.io.parse_example(tf.constant(requests), {k: v for k, v in raw_spec.items() if k != "fare"})
    transformed = tft.TFTransformOutput(transform_graph).transform_features_layer()(raw)
    inputs = {k: v.numpy() for k, v in transformed.items() if k != "fare"}
    canned = build_pipeline(spec, root=root).component("Trainer").parameters.canned
    estimator = build_estimator(canned, transform_graph, model_dir=result.outputs["Trainer"]["model_run"].uri)
    own = np.array([p["predictions"] for p in estimator.predict(
        lambda: tf.data.Dataset.from_tensor_slices(inputs).batch(len(requests)))])
    np.testing.assert_allclose(outputs, own.reshape(-1, 1), rtol=1e-4, atol=1e-3)
    assert np.std(outputs) > 1.0  # it is a fitted model, not a constant

    # An unchanged rerun stays cached: the served model was pushed after this candidate was trained,
    # so it is not the candidate's baseline, and nothing is pushed again.
    again = LocalRunner().run(build_pipeline(spec, root=root, beam_pipeline_args=["--direct_num_workers=1"]))
    assert again.cached == ALL + ["Trainer", "Evaluator", "InfraValidator", "Pusher"]
    assert len(glob.glob(os.path.join(root, "serving", "taxi_fare", "[0-9]*"))) == 1

    # A changed model (more steps) is judged against the pushed one: within min_change=-1.0 MSE, pushed.
    first_model = result.outputs["Trainer"]["model"]
    longer = load_spec(REGRESSION_YAML, overrides=[
        f"data.path={data}", "training.steps=220", "training.random_seed=1"])
    retrained = LocalRunner().run(build_pipeline(longer, root=root, beam_pipeline_args=["--direct_num_workers=1"]))
    assert "Trainer" in retrained.executed and retrained.cached == ALL
    # (the warm-start resolver looks for pushes before these transformed examples: there are none)
    assert retrained.resolved["WarmStartResolver"] == {"model": []}
    assert [m.id for m in retrained.resolved["BaselineResolver"]["model"]] == [first_model.id]
    blessing = retrained.outputs["Evaluator"]["blessing"].properties
    assert blessing["verdict"] == "BLESSED" and blessing["baseline_model_id"] == first_model.id, blessing["reason"]
    assert blessing["metrics"]["mean_squared_error_diff"] <= 1.0  # candidate minus baseline: at most 1.0 worse
    assert len(glob.glob(os.path.join(root, "serving", "taxi_fare", "[0-9]*"))) == 2
