"""The taxi pipeline end to end through the CLI: full run, all-cached rerun, partial rerun."""

import os

import pytest

from tests.pipeline.e2e_helpers import (
    ALL, MODEL_NODES, REPO, TAXI_PY, TAXI_YAML, cli, raw_feature_spec, run_outputs, serialized_examples, states,
)
from pipeline import LocalRunner


def test_taxi_dsl_cli_run_then_all_cached_then_parameter_change_reruns_downstream(tmp_path):
    root = str(tmp_path / "root")
    first = cli("run", TAXI_PY, "--root", root)
    assert first.returncode == 0, first.stderr[-3000:]
    assert f"executed {ALL}, cached []" in first.stdout
    assert states(root) == {c: "COMPLETE" for c in ALL}
    assert "Transform" in first.stderr and "done" in first.stderr  # rich progress lines

    second = cli("run", TAXI_PY, "--root", root)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"executed [], cached {ALL}" in second.stdout

    # A parameter change reruns that component and what is downstream of it, nothing else.
    from pipeline.examples.taxi_pipeline import create_pipeline
    pipeline = create_pipeline(root=root)
    schema_gen = pipeline.component("SchemaGen")
    schema_gen.parameters = type(schema_gen.parameters)(max_string_domain_size=50)
    result = LocalRunner().run(pipeline)
    assert result.cached == ["ExampleGen", "StatisticsGen"]
    assert result.executed == ["SchemaGen", "ExampleValidator", "Transform"]

    runs = cli("runs", "--root", root)
    assert runs.returncode == 0 and runs.stdout.count("COMPLETE") >= 3
    transformed = result.outputs["Transform"]["transformed_examples"]
    lineage = cli("lineage", str(transformed.id), "--root", root)
    assert lineage.returncode == 0
    for component in ("Transform", "SchemaGen", "StatisticsGen", "ExampleGen"):
        assert component in lineage.stdout
    examples = result.outputs["ExampleGen"]["examples"].properties
    assert examples["rows_in"] == 15002 == sum(examples["row_counts"].values()) + examples["quarantined"]
    gen = result.outputs["ExampleGen"]["examples"]
    assert gen.quarantine_path is None or os.path.isfile(gen.quarantine_path)  # valid after publish


@pytest.mark.slow
def test_taxi_yaml_cli_run(tmp_path):
    # The example as shipped, on the whole data file; training is cut (6000 -> 100 steps) and seeded.
    import numpy as np
    import tensorflow as tf

    root = str(tmp_path / "root")
    run = cli("run", TAXI_YAML, "--root", root, "--set", "training.steps=100", "--set", "training.random_seed=1",
              "--beam-arg=--direct_num_workers=1")
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"executed {ALL + MODEL_NODES}, cached []" in run.stdout
    assert states(root) == {c: "COMPLETE" for c in ALL + MODEL_NODES}

    blessing = run_outputs(root, "Evaluator")["blessing"].properties
    assert blessing["verdict"] == "BLESSED", blessing["reason"]
    assert f"Evaluator: BLESSED: {blessing['reason']}" in run.stderr  # the verdict, on the terminal
    assert blessing["metrics"]["auc"] >= 0.7 and 0.6 <= blessing["metrics"]["calibration"] <= 1.5
    assert run_outputs(root, "InfraValidator")["blessing"].properties["reason"].startswith("classify:")
    pushed = run_outputs(root, "Pusher")["pushed_model"].properties
    assert pushed["pushed"] is True
    assert os.path.dirname(pushed["pushed_destination"]) == os.path.join(root, "serving", "taxi")

    model = tf.saved_model.load(pushed["pushed_destination"])
    assert {"classification", "predict", "serving_default"} <= set(model.signatures)
    raw_spec = raw_feature_spec(run_outputs(root, "SchemaGen")["schema"].schema_path)
    requests = serialized_examples(os.path.join(REPO, "data", "taxi", "data.csv"), raw_spec,
                                   skip={"big_tipper"}, limit=10)
    assert len(requests) == 10
    scores = model.signatures["classification"](inputs=tf.constant(requests))["scores"].numpy()
    assert scores.shape == (10, 2) and np.allclose(scores.sum(axis=1), 1.0, atol=1e-5)


def test_failing_run_prints_one_line_summary_and_exits_1(tmp_path):
    bad = tmp_path / "bad.yaml"
    (tmp_path / "d.csv").write_text("fare,tips\n1,2\nabc,3\n")
    bad.write_text("name: bad\ndata: {path: d.csv, bad_rows: fail}\nfeatures: [{name: fare, type: numeric}]\n")
    run = cli("run", str(bad), "--root", str(tmp_path / "root"))
    assert run.returncode == 1
    assert "ExampleGen failed: " + str(tmp_path / "d.csv") + " row 3 column 'fare': 'abc' is not a float." \
        in " ".join(run.stderr.split())
