"""tensorflow_model_server's command-line flags, parsed into ``ServerOptions``.

Flags use TF Serving's names and defaults (``--port=8500``,
``--rest_api_port=0`` meaning REST off, ``--enable_batching``...). Our
additions: ``--host`` (default ``127.0.0.1``; TF Serving binds all
interfaces), ``--max_request_bytes``, ``--max_in_flight_requests``,
``--max_rows_per_request`` and ``--profiler_port``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging

_log = logging.getLogger(__name__)
DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_IN_FLIGHT_REQUESTS = 1024
DEFAULT_MAX_ROWS_PER_REQUEST = 100_000


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
        max_in_flight_requests: Model requests (Predict, Classify, Regress,
            MultiInference) running at once across gRPC and REST; one more
            is refused at once with RESOURCE_EXHAUSTED (REST 503) instead of
            queueing without bound. 0: no bound. Our addition.
        max_rows_per_request: Rows (the first dimension of the inputs, or
            the number of tf.Examples) one request may send; more gets
            INVALID_ARGUMENT before the model runs. 0: no bound. Our
            addition.
        grpc_socket_path: Also serve gRPC on this Unix domain socket.
        grpc_channel_arguments: ``key=value`` pairs, comma-separated, passed
            to the gRPC server (numbers as ints), e.g.
            ``grpc.max_connection_age_ms=2000``.
        rest_api_timeout_in_ms: Deadline of one REST request.
        enable_serialization_as_tensor_content: Pack numeric Predict outputs
            into ``tensor_content`` instead of the typed fields.
        enable_signature_method_name_check: Classify/Regress need signatures
            whose method_name says so.
        prefer_tflite_model: Serve ``model.tflite`` where a version has one.
        num_tflite_pools: TF Lite interpreters per version.
        tensorflow_intra_op_parallelism: Threads inside one op (0: TF picks).
        tensorflow_inter_op_parallelism: Ops run in parallel (0: TF picks).
        profiler_port: Start TensorFlow's profiler server on this port
            (``None``: off).
        num_server_processes: Serve from this many processes sharing the
            ports (``serving.process_group``).
        reuse_port: Bind with ``SO_REUSEPORT`` (set for the processes of a
            group).
        server_process_index: This process's index in a group (set by the
            group's parent; ``None`` for a lone server).

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
    max_in_flight_requests: int = DEFAULT_MAX_IN_FLIGHT_REQUESTS
    max_rows_per_request: int = DEFAULT_MAX_ROWS_PER_REQUEST
    grpc_socket_path: str = ""
    grpc_channel_arguments: str = ""
    rest_api_timeout_in_ms: int = 30000
    enable_serialization_as_tensor_content: bool = False
    enable_signature_method_name_check: bool = False
    prefer_tflite_model: bool = False
    num_tflite_pools: int = 1
    tensorflow_intra_op_parallelism: int = 0
    tensorflow_inter_op_parallelism: int = 0
    profiler_port: int | None = None
    num_server_processes: int = 1
    reuse_port: bool = False
    server_process_index: int | None = None

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
        grpc_channel_argument_pairs(self.grpc_channel_arguments)  # Fails early on bad syntax.
        if min(self.rest_api_timeout_in_ms, self.num_tflite_pools, self.num_server_processes) < 1:
            raise ValueError(
                f"ServerOptions got rest_api_timeout_in_ms={self.rest_api_timeout_in_ms!r}, "
                f"num_tflite_pools={self.num_tflite_pools!r}, "
                f"num_server_processes={self.num_server_processes!r}; each must be >= 1."
            )
        if min(self.max_in_flight_requests, self.max_rows_per_request) < 0:
            raise ValueError(
                f"ServerOptions got max_in_flight_requests={self.max_in_flight_requests!r}, "
                f"max_rows_per_request={self.max_rows_per_request!r}; each must be >= 0 "
                "(0: no bound).")
        if self.port < 0 or (self.rest_api_port is not None and self.rest_api_port < 0):
            raise ValueError(
                f"ServerOptions got port={self.port!r}, rest_api_port={self.rest_api_port!r}; "
                "ports must be >= 0."
            )


def grpc_channel_argument_pairs(text: str) -> list[tuple[str, int | str]]:
    """Parses ``--grpc_channel_arguments``: ``key=value,key=value``; numbers become ints.

    Example:
        >>> grpc_channel_argument_pairs("grpc.max_connection_age_ms=2000,grpc.lb_policy_name=grpclb")
        [('grpc.max_connection_age_ms', 2000), ('grpc.lb_policy_name', 'grpclb')]
    """
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(
                f"--grpc_channel_arguments has {item!r}; expected key=value pairs separated "
                "by commas, e.g. grpc.max_connection_age_ms=2000.")
        try:
            pairs.append((key, int(value)))
        except ValueError:
            pairs.append((key, value))
    return pairs


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
    flag("max_in_flight_requests", int,
         "Model requests running at once; more get RESOURCE_EXHAUSTED / HTTP 503 "
         "(0: no bound; our addition).")
    flag("max_rows_per_request", int,
         "Rows one request may send; more get INVALID_ARGUMENT (0: no bound; our addition).")
    flag("grpc_socket_path", str, "Also serve gRPC on this Unix domain socket path.")
    flag("grpc_channel_arguments", str,
         "Comma-separated key=value gRPC server arguments, e.g. grpc.max_connection_age_ms=2000.")
    flag("rest_api_timeout_in_ms", int, "Deadline of one REST request in milliseconds.")
    flag("enable_serialization_as_tensor_content", bool,
         "Pack numeric Predict outputs into tensor_content instead of float_val etc.")
    flag("enable_signature_method_name_check", bool,
         "Classify/Regress/MultiInference need signatures with the matching method_name.")
    flag("prefer_tflite_model", bool, "Serve model.tflite where a version directory has one.")
    flag("num_tflite_pools", int, "TF Lite interpreters per model version.")
    flag("tensorflow_intra_op_parallelism", int, "Threads inside one op (0: TensorFlow picks).")
    flag("tensorflow_inter_op_parallelism", int, "Ops run in parallel (0: TensorFlow picks).")
    flag("num_server_processes", int,
         "Serve from this many processes sharing the ports with SO_REUSEPORT (our addition).")
    flag("reuse_port", bool, "Bind the ports with SO_REUSEPORT (set inside a process group).")
    p.add_argument("--server_process_index", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--profiler_port", type=int, default=None,
                   help="Start TensorFlow's profiler server on this port (our addition; "
                        "TF Serving serves the profiler on --port).")
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
