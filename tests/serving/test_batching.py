"""The batch scheduler on real functions, and batching in a running server."""

from __future__ import annotations

import threading

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

import saved_models
from conftest import write_config
from serving.batching import BatchScheduler
from serving.config_files import BatchingOptions
from serving.errors import ServingError
from serving.flags import ServerOptions
from serving.server import ModelServer


def times_ten(seen):
    def run(batch):
        seen.append(len(batch["x"]))
        return {"y": batch["x"] * 10, "first": np.repeat(batch["x"][:1], len(batch["x"]), 0)}
    return run


def run_concurrently(fn, n):
    results, errors = [None] * n, [None] * n

    def target(i):
        try:
            results[i] = fn(i)
        except ServingError as e:
            errors[i] = e
    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results, errors


def test_concurrent_requests_share_batches_and_get_their_own_rows():
    seen = []
    scheduler = BatchScheduler(BatchingOptions(
        max_batch_size=8, batch_timeout_micros=200_000, num_batch_threads=1))
    try:
        results, errors = run_concurrently(
            lambda i: scheduler.schedule("k", times_ten(seen), {"x": np.array([[i]])}), 8)
    finally:
        scheduler.stop()
    assert errors == [None] * 8
    assert [r["y"].tolist() for r in results] == [[[10 * i]] for i in range(8)]
    assert sum(seen) == 8 and max(seen) > 1


def test_batches_are_padded_to_allowed_sizes():
    seen = []
    scheduler = BatchScheduler(BatchingOptions(
        max_batch_size=8, allowed_batch_sizes=(2, 4, 8), num_batch_threads=1))
    try:
        result = scheduler.schedule("k", times_ten(seen), {"x": np.array([[1], [2], [3]])})
    finally:
        scheduler.stop()
    assert seen == [4]
    assert result["y"].tolist() == [[10], [20], [30]]
    assert scheduler.batch_size_counts == {4: 1}


def test_oversized_task_is_rejected():
    scheduler = BatchScheduler(BatchingOptions(max_batch_size=8, num_batch_threads=1))
    try:
        with pytest.raises(ServingError, match="Task size 9 is larger than maximum batch size 8"):
            scheduler.schedule("k", times_ten([]), {"x": np.zeros((9, 1))})
        with pytest.raises(ServingError, match="same leading \\(batch\\) dimension"):
            scheduler.schedule("k", times_ten([]), {"x": np.zeros((2, 1)), "z": np.zeros((3,))})
    finally:
        scheduler.stop()


def test_full_queue_answers_unavailable():
    release = threading.Event()
    started = threading.Event()

    def slow(batch):
        started.set()
        release.wait(10)
        return {"y": batch["x"]}

    scheduler = BatchScheduler(BatchingOptions(
        max_batch_size=2, max_enqueued_batches=1, num_batch_threads=1))
    try:
        first = threading.Thread(target=scheduler.schedule,
                                 args=("k", slow, {"x": np.zeros((2, 1))}))
        first.start()
        started.wait(10)
        second = threading.Thread(target=scheduler.schedule,
                                  args=("k", slow, {"x": np.zeros((2, 1))}))
        second.start()
        for _ in range(200):
            if scheduler._queues.get("k") and scheduler._queues["k"].rows == 2:  # noqa: SLF001
                break
            threading.Event().wait(0.01)
        with pytest.raises(ServingError, match="batch scheduling queue .* is full") as info:
            scheduler.schedule("k", slow, {"x": np.zeros((1, 1))})
        assert info.value.code == grpc.StatusCode.UNAVAILABLE
    finally:
        release.set()
        first.join(10)
        second.join(10)
        scheduler.stop()


def test_output_without_batch_dimension_fails_clearly():
    scheduler = BatchScheduler(BatchingOptions(max_batch_size=4, num_batch_threads=1))
    try:
        with pytest.raises(ServingError, match="output 'total' has shape \\[\\]") as info:
            scheduler.schedule("k", lambda b: {"total": np.sum(b["x"])}, {"x": np.ones((2, 1))})
        assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        scheduler.stop()


def test_server_with_batching_matches_in_process(tmp_path, exports):
    base = tmp_path / "m"
    saved_models.push_version(str(base), 1, exports[1])
    params = write_config(tmp_path / "batching.config", """
max_batch_size { value: 8 }
batch_timeout_micros { value: 50000 }
num_batch_threads { value: 2 }
max_enqueued_batches { value: 100 }
allowed_batch_sizes: 4
allowed_batch_sizes: 8
""")
    server = ModelServer(ServerOptions(
        port=0, model_name="m", model_base_path=str(base), enable_batching=True,
        batching_parameters_file=params, file_system_poll_wait_seconds=0))
    server.start()
    direct = tf.saved_model.load(exports[1]).signatures["serving_default"]
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

    def call(i):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "m"
        x = np.full((1 + i % 2, 3), float(i), np.float32)
        request.inputs["x"].CopyFrom(tf.make_tensor_proto(x))
        got = tf.make_ndarray(stub.Predict(request, timeout=30).outputs["y"])
        np.testing.assert_allclose(got, direct(x=tf.constant(x))["y"].numpy(), rtol=1e-6)
        return got.shape[0]

    try:
        results, errors = run_concurrently(call, 16)
    finally:
        channel.close()
        server.stop(grace=0)
    assert errors == [None] * 16 and sum(results) == 24
    counts = server.scheduler.batch_size_counts
    assert set(counts) <= {4, 8} and max(counts) == 8
