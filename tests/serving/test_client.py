"""The client library and CLI against the real server, over gRPC and REST."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from conftest import MODEL
from serving.client import ModelTarget
from serving.client import ServingClientError
from serving.client import connect
from serving.client import readers
from serving.client.__main__ import main

X = [[1.0, 2.0, 3.0], [0.5, -1.0, 0.25]]


@pytest.fixture(scope="module")
def direct(exports):
    return {v: tf.saved_model.load(p).signatures for v, p in exports.items()}


@pytest.fixture(scope="module")
def servers(server):
    return {"grpc": f"127.0.0.1:{server.grpc_port}", "rest": f"127.0.0.1:{server.rest_port}"}


def serialized(rows):
    return tf.constant([tf.train.Example(features=tf.train.Features(feature={
        "x": tf.train.Feature(float_list=tf.train.FloatList(value=r))})).SerializeToString()
        for r in rows])


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_client_calls_equal_in_process(servers, direct, protocol):
    target = ModelTarget(servers[protocol], MODEL, label="stable")
    with connect(target, protocol=protocol) as client:
        outputs = client.predict({"x": X})  # Python floats are cast to float32.
        np.testing.assert_allclose(
            outputs["y"], direct[1]["serving_default"](x=tf.constant(X))["y"].numpy(), rtol=1e-6)
        results = client.classify([{"x": r} for r in X], signature_name="classify")
        scores = direct[1]["classify"](inputs=serialized(X))["scores"].numpy()
        np.testing.assert_allclose([[s for _, s in r] for r in results], scores, rtol=1e-6)
        assert [[label for label, _ in r] for r in results] == [["neg", "pos"]] * 2
        values = client.regress([{"x": r} for r in X], signature_name="regress")
        np.testing.assert_allclose(
            values, direct[1]["regress"](inputs=serialized(X))["outputs"].numpy(), rtol=1e-6)
        assert client.status() == [{"version": 1, "state": "AVAILABLE", "error": ""}]
        defs = client.metadata()["metadata"]["signature_def"]["signature_def"]
        assert defs["regress"]["method_name"] == "tensorflow/serving/regress"


@pytest.mark.parametrize("protocol,code", [("grpc", "NOT_FOUND"), ("rest", "HTTP 404")])
def test_client_errors_carry_code_and_message(servers, protocol, code):
    with connect(ModelTarget(servers[protocol], MODEL, version=9), protocol=protocol) as client:
        with pytest.raises(ServingClientError, match=r"Specific\(tiny, 9\)") as info:
            client.predict({"x": X})
    assert info.value.code == code


def test_model_target_validation():
    with pytest.raises(ValueError, match="give at most one of them"):
        ModelTarget("h:1", "m", version=1, label="stable")
    with pytest.raises(ValueError, match="expected host:port"):
        ModelTarget("localhost", "m")
    with pytest.raises(ValueError, match="protocol='http'"):
        connect(ModelTarget("h:1", "m"), protocol="http")


def write_rows(tmp_path):
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps({"x": r}) for r in X) + "\n")
    (tmp_path / "rows.csv").write_text('x\n"[1.0, 2.0, 3.0]"\n"[0.5, -1.0, 0.25]"\n')
    with tf.io.TFRecordWriter(str(tmp_path / "rows.tfrecord")) as w:
        for item in serialized(X).numpy():
            w.write(item)
    return tmp_path


@pytest.mark.parametrize("suffix", ["jsonl", "csv", "tfrecord"])
def test_readers(tmp_path, suffix):
    rows = readers.read_rows(str(write_rows(tmp_path) / f"rows.{suffix}"))
    np.testing.assert_allclose([r["x"] for r in rows], X)


def test_reader_errors(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"x": 1}\n{oops\n')
    with pytest.raises(ValueError, match="bad.jsonl, line 2: invalid JSON"):
        readers.read_rows(str(tmp_path / "bad.jsonl"))
    with pytest.raises(ValueError, match="expected a .csv, .jsonl or .tfrecord"):
        readers.read_rows(str(tmp_path / "rows.parquet"))
    (tmp_path / "empty.csv").write_text("x\n")
    with pytest.raises(ValueError, match="holds no examples"):
        readers.read_rows(str(tmp_path / "empty.csv"))


def test_cli_predict_json_over_grpc(servers, direct, tmp_path, capsys):
    rows = write_rows(tmp_path)
    assert main(["predict", "--server", servers["grpc"], "--model", MODEL, "--version", "2",
                 "--examples", str(rows / "rows.csv"), "--output", "json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    expected = direct[2]["serving_default"](x=tf.constant(X))["y"].numpy()
    np.testing.assert_allclose([line["y"] for line in lines], expected, rtol=1e-6)


def test_cli_classify_table_over_rest(servers, tmp_path, capsys):
    rows = write_rows(tmp_path)
    assert main(["classify", "--server", servers["rest"], "--protocol", "rest", "--model",
                 MODEL, "--signature", "classify", "--examples",
                 str(rows / "rows.tfrecord")]) == 0
    out = capsys.readouterr().out
    assert "neg" in out and "pos" in out and "┃" in out


def test_cli_status_metadata_and_errors(servers, capsys):
    assert main(["status", "--server", servers["grpc"], "--model", MODEL, "--output",
                 "json"]) == 0
    statuses = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [s["version"] for s in statuses] == [2, 1]
    assert main(["metadata", "--server", servers["rest"], "--protocol", "rest",
                 "--model", MODEL]) == 0
    assert "signature_def" in json.loads(capsys.readouterr().out)["metadata"]
    assert main(["regress", "--server", servers["grpc"], "--model", MODEL]) == 1
    assert "regress needs --examples" in capsys.readouterr().err
    assert main(["status", "--server", servers["grpc"], "--model", "nope"]) == 1
    assert "NOT_FOUND" in capsys.readouterr().err
