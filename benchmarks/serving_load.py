"""Loopback load test of `python -m serving` as users call it, next to a peer Python server.

Models, all served by one ``python -m serving`` process (gRPC + REST):

* ``tiny``: an MLP 32->256->256->1 (Predict). Its compute is a few
  microseconds per row, so its numbers measure the server's own cost.
* ``wide``: an MLP 1024->2048->2048->2048->1 (Predict), ~0.25 ms per row
  batched, so the model's own work dominates.
* ``wide_deep``: a tf.estimator-style export of the project's own
  ``trainer.DNNLinearCombinedClassifier`` on the taxi columns (trained a few
  steps: the weights do not matter for speed), with its ``serving_default``
  / ``classification`` (Classify), ``regression`` (Regress) and ``predict``
  (Predict) signatures, all taking serialized ``tf.Example``s. Built once
  and cached under ``--cache_dir`` (keyed on the trainer's source).

Scenarios: protocols REST and gRPC x the model's APIs x 1-row and 16-row
requests x batching off and on (``--enable_batching
--batching_parameters_file``, max batch 64). Per scenario:

* latency: p50/p99 of sequential single requests, and their overhead over
  calling the same signature in-process with the same rows;
* load: requests/s and rows/s with 16 requests in flight, and the ratio to
  the in-process batched rate (the signature called with 64-row batches for
  1-row requests, with 16-row batches for 16-row requests; the best of three
  windows).

Requests come from a separate client process (``serving_load_driver.py``:
pre-serialized gRPC messages and pre-built HTTP requests), which also reports
its own CPU use and the server's (all its processes), in cores.

The peer (``--peer kserve``, the default): KServe's Python model server in
its OWN virtualenv (``--peer_venv``, created on first use with pip; never the
project's .venv) serves the same SavedModels with KServe's documented
custom-``kserve.Model`` pattern (``serving_load_kserve.py``) over REST v1 and
gRPC v2; it gets the same single-row and 16-row load (KServe has no
Classify/Regress and no server-side batching: its ``predict()`` runs the
wide & deep classification signature). When its venv cannot be made, the
peer is skipped with a note on stderr and ``"peer": null``.

Prints ONE JSON line (progress goes to stderr), including ``"targets"``:
each ``{"value", "target", "met"}``. Timings depend on the machine and on
what else runs on it; this is a measurement, not a test.

    .venv/bin/python benchmarks/serving_load.py            # full: ~6 min on 2 cores
    .venv/bin/python benchmarks/serving_load.py --quick --no-peer --models tiny
"""

from __future__ import annotations

import argparse
import atexit
import base64
import dataclasses
import hashlib
import http.client
import inspect
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import grpc  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow_serving.apis import classification_pb2  # noqa: E402
from tensorflow_serving.apis import predict_pb2  # noqa: E402
from tensorflow_serving.apis import prediction_service_pb2_grpc  # noqa: E402
from tensorflow_serving.apis import regression_pb2  # noqa: E402

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
DRIVER = os.path.join(BENCH, "serving_load_driver.py")
KSERVE_HELPER = os.path.join(BENCH, "serving_load_kserve.py")

INFLIGHT = 16
ROWS = (1, 16)
IN_PROCESS_BATCH = {1: 64, 16: 16}  # request rows -> in-process batch size of the reference rate
MLPS = {"tiny": (32, (256, 256)), "wide": (1024, (2048, 2048, 2048))}
ALL_MODELS = ("tiny", "wide", "wide_deep")
WIDE_DEEP_STEPS = 20
# api -> signature of the wide & deep export it runs
WIDE_DEEP_APIS = {"classify": "serving_default", "regress": "regression", "predict": "predict"}
GRPC_METHODS = {"predict": "/tensorflow.serving.PredictionService/Predict",
                "classify": "/tensorflow.serving.PredictionService/Classify",
                "regress": "/tensorflow.serving.PredictionService/Regress"}
KSERVE_INFER = "/inference.GRPCInferenceService/ModelInfer"
PEER_REQUIREMENTS = ("kserve==0.21.*", "tensorflow-cpu=={tf_minor}.*")
BATCHING = {"max_batch_size": 64, "batch_timeout_micros": 1000, "num_batch_threads": 2,
            "max_enqueued_batches": 1000}


@dataclasses.dataclass(frozen=True)
class Budget:
    latency_requests: int   # at most this many sequential requests ...
    latency_seconds: float  # ... or this long
    latency_warmup: int
    seconds: float          # length of each 16-in-flight window
    warmup: int
    in_process_seconds: float


FULL = Budget(300, 1.2, 20, 3.0, 64, 1.5)
QUICK = Budget(60, 0.3, 5, 0.8, 32, 0.3)


def note(message: str) -> None:
    print(f"[serving_load] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes we start

_PROCESSES: list[subprocess.Popen] = []


def spawn(cmd: list[str], log_path: str, **kwargs) -> subprocess.Popen:
    """Starts ``cmd`` in its own process group, stderr to ``log_path``; stopped at exit."""
    log = open(log_path, "ab")  # noqa: SIM115 (closed with the process)
    process = subprocess.Popen(cmd, stderr=log, start_new_session=True,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, **kwargs)
    process.log = log
    _PROCESSES.append(process)
    return process


def stop(process: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM, then SIGKILL; then anything left in its process group (workers it started)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.log.close()
    if process in _PROCESSES:
        _PROCESSES.remove(process)


def stop_all() -> None:
    for process in list(_PROCESSES):
        stop(process, timeout=10)


atexit.register(stop_all)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


# ---------------------------------------------------------------- models

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


def wide_deep_cache_key() -> str:
    """Changes when the trainer, the taxi data prep, this export recipe or TF change."""
    digest = hashlib.sha256(f"{tf.__version__} {WIDE_DEEP_STEPS}".encode())
    digest.update(inspect.getsource(export_wide_deep).encode())
    paths = [os.path.join(BENCH, "taxi_data.py")]
    for folder, _, files in sorted(os.walk(os.path.join(ROOT, "trainer"))):
        paths += [os.path.join(folder, f) for f in sorted(files) if f.endswith(".py")]
    for path in paths:
        with open(path, "rb") as f:
            digest.update(path.encode() + f.read())
    return digest.hexdigest()[:16]


def export_wide_deep(out_dir: str) -> None:
    """Trains the taxi wide & deep a few steps and exports it to ``out_dir/1`` (+ rows.json)."""
    sys.path.insert(0, BENCH)
    import trainer
    from trainer import feature_column as fc
    from taxi_data import DENSE_KEYS, input_fn, prepare

    train, evaluation, sizes = prepare()
    ids = [fc.categorical_column_with_identity(k, n) for k, n in sizes.items()]
    deep = [fc.numeric_column(k) for k in DENSE_KEYS] + [fc.embedding_column(c, 8) for c in ids]
    config = trainer.RunConfig(save_checkpoints_steps=10 ** 9, log_step_count_steps=None,
                               tf_random_seed=1)
    with tempfile.TemporaryDirectory() as model_dir:
        est = trainer.DNNLinearCombinedClassifier(
            model_dir=model_dir, linear_feature_columns=ids, dnn_feature_columns=deep,
            dnn_hidden_units=[100, 70, 50, 25], config=config)
        est.train(input_fn(train, 256, True), steps=WIDE_DEEP_STEPS)
        spec = fc.make_parse_example_spec(ids + deep)
        path = est.export_saved_model(
            os.path.join(model_dir, "export"),
            trainer.export.build_parsing_serving_input_receiver_fn(spec)).decode()
        shutil.copytree(path, os.path.join(out_dir, "1"))
    features = evaluation[0]
    rows = [{k: (float(round(float(v[i]), 4)) if v.dtype.kind == "f" else int(v[i]))
             for k, v in sorted(features.items())} for i in range(64)]
    with open(os.path.join(out_dir, "rows.json"), "w", encoding="utf-8") as f:
        json.dump(rows, f)


def cached_wide_deep(cache_dir: str) -> str:
    """Base path (holding version ``1`` and ``rows.json``) of the cached export; builds it once."""
    final = os.path.join(cache_dir, f"wide_deep-{wide_deep_cache_key()}")
    if os.path.exists(os.path.join(final, "1", "saved_model.pb")):
        return final
    note(f"exporting the taxi wide & deep ({WIDE_DEEP_STEPS} training steps) into {final}")
    os.makedirs(cache_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix="wide_deep-", dir=cache_dir)
    try:
        subprocess.run([sys.executable, os.path.abspath(__file__), "--export_wide_deep", staging],
                       check=True, cwd=ROOT, timeout=900,
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""})
        shutil.rmtree(final, ignore_errors=True)
        os.rename(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for entry in os.listdir(cache_dir):  # exports of older trainer code
        if re.fullmatch(r"wide_deep-[0-9a-f]{16}", entry) and entry != os.path.basename(final):
            shutil.rmtree(os.path.join(cache_dir, entry), ignore_errors=True)
    return final


def example_bytes(row: dict) -> bytes:
    feature = {}
    for key, value in row.items():
        if isinstance(value, int):
            feature[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
        else:
            feature[key] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


@dataclasses.dataclass(eq=False)  # hashable by identity
class Api:
    """One (model, API): the signature it runs and its inputs in every form a client sends."""

    model: str
    api: str                # predict | classify | regress
    signature: str
    input_name: str         # the signature's input
    check_key: str          # output compared against the in-process call
    rows: dict              # n -> in-process input (float32 matrix or serialized examples)
    json_rows: dict         # n -> JSON rows (MLP: lists of floats; wide & deep: feature dicts)
    peer_kind: str = ""     # dense | examples: how the peer receives it ("" = not served there)


def mlp_apis(name: str, base: str) -> list[Api]:
    features, hidden = MLPS[name]
    model = Mlp(features, hidden)
    tf.saved_model.save(model, os.path.join(base, "1"), signatures={"serving_default": model.predict})
    x = np.random.default_rng(1).normal(size=(64, features)).astype(np.float32)
    rows = {n: x[:n] for n in (1, 16, 64)}
    return [Api(name, "predict", "serving_default", "x", "y", rows,
                {n: rows[n].tolist() for n in ROWS}, "dense")]


def wide_deep_apis(base: str) -> list[Api]:
    with open(os.path.join(base, "rows.json"), encoding="utf-8") as f:
        dict_rows = json.load(f)
    serialized = np.array([example_bytes(r) for r in dict_rows], dtype=object)
    rows = {n: serialized[:n] for n in (1, 16, 64)}
    json_rows = {n: dict_rows[:n] for n in ROWS}
    return [
        Api("wide_deep", "classify", "serving_default", "inputs", "scores", rows, json_rows,
            "examples"),
        Api("wide_deep", "regress", "regression", "inputs", "outputs", rows, json_rows),
        Api("wide_deep", "predict", "predict", "examples", "probabilities", rows, json_rows),
    ]


# ---------------------------------------------------------------- in-process reference

def percentiles_ms(samples: list[float]) -> tuple[float, float]:
    return (round(float(np.percentile(samples, 50)) * 1e3, 3),
            round(float(np.percentile(samples, 99)) * 1e3, 3))


def in_process(fn, api: Api, budget: Budget) -> tuple[dict, dict]:
    """Figures of calling ``fn`` directly, and its outputs for the 16 rows (for checks)."""

    def call(x):
        return {k: v.numpy() for k, v in fn(**{api.input_name: tf.constant(x)}).items()}

    for n in (1, 16, 64):
        for _ in range(10):
            call(api.rows[n])
    out = {}
    for n in ROWS:
        samples, deadline = [], time.perf_counter() + budget.latency_seconds
        while len(samples) < budget.latency_requests and (
                len(samples) < 20 or time.perf_counter() < deadline):
            start = time.perf_counter()
            call(api.rows[n])
            samples.append(time.perf_counter() - start)
        p50, p99 = percentiles_ms(samples)
        out[f"rows_{n}"] = {"p50_ms": p50, "p99_ms": p99}
    # The best of 3 windows per batch size, interleaved: on a shared machine a single window
    # can catch a burst of other work, and the reference should be what the model can do.
    for _ in range(3):
        for n in sorted(set(IN_PROCESS_BATCH.values())):
            calls, start = 0, time.perf_counter()
            while calls < 3 or time.perf_counter() - start < budget.in_process_seconds / 3:
                call(api.rows[n])
                calls += 1
            rate = round(calls * n / (time.perf_counter() - start), 1)
            out[f"batch_{n}_rows_per_s"] = max(rate, out.get(f"batch_{n}_rows_per_s", 0.0))
    return out, call(api.rows[16])


def expected(outputs: dict, api: Api, n: int) -> np.ndarray:
    return np.asarray(outputs[api.check_key][:n], np.float64).reshape(n, -1)


# ---------------------------------------------------------------- requests and checks

def grpc_request(api: Api, n: int) -> bytes:
    if api.api == "predict":
        r = predict_pb2.PredictRequest()
        r.model_spec.name, r.model_spec.signature_name = api.model, api.signature
        r.inputs[api.input_name].CopyFrom(tf.make_tensor_proto(api.rows[n]))
        return r.SerializeToString()
    r = (classification_pb2.ClassificationRequest() if api.api == "classify"
         else regression_pb2.RegressionRequest())
    r.model_spec.name, r.model_spec.signature_name = api.model, api.signature
    for raw in api.rows[n]:
        r.input.example_list.examples.add().ParseFromString(raw)
    return r.SerializeToString()


def rest_body(api: Api, n: int) -> dict:
    if api.api != "predict":
        return {"signature_name": api.signature, "examples": api.json_rows[n]}
    if api.input_name == "examples":  # the estimator's predict signature: serialized examples
        return {"signature_name": api.signature,
                "instances": [{"b64": base64.b64encode(r).decode()} for r in api.rows[n]]}
    return {"signature_name": api.signature, "instances": api.json_rows[n]}


def grpc_values(api: Api, port: int, payload: bytes) -> np.ndarray:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        if api.api == "predict":
            r = stub.Predict(predict_pb2.PredictRequest.FromString(payload), timeout=60)
            return tf.make_ndarray(r.outputs[api.check_key])
        if api.api == "classify":
            r = stub.Classify(classification_pb2.ClassificationRequest.FromString(payload),
                              timeout=60)
            return np.array([[c.score for c in cl.classes] for cl in r.result.classifications])
        r = stub.Regress(regression_pb2.RegressionRequest.FromString(payload), timeout=60)
        return np.array([x.value for x in r.result.regressions])


def http_post(port: int, path: str, body: bytes) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("POST", path, body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}: {data[:300].decode('utf-8', 'replace')}")
    return json.loads(data)


def rest_values(api: Api, body: dict) -> np.ndarray:
    if api.api == "classify":
        return np.array([[score for _, score in row] for row in body["results"]])
    if api.api == "regress":
        return np.array(body["results"])
    predictions = body["predictions"] if "predictions" in body else body["outputs"]
    if predictions and isinstance(predictions[0], dict):
        return np.array([p[api.check_key] for p in predictions])
    return np.array(predictions)


def compare(got, want: np.ndarray) -> str:
    got = np.asarray(got, np.float64)
    if got.size != want.size:
        return f"wrong output size {got.shape}, expected {want.shape}"
    if not np.allclose(got.reshape(want.shape), want, rtol=1e-3, atol=1e-4):
        return f"wrong values {got.reshape(-1)[:4]} expected {want.reshape(-1)[:4]}"
    return "ok"


# ---------------------------------------------------------------- the driver process

def run_driver(plan: list[dict], workdir: str, label: str) -> dict[str, dict]:
    """Runs the scenarios in a separate client process; returns id -> result."""
    path = os.path.join(workdir, f"plan-{label}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(plan, f)
    limit = sum(s.get("latency_seconds", 0) + s.get("seconds", 0) + 30 for s in plan) + 60
    process = spawn([sys.executable, DRIVER, f"--plan={path}"],
                    os.path.join(workdir, f"driver-{label}.log"),
                    stdout=subprocess.PIPE, text=True, cwd=ROOT)
    results, deadline = {}, time.monotonic() + limit
    timer = threading.Timer(limit, process.kill)
    timer.start()
    try:
        for line in process.stdout:
            result = json.loads(line)
            results[result["id"]] = result
            note(f"{label}: {summary(result)}")
        process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        timer.cancel()
        stop(process)
    if process.returncode:
        note(f"{label}: the client process exited with {process.returncode}: "
             f"{log_tail(os.path.join(workdir, f'driver-{label}.log'))}")
    return results


def summary(result: dict) -> str:
    if "error" in result:
        return f"{result['id']}: ERROR {result['error']}"
    lat, load = result.get("latency", {}), result.get("load", {})
    return (f"{result['id']}: p50 {lat.get('p50_ms')} ms, p99 {lat.get('p99_ms')} ms, "
            f"{load.get('requests_per_s')} req/s with {INFLIGHT} in flight"
            + (f", {load['failures']} failures" if load.get("failures") else ""))


def figures(result: dict | None, reference: dict, rows: int) -> dict:
    """One scenario's record: the driver's numbers next to the in-process reference."""
    out: dict = {}
    if result is None:
        return {"error": "not run"}
    if "error" in result:
        out["error"] = result["error"]
    lat = result.get("latency")
    if lat:
        ref = reference[f"rows_{rows}"]
        out.update(p50_ms=lat["p50_ms"], p99_ms=lat["p99_ms"],
                   p50_overhead_ms=round(lat["p50_ms"] - ref["p50_ms"], 3),
                   p99_overhead_ms=round(lat["p99_ms"] - ref["p99_ms"], 3))
    load = result.get("load")
    if load:
        batch = IN_PROCESS_BATCH[rows]
        rate = reference[f"batch_{batch}_rows_per_s"]
        out.update(requests_per_s=load["requests_per_s"],
                   rows_per_s=round(load["requests_per_s"] * rows, 1),
                   in_process_batch=batch, in_process_rows_per_s=rate,
                   ratio=round(load["requests_per_s"] * rows / rate, 3),
                   failures=load["failures"], client_cpu_cores=load["client_cpu_cores"],
                   server_cpu_cores=load["server_cpu_cores"],
                   server_cpu_ms_per_request=load["server_cpu_ms_per_request"])
        if load.get("errors"):
            out["errors"] = load["errors"]
    return out


GRPC_CHANNELS = 4  # Set from --grpc_channels.

def scenario(sid: str, protocol: str, port: int, method: str, payload: bytes, workdir: str,
             budget: Budget, server_pids: list[int]) -> dict:
    request_file = os.path.join(workdir, "requests", sid.replace("/", "_") + ".bin")
    os.makedirs(os.path.dirname(request_file), exist_ok=True)
    with open(request_file, "wb") as f:
        f.write(payload)
    return {"id": sid, "protocol": protocol, "target": f"127.0.0.1:{port}", "method": method,
            "request_file": request_file, "latency_requests": budget.latency_requests,
            "latency_seconds": budget.latency_seconds, "latency_warmup": budget.latency_warmup,
            "inflight": INFLIGHT, "seconds": budget.seconds, "warmup": budget.warmup,
            "channels": GRPC_CHANNELS, "server_pids": server_pids}


# ---------------------------------------------------------------- our server

def start_ours(config: str, extra: list[str], workdir: str, label: str):
    log_path = os.path.join(workdir, f"server-{label}.log")
    process = spawn([sys.executable, "-m", "serving", "--port=0", f"--rest_api_port={free_port()}",
                     f"--model_config_file={config}", "--file_system_poll_wait_seconds=0", *extra],
                    log_path, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    grpc_port = rest_port = None
    timer = threading.Timer(180, process.kill)  # a server that hangs while loading
    timer.start()
    try:
        while rest_port is None:
            line = process.stdout.readline()
            if not line:
                break
            match = re.match(r"Running gRPC ModelServer at [\d.]+:(\d+)", line)
            grpc_port = int(match.group(1)) if match else grpc_port
            match = re.match(r"Exporting HTTP/REST API at [\d.]+:(\d+)", line)
            rest_port = int(match.group(1)) if match else rest_port
    finally:
        timer.cancel()
    if grpc_port is None or rest_port is None:
        stop(process)
        raise RuntimeError(f"python -m serving did not start ({label}):\n{log_tail(log_path)}")

    def drain():  # keep its stdout from filling up
        for _ in process.stdout:
            pass
    threading.Thread(target=drain, daemon=True).start()
    return process, grpc_port, rest_port


def check_ours(api: Api, n: int, protocol: str, grpc_port: int, rest_port: int,
               want: np.ndarray) -> tuple[str, int, str, bytes]:
    """One request through the public interface; (check, port, method, payload)."""
    try:
        if protocol == "grpc":
            payload = grpc_request(api, n)
            return (compare(grpc_values(api, grpc_port, payload), want), grpc_port,
                    GRPC_METHODS[api.api], payload)
        payload = json.dumps(rest_body(api, n)).encode()
        method = f"/v1/models/{api.model}:{api.api}"
        return compare(rest_values(api, http_post(rest_port, method, payload)), want), \
            rest_port, method, payload
    except Exception as e:  # noqa: BLE001 (a broken API is reported, not fatal)
        return f"{type(e).__name__}: {e}"[:500], 0, "", b""


def run_ours(apis: list[Api], references: dict, outputs: dict, args, budget: Budget,
             workdir: str, bases: dict, phases: dict) -> dict:
    config = os.path.join(workdir, "models.config")
    with open(config, "w", encoding="utf-8") as f:
        f.write("model_config_list {\n" + "".join(
            f'  config {{ name: "{m}" base_path: "{bases[m]}" model_platform: "tensorflow" }}\n'
            for m in sorted({a.model for a in apis})) + "}\n")
    batching_file = os.path.join(workdir, "batching.txt")
    with open(batching_file, "w", encoding="utf-8") as f:
        f.write("".join(f"{k} {{ value: {v} }}\n" for k, v in batching_parameters(args).items()))
    ids = {(api, n, protocol, mode): f"{api.model}.{api.api}.{protocol}.{n}row.batching_{mode}"
           for mode in args.batching for api in apis for n in ROWS for protocol in args.protocols}
    records = {}
    for mode in args.batching:
        phase_start = time.perf_counter()
        extra = list(args.server_flag)
        if mode == "on":
            extra += ["--enable_batching", f"--batching_parameters_file={batching_file}"]
        note(f"ours, batching {mode}: starting python -m serving {' '.join(extra)}")
        plan, checks, results = [], {}, {}
        try:
            process, grpc_port, rest_port = start_ours(config, extra, workdir, f"batching_{mode}")
        except RuntimeError as e:  # reported in every scenario of this mode
            note(str(e))
            process = None
            checks = {sid: f"{e}"[:1000] for key, sid in ids.items() if key[3] == mode}
        if process is not None:
            try:
                for (api, n, protocol, m), sid in ids.items():
                    if m != mode:
                        continue
                    want = expected(outputs[api.model, api.api], api, n)
                    checks[sid], port, method, payload = check_ours(
                        api, n, protocol, grpc_port, rest_port, want)
                    if checks[sid] != "ok":
                        note(f"{sid}: response check failed: {checks[sid]}")
                        continue
                    plan.append(scenario(sid, protocol, port, method, payload, workdir,
                                         budget, [process.pid]))
                results = run_driver(plan, workdir, f"ours batching {mode}")
            finally:
                stop(process)
        for (api, n, protocol, m), sid in ids.items():
            if m != mode:
                continue
            record = {"model": api.model, "api": api.api, "signature": api.signature,
                      "protocol": protocol, "rows": n, "batching": mode, "check": checks.get(sid)}
            if checks.get(sid) == "ok":
                record.update(figures(results.get(sid), references[api.model, api.api], n))
            records[sid] = record
        phases[f"ours_batching_{mode}"] = round(time.perf_counter() - phase_start, 1)
    return records


def batching_parameters(args) -> dict:
    return {**BATCHING, "batch_timeout_micros": args.batch_timeout_micros}


# ---------------------------------------------------------------- the peer (KServe)

def peer_python(venv: str, tf_version: str) -> tuple[str | None, dict]:
    """The peer venv's interpreter, made with pip on first use; (None, reason) if it cannot be."""
    python = os.path.join(venv, "bin", "python")
    marker = os.path.join(venv, ".serving_load_ready.json")
    requirements = [r.format(tf_minor=".".join(tf_version.split(".")[:2]))
                    for r in PEER_REQUIREMENTS]
    base = getattr(sys, "_base_executable", None) or sys.executable
    install = (f"{base} -m venv {venv} && {python} -m pip install "
               + " ".join(f"'{r}'" for r in requirements))
    if os.path.exists(marker):
        with open(marker, encoding="utf-8") as f:
            info = json.load(f)
        if info.get("requirements") == requirements and os.path.exists(python):
            return python, {**info, "install": install}
    log_path = os.path.join(tempfile.gettempdir(), "serving_load_peer_install.log")
    note(f"creating the KServe venv {venv}: {base} -m venv, then pip install "
         f"{' '.join(requirements)} (a few minutes, once; log: {log_path})")
    try:
        with open(log_path, "w", encoding="utf-8") as log:
            if not os.path.exists(python):
                subprocess.run([base, "-m", "venv", venv], check=True, stdout=log,
                               stderr=subprocess.STDOUT, timeout=300)
            subprocess.run([python, "-m", "pip", "install", "--disable-pip-version-check",
                            *requirements], check=True, stdout=log, stderr=subprocess.STDOUT,
                           timeout=1800)
        out = subprocess.run(
            [python, "-c", "import json, sys, importlib.metadata as m; print(json.dumps({"
             "'kserve': m.version('kserve'), 'tensorflow': m.version('tensorflow-cpu'), "
             "'grpcio': m.version('grpcio'), 'uvicorn': m.version('uvicorn'), "
             "'python': sys.version.split()[0]}))"],
            check=True, capture_output=True, text=True, timeout=120)
        info = {"requirements": requirements, "versions": json.loads(out.stdout)}
    except (OSError, subprocess.SubprocessError, ValueError) as e:
        reason = f"cannot make the KServe venv {venv} ({type(e).__name__}: {e}); see {log_path}"
        note(f"peer skipped: {reason}\n{log_tail(log_path)}")
        return None, {"reason": reason}
    with open(marker, "w", encoding="utf-8") as f:
        json.dump(info, f)
    return python, {**info, "install": install}


def wait_until_ready(process: subprocess.Popen, port: int, path: str, log_path: str) -> None:
    deadline = time.monotonic() + 180
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", path)
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"KServe did not start:\n{log_tail(log_path)}")
        time.sleep(0.5)


def peer_grpc_requests(python: str, served: list[Api], grpc_port: int, workdir: str) -> dict:
    """Writes the gRPC v2 ModelInferRequests (made with KServe's own client types, in its venv)
    and sends each once; returns scenario id -> {request_file, outputs or error}."""
    plan = []
    for api in served:
        for n in ROWS:
            sid = f"{api.model}.{api.api}.grpc.{n}row"
            dense = api.peer_kind == "dense"
            plan.append({
                "id": sid, "model": api.model, "input_name": api.input_name,
                "datatype": "FP32" if dense else "BYTES",
                "data": (api.rows[n].tolist() if dense
                         else [base64.b64encode(r).decode() for r in api.rows[n]]),
                "request_file": os.path.join(workdir, "requests", f"kserve-{sid}.bin")})
    os.makedirs(os.path.join(workdir, "requests"), exist_ok=True)
    plan_path = os.path.join(workdir, "kserve-prepare.json")
    with open(plan_path, "w", encoding="utf-8") as f:
        json.dump(plan, f)
    out = subprocess.run([python, KSERVE_HELPER, "prepare", f"--grpc_target=127.0.0.1:{grpc_port}",
                          f"--plan={plan_path}"], capture_output=True, text=True, timeout=300,
                         cwd=workdir, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if out.returncode:
        note(f"peer: gRPC v2 requests could not be prepared: {out.stderr[-1500:]}")
        return {}
    outputs = json.loads(out.stdout.strip().splitlines()[-1])
    return {item["id"]: {"request_file": item["request_file"], "outputs": outputs.get(item["id"])}
            for item in plan}


def check_peer(api: Api, n: int, protocol: str, http_port: int, grpc_port: int,
               grpc_requests: dict, want: np.ndarray) -> tuple[str, int, str, bytes]:
    """Like ``check_ours`` for KServe: REST v1 predict, or the prepared gRPC v2 request."""
    try:
        if protocol == "grpc":
            prepared = grpc_requests.get(f"{api.model}.{api.api}.grpc.{n}row")
            if not prepared or not prepared["outputs"]:
                raise RuntimeError("no gRPC v2 request was made")
            if "error" in prepared["outputs"]:
                raise RuntimeError(prepared["outputs"]["error"])
            got = prepared["outputs"]["y" if api.peer_kind == "dense" else "scores"]
            with open(prepared["request_file"], "rb") as f:
                return compare(got, want), grpc_port, KSERVE_INFER, f.read()
        payload = json.dumps({"instances": api.json_rows[n]}).encode()
        method = f"/v1/models/{api.model}:predict"
        predictions = http_post(http_port, method, payload)["predictions"]
        if api.peer_kind == "examples":
            predictions = [p["scores"] for p in predictions]
        return compare(predictions, want), http_port, method, payload
    except Exception as e:  # noqa: BLE001 (reported, not fatal)
        return f"{type(e).__name__}: {e}"[:500], 0, "", b""


def run_peer(python: str, info: dict, apis: list[Api], references: dict, outputs: dict,
             args, budget: Budget, workdir: str, bases: dict) -> dict:
    served = [a for a in apis if a.peer_kind]
    http_port, grpc_port = free_port(), free_port()
    cmd = [python, KSERVE_HELPER, "serve", f"--http_port={http_port}", f"--grpc_port={grpc_port}"]
    cmd += [f"--model={a.model}={os.path.join(bases[a.model], '1')}:{a.signature}:{a.peer_kind}"
            for a in served]
    log_path = os.path.join(workdir, "server-kserve.log")
    note(f"peer: starting KServe {info['versions'].get('kserve')} "
         f"(REST v1 on {http_port}, gRPC v2 on {grpc_port})")
    process = spawn(cmd, log_path, stdout=subprocess.DEVNULL, cwd=workdir)
    ids = {(api, n, protocol): f"{api.model}.{api.api}.{protocol}.{n}row"
           for api in served for n in ROWS for protocol in args.protocols}
    plan, checks = [], {}
    try:
        wait_until_ready(process, http_port, f"/v1/models/{served[-1].model}", log_path)
        grpc_requests = (peer_grpc_requests(python, served, grpc_port, workdir)
                         if "grpc" in args.protocols else {})
        for (api, n, protocol), sid in ids.items():
            want = expected(outputs[api.model, api.api], api, n)
            checks[sid], port, method, payload = check_peer(
                api, n, protocol, http_port, grpc_port, grpc_requests, want)
            if checks[sid] != "ok":
                note(f"peer {sid}: response check failed: {checks[sid]}")
                continue
            plan.append(scenario(f"kserve.{sid}", protocol, port, method, payload, workdir,
                                 budget, [process.pid]))
        results = run_driver(plan, workdir, "peer kserve")
    finally:
        stop(process)
    records = {}
    for (api, n, protocol), sid in ids.items():
        record = {"model": api.model, "api": api.api, "signature": api.signature,
                  "protocol": "grpc_v2" if protocol == "grpc" else "rest_v1",
                  "rows": n, "batching": "off", "check": checks.get(sid)}
        if checks.get(sid) == "ok":
            record.update(figures(results.get(f"kserve.{sid}"), references[api.model, api.api], n))
        records[sid] = record
    return records


# ---------------------------------------------------------------- targets

def targets(ours: dict, peer: dict | None) -> dict:
    def target(value, limit, at_most: bool, **more):
        met = None if value is None else (value <= limit if at_most else value >= limit)
        return {"value": value, "target": limit, "met": met, **more}

    def worst_overhead(protocol):
        found = [(r["p50_overhead_ms"], sid) for sid, r in ours.items()
                 if r["protocol"] == protocol and r["rows"] == 1 and r["batching"] == "off"
                 and "p50_overhead_ms" in r]
        return max(found) if found else (None, None)

    def get(sid, key):
        return ours.get(sid, {}).get(key)

    rest, rest_at = worst_overhead("rest")
    grpc_, grpc_at = worst_overhead("grpc")
    one = "wide_deep.classify.grpc.1row.batching_on"
    sixteen = "wide_deep.classify.grpc.16row.batching_on"
    peer_rps = None
    if peer:
        rates = [r["requests_per_s"] for r in peer.values()
                 if r["model"] == "wide_deep" and r["rows"] == 1 and "requests_per_s" in r]
        peer_rps = max(rates) if rates else None
    vs_peer = (round(get(one, "requests_per_s") / peer_rps, 2)
               if peer_rps and get(one, "requests_per_s") else None)
    return {
        "rest_1row_p50_overhead_ms": target(
            rest, 1.0, True, scenario=rest_at,
            note="worst over models and APIs, batching off, vs the in-process call"),
        "grpc_1row_p50_overhead_ms": target(
            grpc_, 0.5, True, scenario=grpc_at,
            note="worst over models and APIs, batching off, vs the in-process call"),
        "wide_deep_classify_grpc_batching_1row_vs_in_process_64": target(
            get(one, "ratio"), 0.6, False, scenario=one,
            note=f"{INFLIGHT} single-row requests in flight vs the signature on 64-row batches"),
        "wide_deep_classify_grpc_batching_1row_vs_peer": target(
            vs_peer, 3.0, False, scenario=one, peer_requests_per_s=peer_rps,
            note="requests/s vs the peer's best protocol on single-row wide & deep"),
        "wide_deep_classify_grpc_batching_16row_vs_in_process_16": target(
            get(sixteen, "ratio"), 0.8, False, scenario=sixteen,
            note=f"{INFLIGHT} 16-row requests in flight vs the signature on 16-row batches"),
    }


def report(ours: dict, peer: dict | None) -> None:
    """A table of the figures on stderr, for people."""
    rows = [("server", "scenario", "p50 ms", "overhead", "req/s", "rows/s", "ratio")]
    for server, records in (("ours", ours), ("kserve", peer or {})):
        for sid, r in records.items():
            if r.get("check") != "ok" or "requests_per_s" not in r:
                rows.append((server, sid, "-", "-", "-", "-", r.get("check") or r.get("error")))
                continue
            rows.append((server, sid, f"{r.get('p50_ms', '-')}", f"{r.get('p50_overhead_ms', '-')}",
                         f"{r['requests_per_s']}", f"{r['rows_per_s']}", f"{r['ratio']}"))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)), file=sys.stderr)


# ---------------------------------------------------------------- main

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="short windows (about a second per scenario), for smoke tests")
    parser.add_argument("--models", default=",".join(ALL_MODELS),
                        help=f"comma-separated subset of {','.join(ALL_MODELS)}")
    parser.add_argument("--protocols", default="rest,grpc", help="comma-separated: rest,grpc")
    parser.add_argument("--batching", default="off,on", help="comma-separated: off,on")
    parser.add_argument("--peer", choices=("kserve", "none"), default="kserve")
    parser.add_argument("--no-peer", dest="peer", action="store_const", const="none",
                        help="same as --peer none")
    parser.add_argument("--peer_venv",
                        default=os.path.join(tempfile.gettempdir(), "serving_load_kserve_venv"),
                        help="KServe's own virtualenv (created on first use)")
    parser.add_argument("--cache_dir",
                        default=os.path.join(tempfile.gettempdir(), "serving_load_cache"),
                        help="where the wide & deep export is cached")
    parser.add_argument("--server_flag", action="append", default=[],
                        help="extra flag for every python -m serving (repeatable), "
                             "e.g. --server_flag=--grpc_max_threads=8")
    parser.add_argument("--grpc_channels", type=int, default=4,
                        help="gRPC load: in-flight requests spread over this many channels, "
                             "each its own TCP connection (what several clients look like; "
                             "lets --num_server_processes spread them)")
    parser.add_argument("--seconds", type=float, help="length of each load window")
    parser.add_argument("--batch_timeout_micros", type=int,
                        default=BATCHING["batch_timeout_micros"],
                        help="batch_timeout_micros of the batching parameters file")
    parser.add_argument("--export_wide_deep", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    global GRPC_CHANNELS
    GRPC_CHANNELS = max(1, args.grpc_channels)
    args.models = [m for m in args.models.split(",") if m]
    args.protocols = [p for p in args.protocols.split(",") if p]
    args.batching = [b for b in args.batching.split(",") if b]
    for values, allowed, flag in ((args.models, ALL_MODELS, "--models"),
                                  (args.protocols, ("rest", "grpc"), "--protocols"),
                                  (args.batching, ("off", "on"), "--batching")):
        if not values or set(values) - set(allowed):
            parser.error(f"{flag} takes a comma-separated subset of {','.join(allowed)}")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.export_wide_deep:
        export_wide_deep(args.export_wide_deep)
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run finally blocks and atexit
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    budget = QUICK if args.quick else FULL
    if args.seconds:
        budget = dataclasses.replace(budget, seconds=args.seconds)
    workdir = tempfile.mkdtemp(prefix="serving_load_")
    atexit.register(shutil.rmtree, workdir, True)
    phases: dict[str, float] = {}
    mark = [time.perf_counter()]

    def phase(name: str) -> None:
        now = time.perf_counter()
        phases[name] = round(now - mark[0], 1)
        mark[0] = now

    bases, apis = {}, []
    for name in args.models:
        if name == "wide_deep":
            bases[name] = cached_wide_deep(args.cache_dir)
            apis += wide_deep_apis(bases[name])
        else:
            bases[name] = os.path.join(workdir, "models", name)
            apis += mlp_apis(name, bases[name])

    phase("models")
    note("measuring the in-process references")
    references, outputs, models = {}, {}, {}
    loaded = {}
    for api in apis:
        path = os.path.join(bases[api.model], "1")
        loaded.setdefault(path, tf.saved_model.load(path))
        fn = loaded[path].signatures[api.signature]
        references[api.model, api.api], outputs[api.model, api.api] = in_process(fn, api, budget)
        info = models.setdefault(api.model, {"apis": {}})
        if api.model in MLPS:
            info.update(features=MLPS[api.model][0], hidden=list(MLPS[api.model][1]))
        else:
            info.update(trainer="DNNLinearCombinedClassifier", hidden=[100, 70, 50, 25],
                        train_steps=WIDE_DEEP_STEPS, export=bases[api.model])
        info["apis"][api.api] = {"signature": api.signature,
                                 "in_process": references[api.model, api.api]}
        note(f"in-process {api.model}.{api.api}: {references[api.model, api.api]}")
    del loaded
    phase("in_process")

    ours = run_ours(apis, references, outputs, args, budget, workdir, bases, phases)
    mark[0] = time.perf_counter()

    peer, peer_info, peer_skipped = None, None, None
    if args.peer == "kserve":
        python, info = peer_python(args.peer_venv, tf.__version__)
        phase("peer_venv")
        peer_skipped = info.get("reason")
        if python:
            try:
                peer = run_peer(python, info, apis, references, outputs, args, budget, workdir,
                                bases)
                peer_info = {"name": "kserve", **info, "venv": args.peer_venv,
                             "config": "kserve.ModelServer, 1 worker, custom kserve.Model "
                                       "(load() loads the SavedModel, predict() runs the "
                                       "signature), per-request logging off, no batching",
                             "scenarios": peer}
            except Exception as e:  # noqa: BLE001 (the peer failing must not lose our numbers)
                peer_skipped = f"{type(e).__name__}: {e}"[:1000]
                note(f"peer skipped: {peer_skipped}")
                peer_info = None
            phase("peer")
        if peer_info is None:
            note("peer: null in the JSON")
    else:
        peer_skipped = "--no-peer"
    report(ours, peer)
    print(json.dumps({
        "benchmark": "serving_load", "mode": "quick" if args.quick else "full",
        "inflight": INFLIGHT, "rows_per_request": list(ROWS),
        "in_process_batch_by_request_rows": {str(k): v for k, v in IN_PROCESS_BATCH.items()},
        "batching_parameters": batching_parameters(args), "server_flags": args.server_flag,
        "grpc_channels": GRPC_CHANNELS,
        "budget": dataclasses.asdict(budget), "cpu_count": os.cpu_count(),
        "load_average_1m": {"start": round(load_before, 2), "end": round(os.getloadavg()[0], 2)},
        "models": models, "scenarios": ours, "peer": peer_info, "peer_skipped": peer_skipped,
        "targets": targets(ours, peer),
        "elapsed_s": round(time.perf_counter() - started, 1), "phases_s": phases,
    }), flush=True)


if __name__ == "__main__":
    main()
