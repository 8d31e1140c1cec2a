"""Loopback load test of `python -m serving` against in-process signature calls.

Two models are served by the same server in the same run:

* ``tiny``: an MLP 32->256->256->1. Its compute is a few microseconds per
  row, so its numbers measure the server's per-request overhead.
* ``wide``: an MLP 1024->2048->2048->2048->1 (~21 MFLOP per row), whose
  batched in-process cost is a fraction of a millisecond per row, so its
  numbers show how much of the model's own throughput the server delivers.

For each model, on 127.0.0.1 with bounded request counts:

* p50/p99 latency of a single-row gRPC Predict vs. calling the same signature
  in-process (target: p50 overhead <= 1 ms);
* rows/s with 16 single-row requests in flight, batching off and on, vs. the
  in-process maximum with full batches of 16 (target: >= 0.8x).

The clients run in a separate process (``serving_load_client.py``: raw
pre-serialized request bytes on a ``grpc.aio`` channel), which reports its own
CPU use next to the server's, in cores, so a reader can see which side
saturates. ``server_cpu_ms_per_request`` is the server's CPU cost of one
request; ``1000 /`` it is the server's ceiling in requests/s per core.

Prints one JSON line. Not a test: timings depend on the machine and on what
else runs on it. Takes about 1.5 minutes.

    .venv/bin/python benchmarks/serving_load.py [--seconds 4] [--requests 500]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIENT = os.path.join(ROOT, "benchmarks", "serving_load_client.py")
CLIENTS, MAX_BATCH = 16, 16
# name -> (input features, hidden layer widths)
MODELS = {"tiny": (32, (256, 256)), "wide": (1024, (2048, 2048, 2048))}


class Mlp(tf.Module):
    """ReLU MLP with one output, signature input ``x``, output ``y``."""

    def __init__(self, features: int, hidden: tuple[int, ...]):
        super().__init__()
        rng = np.random.default_rng(0)
        widths = (features, *hidden, 1)
        self.weights = [
            tf.Variable((rng.normal(size=(a, b)) / np.sqrt(a)).astype(np.float32))
            for a, b in zip(widths[:-1], widths[1:])
        ]
        self.predict = tf.function(
            self._predict,
            input_signature=[tf.TensorSpec([None, features], tf.float32, name="x")])

    def _predict(self, x):
        for w in self.weights[:-1]:
            x = tf.nn.relu(x @ w)
        return {"y": x @ self.weights[-1]}


def percentiles(samples):
    return float(np.percentile(samples, 50) * 1e3), float(np.percentile(samples, 99) * 1e3)


def in_process(fn, x1: np.ndarray, requests: int, seconds: float) -> dict:
    """Single-row latency and full-batch rows/s of calling ``fn`` directly."""
    for _ in range(20):
        fn(x=tf.constant(x1))["y"].numpy()
    samples = []
    for _ in range(requests):
        start = time.perf_counter()
        fn(x=tf.constant(x1))["y"].numpy()
        samples.append(time.perf_counter() - start)
    p50, p99 = percentiles(samples)
    xb = np.repeat(x1, MAX_BATCH, axis=0)
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn(x=tf.constant(xb))["y"].numpy()
        calls += 1
    rows_per_s = calls * MAX_BATCH / (time.perf_counter() - start)
    return {"direct_p50_ms": round(p50, 3), "direct_p99_ms": round(p99, 3),
            "in_process_batched_rows_per_s": round(rows_per_s, 1),
            "in_process_ms_per_row": round(1e3 / rows_per_s, 4)}


def start_server(config_file: str, extra: list[str]):
    process = subprocess.Popen(
        [sys.executable, "-m", "serving", "--port=0", f"--model_config_file={config_file}",
         "--file_system_poll_wait_seconds=0", *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        match = re.match(r"Running gRPC ModelServer at [\d.]+:(\d+)", line)
        if match:
            return process, int(match.group(1))
        if not line and process.poll() is not None:
            break
    process.kill()
    raise RuntimeError("server did not start")


def request(name: str, x: np.ndarray) -> predict_pb2.PredictRequest:
    r = predict_pb2.PredictRequest()
    r.model_spec.name = name
    r.inputs["x"].CopyFrom(tf.make_tensor_proto(x))  # float32: packed tensor_content.
    return r


def check_response(port: int, name: str, x1: np.ndarray, fn) -> None:
    """One Predict through the real stub must return what ``fn`` returns."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        got = tf.make_ndarray(stub.Predict(request(name, x1), timeout=30).outputs["y"])
    np.testing.assert_allclose(got, fn(x=tf.constant(x1))["y"].numpy(), rtol=1e-4, atol=1e-5)


def run_client(port: int, request_file: str, *flags: str) -> dict:
    out = subprocess.run(
        [sys.executable, CLIENT, f"--target=127.0.0.1:{port}",
         f"--request_file={request_file}", *flags],
        check=True, capture_output=True, text=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=4.0,
                        help="length of each throughput window")
    parser.add_argument("--requests", type=int, default=500,
                        help="single-row requests timed for latency (tiny; wide gets 1/5)")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="serving_load_")
    config = os.path.join(tmp, "models.config")
    entries, functions, rows, request_files, result = [], {}, {}, {}, {}
    for name, (features, hidden) in MODELS.items():
        export = os.path.join(tmp, name, "1")
        model = Mlp(features, hidden)
        tf.saved_model.save(model, export, signatures={"serving_default": model.predict})
        functions[name] = tf.saved_model.load(export).signatures["serving_default"]
        rows[name] = np.random.default_rng(1).normal(size=(1, features)).astype(np.float32)
        request_files[name] = os.path.join(tmp, f"{name}.pb")
        with open(request_files[name], "wb") as f:
            f.write(request(name, rows[name]).SerializeToString())
        entries.append(f'config {{ name: "{name}" base_path: "{os.path.join(tmp, name)}" '
                       'model_platform: "tensorflow" }')
        latency_requests = args.requests if name == "tiny" else max(args.requests // 5, 20)
        result[name] = {"features": features, "hidden": list(hidden),
                        "latency_requests": latency_requests,
                        **in_process(functions[name], rows[name], latency_requests,
                                     min(args.seconds, 3.0))}
    with open(config, "w") as f:
        f.write("model_config_list {\n  " + "\n  ".join(entries) + "\n}\n")

    batching = os.path.join(tmp, "batching.txt")
    with open(batching, "w") as f:
        f.write(f"max_batch_size {{ value: {MAX_BATCH} }}\nbatch_timeout_micros {{ value: 1000 }}\n"
                "num_batch_threads { value: 2 }\nmax_enqueued_batches { value: 1000 }\n")
    # "off_4_threads": fewer gRPC worker threads contend less for the GIL, but
    # each in-flight request holds one, so it is no setting for batching.
    for mode, extra in (("off", []), ("off_4_threads", ["--grpc_max_threads=4"]),
                        ("on", ["--enable_batching",
                                f"--batching_parameters_file={batching}"])):
        process, port = start_server(config, extra)
        try:
            for name, out in result.items():
                check_response(port, name, rows[name], functions[name])
                if mode == "off":
                    lat = run_client(port, request_files[name], "--mode=latency",
                                     f"--requests={out['latency_requests']}", "--warmup=20")
                    out.update(grpc_p50_ms=lat["p50_ms"], grpc_p99_ms=lat["p99_ms"],
                               p50_overhead_ms=round(lat["p50_ms"] - out["direct_p50_ms"], 3))
                load = run_client(port, request_files[name], "--mode=throughput",
                                  f"--inflight={CLIENTS}", f"--seconds={args.seconds}",
                                  "--warmup=64", f"--server_pid={process.pid}")
                out[f"batching_{mode}"] = {
                    **load, "ratio": round(load["requests_per_s"]
                                           / out["in_process_batched_rows_per_s"], 3)}
        finally:
            process.terminate()
            process.wait(timeout=30)
    for out in result.values():
        out["target_p50_overhead_met"] = out["p50_overhead_ms"] <= 1.0
        out["target_throughput_met"] = max(
            out[f"batching_{mode}"]["ratio"] for mode in ("off", "off_4_threads", "on")) >= 0.8
    print(json.dumps({"clients_in_flight": CLIENTS, "rows_per_request": 1,
                      "max_batch_size": MAX_BATCH, "cpu_count": os.cpu_count(),
                      "load_average_1m": round(os.getloadavg()[0], 2), "models": result}))


if __name__ == "__main__":
    main()
