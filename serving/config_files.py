"""Readers for tensorflow_model_server's text-format config files.

Each reader parses the file with the TF Serving proto (so a file that works
here works for the real container, and vice versa) and returns a validated,
typed dataclass. Errors name the file and say what to fix.
"""

from __future__ import annotations

import dataclasses
import os

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from serving import config_protos
from serving import names
from serving.version_policy import VersionPolicy

DEFAULT_PROMETHEUS_PATH = "/monitoring/prometheus/metrics"


@dataclasses.dataclass(frozen=True)
class ModelSpecConfig:
    """One served model: where its versions live and which to serve.

    Args:
        name: The model name clients put in ``ModelSpec.name``.
        base_path: Directory holding numeric version subdirectories.
        version_policy: Which versions to serve.
        version_labels: Label (e.g. ``"stable"``) to version.
    """

    name: str
    base_path: str
    version_policy: VersionPolicy = dataclasses.field(default_factory=VersionPolicy)
    version_labels: dict[str, int] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if not names.is_valid_model_name(self.name):
            raise ValueError(
                f"ModelSpecConfig got name={self.name!r}; expected letters, digits, "
                "'_', '-' or '.', without '/' or '..'."
            )
        if not self.base_path:
            raise ValueError(
                f"ModelSpecConfig got an empty base_path for model {self.name!r}; set "
                "base_path to the directory holding its numeric version dirs."
            )


@dataclasses.dataclass(frozen=True)
class BatchingOptions:
    """TF Serving's batching parameters (``--batching_parameters_file``).

    Defaults are TF Serving's defaults for unset fields.

    Args:
        max_batch_size: Largest batch, in rows.
        batch_timeout_micros: How long the oldest request may wait for a batch
            to fill before it runs anyway.
        num_batch_threads: Threads that run batches.
        max_enqueued_batches: Queue capacity, in batches; beyond it requests
            fail with UNAVAILABLE.
        allowed_batch_sizes: Sizes a batch is padded up to (increasing, the
            last equal to ``max_batch_size``); empty means no padding.
    """

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    num_batch_threads: int = dataclasses.field(default_factory=lambda: os.cpu_count() or 1)
    max_enqueued_batches: int = 10
    allowed_batch_sizes: tuple[int, ...] = ()

    def __post_init__(self):
        for field in ("max_batch_size", "num_batch_threads", "max_enqueued_batches"):
            value = getattr(self, field)
            if value < 1:
                raise ValueError(f"BatchingOptions got {field}={value!r}; expected >= 1.")
        if self.batch_timeout_micros < 0:
            raise ValueError(
                f"BatchingOptions got batch_timeout_micros={self.batch_timeout_micros!r}; "
                "expected >= 0."
            )
        sizes = list(self.allowed_batch_sizes)
        if sizes:
            if sizes != sorted(set(sizes)) or sizes[0] < 1:
                raise ValueError(
                    f"BatchingOptions got allowed_batch_sizes={sizes!r}; expected "
                    "strictly increasing positive sizes."
                )
            if sizes[-1] != self.max_batch_size:
                raise ValueError(
                    f"BatchingOptions got allowed_batch_sizes={sizes!r} with "
                    f"max_batch_size={self.max_batch_size}; the last allowed size must "
                    "equal max_batch_size."
                )

    @classmethod
    def from_proto(cls, proto) -> BatchingOptions:
        """Builds options from a ``BatchingParameters`` message."""
        kwargs = {}
        for field in ("max_batch_size", "batch_timeout_micros", "num_batch_threads",
                      "max_enqueued_batches"):
            if proto.HasField(field):
                kwargs[field] = getattr(proto, field).value
        kwargs["allowed_batch_sizes"] = tuple(proto.allowed_batch_sizes)
        return cls(**kwargs)


@dataclasses.dataclass(frozen=True)
class MonitoringOptions:
    """Prometheus export settings (``--monitoring_config_file``)."""

    prometheus_enabled: bool = False
    prometheus_path: str = DEFAULT_PROMETHEUS_PATH


@dataclasses.dataclass(frozen=True)
class SSLOptions:
    """gRPC TLS settings (``--ssl_config_file``); the fields hold PEM text."""

    server_key: str
    server_cert: str
    custom_ca: str = ""
    client_verify: bool = False


def _read_text_proto(path: str, message, what: str):
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ValueError(f"Cannot read {what} file {path!r}: {e.strerror}.") from e
    try:
        return text_format.Parse(text, message)
    except text_format.ParseError as e:
        raise ValueError(
            f"Error parsing text-format {message.DESCRIPTOR.full_name} ({what} file "
            f"{path!r}): {e}"
        ) from e


def model_specs_from_proto(config) -> list[ModelSpecConfig]:
    """Converts a ``ModelServerConfig`` into validated ``ModelSpecConfig``s."""
    which = config.WhichOneof("config")
    if which != "model_config_list":
        raise ValueError(
            f"ModelServerConfig uses {which or 'no config'!r}; only "
            "model_config_list { config { name: ... base_path: ... } } is supported."
        )
    specs = []
    seen = set()
    for model in config.model_config_list.config:
        if model.model_platform not in ("", "tensorflow"):
            raise ValueError(
                f"Model {model.name!r} has model_platform={model.model_platform!r}; "
                "only 'tensorflow' SavedModels can be served."
            )
        if model.name in seen:
            raise ValueError(
                f"ModelServerConfig names model {model.name!r} twice; model names "
                "must be unique."
            )
        seen.add(model.name)
        specs.append(
            ModelSpecConfig(
                name=model.name,
                base_path=model.base_path,
                version_policy=VersionPolicy.from_proto(model.model_version_policy),
                version_labels=dict(model.version_labels),
            )
        )
    return specs


def load_model_server_config(path: str):
    """Parses a ``--model_config_file`` into a ``ModelServerConfig`` message."""
    return _read_text_proto(path, model_server_config_pb2.ModelServerConfig(), "model config")


def load_batching_options(path: str | None) -> BatchingOptions:
    """Parses ``--batching_parameters_file`` (``None`` gives the defaults)."""
    if not path:
        return BatchingOptions()
    proto = _read_text_proto(path, config_protos.BatchingParameters(), "batching parameters")
    try:
        return BatchingOptions.from_proto(proto)
    except ValueError as e:
        raise ValueError(f"In batching parameters file {path!r}: {e}") from e


def load_monitoring_options(path: str | None) -> MonitoringOptions:
    """Parses ``--monitoring_config_file`` (``None`` disables Prometheus)."""
    if not path:
        return MonitoringOptions()
    proto = _read_text_proto(path, config_protos.MonitoringConfig(), "monitoring config")
    prometheus = proto.prometheus_config
    return MonitoringOptions(
        prometheus_enabled=prometheus.enable,
        prometheus_path=prometheus.path or DEFAULT_PROMETHEUS_PATH,
    )


def load_ssl_options(path: str | None) -> SSLOptions | None:
    """Parses ``--ssl_config_file`` (``None`` means plaintext gRPC)."""
    if not path:
        return None
    proto = _read_text_proto(path, config_protos.SSLConfig(), "SSL config")
    if not proto.server_key or not proto.server_cert:
        raise ValueError(
            f"SSL config file {path!r} must set both server_key and server_cert "
            "(PEM text, not file paths)."
        )
    return SSLOptions(
        server_key=proto.server_key,
        server_cert=proto.server_cert,
        custom_ca=proto.custom_ca,
        client_verify=proto.client_verify,
    )
