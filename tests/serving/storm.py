"""A storm of malformed requests against a real server, shared by test_abuse.py and
benchmarks/robustness.py: each kind of bad request an operator's corpus found, with the
statuses it must get."""

from __future__ import annotations

import http.client
import json
import os

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow.core.framework import tensor_shape_pb2
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import predict_pb2

MODEL = "tiny"  # saved_models.export_tiny_model's model, served under this name.
NAME_BYTES = 200_000  # Size of each made-up signature name in the storm.


def predict_request(x: np.ndarray, *, signature: str = "", model: str = MODEL) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(x))
    return request


def rest_post(address: str, path: str, body: bytes, *, timeout: float = 30.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(address, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of a process, in KiB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def storm_requests(max_rows: int) -> list[tuple[str, object, set]]:
    """(protocol, request, expected statuses): ten kinds of bad request, ten of each.

    ``grpc-signature`` / ``rest-signature`` items are built afresh by ``send``, so every
    send carries a new made-up signature name of NAME_BYTES.
    """
    huge_declared = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT, float_val=[1.0],
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=250_000_000)]))
    kinds = []
    for i in range(10):
        # A float tensor of a few bytes declaring 250M elements.
        request = predict_pb2.PredictRequest()
        request.model_spec.name = MODEL
        request.inputs["x"].CopyFrom(huge_declared)
        kinds.append(("grpc", request, {grpc.StatusCode.INVALID_ARGUMENT}))
        kinds.append(("grpc-signature", None,
                      {grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT}))
        kinds.append(("rest-signature", None, {400}))
        # Bytes that are not a tf.Example.
        bad = predict_pb2.PredictRequest()
        bad.model_spec.name = MODEL
        bad.model_spec.signature_name = "classify"
        bad.inputs["inputs"].CopyFrom(tf.make_tensor_proto([b"\xff\x00not an example"]))
        kinds.append(("grpc", bad, {grpc.StatusCode.INVALID_ARGUMENT}))
        # Unknown model, wrong dtype, too many rows.
        kinds.append(("grpc", predict_request(np.ones((1, 3), np.float32), model=f"nope-{i}"),
                      {grpc.StatusCode.NOT_FOUND}))
        kinds.append(("grpc", predict_request(np.ones((1, 3), np.int64)),
                      {grpc.StatusCode.INVALID_ARGUMENT}))
        kinds.append(("grpc", predict_request(np.ones((max_rows + 1, 3), np.float32)),
                      {grpc.StatusCode.INVALID_ARGUMENT}))
        # REST: broken JSON, JSON nested 100,000 deep, base64 that is not a tf.Example.
        kinds.append(("rest", b'{"instances": [1.0, ', {400}))
        kinds.append(("rest", b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", {400}))
        kinds.append(("rest", json.dumps({"signature_name": "classify", "instances": [
            {"inputs": {"b64": "bm90IGFuIGV4YW1wbGU="}}]}).encode(), {400}))
    return kinds


def _made_up_signature() -> str:
    return "made-up-" + os.urandom(8).hex() + "z" * NAME_BYTES


def send(rest_address: str, stub, item) -> tuple[bool, str]:
    """Sends one storm item; returns (got an expected status, the status)."""
    protocol, request, expected = item
    if protocol == "grpc-signature":
        protocol, request = "grpc", predict_request(np.ones((1, 3), np.float32),
                                                    signature=_made_up_signature())
    elif protocol == "rest-signature":
        protocol, request = "rest", json.dumps({"signature_name": _made_up_signature(),
                                                "instances": [[1.0, 2.0, 3.0]]}).encode()
    if protocol == "rest":
        status, _ = rest_post(rest_address, f"/v1/models/{MODEL}:predict", request)
        return status in expected, str(status)
    method = stub.Classify if isinstance(request, classification_pb2.ClassificationRequest) \
        else stub.Predict
    try:
        method(request, timeout=30)
    except grpc.RpcError as e:
        return e.code() in expected, e.code().name
    return False, "OK"
