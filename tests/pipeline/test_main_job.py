"""The main job end to end: the full taxi pipeline through the CLI, a pushed model, served and queried.

One CLI run (default settings, ~80 s) feeds every test here:
- the Evaluator's TFMA AUC, and the pushed model's own AUC on the eval split, are >= 0.93;
- the pushed model classifies raw tf.Examples built from CSV rows exactly as
  ``Estimator.predict`` does on the same rows transformed outside it (no training/serving skew);
- the commands the CLI prints serve the model and query it.
"""

from __future__ import annotations

import csv
import glob
import json
import os
import shlex
import subprocess
import sys

import pytest

from tests.pipeline.e2e_helpers import REPO, cli
from tests.server_process import stop, wait_for_grpc_port

FULL_PY = os.path.join(REPO, "pipeline", "examples", "taxi_full_pipeline.py")
CSV_ROWS = 60


@pytest.fixture(scope="module")
def main_job(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("main_job") / "taxi")
    result = cli("run", FULL_PY, "--root", root, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from pipeline.metadata import MetadataStore

    store = MetadataStore(f"sqlite:///{root}/metadata.sqlite")
    return root, result.stdout, store


def _latest(store, component, key):
    artifacts = store.published("taxi", component, key)
    assert artifacts, f"{component}.{key} was not published"
    return artifacts[-1]


def _pushed_dir(store):
    pushed = _latest(store, "Pusher", "pushed_model")
    assert pushed.properties["pushed"], pushed.properties
    return pushed.properties["pushed_destination"]


@pytest.mark.slow
def test_blessed_model_is_pushed_and_its_eval_auc_is_at_least_0_93(main_job):
    import numpy as np
    import tensorflow as tf
    from sklearn.metrics import roc_auc_score

    _, stdout, store = main_job
    evaluation = _latest(store, "Evaluator", "evaluation")
    assert evaluation.properties["metrics"]["auc"] >= 0.93, evaluation.properties
    assert _latest(store, "Evaluator", "blessing").properties["blessed"]
    assert "Pushed taxi version" in stdout

    # The pushed SavedModel itself, on the eval split's raw examples without their label.
    examples = _latest(store, "ExampleGen", "examples")
    serialized, labels = [], []
    for record in tf.data.TFRecordDataset(sorted(glob.glob(examples.file_pattern("eval"))),
                                          compression_type="GZIP"):
        example = tf.train.Example.FromString(record.numpy())
        labels.append(example.features.feature["big_tipper"].int64_list.value[0])
        del example.features.feature["big_tipper"]
        serialized.append(example.SerializeToString())
    served = tf.saved_model.load(_pushed_dir(store)).signatures["serving_default"]
    scores = np.concatenate([served(inputs=tf.constant(serialized[i:i + 1024]))["scores"].numpy()[:, 1]
                             for i in range(0, len(serialized), 1024)])
    assert len(labels) > 1000 and roc_auc_score(labels, scores) >= 0.93


@pytest.mark.slow
def test_pushed_model_classifies_csv_rows_exactly_as_estimator_predict(main_job, tmp_path):
    import numpy as np
    import tensorflow as tf
    import tensorflow_transform as tft
    from tensorflow_transform.tf_metadata import schema_utils

    from components.schema_gen.executor import load_schema
    from components.trainer.canned_config import build_estimator
    from components.trainer.model_paths import checkpoint_path
    from pipeline.examples.taxi_full_pipeline import create_pipeline
    from serving.client.base import to_example
    from serving.client.readers import read_rows

    root, _, store = main_job
    schema_path = _latest(store, "SchemaGen", "schema").schema_path
    # Raw rows as a client has them: CSV cells, no tips (the label's source), typed by the schema.
    rows_csv = tmp_path / "rows.csv"
    with open(os.path.join(REPO, "data", "taxi", "data.csv"), encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields = [c for c in reader.fieldnames if c != "tips"]
        with open(rows_csv, "w", newline="", encoding="utf-8") as out:
            writer = csv.DictWriter(out, fields, extrasaction="ignore")
            writer.writeheader()
            complete = (r for r in reader if r["fare"] and r["trip_seconds"] and r["company"])
            for _, row in zip(range(CSV_ROWS), complete):
                writer.writerow(row)
    rows = read_rows(str(rows_csv), schema=schema_path)
    serialized = [to_example(row).SerializeToString() for row in rows]
    served = tf.saved_model.load(_pushed_dir(store)).signatures["serving_default"](
        inputs=tf.constant(serialized))
    assert served["classes"].numpy()[0].tolist() == [b"0", b"1"]

    # The Estimator on the same rows, transformed by the same graph outside the served model.
    model = _latest(store, "Trainer", "model")
    graph = _latest(store, "Transform", "transform_graph").uri
    output = tft.TFTransformOutput(graph)
    raw_spec = schema_utils.schema_as_feature_spec(load_schema(schema_path)).feature_spec
    raw_spec = {k: v for k, v in raw_spec.items() if k not in ("big_tipper", "tips")}
    transformed = output.transform_raw_features(tf.io.parse_example(tf.constant(serialized), raw_spec))
    features = {k: v.numpy() for k, v in transformed.items()}
    trainer_node = next(c for c in create_pipeline(root=root).components if c.id == "Trainer")
    estimator = build_estimator(trainer_node.parameters.canned, graph, model_dir=str(tmp_path / "model"))
    predictions = estimator.predict(lambda: tf.data.Dataset.from_tensor_slices(features).batch(16),
                                    predict_keys=["probabilities"], checkpoint_path=checkpoint_path(model))
    expected = np.stack([p["probabilities"] for p in predictions])
    np.testing.assert_allclose(served["scores"].numpy(), expected, rtol=1e-5, atol=1e-6)


def _command(stdout: str, program: str) -> list[str]:
    line = next(l for l in stdout.splitlines() if f"-m {program} " in l)
    return shlex.split(line.strip())


@pytest.mark.slow
def test_printed_commands_serve_the_model_and_query_it(main_job):
    root, stdout, _ = main_job
    serve = _command(stdout, "serving")
    query = _command(stdout, "serving.client")
    assert serve[0].endswith("python") and query[0].endswith("python")
    # Same commands, this interpreter, a free gRPC port (0) and no REST port.
    serve = [sys.executable, *[a for a in serve[1:] if not a.startswith(("--port=", "--rest_api_port="))],
             "--port=0"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    server = subprocess.Popen(serve, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        port, lines = wait_for_grpc_port(server)
        assert port, "".join(lines)
        query = [sys.executable, *query[1:]]
        query[query.index("--server") + 1] = f"127.0.0.1:{port}"
        answer = subprocess.run([*query, "--output", "json"], cwd=REPO, capture_output=True, text=True,
                                env=env, timeout=120)
        assert answer.returncode == 0, answer.stderr[-2000:]
        results = [json.loads(line) for line in answer.stdout.splitlines() if line.startswith("{")]
        assert len(results) == 3
        for scores in results:
            assert set(scores) == {"0", "1"} and abs(sum(scores.values()) - 1) < 1e-5
    finally:
        stop(server)
    assert os.path.isfile(os.path.join(root, "sample_requests", "taxi.tfrecord"))
