"""Loopback load test of `python -m serving` against in-process signature calls.

Measures, on 127.0.0.1 with bounded request counts:
* p50/p99 latency of a single-row gRPC Predict vs. calling the same signature
  in-process (target: p50 overhead <= 1 ms);
* throughput (rows/s) with 16 concurrent single-row clients, batching off and
  on, vs. the in-process maximum with full batches (target: >= 0.8x).

Prints one JSON line. Not a test: timings depend on the machine.

    .venv/bin/python benchmarks/serving_load.py [--seconds 5] [--requests 500]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FEATURES, HIDDEN, CLIENTS, MAX_BATCH = 32, 256, 16, 16


class Mlp(tf.Module):
    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(0)
        self.w1 = tf.Variable(rng.normal(size=(FEATURES, HIDDEN)).astype(np.float32) * 0.1)
        self.w2 = tf.Variable(rng.normal(size=(HIDDEN, HIDDEN)).astype(np.float32) * 0.1)
        self.w3 = tf.Variable(rng.normal(size=(HIDDEN, 1)).astype(np.float32) * 0.1)

    @tf.function(input_signature=[tf.TensorSpec([None, FEATURES], tf.float32, name="x")])
    def predict(self, x):
        h = tf.nn.relu(x @ self.w1)
        h = tf.nn.relu(h @ self.w2)
        return {"y": h @ self.w3}


def percentiles(samples):
    return float(np.percentile(samples, 50) * 1e3), float(np.percentile(samples, 99) * 1e3)


def start_server(base, extra):
    process = subprocess.Popen(
        [sys.executable, "-m", "serving", "--port=0", "--model_name=m",
         f"--model_base_path={base}", "--file_system_poll_wait_seconds=0", *extra],
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


def request(x):
    r = predict_pb2.PredictRequest()
    r.model_spec.name = "m"
    r.inputs["x"].CopyFrom(tf.make_tensor_proto(x))
    return r


def latency(stub, x, n):
    req = request(x)
    for _ in range(50):
        stub.Predict(req, timeout=10)
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        stub.Predict(req, timeout=10)
        samples.append(time.perf_counter() - t)
    return percentiles(samples)


def throughput(stub, x, seconds, max_requests):
    req = request(x)
    counts, failures = [0] * CLIENTS, [0]
    stop = time.monotonic() + seconds

    def client(i):
        while time.monotonic() < stop and counts[i] < max_requests:
            try:
                stub.Predict(req, timeout=30)
                counts[i] += 1
            except grpc.RpcError:
                failures[0] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.monotonic() - start), failures[0]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="serving_load_")
    export = os.path.join(tmp, "m", "1")
    model = Mlp()
    tf.saved_model.save(model, export, signatures={"serving_default": model.predict})
    fn = tf.saved_model.load(export).signatures["serving_default"]
    x1 = np.random.default_rng(1).normal(size=(1, FEATURES)).astype(np.float32)

    for _ in range(50):
        fn(x=tf.constant(x1))
    samples = []
    for _ in range(args.requests):
        t = time.perf_counter()
        fn(x=tf.constant(x1))["y"].numpy()
        samples.append(time.perf_counter() - t)
    direct_p50, direct_p99 = percentiles(samples)

    xb = np.repeat(x1, MAX_BATCH, axis=0)
    calls, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < min(args.seconds, 3.0):
        fn(x=tf.constant(xb))["y"].numpy()
        calls += 1
    in_process_max = calls * MAX_BATCH / (time.monotonic() - t0)

    batching = os.path.join(tmp, "batching.txt")
    with open(batching, "w") as f:
        f.write(f"max_batch_size {{ value: {MAX_BATCH} }}\nbatch_timeout_micros {{ value: 1000 }}\n"
                "num_batch_threads { value: 2 }\nmax_enqueued_batches { value: 1000 }\n")
    result = {"clients": CLIENTS, "rows_per_request": 1, "max_batch_size": MAX_BATCH,
              "direct_p50_ms": round(direct_p50, 3), "direct_p99_ms": round(direct_p99, 3),
              "in_process_batched_rows_per_s": round(in_process_max, 1)}
    for name, extra in (("off", []), ("on", ["--enable_batching",
                                              f"--batching_parameters_file={batching}"])):
        process, port = start_server(os.path.join(tmp, "m"), extra)
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
                if name == "off":
                    p50, p99 = latency(stub, x1, args.requests)
                    result.update(grpc_p50_ms=round(p50, 3), grpc_p99_ms=round(p99, 3),
                                  p50_overhead_ms=round(p50 - direct_p50, 3))
                rows, failures = throughput(stub, x1, args.seconds, 100_000)
                result[f"batching_{name}_rows_per_s"] = round(rows, 1)
                result[f"batching_{name}_ratio"] = round(rows / in_process_max, 3)
                result[f"batching_{name}_failures"] = failures
        finally:
            process.terminate()
            process.wait(timeout=30)
    result["target_p50_overhead_met"] = result["p50_overhead_ms"] <= 1.0
    result["target_throughput_met"] = max(result["batching_on_ratio"],
                                          result["batching_off_ratio"]) >= 0.8
    result["cpu_count"] = os.cpu_count()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
