"""The deploy files parse with TF Serving's protos and stay consistent."""

from __future__ import annotations

import os
import pathlib

import pytest
import yaml
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

import saved_models
from serving import config_files
from serving import config_protos
from serving.flags import parse_flags
from serving.flags import ServerOptions
from serving.server import ModelServer

DEPLOY = pathlib.Path(__file__).resolve().parents[2] / "serving" / "deploy"
PROTOS = {
    "models.config": model_server_config_pb2.ModelServerConfig,
    "batching_parameters.txt": config_protos.BatchingParameters,
    "monitoring.config": config_protos.MonitoringConfig,
    "ssl.config.example": config_protos.SSLConfig,
}


def load_yaml(name):
    with open(DEPLOY / name, encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def test_every_config_file_parses_with_its_proto():
    names = sorted(os.listdir(DEPLOY / "config"))
    assert names == sorted(PROTOS)
    for name in names:
        message = text_format.Parse((DEPLOY / "config" / name).read_text(), PROTOS[name]())
        assert message.ByteSize() > 0, name


def test_config_files_validate_as_typed_options():
    batching = config_files.load_batching_options(str(DEPLOY / "config/batching_parameters.txt"))
    assert batching.allowed_batch_sizes[-1] == batching.max_batch_size == 32
    monitoring = config_files.load_monitoring_options(str(DEPLOY / "config/monitoring.config"))
    assert monitoring.prometheus_enabled
    specs = config_files.model_specs_from_proto(
        config_files.load_model_server_config(str(DEPLOY / "config/models.config")))
    assert [(s.name, s.base_path) for s in specs] == [("taxi", "/models/taxi")]
    assert config_files.load_ssl_options(str(DEPLOY / "config/ssl.config.example")).server_key


def test_configmap_matches_config_dir_and_parses():
    (configmap,) = load_yaml("k8s/configmap.yaml")
    assert configmap["kind"] == "ConfigMap"
    for name, text in configmap["data"].items():
        assert text == (DEPLOY / "config" / name).read_text(), name
        text_format.Parse(text, PROTOS[name]())


def server_flags(args):
    return [a for a in args if a.startswith("--")]


def test_deployment_service_and_probe():
    (deployment,) = load_yaml("k8s/deployment.yaml")
    services = load_yaml("k8s/service.yaml")
    (configmap,) = load_yaml("k8s/configmap.yaml")
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["image"].startswith("tensorflow/serving:")
    probe = container["readinessProbe"]["httpGet"]
    assert probe["path"] == "/v1/models/taxi" and probe["port"] == "http"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": 8500, "http": 8501}
    options = parse_flags(server_flags(container["args"]))
    assert (options.port, options.rest_api_port, options.enable_batching) == (8500, 8501, True)
    mounted = {v["name"]: v for v in spec["volumes"]}
    assert mounted["config"]["configMap"]["name"] == configmap["metadata"]["name"]
    for path in (options.model_config_file, options.batching_parameters_file,
                 options.monitoring_config_file):
        assert path.startswith("/config/") and path[len("/config/"):] in configmap["data"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for service in services:
        assert service["kind"] == "Service"
        assert service["spec"]["selector"].items() <= labels.items()
    (kustomization,) = load_yaml("k8s/kustomization.yaml")
    assert sorted(kustomization["resources"]) == ["configmap.yaml", "deployment.yaml",
                                                  "service.yaml"]


def test_docker_compose_runs_official_image_on_push_dir():
    (compose,) = load_yaml("docker-compose.yml")
    service = compose["services"]["tensorflow-serving"]
    assert service["image"].startswith("tensorflow/serving:")
    assert "${PUSH_BASE:-./models}:/models:ro" in service["volumes"]
    options = parse_flags(service["command"])
    for path in (options.model_config_file, options.batching_parameters_file,
                 options.monitoring_config_file):
        assert (DEPLOY / "config" / os.path.basename(path)).exists(), path


def test_our_server_starts_from_the_deploy_configs(tmp_path, exports):
    """The same batching/monitoring files drive `python -m serving`."""
    saved_models.push_version(str(tmp_path / "taxi"), 7, exports[1])
    config = (DEPLOY / "config/models.config").read_text().replace("/models", str(tmp_path))
    (tmp_path / "models.config").write_text(config)
    server = ModelServer(ServerOptions(
        port=0, rest_api_port=0, model_config_file=str(tmp_path / "models.config"),
        enable_batching=True,
        batching_parameters_file=str(DEPLOY / "config/batching_parameters.txt"),
        monitoring_config_file=str(DEPLOY / "config/monitoring.config"),
        file_system_poll_wait_seconds=0))
    server.start()
    try:
        assert server.manager.available_versions("taxi") == [7]
        assert server.scheduler.options.max_batch_size == 32
        assert server.monitoring.prometheus_path == "/monitoring/prometheus/metrics"
    finally:
        server.stop(grace=0)


@pytest.mark.parametrize("name", sorted(PROTOS))
def test_broken_config_is_reported_with_file_name(tmp_path, name):
    path = tmp_path / name
    path.write_text("this is { not valid")
    loader = {
        "models.config": config_files.load_model_server_config,
        "batching_parameters.txt": config_files.load_batching_options,
        "monitoring.config": config_files.load_monitoring_options,
        "ssl.config.example": config_files.load_ssl_options,
    }[name]
    with pytest.raises(ValueError, match=f"Error parsing text-format tensorflow.serving.* file '{path}'"):
        loader(str(path))
