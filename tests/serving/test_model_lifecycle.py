"""Version polling, hot swap under load, half-written and broken versions, reloads."""

from __future__ import annotations

import os
import shutil
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from grpc_health.v1 import health_pb2
from grpc_health.v1 import health_pb2_grpc
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_management_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.config import model_server_config_pb2

import saved_models
from conftest import write_config
from serving.flags import ServerOptions
from serving.server import ModelServer

State = get_model_status_pb2.ModelVersionStatus.State


def wait_for(condition, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def start_server(base, **kwargs):
    options = dict(port=0, rest_api_port=None, model_name="m", model_base_path=str(base),
                   file_system_poll_wait_seconds=0.1)
    options.update(kwargs)
    server = ModelServer(ServerOptions(**options))
    server.start()
    return server


def predict_request(name="m"):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.ones((1, 3), np.float32)))
    return request


def load_error(server, version, name="m"):
    """The load error reported for ``version`` ('' while none yet)."""
    for status in server.manager.status(name):
        if status.version == version:
            return status.error_message
    return ""


def served_versions(server, name="m"):
    return server.manager.available_versions(name)


def test_hot_swap_under_load_has_no_failed_requests(tmp_path, exports):
    base = tmp_path / "m"
    saved_models.push_version(str(base), 1, exports[1])
    server = start_server(base)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    stop = threading.Event()
    failures, versions, counts = [], [], [0] * 16
    lock = threading.Lock()

    def client(i):
        for _ in range(3000):  # Bounded even if the test logic breaks.
            if stop.is_set():
                return
            try:
                response = stub.Predict(predict_request(), timeout=10)
                with lock:
                    versions.append(response.model_spec.version.value)
            except grpc.RpcError as e:
                with lock:
                    failures.append(f"{e.code()}: {e.details()}")
            counts[i] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    try:
        for t in threads:
            t.start()
        wait_for(lambda: min(counts) >= 3, what="all clients running")
        saved_models.push_version(str(base), 2, exports[2])  # Atomic rename, like the Pusher.
        wait_for(lambda: served_versions(server) == [2], what="version 2 to replace 1")
        shutil.rmtree(base / "1")  # Retire version 1 on disk too.
        mark = sum(counts)
        wait_for(lambda: sum(counts) >= mark + 64, what="requests after the swap")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        channel.close()
        server.stop(grace=0)
    assert failures == []
    assert 1 in versions and 2 in versions
    assert versions[-16:] == [2] * 16
    first_two = versions.index(2)
    assert all(v == 2 for v in versions[first_two + 32:])


def test_half_written_and_broken_versions_are_never_served(tmp_path, exports):
    base = tmp_path / "m"
    saved_models.push_version(str(base), 1, exports[1])
    server = start_server(base)
    try:
        # Version 2 written in place, file by file: saved_model.pb first.
        v2 = base / "2"
        v2.mkdir()
        shutil.copy(os.path.join(exports[2], "saved_model.pb"), v2 / "saved_model.pb")
        wait_for(lambda: load_error(server, 2),
                 what="a failed load of the half-written version 2")
        status = server.manager.status("m", version=2)[0]
        assert status.state == State.END and "Loading" in status.error_message
        assert served_versions(server) == [1]
        assert server.manager.resolve("m").version == 1
        # The rest arrives: it is retried and served, and 1 is unloaded after.
        shutil.copytree(os.path.join(exports[2], "variables"), v2 / "variables")
        wait_for(lambda: served_versions(server) == [2], what="version 2 after completion")
        # A broken version 3 is retried but never served; 2 keeps serving.
        (base / "3").mkdir()
        (base / "3" / "saved_model.pb").write_bytes(b"not a protobuf")
        wait_for(lambda: load_error(server, 3),
                 what="a failed load of version 3")
        assert served_versions(server) == [2]
        assert server.manager.resolve("m").version == 2
        # A temp sibling (how the Pusher stages) is ignored.
        shutil.copytree(exports[1], base / ".tmp-4")
        time.sleep(0.3)
        assert 4 not in [s.version for s in server.manager.status("m")]
    finally:
        server.stop(grace=0)


def test_latest_two_and_all_policies(tmp_path, exports):
    base = tmp_path / "m"
    for v in (1, 2, 3):
        saved_models.push_version(str(base), v, exports[1 + v % 2])
    config = write_config(tmp_path / "models.config", f"""
model_config_list {{
  config {{ name: "latest2" base_path: "{base}"
           model_version_policy {{ latest {{ num_versions: 2 }} }} }}
  config {{ name: "all" base_path: "{base}" model_version_policy {{ all {{}} }} }}
  config {{ name: "one" base_path: "{base}" }}
}}""")
    server = start_server(base, model_config_file=config, file_system_poll_wait_seconds=0)
    try:
        assert served_versions(server, "latest2") == [2, 3]
        assert served_versions(server, "all") == [1, 2, 3]
        assert served_versions(server, "one") == [3]
    finally:
        server.stop(grace=0)


def test_warmup_requests_run_and_a_failing_warmup_blocks_the_version(tmp_path, exports):
    good = tmp_path / "good"
    shutil.copytree(exports[1], good)
    saved_models.write_warmup(str(good), [predict_request("ignored")])
    bad = tmp_path / "bad"
    shutil.copytree(exports[2], bad)
    broken = predict_request()
    broken.inputs["x"].CopyFrom(tf.make_tensor_proto(np.ones((1, 4), np.float32)))
    saved_models.write_warmup(str(bad), [broken])
    base = tmp_path / "m"
    saved_models.push_version(str(base), 1, str(good))
    server = start_server(base)
    try:
        assert served_versions(server) == [1]
        saved_models.push_version(str(base), 2, str(bad))
        wait_for(lambda: load_error(server, 2),
                 what="version 2 warmup failure")
        message = server.manager.status("m", version=2)[0].error_message
        assert "Warmup record 0" in message and "expects shape [-1, 3]" in message
        assert served_versions(server) == [1]
    finally:
        server.stop(grace=0)


def _config(*models):
    config = model_server_config_pb2.ModelServerConfig()
    for name, base, labels in models:
        model = config.model_config_list.config.add(name=name, base_path=str(base))
        model.model_version_policy.all.SetInParent()
        for label, version in labels.items():
            model.version_labels[label] = version
    return config


def test_reload_config_grpc_and_health(tmp_path, exports):
    base = tmp_path / "m"
    saved_models.push_version(str(base), 1, exports[1])
    server = start_server(base)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    models = model_service_pb2_grpc.ModelServiceStub(channel)
    predictions = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    health = health_pb2_grpc.HealthStub(channel)
    serving = health_pb2.HealthCheckResponse.SERVING
    try:
        assert health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status == serving
        assert health.Check(health_pb2.HealthCheckRequest(service="m"), timeout=5).status == serving
        request = model_management_pb2.ReloadConfigRequest(
            config=_config(("other", base, {"stable": 1})))
        models.HandleReloadConfigRequest(request, timeout=30)
        assert predictions.Predict(predict_request("other"), timeout=5).model_spec.version.value == 1
        with pytest.raises(grpc.RpcError) as info:
            predictions.Predict(predict_request("m"), timeout=5)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        assert health.Check(health_pb2.HealthCheckRequest(service="m"),
                            timeout=5).status != serving
        status = models.GetModelStatus(get_model_status_pb2.GetModelStatusRequest(
            model_spec={"name": "other", "version_label": "stable"}), timeout=5)
        assert [(s.version, s.state) for s in status.model_version_status] == [(1, State.AVAILABLE)]

        bad_label = model_management_pb2.ReloadConfigRequest(
            config=_config(("other", base, {"canary": 5})))
        with pytest.raises(grpc.RpcError) as info:
            models.HandleReloadConfigRequest(bad_label, timeout=30)
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "assign label 'canary' to version 5" in info.value.details()

        custom = model_management_pb2.ReloadConfigRequest()
        custom.config.custom_model_config.Pack(model_server_config_pb2.ModelServerConfig())
        with pytest.raises(grpc.RpcError) as info:
            models.HandleReloadConfigRequest(custom, timeout=30)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "only model_config_list" in info.value.details()
    finally:
        channel.close()
        server.stop(grace=0)


def test_model_config_file_is_polled(tmp_path, exports):
    base = tmp_path / "m"
    saved_models.push_version(str(base), 1, exports[1])
    path = tmp_path / "models.config"
    write_config(path, f'model_config_list {{ config {{ name: "m" base_path: "{base}" }} }}')
    server = start_server(base, model_config_file=str(path),
                          model_config_file_poll_wait_seconds=0.1)
    try:
        with pytest.raises(Exception, match="Unrecognized servable version label"):
            server.manager.resolve("m", label="stable")
        write_config(path, f"""model_config_list {{ config {{ name: "m" base_path: "{base}"
            version_labels {{ key: "stable" value: 1 }} }} }}""")
        wait_for(lambda: server.manager.label_version_or_none("m", "stable") == 1,
                 what="the label from the re-read config")
        assert server.manager.resolve("m", label="stable").version == 1
    finally:
        server.stop(grace=0)
