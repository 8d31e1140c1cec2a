"""`python -m serving` as a real process, and gRPC over TLS from --ssl_config_file."""

from __future__ import annotations

import datetime
import os
import socket
import subprocess
import sys

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

import saved_models
from http_util import call
from serving.flags import ServerOptions
from serving.server import ModelServer
from tests.server_process import stop, wait_for_grpc_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request():
    r = predict_pb2.PredictRequest()
    r.model_spec.name = "m"
    r.inputs["x"].CopyFrom(tf.make_tensor_proto(np.ones((1, 3), np.float32)))
    return r


def test_python_m_serving_process(tmp_path, exports):
    base = tmp_path / "m"
    saved_models.push_version(str(base), 3, exports[1])
    rest_port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "serving", "--port=0", f"--rest_api_port={rest_port}",
         "--model_name=m", f"--model_base_path={base}", "--some_unknown_tf_flag=1"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    try:
        port, lines = wait_for_grpc_port(process, timeout=90)
        assert port, "".join(lines)
        assert any("Ignoring unsupported tensorflow_model_server flag" in l for l in lines)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            assert stub.Predict(request(), timeout=10).model_spec.version.value == 3
        status, body = call(f"http://127.0.0.1:{rest_port}/v1/models/m")
        assert status == 200 and body["model_version_status"][0]["state"] == "AVAILABLE"
    finally:
        assert stop(process, timeout=20) == 0


def test_python_m_serving_reports_bad_flags():
    result = subprocess.run([sys.executable, "-m", "serving"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert "needs model_base_path" in result.stderr


def _self_signed():
    crypto = pytest.importorskip("cryptography")
    del crypto
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode()


def test_grpc_tls_from_ssl_config_file(tmp_path, exports):
    key_pem, cert_pem = _self_signed()
    ssl_config = tmp_path / "ssl.config"
    ssl_config.write_text(f"server_key: {key_pem!r}\nserver_cert: {cert_pem!r}\n".replace(
        "'", '"'))
    base = tmp_path / "m"
    saved_models.push_version(str(base), 1, exports[1])
    server = ModelServer(ServerOptions(port=0, model_name="m", model_base_path=str(base),
                                       ssl_config_file=str(ssl_config),
                                       file_system_poll_wait_seconds=0))
    server.start()
    try:
        credentials = grpc.ssl_channel_credentials(root_certificates=cert_pem.encode())
        with grpc.secure_channel(f"127.0.0.1:{server.grpc_port}", credentials,
                                 options=[("grpc.ssl_target_name_override", "localhost")]) as ch:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(ch)
            assert stub.Predict(request(), timeout=10).model_spec.version.value == 1
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as plain:
            with pytest.raises(grpc.RpcError) as info:
                prediction_service_pb2_grpc.PredictionServiceStub(plain).Predict(
                    request(), timeout=5)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop(grace=0)


def test_port_in_use_is_reported(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(OSError, match=f"Cannot bind gRPC to 127.0.0.1:{port}; is the port"):
            ModelServer(ServerOptions(port=port, model_name="m", model_base_path=str(tmp_path)))
