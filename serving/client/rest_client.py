"""The same client API over the TF Serving REST API (standard library only)."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2

from serving.client.base import Classification
from serving.client.base import ModelTarget
from serving.client.base import ServingClientError
from serving.client.base import cast_inputs


def _json_value(value):
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value


def _feature_json(value):
    if isinstance(value, np.ndarray):
        value = value.tolist()
    return _json_value(value)


class RestClient:
    """Calls a model over the REST API.

    Args:
        target: Server (its REST port) and model.
        timeout: Seconds per call.

    Example:
        >>> c = RestClient(ModelTarget("localhost:8501", "taxi"))  # doctest: +SKIP
        >>> c.status()                                             # doctest: +SKIP
    """

    def __init__(self, target: ModelTarget, *, timeout: float = 10.0):
        self.target = target
        self.timeout = timeout
        url = f"http://{target.server}/v1/models/{target.model}"
        if target.version is not None:
            url += f"/versions/{target.version}"
        elif target.label is not None:
            url += f"/labels/{target.label}"
        self._url = url
        self._signatures: dict | None = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        """Nothing to release (one connection per call)."""

    def _request(self, suffix: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self._url + suffix, data=data,
                                         method="GET" if data is None else "POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as e:
            try:
                message = json.loads(e.read()).get("error", "")
            except ValueError:
                message = str(e)
            raise ServingClientError(f"HTTP {e.code}", message) from e

    def metadata(self) -> dict:
        """The model's signature_defs as a JSON-style dict."""
        return self._request("/metadata")

    def _input_dtypes(self, signature_name: str) -> dict[str, tf.DType]:
        if self._signatures is None:
            self._signatures = self.metadata()["metadata"]["signature_def"]["signature_def"]
        signature = self._signatures.get(signature_name or "serving_default", {})
        return {k: tf.dtypes.as_dtype(types_pb2.DataType.Value(v["dtype"]))
                for k, v in signature.get("inputs", {}).items()}

    def predict(self, inputs: Mapping[str, Any], *, signature_name: str = "",
                output_filter: Sequence[str] = ()) -> dict[str, np.ndarray]:
        """Runs :predict in the columnar format; returns arrays per output."""
        arrays = cast_inputs(inputs, self._input_dtypes(signature_name))
        body = {"inputs": {k: _json_value(v.tolist()) for k, v in arrays.items()}}
        if signature_name:
            body["signature_name"] = signature_name
        outputs = self._request(":predict", body)["outputs"]
        if not isinstance(outputs, dict):
            outputs = {"outputs": outputs}
        result = {k: np.asarray(v) for k, v in outputs.items()}
        return {k: v for k, v in result.items() if not output_filter or k in output_filter}

    def _examples_body(self, examples, signature_name):
        body = {"examples": [{k: _feature_json(v) for k, v in e.items()} for e in examples]}
        if signature_name:
            body["signature_name"] = signature_name
        return body

    def classify(self, examples: Sequence[Mapping[str, Any]], *,
                 signature_name: str = "") -> list[Classification]:
        """Runs :classify on feature dicts."""
        results = self._request(":classify", self._examples_body(examples, signature_name))
        return [[(label, float(score)) for label, score in row] for row in results["results"]]

    def regress(self, examples: Sequence[Mapping[str, Any]], *,
                signature_name: str = "") -> list[float]:
        """Runs :regress on feature dicts."""
        results = self._request(":regress", self._examples_body(examples, signature_name))
        return [float(v) for v in results["results"]]

    def status(self) -> list[dict]:
        """Version states, newest first: ``{"version", "state", "error"}``."""
        statuses = self._request("")["model_version_status"]
        return [{"version": int(s["version"]), "state": s["state"],
                 "error": s["status"]["error_message"]} for s in statuses]
