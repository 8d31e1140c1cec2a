"""Predict/Classify/Regress/MultiInference/metadata over real gRPC."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import inference_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import regression_pb2

from conftest import MODEL

X = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 0.25]], np.float32)


def example(x):
    return tf.train.Example(features=tf.train.Features(feature={
        "x": tf.train.Feature(float_list=tf.train.FloatList(value=list(x)))}))


def serialized(rows):
    return tf.constant([example(r).SerializeToString() for r in rows])


@pytest.fixture(scope="module")
def direct(exports):
    """In-process signatures of versions 1 and 2 (the reference outputs)."""
    return {v: tf.saved_model.load(path).signatures for v, path in exports.items()}


def predict_request(x=X, *, version=None, label=None, signature=""):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(x))
    return request


def test_predict_latest_equals_in_process_call(stub, direct):
    response = stub.Predict(predict_request(), timeout=10)
    expected = direct[2]["serving_default"](x=tf.constant(X))
    assert response.model_spec.version.value == 2
    assert response.model_spec.signature_name == "serving_default"
    np.testing.assert_array_equal(tf.make_ndarray(response.outputs["y"]), expected["y"].numpy())
    np.testing.assert_array_equal(
        tf.make_ndarray(response.outputs["doubled"]), expected["doubled"].numpy())


@pytest.mark.parametrize("kwargs,version", [({"version": 1}, 1), ({"label": "stable"}, 1),
                                            ({"label": "canary"}, 2)])
def test_predict_version_and_label(stub, direct, kwargs, version):
    response = stub.Predict(predict_request(**kwargs), timeout=10)
    assert response.model_spec.version.value == version
    expected = direct[version]["serving_default"](x=tf.constant(X))["y"].numpy()
    np.testing.assert_array_equal(tf.make_ndarray(response.outputs["y"]), expected)


def test_predict_output_filter(stub):
    request = predict_request()
    request.output_filter.append("y")
    response = stub.Predict(request, timeout=10)
    assert list(response.outputs) == ["y"]


def test_predict_string_and_int_signatures(stub, direct):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = "echo"
    raw = [b"\x00\xffbin", b"abc"]
    request.inputs["raw_bytes"].CopyFrom(tf.make_tensor_proto(raw))
    response = stub.Predict(request, timeout=10)
    assert list(tf.make_ndarray(response.outputs["echo_bytes"])) == raw
    np.testing.assert_array_equal(tf.make_ndarray(response.outputs["length"]), [5, 3])

    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = "two_inputs"
    request.inputs["a"].CopyFrom(tf.make_tensor_proto(np.array([1, 2], np.int64)))
    request.inputs["b"].CopyFrom(tf.make_tensor_proto(np.ones((2, 2), np.float32)))
    response = stub.Predict(request, timeout=10)
    np.testing.assert_array_equal(tf.make_ndarray(response.outputs["total"]), [3.0, 4.0])


def test_classify_example_list_equals_in_process(stub, direct):
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = "classify"
    request.input.example_list.examples.extend(example(r) for r in X)
    response = stub.Classify(request, timeout=10)
    expected = direct[2]["classify"](inputs=serialized(X))
    scores = [[c.score for c in row.classes] for row in response.result.classifications]
    labels = [[c.label for c in row.classes] for row in response.result.classifications]
    np.testing.assert_allclose(scores, expected["scores"].numpy(), rtol=0, atol=0)
    assert labels == [["neg", "pos"]] * 2
    assert response.model_spec.version.value == 2


def test_classify_example_list_with_context(stub, direct):
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = "classify"
    request.input.example_list_with_context.context.CopyFrom(example([9.0, 9.0, 9.0]))
    request.input.example_list_with_context.examples.extend(
        [tf.train.Example(), example(X[1])])
    response = stub.Classify(request, timeout=10)
    expected = direct[2]["classify"](inputs=serialized([[9.0, 9.0, 9.0], X[1]]))["scores"]
    scores = [[c.score for c in row.classes] for row in response.result.classifications]
    np.testing.assert_allclose(scores, expected.numpy(), rtol=0, atol=0)


def test_regress_equals_in_process(stub, direct):
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = "regress"
    request.model_spec.version.value = 1
    request.input.example_list.examples.extend(example(r) for r in X)
    response = stub.Regress(request, timeout=10)
    expected = direct[1]["regress"](inputs=serialized(X))["outputs"].numpy()
    np.testing.assert_array_equal([r.value for r in response.result.regressions], expected)


def test_multi_inference(stub, direct):
    request = inference_pb2.MultiInferenceRequest()
    for signature, method in (("classify", tf.saved_model.CLASSIFY_METHOD_NAME),
                              ("regress", tf.saved_model.REGRESS_METHOD_NAME)):
        task = request.tasks.add()
        task.model_spec.name = MODEL
        task.model_spec.signature_name = signature
        task.method_name = method
    request.input.example_list.examples.extend(example(r) for r in X)
    response = stub.MultiInference(request, timeout=10)
    assert len(response.results) == 2
    regress = direct[2]["regress"](inputs=serialized(X))["outputs"].numpy()
    np.testing.assert_array_equal(
        [r.value for r in response.results[1].regression_result.regressions], regress)
    assert len(response.results[0].classification_result.classifications) == 2


def test_get_model_metadata_signature_defs(stub, exports):
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = MODEL
    response = stub.GetModelMetadata(request, timeout=10)
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signature_map)
    defs = signature_map.signature_def
    # TF Serving lists the TF2 init op too (it is never served).
    assert set(defs) == {"serving_default", "classify", "regress", "echo", "two_inputs",
                         "__saved_model_init_op"}
    assert defs["classify"].method_name == tf.saved_model.CLASSIFY_METHOD_NAME
    assert defs["regress"].method_name == tf.saved_model.REGRESS_METHOD_NAME
    assert defs["serving_default"].inputs["x"].dtype == tf.float32.as_datatype_enum
    assert response.model_spec.version.value == 2
