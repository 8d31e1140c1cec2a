"""A small typed client over the official PredictionService/ModelService stubs."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.apis import regression_pb2

from serving.client.base import Classification
from serving.client.base import ModelTarget
from serving.client.base import ServingClientError
from serving.client.base import cast_inputs
from serving.client.base import to_example

_STATES = get_model_status_pb2.ModelVersionStatus.State


class GrpcClient:
    """Calls a model over gRPC.

    Args:
        target: Server and model.
        timeout: Seconds per call.
        credentials: ``grpc.ChannelCredentials`` for TLS, else plaintext.

    Example:
        >>> c = GrpcClient(ModelTarget("localhost:8500", "taxi"))  # doctest: +SKIP
        >>> c.regress([{"x": [1.0, 2.0, 3.0]}], signature_name="regress")  # doctest: +SKIP
    """

    def __init__(self, target: ModelTarget, *, timeout: float = 10.0,
                 credentials: grpc.ChannelCredentials | None = None):
        self.target = target
        self.timeout = timeout
        self._channel = (grpc.secure_channel(target.server, credentials) if credentials
                         else grpc.insecure_channel(target.server))
        self._predictions = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)
        self._signatures: dict | None = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        """Closes the channel."""
        self._channel.close()

    def _spec(self, target, signature_name: str = "") -> None:
        target.name = self.target.model
        target.signature_name = signature_name
        if self.target.version is not None:
            target.version.value = self.target.version
        elif self.target.label is not None:
            target.version_label = self.target.label

    def _call(self, method, request):
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as e:
            raise ServingClientError(e.code().name, e.details() or "") from e

    def metadata(self) -> dict:
        """The model's signature_defs as a JSON-style dict."""
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._spec(request.model_spec)
        response = self._call(self._predictions.GetModelMetadata, request)
        return json_format.MessageToDict(response, preserving_proto_field_name=True)

    def _input_dtypes(self, signature_name: str) -> dict[str, tf.DType]:
        if self._signatures is None:
            request = get_model_metadata_pb2.GetModelMetadataRequest(
                metadata_field=["signature_def"])
            self._spec(request.model_spec)
            response = self._call(self._predictions.GetModelMetadata, request)
            signature_map = get_model_metadata_pb2.SignatureDefMap()
            response.metadata["signature_def"].Unpack(signature_map)
            self._signatures = dict(signature_map.signature_def)
        signature = self._signatures.get(signature_name or "serving_default")
        if signature is None:
            return {}
        return {k: tf.dtypes.as_dtype(v.dtype) for k, v in signature.inputs.items()}

    def predict(self, inputs: Mapping[str, Any], *, signature_name: str = "",
                output_filter: Sequence[str] = ()) -> dict[str, np.ndarray]:
        """Runs Predict; inputs are cast to the signature's dtypes."""
        request = predict_pb2.PredictRequest(output_filter=list(output_filter))
        self._spec(request.model_spec, signature_name)
        for name, array in cast_inputs(inputs, self._input_dtypes(signature_name)).items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(array))
        response = self._call(self._predictions.Predict, request)
        return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}

    def classify(self, examples: Sequence[Mapping[str, Any]], *,
                 signature_name: str = "") -> list[Classification]:
        """Runs Classify on feature dicts (or tf.Examples)."""
        request = classification_pb2.ClassificationRequest()
        self._spec(request.model_spec, signature_name)
        request.input.example_list.examples.extend(to_example(e) for e in examples)
        response = self._call(self._predictions.Classify, request)
        return [[(c.label, c.score) for c in row.classes]
                for row in response.result.classifications]

    def regress(self, examples: Sequence[Mapping[str, Any]], *,
                signature_name: str = "") -> list[float]:
        """Runs Regress on feature dicts (or tf.Examples)."""
        request = regression_pb2.RegressionRequest()
        self._spec(request.model_spec, signature_name)
        request.input.example_list.examples.extend(to_example(e) for e in examples)
        response = self._call(self._predictions.Regress, request)
        return [r.value for r in response.result.regressions]

    def status(self) -> list[dict]:
        """Version states, newest first: ``{"version", "state", "error"}``."""
        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec)
        request.model_spec.ClearField("signature_name")
        response = self._call(self._models.GetModelStatus, request)
        return [{"version": s.version, "state": _STATES.Name(s.state),
                 "error": s.status.error_message} for s in response.model_version_status]
