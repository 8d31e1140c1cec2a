"""A corpus of bad requests: each gets the right status and message; the server stays up."""

from __future__ import annotations

import json
import re

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import inference_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import regression_pb2

from conftest import MAX_REQUEST_BYTES
from conftest import MODEL
from http_util import call

Code = grpc.StatusCode
X = np.ones((2, 3), np.float32)


def predict(inputs=None, *, name=MODEL, signature="", version=None, label=None,
            output_filter=()):
    request = predict_pb2.PredictRequest(output_filter=list(output_filter))
    request.model_spec.name = name
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    for key, value in ({"x": X} if inputs is None else inputs).items():
        if isinstance(value, tensor_pb2.TensorProto):
            request.inputs[key].CopyFrom(value)
        else:
            request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return "Predict", request


def classify(examples, *, signature="classify", kind=classification_pb2.ClassificationRequest,
             method="Classify"):
    request = kind()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = signature
    request.input.example_list.examples.extend(examples)
    return method, request


def bad_tensor_content():
    proto = tf.make_tensor_proto(X)
    proto.tensor_content = proto.tensor_content[:-4]
    return proto


GRPC_CASES = {
    "wrong_dtype": (predict({"x": X.astype(np.float64)}), Code.INVALID_ARGUMENT,
                    r"Input 'x' of signature 'serving_default' expects dtype float32 but got float64"),
    "wrong_shape": (predict({"x": np.ones((2, 4), np.float32)}), Code.INVALID_ARGUMENT,
                    r"expects shape \[-1, 3\] but got \[2, 4\]"),
    "wrong_rank": (predict({"x": np.ones((3,), np.float32)}), Code.INVALID_ARGUMENT,
                   r"expects shape \[-1, 3\] but got \[3\]"),
    "missing_input": (predict({"a": np.array([1], np.int64)}, signature="two_inputs"),
                      Code.INVALID_ARGUMENT, r"missing input\(s\) \['b'\].*expects exactly \['a', 'b'\]"),
    "unknown_input": (predict({"x": X, "z": X}), Code.INVALID_ARGUMENT,
                      r"unknown input\(s\) \['z'\]"),
    "no_inputs": (predict({}), Code.INVALID_ARGUMENT, r"has no inputs.*expects \['x'\]"),
    "bad_tensor_content": (predict({"x": bad_tensor_content()}), Code.INVALID_ARGUMENT,
                           r"tensor_content has 20 bytes but shape \[2, 3\] of float32 needs 24"),
    "unknown_model": (predict(name="nope"), Code.NOT_FOUND, r"model 'nope' is not served"),
    "unknown_version": (predict(version=7), Code.NOT_FOUND,
                        r"Specific\(tiny, 7\); available versions: \[1, 2\]"),
    "unknown_label": (predict(label="beta"), Code.INVALID_ARGUMENT,
                      r"Unrecognized servable version label: 'beta'.*\['canary', 'stable'\]"),
    "unknown_signature": (predict(signature="nope"), Code.FAILED_PRECONDITION,
                          r'Serving signature key "nope" not found'),
    "classify_unknown_signature": (classify([tf.train.Example()], signature="nope"),
                                   Code.INVALID_ARGUMENT,
                                   r"No signature was found with the name: 'nope'"),
    "unknown_output_filter": (predict(output_filter=["zz"]), Code.INVALID_ARGUMENT,
                              r"output_filter names \['zz'\].*choose from \['doubled', 'y'\]"),
    "path_escaping_name": (predict(name="../etc"), Code.INVALID_ARGUMENT,
                           r"Invalid model name '\.\./etc'"),
    "empty_model_name": (predict(name=""), Code.INVALID_ARGUMENT, r"ModelSpec.name is empty"),
    "empty_example_list": (classify([]), Code.INVALID_ARGUMENT, r"Input is empty"),
    "classify_on_predict_signature": (classify([tf.train.Example()], signature="serving_default"),
                                      Code.INVALID_ARGUMENT,
                                      r"Classify needs a signature with exactly one input "
                                      r"keyed 'inputs'.*has inputs \['x'\]; use Predict"),
    "regress_on_classify_signature": (classify([tf.train.Example()], signature="classify",
                                               kind=regression_pb2.RegressionRequest,
                                               method="Regress"),
                                      Code.INVALID_ARGUMENT,
                                      r"Regress needs exactly one output keyed 'outputs', but "
                                      r"signature 'classify' outputs \['classes', 'scores'\]"),
    "example_missing_feature": (classify([tf.train.Example()]), Code.INVALID_ARGUMENT,
                                r"signature 'classify' failed on this request:.*x"),
    "oversized": (predict({"x": np.ones((MAX_REQUEST_BYTES // 12 + 10, 3), np.float32)}),
                  Code.RESOURCE_EXHAUSTED, r"Received message larger than max"),
    "multi_inference_no_tasks": (("MultiInference", inference_pb2.MultiInferenceRequest()),
                                 Code.INVALID_ARGUMENT, r"has no tasks"),
    "metadata_bad_field": (("GetModelMetadata", get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec={"name": MODEL}, metadata_field=["graph"])), Code.INVALID_ARGUMENT,
        r"Metadata field 'graph' is not supported"),
}


@pytest.mark.parametrize("case", sorted(GRPC_CASES))
def test_grpc_malformed(stub, case):
    (method, request), code, pattern = GRPC_CASES[case]
    with pytest.raises(grpc.RpcError) as info:
        getattr(stub, method)(request, timeout=10)
    assert info.value.code() == code, info.value.details()
    assert re.search(pattern, info.value.details()), info.value.details()


def test_grpc_status_unknown_model(model_stub):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "nope"
    with pytest.raises(grpc.RpcError) as info:
        model_stub.GetModelStatus(request, timeout=10)
    assert info.value.code() == Code.NOT_FOUND


PREDICT = f"/v1/models/{MODEL}:predict"
REST_CASES = {
    "bad_json": (PREDICT, b'{"instances": [1,', 400, r"Malformed JSON in the request body"),
    "not_an_object": (PREDICT, b"[1, 2]", 400, r"must be a JSON object; got list"),
    "bad_base64": (PREDICT, {"signature_name": "echo", "instances": [{"b64": "@@not base64"}]},
                   400, r"invalid base64"),
    "b64_object_with_extra_keys": (PREDICT, {"signature_name": "echo",
                                             "instances": [{"b64": "AA==", "x": 1}]},
                                   400, r"must be \{\"b64\""),
    "string_for_float": (PREDICT, {"instances": [["a", "b", "c"]]}, 400,
                         r"Input 'x' expects float32 values but got \"a\""),
    "float_for_int64": (PREDICT, {"signature_name": "two_inputs",
                                  "instances": [{"a": 1.5, "b": [1.0, 2.0]}]},
                        400, r"Input 'a' expects int64 values but got 1.5"),
    "ragged": (PREDICT, {"instances": [[1.0, 2.0, 3.0], [1.0]]}, 400, r"ragged list"),
    "wrong_shape": (PREDICT, {"instances": [[1.0, 2.0]]}, 400,
                    r"expects shape \[-1, 3\] but got \[1, 2\]"),
    "both_formats": (PREDICT, {"instances": [[1.0, 2.0, 3.0]], "inputs": [[1.0, 2.0, 3.0]]},
                     400, r"exactly one of 'instances'"),
    "empty_instances": (PREDICT, {"instances": []}, 400, r"non-empty JSON list"),
    "unknown_model": ("/v1/models/nope:predict", {"instances": [[1.0, 2.0, 3.0]]}, 404,
                      r"model 'nope' is not served"),
    "unknown_version": (f"/v1/models/{MODEL}/versions/9:predict",
                        {"instances": [[1.0, 2.0, 3.0]]}, 404, r"Specific\(tiny, 9\)"),
    "unknown_label": (f"/v1/models/{MODEL}/labels/beta:predict",
                      {"instances": [[1.0, 2.0, 3.0]]}, 400, r"Unrecognized servable version label"),
    "bad_version": (f"/v1/models/{MODEL}/versions/abc", None, 400, r"Invalid model version 'abc'"),
    "escaping_name": ("/v1/models/%2E%2E%2Fetc/metadata", None, 400, r"Invalid model name '\.\./etc'"),
    "unknown_signature": (PREDICT, {"signature_name": "nope", "instances": [[1.0, 2.0, 3.0]]},
                          400, r'Serving signature key "nope" not found'),
    "unknown_verb": (f"/v1/models/{MODEL}:explain", {}, 404, r"Unknown verb ':explain'"),
    "unknown_route": ("/v2/whatever", None, 404, r"Malformed request: GET /v2/whatever"),
    "classify_no_examples": (f"/v1/models/{MODEL}:classify",
                             {"signature_name": "classify", "examples": []}, 400,
                             r"non-empty JSON list of objects"),
    "classify_predict_signature": (f"/v1/models/{MODEL}:classify",
                                   {"examples": [{"x": [1.0, 2.0, 3.0]}]}, 400,
                                   r"Classify needs a signature with exactly one input keyed"),
    "oversized": (PREDICT, b"{" + b" " * (MAX_REQUEST_BYTES + 1) + b"}", 413,
                  r"exceeds the limit of 1048576 bytes"),
}


@pytest.mark.parametrize("case", sorted(REST_CASES))
def test_rest_malformed(rest_url, case):
    path, body, status, pattern = REST_CASES[case]
    raw = body if isinstance(body, bytes) else None
    got_status, got = call(rest_url + path, None if raw is not None else body, raw=raw)
    assert got_status == status, got
    assert set(got) == {"error"}, got
    assert re.search(pattern, got["error"]), got["error"]


def test_server_still_serves_after_corpus(stub, rest_url):
    # Runs last in this module (pytest keeps file order): the server survived.
    response = stub.Predict(predict()[1], timeout=10)
    assert response.model_spec.version.value == 2
    status, body = call(f"{rest_url}{PREDICT}", {"instances": X.tolist()})
    assert status == 200 and len(body["predictions"]) == 2
    assert json.dumps(body)


def test_rest_huge_content_length_is_refused_without_reading(server):
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=10)
    connection.putrequest("POST", PREDICT)
    connection.putheader("Content-Length", str(10 * 1024 ** 3))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413
    assert "exceeds the limit" in json.loads(response.read())["error"]
    connection.close()
