"""``python -m serving`` as a subprocess in tests: the gRPC port it bound, and a clean stop."""

from __future__ import annotations

import re
import signal
import subprocess
import time

READY = re.compile(r"Running gRPC ModelServer at 127\.0\.0\.1:(\d+)")


def wait_for_grpc_port(process: subprocess.Popen, timeout: float = 120) -> tuple[int | None, list[str]]:
    """Reads the server's output (text mode, stderr merged) until it names its gRPC port.

    Returns (port or None if the server exited or ``timeout`` passed first, the lines read).
    """
    port, lines, deadline = None, [], time.monotonic() + timeout
    while port is None and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        match = READY.match(line)
        port = int(match.group(1)) if match else None
    return port, lines


def stop(process: subprocess.Popen, timeout: float = 30) -> int | None:
    """SIGTERM, then SIGKILL if it does not exit within ``timeout``; returns the exit code of the SIGTERM."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def predict_through_python_m_serving(models: dict, requests: list, *, cwd: str, timeout: float = 180) -> list:
    """Serves ``models`` (name -> base path) from one ``python -m serving`` (a model config file
    beside the first base path's parent) and sends each request to tensorflow-serving-api's
    Predict stub; returns each answer's output as a numpy array. The server is stopped (and
    must exit 0) even when a request fails.

    Each request is ``(model name, signature name, {input: array}, output key)``.
    """
    import os
    import pathlib
    import sys

    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    config = pathlib.Path(next(iter(models.values()))).parent / "models.config"
    config.write_text("model_config_list {\n" + "".join(
        f'  config {{ name: "{name}" base_path: "{path}" model_platform: "tensorflow" }}\n'
        for name, path in models.items()) + "}\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "serving", "--port=0", f"--model_config_file={config}"], cwd=cwd,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    try:
        port, lines = wait_for_grpc_port(process, timeout=timeout)
        assert port, "".join(lines)
        answers = []
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            for name, signature, inputs, output in requests:
                request = predict_pb2.PredictRequest()
                request.model_spec.name, request.model_spec.signature_name = name, signature
                for key, value in inputs.items():
                    request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
                answers.append(tf.make_ndarray(stub.Predict(request, timeout=60).outputs[output]))
        return answers
    finally:
        assert stop(process, timeout=30) == 0
