"""Runs ``python -m serving`` the way TF Serving's integration suite runs tensorflow_model_server.

One server process per distinct set of arguments, reused by every test that
asks for the same arguments (TF Serving's suite caches its servers the same
way). Used by ``test_tf_serving_suite.py`` and ``test_tf_serving_example_clients.py``
through a module-scoped ``ServerRegistry`` whose ``stop_all`` always runs at
module teardown.

Every wait here is bounded: start-up (``STARTUP_TIMEOUT``), each RPC
(``RPC_TIMEOUT``), each REST call, and stopping (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import atexit
import collections
import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import grpc
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tests.server_process import READY, stop

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data", "tf_serving")

RPC_TIMEOUT = 10.0
STARTUP_TIMEOUT = 120.0
READY_PROBE_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
REST_RETRY_SECONDS = 30.0
HTTP_REST_TIMEOUT_MS = 5000
DEFAULT_SIGNATURE = "serving_default"
# Servers kept running at once; the least recently used one is stopped first.
MAX_LIVE_SERVERS = 4


def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def model_version(model_path: str) -> int:
    """The one numeric version directory under ``model_path``."""
    versions = [int(name) for name in os.listdir(model_path) if name.isdigit()]
    assert len(versions) == 1, f"expected one version under {model_path}, found {versions}"
    return versions[0]


def server_command(*, port: int, rest_api_port: int, socket_path: str, model_name=None,
                   model_path=None, model_type="tf", model_config_file=None,
                   monitoring_config_file=None, batching_parameters_file=None,
                   grpc_channel_arguments="", model_config_file_poll_period=None,
                   profiler_port=None, extra_flags=()) -> list[str]:
    """The command line TF Serving's suite builds, for ``python -m serving``."""
    command = [
        sys.executable, "-m", "serving",
        f"--port={port}",
        f"--rest_api_port={rest_api_port}",
        f"--rest_api_timeout_in_ms={HTTP_REST_TIMEOUT_MS}",
        f"--grpc_socket_path={socket_path}",
    ]
    if model_config_file:
        command.append(f"--model_config_file={model_config_file}")
    elif model_path:
        command += [f"--model_name={model_name}", f"--model_base_path={model_path}"]
    else:
        raise ValueError("server_command needs model_config_file or model_path")
    if model_type == "tflite":
        command.append("--prefer_tflite_model=true")
    if monitoring_config_file:
        command.append(f"--monitoring_config_file={monitoring_config_file}")
    if model_config_file_poll_period is not None:
        command.append(f"--model_config_file_poll_wait_seconds={model_config_file_poll_period}")
    if batching_parameters_file:
        command += ["--enable_batching", f"--batching_parameters_file={batching_parameters_file}"]
    channel_args = ",".join(a for a in (grpc_channel_arguments, "grpc.so_reuseaddr=1") if a)
    command.append(f"--grpc_channel_arguments={channel_args}")
    if profiler_port is not None:
        command.append(f"--profiler_port={profiler_port}")  # Ours: TF's profiler server.
    command += list(extra_flags)
    command.append("--host=127.0.0.1")
    return command


def server_env() -> dict[str, str]:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "",
            "PYTHONUNBUFFERED": "1"}


@dataclasses.dataclass
class RunningServer:
    """One ``python -m serving`` process and where it listens."""

    proc: subprocess.Popen
    command: list[str]
    grpc_address: str
    rest_address: str
    socket_path: str
    profiler_address: str | None
    log_path: str
    _sock_dir: str
    _lines: collections.deque = dataclasses.field(
        default_factory=lambda: collections.deque(maxlen=400))
    _ready_port: int | None = None
    _ready_or_eof: threading.Event = dataclasses.field(default_factory=threading.Event)
    _reader: threading.Thread | None = None

    def start_reader(self) -> None:
        """Drains the server's output (so its pipe never fills) into the log file."""
        def read():
            with open(self.log_path, "w", encoding="utf-8") as log:
                log.write(" ".join(self.command) + "\n")
                for line in self.proc.stdout:
                    log.write(line)
                    log.flush()
                    self._lines.append(line)
                    match = READY.match(line)
                    if match and self._ready_port is None:
                        self._ready_port = int(match.group(1))
                        self._ready_or_eof.set()
            self._ready_or_eof.set()

        self._reader = threading.Thread(target=read, daemon=True, name="server-output")
        self._reader.start()

    def tail(self, n: int = 40) -> str:
        return "".join(list(self._lines)[-n:])

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Waits for the 'Running gRPC ModelServer' line, then for a gRPC answer."""
        self._ready_or_eof.wait(timeout)
        if self._ready_port is None:
            what = (f"exited with code {self.proc.poll()}" if self.proc.poll() is not None
                    else f"printed no 'Running gRPC ModelServer' line within {timeout:.0f} s")
            raise RuntimeError(f"The server {what}.\nCommand: {' '.join(self.command)}\n"
                               f"Output (last lines):\n{self.tail()}")
        expected = int(self.grpc_address.rsplit(":", 1)[1])
        if self._ready_port != expected:
            raise RuntimeError(
                f"The server bound gRPC port {self._ready_port}, not --port={expected}")
        probe_servable_not_found(self.grpc_address)

    def stop(self) -> None:
        if self.proc.poll() is None:
            stop(self.proc, timeout=STOP_TIMEOUT)
        if self._reader is not None:
            self._reader.join(timeout=5)
        shutil.rmtree(self._sock_dir, ignore_errors=True)


def probe_servable_not_found(address: str, timeout: float = READY_PROBE_TIMEOUT) -> bool:
    """TF Serving's WaitForServerReady: Predict on a missing model until the answer names it.

    Like the original, this does not fail when the answer never comes; the
    tests that follow report what is wrong.
    """
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "intentionally_missing_model"
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        while time.monotonic() < deadline:
            try:
                stub.Predict(request, timeout=RPC_TIMEOUT)
            except grpc.RpcError as error:
                details = error.details() or ""
                if error.code() == grpc.StatusCode.NOT_FOUND or "Servable" in details:
                    return True
            time.sleep(0.5)
    return False


class ServerRegistry:
    """Starts one server per distinct argument set and stops them all at the end."""

    def __init__(self, log_dir: str, max_live: int = MAX_LIVE_SERVERS):
        self._log_dir = log_dir
        self._max_live = max_live
        self._live: collections.OrderedDict[tuple, RunningServer] = collections.OrderedDict()
        self._failed: dict[tuple, str] = {}
        self._count = 0
        atexit.register(self.stop_all)  # In case module teardown never runs.

    def run(self, model_name=None, model_path=None, *, model_type="tf", model_config_file=None,
            monitoring_config_file=None, batching_parameters_file=None,
            grpc_channel_arguments="", wait_for_server_ready=True,
            model_config_file_poll_period=None, with_profiler=False,
            extra_flags=()) -> RunningServer:
        """TF Serving's RunServer: a running server for these arguments (started if needed)."""
        key = (model_name, model_path, model_type, model_config_file, monitoring_config_file,
               batching_parameters_file, grpc_channel_arguments, wait_for_server_ready,
               model_config_file_poll_period, with_profiler, tuple(extra_flags))
        if key in self._failed:
            raise RuntimeError(f"(start failed earlier) {self._failed[key]}")
        server = self._live.get(key)
        if server is not None and server.proc.poll() is None:
            self._live.move_to_end(key)
            return server
        if server is not None:  # It died; start a fresh one.
            server.stop()
            del self._live[key]
        while len(self._live) >= self._max_live:
            _, oldest = self._live.popitem(last=False)
            oldest.stop()
        port, rest_port = free_port(), free_port()
        profiler_port = free_port() if with_profiler else None
        sock_dir = short_tmp_dir("tfs-")
        socket_path = os.path.join(sock_dir, "tf-serving.sock")
        command = server_command(
            port=port, rest_api_port=rest_port, socket_path=socket_path, model_name=model_name,
            model_path=model_path, model_type=model_type, model_config_file=model_config_file,
            monitoring_config_file=monitoring_config_file,
            batching_parameters_file=batching_parameters_file,
            grpc_channel_arguments=grpc_channel_arguments,
            model_config_file_poll_period=model_config_file_poll_period,
            profiler_port=profiler_port, extra_flags=extra_flags)
        self._count += 1
        log_path = os.path.join(self._log_dir, f"server-{self._count}.log")
        print(f"Starting server {self._count} (log: {log_path}): {' '.join(command)}")
        proc = subprocess.Popen(command, cwd=ROOT, env=server_env(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace")
        server = RunningServer(
            proc=proc, command=command, grpc_address=f"127.0.0.1:{port}",
            rest_address=f"127.0.0.1:{rest_port}", socket_path=socket_path,
            profiler_address=f"127.0.0.1:{profiler_port}" if profiler_port else None,
            log_path=log_path, _sock_dir=sock_dir)
        server.start_reader()
        self._live[key] = server
        if wait_for_server_ready:
            try:
                server.wait_ready()
            except RuntimeError as e:
                server.stop()
                del self._live[key]
                self._failed[key] = str(e)
                raise
        return server

    def stop_all(self) -> None:
        while self._live:
            _, server = self._live.popitem()
            server.stop()


def verify_model_spec(model_spec, name: str, signature_name: str, version: int) -> None:
    """TF Serving's _VerifyModelSpec."""
    assert model_spec.name == name
    assert model_spec.signature_name == signature_name
    assert model_spec.version.value == version


def verify_predict_request(address: str, expected_output: float, expected_version: int, *,
                           model_name="default", specify_output=True, batch_input=False,
                           signature_name=DEFAULT_SIGNATURE, rpc_timeout=RPC_TIMEOUT) -> None:
    """TF Serving's VerifyPredictRequest: x=[2.0] in, one typed float_val 'y' out."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    x = request.inputs["x"]
    x.dtype = types_pb2.DT_FLOAT
    x.float_val.append(2.0)
    x.tensor_shape.dim.add().size = 1
    if batch_input:
        x.tensor_shape.dim.add().size = 1
    if specify_output:
        request.output_filter.append("y")
    with grpc.insecure_channel(address) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        result = stub.Predict(request, timeout=rpc_timeout)
    assert "y" in result.outputs, f"outputs: {sorted(result.outputs)}"
    y = result.outputs["y"]
    assert y.dtype == types_pb2.DT_FLOAT
    assert len(y.float_val) == 1, (
        f"expected one typed float_val, got {len(y.float_val)} "
        f"(tensor_content: {len(y.tensor_content)} bytes)")
    assert y.float_val[0] == expected_output
    verify_model_spec(result.model_spec, model_name, signature_name, expected_version)


def call_rest(url: str, body=None, *, timeout: float = 10.0,
              retry_for: float = REST_RETRY_SECONDS, headers=None) -> bytes:
    """TF Serving's CallREST: POST ``body`` as JSON (GET without one); returns the body.

    Retries while the connection is refused (bounded by ``retry_for``); an
    HTTP error answer fails at once with its body.
    """
    data = json.dumps(body).encode("utf-8") if body is not None else None
    deadline = time.monotonic() + retry_for
    while True:
        request = urllib.request.Request(url, data=data, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.read()
        except urllib.error.HTTPError as e:
            raise AssertionError(f"{url} answered HTTP {e.code}: {e.read()[:2000]!r}") from None
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() >= deadline:
                raise
            time.sleep(1)


def order_free(value):
    """``value`` with every JSON list sorted, for comparing JSON whose lists are unordered.

    Dicts already compare regardless of key order; lists are sorted by the
    canonical JSON text of their (recursively normalised) items, so items of
    mixed types never need to be compared with each other.
    """
    if isinstance(value, dict):
        return {key: order_free(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        items = [order_free(item) for item in value]
        return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
    return value


def short_tmp_dir(prefix: str) -> str:
    """A directory with a short path (Unix socket paths are limited to ~107 bytes)."""
    return tempfile.mkdtemp(prefix=prefix, dir="/tmp" if os.path.isdir("/tmp") else None)
