"""Clients for TF-Serving-compatible servers (ours or tensorflow/serving).

Example:
    >>> from serving.client import ModelTarget, connect            # doctest: +SKIP
    >>> with connect(ModelTarget("localhost:8500", "taxi")) as c:  # doctest: +SKIP
    ...     c.predict({"x": [[1.0, 2.0, 3.0]]})["y"]
"""

from serving.client.base import Classification
from serving.client.base import ModelTarget
from serving.client.base import ServingClientError
from serving.client.grpc_client import GrpcClient
from serving.client.rest_client import RestClient


def connect(target: ModelTarget, *, protocol: str = "grpc", timeout: float = 10.0):
    """A ``GrpcClient`` or ``RestClient`` for ``target``."""
    if protocol == "grpc":
        return GrpcClient(target, timeout=timeout)
    if protocol == "rest":
        return RestClient(target, timeout=timeout)
    raise ValueError(f"connect got protocol={protocol!r}; expected 'grpc' or 'rest'.")


__all__ = ["Classification", "GrpcClient", "ModelTarget", "RestClient", "ServingClientError",
           "connect"]
