"""Requests shaped like TF Serving's example clients, against ``python -m serving``.

TF Serving's ``mnist_client.py`` sends ``tf.make_tensor_proto(image, shape=[1, 784])``
as ``images`` to the ``predict_images`` signature and takes the argmax of
``response.outputs['scores'].float_val``; ``resnet_client.py`` posts
``{"instances": [{"b64": <JPEG>}]}`` over REST and ``resnet_client_grpc.py``
reads ``float_val`` of a gRPC Predict. The models here are tiny stand-ins with
the same signatures, written by the test; the clients' code is not used.

A client that reads ``float_val`` needs typed fields in the response (TF
Serving's default); ``--enable_serialization_as_tensor_content`` packs them
into ``tensor_content`` instead, which ``tf.make_ndarray`` reads.
"""

from __future__ import annotations

import base64
import json

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tf_serving_harness import RPC_TIMEOUT
from tf_serving_harness import call_rest

pytestmark = pytest.mark.timeout(600)

PIXELS = 784
DIGITS = 10
COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}
CLASSES = ("red", "green", "blue", "other")
TENSOR_CONTENT_FLAG = "--enable_serialization_as_tensor_content=true"


class MnistLike(tf.Module):
    """scores = softmax(images @ w): pixel i votes for digit i % 10."""

    def __init__(self):
        super().__init__()
        votes = np.zeros((PIXELS, DIGITS), np.float32)
        votes[np.arange(PIXELS), np.arange(PIXELS) % DIGITS] = 1.0
        self.w = tf.Variable(votes)

    @tf.function(input_signature=[tf.TensorSpec([None, PIXELS], tf.float32, name="images")])
    def predict_images(self, images):
        return {"scores": tf.nn.softmax(tf.matmul(images, self.w))}


class ResnetLike(tf.Module):
    """Decodes JPEG bytes, shrinks them to 4x4 and classifies the mean colour."""

    def __init__(self):
        super().__init__()
        weights = np.zeros((3, len(CLASSES)), np.float32)
        weights[0, 0] = weights[1, 1] = weights[2, 2] = 10.0
        self.w = tf.Variable(weights)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def serve(self, image_bytes):
        def mean_colour(jpeg):
            image = tf.io.decode_jpeg(jpeg, channels=3)
            image = tf.image.resize(tf.cast(image, tf.float32) / 255.0, [4, 4])
            return tf.reduce_mean(image, axis=[0, 1])

        colours = tf.map_fn(mean_colour, image_bytes, fn_output_signature=tf.float32)
        probabilities = tf.nn.softmax(tf.matmul(colours, self.w))
        return {"probabilities": probabilities, "classes": tf.argmax(probabilities, axis=1)}


def digit_image(digit: int) -> np.ndarray:
    """A 784-pixel 'image' whose bright pixels all vote for ``digit``."""
    image = np.zeros(PIXELS, np.float32)
    image[digit::DIGITS] = 1.0
    return image


def jpeg(colour: str) -> bytes:
    pixels = np.tile(np.array(COLOURS[colour], np.uint8), (16, 16, 1))
    return tf.io.encode_jpeg(tf.constant(pixels)).numpy()


@pytest.fixture(scope="module")
def model_config(tmp_path_factory):
    """Both models as versions 1, in one model config file."""
    root = tmp_path_factory.mktemp("example_models")
    mnist = MnistLike()
    tf.saved_model.save(mnist, str(root / "mnist" / "1"), signatures={
        "predict_images": mnist.predict_images,
        tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY: mnist.predict_images,
    })
    resnet = ResnetLike()
    tf.saved_model.save(resnet, str(root / "resnet" / "1"), signatures={
        tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY: resnet.serve,
    })
    config = root / "models.config"
    config.write_text("model_config_list {\n" + "".join(
        f'  config {{ name: "{name}" base_path: "{root / name}" model_platform: "tensorflow" }}\n'
        for name in ("mnist", "resnet")) + "}\n", encoding="utf-8")
    return str(config)


def predict(address, request):
    with grpc.insecure_channel(address) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        return stub.Predict(request, timeout=RPC_TIMEOUT)


def mnist_request(digit: int) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "mnist"
    request.model_spec.signature_name = "predict_images"
    image = digit_image(digit)
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(image, shape=[1, image.size]))
    return request


@pytest.mark.parametrize("digit", [0, 3, 9])
def test_mnist_client_reads_float_val(servers, model_config, digit):
    address = servers.run(None, None, model_config_file=model_config).grpc_address
    response = predict(address, mnist_request(digit))
    scores = response.outputs["scores"]
    assert len(scores.float_val) == DIGITS, (
        f"expected {DIGITS} typed float_val, got {len(scores.float_val)} "
        f"(tensor_content: {len(scores.tensor_content)} bytes)")
    assert not scores.tensor_content
    assert int(np.argmax(scores.float_val)) == digit
    assert [d.size for d in scores.tensor_shape.dim] == [1, DIGITS]
    np.testing.assert_allclose(tf.make_ndarray(scores).ravel(), scores.float_val)
    assert response.model_spec.name == "mnist"
    assert response.model_spec.signature_name == "predict_images"
    assert response.model_spec.version.value == 1


def test_mnist_with_tensor_content_flag(servers, model_config):
    """--enable_serialization_as_tensor_content: packed bytes, same values."""
    address = servers.run(None, None, model_config_file=model_config,
                          extra_flags=(TENSOR_CONTENT_FLAG,)).grpc_address
    scores = predict(address, mnist_request(7)).outputs["scores"]
    assert scores.tensor_content
    assert len(scores.float_val) == 0
    values = tf.make_ndarray(scores)
    assert values.shape == (1, DIGITS)
    assert int(np.argmax(values)) == 7


@pytest.mark.parametrize("colour", ["red", "green", "blue"])
def test_resnet_client_rest_b64(servers, model_config, colour):
    server = servers.run(None, None, model_config_file=model_config)
    body = {"instances": [{"b64": base64.b64encode(jpeg(colour)).decode("utf-8")}]}
    answer = json.loads(call_rest(f"http://{server.rest_address}/v1/models/resnet:predict", body))
    prediction = answer["predictions"][0]
    assert len(prediction["probabilities"]) == len(CLASSES)
    assert CLASSES[int(np.argmax(prediction["probabilities"]))] == colour
    assert CLASSES[prediction["classes"]] == colour
    assert sum(prediction["probabilities"]) == pytest.approx(1.0, abs=1e-5)


def resnet_request(colour: str) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "resnet"
    request.model_spec.signature_name = "serving_default"
    request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto([jpeg(colour)]))
    return request


@pytest.mark.parametrize("colour", ["red", "green", "blue"])
def test_resnet_client_grpc_jpeg(servers, model_config, colour):
    address = servers.run(None, None, model_config_file=model_config).grpc_address
    response = predict(address, resnet_request(colour))
    probabilities = response.outputs["probabilities"]
    assert len(probabilities.float_val) == len(CLASSES), (
        f"expected {len(CLASSES)} typed float_val, got {len(probabilities.float_val)} "
        f"(tensor_content: {len(probabilities.tensor_content)} bytes)")
    assert CLASSES[int(np.argmax(probabilities.float_val))] == colour
    assert list(response.outputs["classes"].int64_val) == [CLASSES.index(colour)]
    assert response.model_spec.version.value == 1


def test_resnet_grpc_with_tensor_content_flag(servers, model_config):
    address = servers.run(None, None, model_config_file=model_config,
                          extra_flags=(TENSOR_CONTENT_FLAG,)).grpc_address
    response = predict(address, resnet_request("green"))
    probabilities = response.outputs["probabilities"]
    assert probabilities.tensor_content and not probabilities.float_val
    assert CLASSES[int(np.argmax(tf.make_ndarray(probabilities)))] == "green"
    assert tf.make_ndarray(response.outputs["classes"]).tolist() == [CLASSES.index("green")]
