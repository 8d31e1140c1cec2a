"""The remaining error paths, each matched by message (most without a server)."""

from __future__ import annotations

import os
import re

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import inference_pb2
from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.apis import regression_pb2

import saved_models
from conftest import MODEL
from http_util import call
from serving import examples
from serving import inference
from serving import rest_codec
from serving import signature
from serving import tensor_codec
from serving import warmup
from serving.batching import BatchScheduler
from serving.config_files import BatchingOptions
from serving.config_files import ModelSpecConfig
from serving.errors import ServingError
from serving.model_manager import ManagerOptions
from serving.model_manager import ModelManager
from serving.servable import Servable

S = tf.TensorSpec([None], tf.string, name="inputs")


class BadModel(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="a"),
                                  tf.TensorSpec([None], tf.string, name="b")])
    def two_inputs(self, a, b):
        return {"scores": tf.ones([tf.shape(a)[0], 2])}

    @tf.function(input_signature=[S])
    def no_outputs(self, inputs):
        return {"foo": tf.ones([tf.shape(inputs)[0]])}

    @tf.function(input_signature=[S])
    def mismatched(self, inputs):
        n = tf.shape(inputs)[0]
        return {"scores": tf.ones([n, 2]), "classes": tf.fill([n, 3], "a")}

    @tf.function(input_signature=[S])
    def wide_regress(self, inputs):
        return {"outputs": tf.ones([tf.shape(inputs)[0], 2])}

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
    def scalar_out(self, x):
        return {"total": tf.reduce_sum(x), "rows": x}


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("bad") / "1")
    model = BadModel()
    tf.saved_model.save(model, path, signatures={
        "two_inputs": model.two_inputs, "no_outputs": model.no_outputs,
        "mismatched": model.mismatched, "wide_regress": model.wide_regress,
        "scalar_out": model.scalar_out})
    saved_models.set_method_names(path, {
        "two_inputs": tf.saved_model.CLASSIFY_METHOD_NAME,
        "no_outputs": tf.saved_model.CLASSIFY_METHOD_NAME,
        "mismatched": tf.saved_model.CLASSIFY_METHOD_NAME,
        "wide_regress": tf.saved_model.REGRESS_METHOD_NAME})
    return Servable("bad", 1, path)


def classify_request(signature_name, kind=classification_pb2.ClassificationRequest):
    request = kind()
    request.model_spec.name = "bad"
    request.model_spec.signature_name = signature_name
    request.input.example_list.examples.add()
    return request


@pytest.mark.parametrize("signature_name,handler,code,pattern", [
    ("two_inputs", inference.classify, grpc.StatusCode.INVALID_ARGUMENT,
     r"exactly one input keyed 'inputs' .* has inputs \['a', 'b'\]"),
    ("no_outputs", inference.classify, grpc.StatusCode.INVALID_ARGUMENT,
     r"one or two outputs among 'classes' and 'scores', but signature 'no_outputs' outputs \['foo'\]"),
    ("mismatched", inference.classify, grpc.StatusCode.INVALID_ARGUMENT,
     r"classes of shape \[1, 3\] and scores of shape \[1, 2\]; they must match"),
    ("wide_regress", inference.regress, grpc.StatusCode.INVALID_ARGUMENT,
     r"returned 'outputs' with shape \[1, 2\]; expected \[1\] or \[1, 1\]"),
])
def test_bad_classify_regress_signatures(bad, signature_name, handler, code, pattern):
    kind = (regression_pb2.RegressionRequest if handler is inference.regress
            else classification_pb2.ClassificationRequest)
    with pytest.raises(ServingError, match=pattern) as info:
        handler(bad, classify_request(signature_name, kind))
    assert info.value.code == code


def test_row_format_needs_batched_outputs(bad):
    _, outputs = inference.run_predict(bad, "scalar_out", {"x": np.ones((2, 3), np.float32)})
    with pytest.raises(ServingError, match="same batch size.*Use the columnar format"):
        rest_codec.predict_response(outputs, row_format=True)
    assert rest_codec.predict_response(outputs, row_format=False)["outputs"]["total"] == 6.0


def test_classification_output_not_2d():
    with pytest.raises(ServingError, match=r"returned 'scores' with shape \[3, 2\]; expected \[2, "):
        examples.classification_result({"scores": np.ones((3, 2))}, 2, signature="s")


def test_multi_inference_task_errors(bad):
    def request(*tasks):
        r = inference_pb2.MultiInferenceRequest()
        r.input.example_list.examples.add()
        for name, sig, method in tasks:
            task = r.tasks.add(method_name=method)
            task.model_spec.name = name
            task.model_spec.signature_name = sig
        return r
    classify = tf.saved_model.CLASSIFY_METHOD_NAME
    with pytest.raises(ServingError, match="must use the same model; got 'other' and 'bad'"):
        inference.multi_inference(bad, request(("other", "no_outputs", classify)))
    with pytest.raises(ServingError, match="evaluates signature 'mismatched' twice"):
        inference.multi_inference(bad, request(("bad", "mismatched", classify),
                                               ("bad", "mismatched", classify)))
    with pytest.raises(ServingError, match="method_name 'tensorflow/serving/predict' is not"):
        inference.multi_inference(bad, request(("bad", "scalar_out",
                                                tf.saved_model.PREDICT_METHOD_NAME)))
    with pytest.raises(ServingError, match="has no tasks"):
        inference.multi_inference(bad, request())
    with pytest.raises(ServingError, match="no metadata_field"):
        inference.get_model_metadata(bad, get_model_metadata_pb2.GetModelMetadataRequest())


def test_tensor_codec_errors():
    proto = tf.make_tensor_proto(np.ones((2, 3), np.float32))
    proto.tensor_shape.dim[0].size = -1
    with pytest.raises(ServingError, match="has tensor_shape \\[-1, 3\\] with a negative"):
        tensor_codec.to_ndarray(proto, name="x")
    proto = tensor_pb2.TensorProto(dtype=tf.float32.as_datatype_enum)
    proto.tensor_shape.dim.add(size=3)
    proto.float_val.extend([1.0, 2.0, 3.0, 4.0])  # More values than the shape.
    with pytest.raises(ServingError, match="tensor_shape \\[3\\] of float32 needs 3 values but "
                       "the TensorProto holds 4"):
        tensor_codec.to_ndarray(proto, name="x")


def test_read_meta_graph_empty(tmp_path):
    (tmp_path / "saved_model.pb").write_bytes(b"")
    with pytest.raises(ValueError, match="holds no MetaGraphDef; re-export"):
        signature.read_meta_graph(str(tmp_path))


def test_warmup_errors(tmp_path, exports):
    servable = Servable("m", 1, exports[1])
    path = tmp_path / "w"
    os.makedirs(path / "assets.extra")
    servable.export_dir = str(path)
    with tf.io.TFRecordWriter(str(path / warmup.WARMUP_FILE)) as w:
        w.write(prediction_log_pb2.PredictionLog().SerializeToString())
    with pytest.raises(ValueError, match="Warmup record 0 .* is a None log; supported"):
        warmup.run_warmup(servable)
    log = prediction_log_pb2.PredictionLog()
    log.regress_log.request.model_spec.signature_name = "regress"
    log.regress_log.request.input.example_list.examples.add().features.feature[
        "x"].float_list.value.extend([1.0, 2.0, 3.0])
    with tf.io.TFRecordWriter(str(path / warmup.WARMUP_FILE)) as w:
        for _ in range(warmup.MAX_WARMUP_RECORDS + 1):
            w.write(log.SerializeToString())
    with pytest.raises(ValueError, match="more than 1000 warmup records"):
        warmup.run_warmup(servable)


def test_manager_lookup_errors(tmp_path):
    manager = ModelManager([ModelSpecConfig("empty", str(tmp_path))],
                           options=ManagerOptions(file_system_poll_wait_seconds=0))
    manager.start()
    with pytest.raises(ServingError, match=r"Latest\(empty\); no version of model 'empty'"):
        manager.resolve("empty")
    with pytest.raises(ServingError, match="Could not find any versions of model 'empty'"):
        manager.status("empty")
    with pytest.raises(ServingError, match="Could not find version 3 of model 'empty'"):
        manager.status("empty", version=3)
    manager.stop()


def test_scheduler_after_stop():
    scheduler = BatchScheduler(BatchingOptions(max_batch_size=2, num_batch_threads=1))
    scheduler.stop()
    with pytest.raises(ServingError, match="shutting down; retry") as info:
        scheduler.schedule("k", lambda b: b, {"x": np.ones((1, 1))})
    assert info.value.code == grpc.StatusCode.UNAVAILABLE


PREDICT = f"/v1/models/{MODEL}:predict"


@pytest.mark.parametrize("path,body,method,status,pattern", [
    (PREDICT, {"signature_name": 3, "instances": [[1, 2, 3]]}, "POST", 400,
     "'signature_name' must be a string"),
    (PREDICT, {"signature_name": "two_inputs", "instances": [{"a": 1}]}, "POST", 400,
     r"instances\[0\] has keys \['a'\]; signature 'two_inputs' expects exactly \['a', 'b'\]"),
    (PREDICT, {"signature_name": "two_inputs", "instances": [1, 2]}, "POST", 400,
     "has several inputs \\['a', 'b'\\]; each of 'instances' must be an object"),
    (PREDICT, {"signature_name": "two_inputs", "inputs": [1, 2]}, "POST", 400,
     "'inputs' must be an object mapping each input name"),
    (PREDICT, {"signature_name": "two_inputs", "inputs": {"a": [1], "c": [1]}}, "POST", 400,
     r"'inputs' has unknown \['c'\] and lacks \['b'\]"),
    (PREDICT, {"signature_name": "echo", "instances": [1]}, "POST", 400,
     "Input 'raw_bytes' expects string values but got 1"),
    (f"/v1/models/{MODEL}:regress", {"signature_name": "regress", "examples": [{"x": []}]},
     "POST", 400, r"examples\[0\]\['x'\] is an empty list"),
    (f"/v1/models/{MODEL}:regress", {"signature_name": "regress", "examples": [{"x": [1, "a"]}]},
     "POST", 400, r"mixes value types \['int', 'str'\]"),
    (f"/v1/models/{MODEL}:regress", {"signature_name": "regress", "examples": [[1.0]]},
     "POST", 400, r"examples\[0\] must be a JSON object of feature name"),
    (f"/v1/models/{MODEL}", None, "DELETE", 400, f"Method DELETE is not supported for /v1/models/{MODEL}"),
    (PREDICT, None, "GET", 400, "Method GET is not supported"),
    ("/monitoring/prometheus/metrics", {}, "POST", 400, "Method POST is not supported"),
])
def test_more_rest_errors(rest_url, path, body, method, status, pattern):
    got_status, got = call(rest_url + path, body, method=method)
    assert got_status == status, got
    assert re.search(pattern, got["error"]), got["error"]


def test_rest_post_without_content_length(server):
    import http.client
    import json

    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=10)
    connection.putrequest("POST", PREDICT)
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 400
    assert "need a Content-Length header" in json.loads(response.read())["error"]
    connection.close()


def test_rest_invalid_content_length(server):
    import http.client
    import json

    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=10)
    connection.putrequest("POST", PREDICT)
    connection.putheader("Content-Length", "-5")
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 400
    assert "Invalid Content-Length '-5'" in json.loads(response.read())["error"]
    connection.close()
