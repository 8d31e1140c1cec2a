"""The TF Serving REST API over real HTTP."""

from __future__ import annotations

import base64

import numpy as np
import pytest
import tensorflow as tf

from conftest import MODEL
from http_util import call

X = [[1.0, 2.0, 3.0], [0.5, -1.0, 0.25]]


@pytest.fixture(scope="module")
def direct(exports):
    return {v: tf.saved_model.load(p).signatures for v, p in exports.items()}


def test_status_all_versions(rest_url):
    status, body = call(f"{rest_url}/v1/models/{MODEL}")
    assert status == 200
    assert body == {"model_version_status": [
        {"version": v, "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        for v in ("2", "1")]}


@pytest.mark.parametrize("suffix,version", [("/versions/1", "1"), ("/labels/canary", "2")])
def test_status_of_version_and_label(rest_url, suffix, version):
    status, body = call(f"{rest_url}/v1/models/{MODEL}{suffix}")
    assert status == 200
    assert [s["version"] for s in body["model_version_status"]] == [version]


def test_metadata(rest_url):
    status, body = call(f"{rest_url}/v1/models/{MODEL}/versions/1/metadata")
    assert status == 200
    assert body["model_spec"] == {"name": MODEL, "signature_name": "", "version": "1"}
    defs = body["metadata"]["signature_def"]["signature_def"]
    assert defs["classify"]["method_name"] == "tensorflow/serving/classify"
    assert defs["serving_default"]["inputs"]["x"]["dtype"] == "DT_FLOAT"


def test_predict_row_format_equals_in_process(rest_url, direct):
    status, body = call(f"{rest_url}/v1/models/{MODEL}:predict", {"instances": X})
    assert status == 200
    expected = direct[2]["serving_default"](x=tf.constant(X))
    assert body["predictions"] == [
        {"y": y, "doubled": d}
        for y, d in zip(expected["y"].numpy().tolist(), expected["doubled"].numpy().tolist())]


def test_predict_columnar_with_label_and_output_values(rest_url, direct):
    status, body = call(f"{rest_url}/v1/models/{MODEL}/labels/stable:predict", {"inputs": X})
    assert status == 200
    expected = direct[1]["serving_default"](x=tf.constant(X))
    np.testing.assert_array_equal(body["outputs"]["y"], expected["y"].numpy())


def test_predict_named_instances_multiple_inputs(rest_url):
    status, body = call(f"{rest_url}/v1/models/{MODEL}/versions/1:predict", {
        "signature_name": "two_inputs",
        "instances": [{"a": 1, "b": [0.5, 0.5]}, {"a": 10, "b": [1.0, 2.0]}]})
    assert status == 200
    assert body == {"predictions": [2.0, 13.0]}


def test_predict_b64_in_and_bytes_out(rest_url):
    raw = [b"\x00\xff\x10binary", b"plain"]
    instances = [{"b64": base64.b64encode(r).decode()} for r in raw]
    status, body = call(f"{rest_url}/v1/models/{MODEL}:predict",
                        {"signature_name": "echo", "instances": instances})
    assert status == 200
    assert [p["echo_bytes"] for p in body["predictions"]] == instances
    assert [p["length"] for p in body["predictions"]] == [len(r) for r in raw]


def test_classify_and_regress(rest_url, direct):
    examples = [{"x": row} for row in X]
    status, body = call(f"{rest_url}/v1/models/{MODEL}:classify",
                        {"signature_name": "classify", "examples": examples})
    assert status == 200
    serialized = tf.constant([tf.train.Example(features=tf.train.Features(feature={
        "x": tf.train.Feature(float_list=tf.train.FloatList(value=r))})).SerializeToString()
        for r in X])
    scores = direct[2]["classify"](inputs=serialized)["scores"].numpy()
    assert [[label for label, _ in row] for row in body["results"]] == [["neg", "pos"]] * 2
    np.testing.assert_allclose([[s for _, s in row] for row in body["results"]], scores,
                               rtol=1e-6)
    status, body = call(f"{rest_url}/v1/models/{MODEL}/versions/1:regress",
                        {"signature_name": "regress", "context": {"x": [9.0, 9.0, 9.0]},
                         "examples": [{}, {"x": X[1]}]})
    assert status == 200
    expected = direct[1]["regress"](inputs=tf.constant([
        tf.train.Example(features=tf.train.Features(feature={
            "x": tf.train.Feature(float_list=tf.train.FloatList(value=r))})).SerializeToString()
        for r in ([9.0, 9.0, 9.0], X[1])]))["outputs"].numpy()
    np.testing.assert_allclose(body["results"], expected, rtol=1e-6)


def test_prometheus_metrics_on_rest_port(rest_url):
    call(f"{rest_url}/v1/models/{MODEL}:predict", {"instances": X})
    status, text = call(f"{rest_url}/monitoring/prometheus/metrics")
    assert status == 200
    assert ('serving_request_count_total{api="predict",model_name="tiny",model_version="2",'
            'protocol="rest",signature_name="serving_default",status="OK"}') in text
    assert 'serving_model_load_events_total{event="load",model_name="tiny",model_version="1"}' in text
    assert "serving_request_latency_seconds_bucket" in text
