"""Shared fixtures: tiny SavedModels and one real server on 127.0.0.1."""

from __future__ import annotations

import os
import sys

import grpc
import pytest

sys.path.insert(0, os.path.dirname(__file__))

import saved_models  # noqa: E402

from serving.flags import ServerOptions  # noqa: E402
from serving.server import ModelServer  # noqa: E402
from tensorflow_serving.apis import model_service_pb2_grpc  # noqa: E402
from tensorflow_serving.apis import prediction_service_pb2_grpc  # noqa: E402

MODEL = "tiny"
MAX_REQUEST_BYTES = 1 << 20
METRICS_PATH = "/monitoring/prometheus/metrics"


@pytest.fixture(scope="session")
def exports(tmp_path_factory):
    """Version 1 (weight 1) and version 2 (weight 2) of TinyModel."""
    root = tmp_path_factory.mktemp("exports")
    return {
        1: saved_models.export_tiny_model(str(root / "w1"), weight=1.0),
        2: saved_models.export_tiny_model(str(root / "w2"), weight=2.0),
    }


def write_config(path, text: str) -> str:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return str(path)


@pytest.fixture(scope="session")
def server(tmp_path_factory, exports):
    """Model 'tiny' with versions 1 and 2 (labels stable=1, canary=2)."""
    root = tmp_path_factory.mktemp("served")
    base = root / "models" / MODEL
    saved_models.push_version(str(base), 1, exports[1])
    saved_models.push_version(str(base), 2, exports[2])
    config = write_config(root / "models.config", f"""
model_config_list {{
  config {{
    name: "{MODEL}"
    base_path: "{base}"
    model_platform: "tensorflow"
    model_version_policy {{ specific {{ versions: 1 versions: 2 }} }}
    version_labels {{ key: "stable" value: 1 }}
    version_labels {{ key: "canary" value: 2 }}
  }}
}}
""")
    monitoring = write_config(root / "monitoring.config", f"""
prometheus_config {{ enable: true path: "{METRICS_PATH}" }}
""")
    server = ModelServer(ServerOptions(
        port=0, rest_api_port=0, model_config_file=config,
        monitoring_config_file=monitoring, file_system_poll_wait_seconds=0.5,
        max_request_bytes=MAX_REQUEST_BYTES))
    server.start()
    yield server
    server.stop(grace=0)


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """``python -m serving`` subprocesses started with TF Serving's test flags, one per
    argument set, all stopped when the module ends (``tf_serving_harness``)."""
    from tf_serving_harness import ServerRegistry  # noqa: PLC0415

    registry = ServerRegistry(str(tmp_path_factory.mktemp("server_logs")))
    try:
        yield registry
    finally:
        registry.stop_all()


@pytest.fixture(scope="session")
def channel(server):
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as ch:
        yield ch


@pytest.fixture(scope="session")
def stub(channel):
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


@pytest.fixture(scope="session")
def model_stub(channel):
    return model_service_pb2_grpc.ModelServiceStub(channel)


@pytest.fixture(scope="session")
def rest_url(server):
    return f"http://127.0.0.1:{server.rest_port}"
