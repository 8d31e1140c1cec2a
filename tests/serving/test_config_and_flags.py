"""Flags, config-file validation, version policies and names: each error message."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from serving import config_files
from serving import names
from serving.config_files import BatchingOptions
from serving.config_files import ModelSpecConfig
from serving.errors import ServingError
from serving.flags import ServerOptions
from serving.flags import parse_flags
from serving.version_policy import VersionPolicy


def test_tf_serving_flags_parse():
    options = parse_flags([
        "--port=9000", "--rest_api_port=9001", "--model_name=taxi",
        "--model_base_path=/m/taxi", "--enable_batching", "--file_system_poll_wait_seconds=2",
        "--enable_model_warmup=false", "--tensorflow_intra_op_parallelism=2"])
    assert (options.port, options.rest_api_port, options.model_name) == (9000, 9001, "taxi")
    assert options.enable_batching and not options.enable_model_warmup
    assert options.host == "127.0.0.1"
    assert parse_flags(["--model_base_path=/m"]).rest_api_port is None  # 0 = REST off.


def test_flag_errors():
    with pytest.raises(ValueError, match="needs model_base_path .* or model_config_file"):
        parse_flags([])
    with pytest.raises(ValueError, match="Unexpected argument 'stray'"):
        parse_flags(["--model_base_path=/m", "stray"])
    with pytest.raises(ValueError, match="max_request_bytes=0"):
        ServerOptions(model_base_path="/m", max_request_bytes=0)
    with pytest.raises(ValueError, match="ports must be >= 0"):
        ServerOptions(model_base_path="/m", port=-1)


def test_version_policy():
    assert VersionPolicy().select([3, 1, 2]) == {3}
    assert VersionPolicy("all").select([1, 2]) == {1, 2}
    assert VersionPolicy("specific", versions=(1, 5)).select([1, 2]) == {1}
    with pytest.raises(ValueError, match="expected one of 'latest', 'all', 'specific'"):
        VersionPolicy("newest")
    with pytest.raises(ValueError, match="num_versions=0"):
        VersionPolicy("latest", num_versions=0)
    with pytest.raises(ValueError, match="kind='specific' with no versions"):
        VersionPolicy("specific")


def test_batching_options_validation():
    with pytest.raises(ValueError, match="the last allowed size must equal max_batch_size"):
        BatchingOptions(max_batch_size=8, allowed_batch_sizes=(2, 4))
    with pytest.raises(ValueError, match="strictly increasing positive sizes"):
        BatchingOptions(max_batch_size=8, allowed_batch_sizes=(4, 2, 8))
    with pytest.raises(ValueError, match="num_batch_threads=0"):
        BatchingOptions(num_batch_threads=0)
    with pytest.raises(ValueError, match="batch_timeout_micros=-1"):
        BatchingOptions(batch_timeout_micros=-1)


def test_batching_file_error_names_file(tmp_path):
    path = tmp_path / "b.txt"
    path.write_text("max_batch_size { value: 8 } allowed_batch_sizes: 4")
    with pytest.raises(ValueError, match=f"In batching parameters file '{path}'"):
        config_files.load_batching_options(str(path))
    with pytest.raises(ValueError, match="Cannot read model config file '/no/such'"):
        config_files.load_model_server_config("/no/such")


def test_ssl_config_needs_key_and_cert(tmp_path):
    path = tmp_path / "ssl.config"
    path.write_text('server_key: "k"')
    with pytest.raises(ValueError, match="must set both server_key and server_cert"):
        config_files.load_ssl_options(str(path))


def _config(text):
    return text_format.Parse(text, model_server_config_pb2.ModelServerConfig())


def test_model_server_config_validation():
    with pytest.raises(ValueError, match="only model_config_list"):
        config_files.model_specs_from_proto(_config(""))
    with pytest.raises(ValueError, match="names model 'a' twice"):
        config_files.model_specs_from_proto(_config(
            'model_config_list { config { name: "a" base_path: "/a" } '
            'config { name: "a" base_path: "/b" } }'))
    with pytest.raises(ValueError, match="model_platform='pytorch'"):
        config_files.model_specs_from_proto(_config(
            'model_config_list { config { name: "a" base_path: "/a" model_platform: "pytorch" } }'))
    with pytest.raises(ValueError, match=r"name='\.\./x'"):
        ModelSpecConfig(name="../x", base_path="/a")
    with pytest.raises(ValueError, match="empty base_path for model 'a'"):
        ModelSpecConfig(name="a", base_path="")


def test_names():
    assert names.check_model_name("taxi-v2.1") == "taxi-v2.1"
    for bad in ("", "..", "a/b", "a..b", "/abs", ".hidden"):
        with pytest.raises(ServingError, match="Invalid model name") as info:
            names.check_model_name(bad)
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(ServingError, match="Invalid model version '-1'"):
        names.parse_version("-1")
