"""``ModelServer``: the manager, the gRPC server and the REST server together."""

from __future__ import annotations

import concurrent.futures
import logging
import os
import socket
import stat
import threading

import grpc
from grpc_health.v1 import health
from grpc_health.v1 import health_pb2
from grpc_health.v1 import health_pb2_grpc
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import prediction_service_pb2_grpc

from serving import config_files
from serving import dispatch
from serving.batching import BatchScheduler
from serving.config_files import ModelSpecConfig
from serving.flags import ServerOptions
from serving.flags import grpc_channel_argument_pairs
from serving.grpc_services import ModelServicer
from serving.grpc_services import PredictionServicer
from serving.metrics import ServingMetrics
from serving.model_manager import ManagerOptions
from serving.model_manager import ModelManager
from serving.rest_server import RestApp
from serving.rest_server import RestServer
from serving.servable import ServableOptions

_log = logging.getLogger(__name__)


def model_specs(options: ServerOptions) -> list[ModelSpecConfig]:
    """The models to serve: from the config file, else the single model flags."""
    if options.model_config_file:
        return config_files.model_specs_from_proto(
            config_files.load_model_server_config(options.model_config_file))
    return [ModelSpecConfig(name=options.model_name, base_path=options.model_base_path)]


def _configure_tensorflow(options: ServerOptions) -> None:
    """TF Serving's --tensorflow_{intra,inter}_op_parallelism (0 leaves TF's default)."""
    if not (options.tensorflow_intra_op_parallelism or options.tensorflow_inter_op_parallelism):
        return
    import tensorflow as tf  # noqa: PLC0415

    try:
        if options.tensorflow_intra_op_parallelism:
            tf.config.threading.set_intra_op_parallelism_threads(
                options.tensorflow_intra_op_parallelism)
        if options.tensorflow_inter_op_parallelism:
            tf.config.threading.set_inter_op_parallelism_threads(
                options.tensorflow_inter_op_parallelism)
    except RuntimeError as e:  # TensorFlow already initialised in this process.
        _log.warning("Thread settings not applied: %s", e)


class ModelServer:
    """A TF-Serving-compatible server.

    Args:
        options: Ports, models and the config files.

    Example:
        >>> server = ModelServer(ServerOptions(port=0, rest_api_port=0,
        ...     model_name="m", model_base_path="/models/m"))   # doctest: +SKIP
        >>> server.start()                                      # doctest: +SKIP
        >>> server.grpc_port, server.rest_port                  # doctest: +SKIP
        >>> server.stop()                                       # doctest: +SKIP
    """

    def __init__(self, options: ServerOptions):
        self.options = options
        _configure_tensorflow(options)
        self.metrics = ServingMetrics()
        self.monitoring = config_files.load_monitoring_options(options.monitoring_config_file)
        self.scheduler = None
        if options.enable_batching:
            self.scheduler = BatchScheduler(
                config_files.load_batching_options(options.batching_parameters_file))
        self.ssl = config_files.load_ssl_options(options.ssl_config_file)
        self._config_text = self._read_config_text()
        self.health = health.HealthServicer()
        self._health_names: set[str] = set()
        self._health_lock = threading.Lock()
        self.manager = ModelManager(
            model_specs(options),
            options=ManagerOptions(
                file_system_poll_wait_seconds=options.file_system_poll_wait_seconds,
                enable_model_warmup=options.enable_model_warmup,
                num_request_iterations_for_warmup=options.num_request_iterations_for_warmup,
                allow_version_labels_for_unavailable_models=(
                    options.allow_version_labels_for_unavailable_models),
                scheduler=self.scheduler,
                servable=ServableOptions(
                    prefer_tflite_model=options.prefer_tflite_model,
                    num_tflite_interpreters=options.num_tflite_pools,
                    enable_signature_method_name_check=(
                        options.enable_signature_method_name_check),
                    serialize_as_tensor_content=options.enable_serialization_as_tensor_content,
                    max_rows_per_request=options.max_rows_per_request,
                ),
            ),
            on_event=self._on_model_event,
        )
        self.in_flight = dispatch.InFlightLimit(options.max_in_flight_requests)
        self.metrics.in_flight.set_function(lambda: self.in_flight.in_flight)
        self._grpc = grpc.server(
            concurrent.futures.ThreadPoolExecutor(
                max_workers=options.grpc_max_threads, thread_name_prefix="grpc"),
            # gRPC's own bound on queued + running calls (it answers RESOURCE_EXHAUSTED
            # past it); model requests are bounded more tightly by ``self.in_flight``.
            maximum_concurrent_rpcs=(options.max_in_flight_requests + options.grpc_max_threads
                                     if options.max_in_flight_requests else None),
            options=[
                ("grpc.max_receive_message_length", options.max_request_bytes),
                ("grpc.max_send_message_length", -1),
                ("grpc.so_reuseport", 1 if options.reuse_port else 0),
                *grpc_channel_argument_pairs(options.grpc_channel_arguments),
            ],
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionServicer(self.manager, self.metrics, in_flight=self.in_flight), self._grpc)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(
            ModelServicer(self.manager, on_reload=self._update_health,
                          group_size=options.num_server_processes), self._grpc)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._grpc)
        address = f"{options.host}:{options.port}"
        try:
            if self.ssl is None:
                self.grpc_port = self._grpc.add_insecure_port(address)
            else:
                credentials = grpc.ssl_server_credentials(
                    [(self.ssl.server_key.encode(), self.ssl.server_cert.encode())],
                    root_certificates=self.ssl.custom_ca.encode() or None,
                    require_client_auth=self.ssl.client_verify,
                )
                self.grpc_port = self._grpc.add_secure_port(address, credentials)
        except RuntimeError:
            self.grpc_port = 0
        if not self.grpc_port:
            if self.scheduler is not None:
                self.scheduler.stop()
            raise OSError(f"Cannot bind gRPC to {address}; is the port in use? Pick another "
                          "--port (0 picks a free one).")
        if options.grpc_socket_path:
            self._bind_unix_socket(options.grpc_socket_path)
        self._rest = None
        self.rest_port = None
        if options.rest_api_port is not None:
            self._rest = RestServer(
                RestApp(self.manager, self.metrics, monitoring=self.monitoring,
                        max_request_bytes=options.max_request_bytes,
                        rest_api_timeout_in_ms=options.rest_api_timeout_in_ms,
                        in_flight=self.in_flight),
                host=options.host, port=options.rest_api_port, reuse_port=options.reuse_port)
            self.rest_port = self._rest.port
        self._stop = threading.Event()
        self._config_thread = None

    def _bind_unix_socket(self, path: str) -> None:
        problem = None
        if os.path.exists(path) and stat.S_ISSOCK(os.stat(path).st_mode):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                try:
                    probe.connect(path)
                    problem = (f"Another server listens on the Unix socket {path}; stop it or "
                               "pick another --grpc_socket_path.")
                except ConnectionRefusedError:
                    os.unlink(path)  # A socket left by a server that died.
        if problem is None:
            try:
                bound = self._grpc.add_insecure_port(f"unix:{path}")
            except RuntimeError:
                bound = 0
            if not bound:
                problem = (f"Cannot bind gRPC to the Unix socket {path}; check that its "
                           "directory exists and is writable (--grpc_socket_path).")
        if problem is not None:
            if self.scheduler is not None:
                self.scheduler.stop()
            raise OSError(problem)

    def _read_config_text(self) -> str | None:
        if not self.options.model_config_file:
            return None
        with open(self.options.model_config_file, encoding="utf-8") as f:
            return f.read()

    def _on_model_event(self, event: str, name: str, version: int) -> None:
        self.metrics.model_event(event, name, version)
        self._update_health()

    def _update_health(self) -> None:
        with self._health_lock:
            self._set_health()

    def _set_health(self) -> None:
        status = health_pb2.HealthCheckResponse
        names = set(self.manager.model_names())
        for name in self._health_names - names:  # Models removed by a config reload.
            self.health.set(name, status.NOT_SERVING)
        for name in names:
            self.health.set(name, status.SERVING if self.manager.available_versions(name)
                            else status.NOT_SERVING)
        self._health_names |= names

    def start(self) -> None:
        """Loads the models on disk, then starts gRPC and REST."""
        self.manager.start()
        self._grpc.start()
        if self._rest is not None:
            self._rest.start()
        self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        self._update_health()
        if self.options.model_config_file and self.options.model_config_file_poll_wait_seconds > 0:
            self._config_thread = threading.Thread(target=self._poll_config, daemon=True,
                                                   name="config-poll")
            self._config_thread.start()
        if self.options.profiler_port is not None:
            import tensorflow as tf  # noqa: PLC0415 - loaded already by the servables.

            tf.profiler.experimental.server.start(self.options.profiler_port)
            # TensorFlow's profiler server takes no address: it listens on every interface.
            _log.warning("Profiler server on port %d of ALL interfaces (TensorFlow's profiler "
                         "cannot bind one address; --host does not apply to it)",
                         self.options.profiler_port)
        _log.info("Running gRPC ModelServer at %s:%d", self.options.host, self.grpc_port)
        if self.options.grpc_socket_path:
            _log.info("Running gRPC ModelServer at unix:%s", self.options.grpc_socket_path)
        if self.rest_port is not None:
            _log.info("Exporting HTTP/REST API at %s:%d", self.options.host, self.rest_port)

    def _poll_config(self) -> None:
        path = self.options.model_config_file
        while not self._stop.wait(self.options.model_config_file_poll_wait_seconds):
            try:
                text = self._read_config_text()
                if text == self._config_text:
                    continue
                specs = config_files.model_specs_from_proto(
                    config_files.load_model_server_config(path))
                self.manager.reload_config(specs)
                self._config_text = text
                self._update_health()
                _log.info("Reloaded model config %s", os.path.basename(path))
            except Exception:  # noqa: BLE001 - a bad config edit must not stop the server.
                _log.exception("Reloading %s failed; keeping the current models", path)

    def stop(self, grace: float | None = 1.0) -> None:
        """Stops both servers, polling and batching."""
        self._stop.set()
        self.health.enter_graceful_shutdown()
        if self._rest is not None:
            self._rest.stop(1.0 if grace is None else grace)
        self._grpc.stop(grace).wait()
        self.manager.stop()
        if self.scheduler is not None:
            self.scheduler.stop()

    def wait(self) -> None:
        """Blocks until ``stop`` is called (from a signal handler, say)."""
        self._stop.wait()
