"""tensorflow_model_server's command-line flags, parsed into ``ServerOptions``.

Flags use TF Serving's names and defaults (``--port=8500``,
``--rest_api_port=0`` meaning REST off, ``--enable_batching``...). Two
additions: ``--host`` (default ``127.0.0.1``; TF Serving binds all
interfaces) and ``--max_request_bytes``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging

_log = logging.getLogger(__name__)
DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class ServerOptions:
    """Everything ``ModelServer`` needs to start.

    Args:
        port: gRPC port; 0 picks a free one.
        rest_api_port: REST port; ``None`` disables REST, 0 picks a free one.
        host: Interface to bind both servers to.
        model_name: Name of the single model (without a model config file).
        model_base_path: Its base path.
        model_config_file: A text ModelServerConfig; overrides the two above.
        model_config_file_poll_wait_seconds: Re-read the config file this
            often (0: never).
        file_system_poll_wait_seconds: Poll base paths this often (0: once).
        enable_batching: Batch concurrent requests.
        batching_parameters_file: Text BatchingParameters.
        monitoring_config_file: Text MonitoringConfig.
        ssl_config_file: Text SSLConfig for gRPC TLS.
        enable_model_warmup: Replay warmup requests before serving a version.
        num_request_iterations_for_warmup: Times each warmup request runs.
        allow_version_labels_for_unavailable_models: See ModelManager.
        max_request_bytes: Largest gRPC message or REST body accepted.
        grpc_max_threads: gRPC worker threads.

    Example:
        >>> ServerOptions(model_name="m", model_base_path="/models/m").port
        8500
    """

    port: int = 8500
    rest_api_port: int | None = None
    host: str = "127.0.0.1"
    model_name: str = "default"
    model_base_path: str = ""
    model_config_file: str = ""
    model_config_file_poll_wait_seconds: float = 0.0
    file_system_poll_wait_seconds: float = 1.0
    enable_batching: bool = False
    batching_parameters_file: str = ""
    monitoring_config_file: str = ""
    ssl_config_file: str = ""
    enable_model_warmup: bool = True
    num_request_iterations_for_warmup: int = 1
    allow_version_labels_for_unavailable_models: bool = False
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    grpc_max_threads: int = 64

    def __post_init__(self):
        if not self.model_config_file and not self.model_base_path:
            raise ValueError(
                "ServerOptions needs model_base_path (with model_name) or "
                "model_config_file; e.g. --model_name=taxi --model_base_path=/models/taxi."
            )
        if self.max_request_bytes < 1:
            raise ValueError(
                f"ServerOptions got max_request_bytes={self.max_request_bytes!r}; "
                "expected a positive number of bytes."
            )
        if self.port < 0 or (self.rest_api_port is not None and self.rest_api_port < 0):
            raise ValueError(
                f"ServerOptions got port={self.port!r}, rest_api_port={self.rest_api_port!r}; "
                "ports must be >= 0."
            )


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser for ``python -m serving``."""
    p = argparse.ArgumentParser(
        prog="python -m serving",
        description="TF-Serving-compatible model server (gRPC + REST).",
    )
    d = ServerOptions.__dataclass_fields__

    def flag(name, kind, help_text):
        default = d[name].default
        if kind is bool:
            p.add_argument(f"--{name}", type=_bool, nargs="?", const=True, default=default,
                           help=help_text)
        else:
            p.add_argument(f"--{name}", type=kind, default=default, help=help_text)

    flag("port", int, "gRPC port (0: pick a free port).")
    p.add_argument("--rest_api_port", type=int, default=0,
                   help="REST port; 0 disables REST (TF Serving semantics).")
    flag("host", str, "Interface to bind (default 127.0.0.1).")
    flag("model_name", str, "Model name (without --model_config_file).")
    flag("model_base_path", str, "Directory with numeric version subdirectories.")
    flag("model_config_file", str, "Text-format ModelServerConfig.")
    flag("model_config_file_poll_wait_seconds", float, "Re-read the config file this often.")
    flag("file_system_poll_wait_seconds", float, "Poll base paths this often.")
    flag("enable_batching", bool, "Batch concurrent requests.")
    flag("batching_parameters_file", str, "Text-format BatchingParameters.")
    flag("monitoring_config_file", str, "Text-format MonitoringConfig.")
    flag("ssl_config_file", str, "Text-format SSLConfig (gRPC TLS).")
    flag("enable_model_warmup", bool, "Replay assets.extra/tf_serving_warmup_requests.")
    flag("num_request_iterations_for_warmup", int, "Times each warmup request runs.")
    flag("allow_version_labels_for_unavailable_models", bool,
         "Allow labels on versions that are not loaded yet.")
    flag("max_request_bytes", int, "Largest gRPC message / REST body accepted.")
    flag("grpc_max_threads", int, "gRPC worker threads.")
    return p


def parse_flags(argv: list[str]) -> ServerOptions:
    """Parses ``argv``; unknown TF Serving flags are logged and ignored.

    Example:
        >>> parse_flags(["--model_base_path=/m", "--rest_api_port=8501"]).rest_api_port
        8501
    """
    args, unknown = build_parser().parse_known_args(argv)
    for item in unknown:
        if item.startswith("--"):
            _log.warning("Ignoring unsupported tensorflow_model_server flag %s", item)
        else:
            raise ValueError(f"Unexpected argument {item!r}; flags look like --port=8500.")
    values = vars(args)
    values["rest_api_port"] = values["rest_api_port"] or None
    return ServerOptions(**values)
