"""``--num_server_processes``: several server processes on shared ports (SO_REUSEPORT)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import model_management_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))

import server_process  # noqa: E402
from serving.process_group import _child_argv  # noqa: E402

import saved_models  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def children_of(pid: int) -> list[int]:
    found = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as f:
            found += [int(c) for c in f.read().split()]
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().split(")")[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def group(tmp_path_factory):
    root = tmp_path_factory.mktemp("group")
    saved_models.push_version(str(root / "tiny"), 1,
                              saved_models.export_tiny_model(str(root / "export"), weight=1.0))
    socket_path = str(root / "grpc.sock")
    with socket.socket() as probe:  # --rest_api_port=0 means "REST off", as in TF Serving.
        probe.bind(("127.0.0.1", 0))
        rest_port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "serving", "--model_name=tiny", f"--model_base_path={root / 'tiny'}",
         "--port=0", f"--rest_api_port={rest_port}", "--num_server_processes=2",
         f"--grpc_socket_path={socket_path}"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    try:
        port, lines = server_process.wait_for_grpc_port(process, timeout=240)
        assert port, "".join(lines[-30:])
        yield process, port, rest_port, socket_path
    finally:
        if process.poll() is None:
            server_process.stop(process)


def predict(target: str, value: float) -> float:
    # A channel of its own (no shared subchannel), so each call is a new connection.
    with grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)]) as ch:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "tiny"
        request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.full((1, 3), value, np.float32)))
        response = prediction_service_pb2_grpc.PredictionServiceStub(ch).Predict(request, timeout=10)
        return response.outputs["y"].float_val[0]


@pytest.mark.slow  # Two servers load TensorFlow and a model.
def test_two_processes_serve_grpc_rest_and_the_unix_socket(group):
    process, port, rest_port, socket_path = group
    children = children_of(process.pid)
    assert len(children) == 2 and all(alive(pid) for pid in children)
    # y = x . [1, 2, 3] + 0.5; connections are spread over both processes by the kernel.
    for i in range(12):
        assert predict(f"127.0.0.1:{port}", float(i)) == pytest.approx(6.0 * i + 0.5)
    assert predict(f"unix:{socket_path}", 1.0) == pytest.approx(6.5)
    for _ in range(6):
        conn = http.client.HTTPConnection("127.0.0.1", rest_port, timeout=10)
        conn.request("POST", "/v1/models/tiny:predict", body=json.dumps(
            {"instances": [[1.0, 1.0, 1.0]]}))
        answer = conn.getresponse()
        assert answer.status == 200
        assert json.loads(answer.read())["predictions"][0]["y"] == [6.5]
        conn.close()


@pytest.mark.slow  # Two servers load TensorFlow and a model.
def test_reload_config_is_refused_in_a_group(group):
    _, port, _, _ = group
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        with pytest.raises(grpc.RpcError) as info:
            model_service_pb2_grpc.ModelServiceStub(ch).HandleReloadConfigRequest(
                model_management_pb2.ReloadConfigRequest(), timeout=10)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "--num_server_processes" in info.value.details()


@pytest.mark.slow  # Two servers load TensorFlow and a model.
def test_a_dead_child_stops_the_group_and_sigterm_stops_all(group):
    process, _, _, _ = group
    children = children_of(process.pid)
    os.kill(children[1], signal.SIGKILL)
    code = process.wait(timeout=60)
    assert code == 1
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(pid) for pid in children)
    rest = process.stdout.read()
    assert "server process 1 exited" in rest


def test_child_flags_drop_what_each_process_sets_itself():
    argv = ["--port", "8500", "--model_name=m", "--rest_api_port=9", "--grpc_socket_path", "/s",
            "--enable_batching", "--profiler_port=6009", "--num_server_processes", "2"]
    first = _child_argv(argv, 0, 2, 8500, 9)[3:]
    assert first == ["--model_name=m", "--grpc_socket_path", "/s", "--enable_batching",
                     "--profiler_port=6009", "--port=8500", "--rest_api_port=9",
                     "--reuse_port=true", "--num_server_processes=2", "--server_process_index=0"]
    second = _child_argv(argv, 1, 2, 8500, None)[3:]
    assert second == ["--model_name=m", "--enable_batching", "--port=8500", "--rest_api_port=0",
                      "--reuse_port=true", "--num_server_processes=2", "--server_process_index=1"]
