"""The TF Serving REST API.

Routes (``{spec}`` is ``/v1/models/NAME`` optionally followed by
``/versions/N`` or ``/labels/LABEL``):

* ``GET {spec}`` - model version status.
* ``GET {spec}/metadata`` - signature_def metadata.
* ``POST {spec}:predict|:classify|:regress`` - inference.
* ``GET <prometheus path>`` - metrics, when enabled by the monitoring config.

Errors are ``{"error": "..."}`` with the HTTP status of the gRPC code.

``RestApp`` answers one request (method, target, body) and knows nothing of
sockets; ``RestServer`` is the HTTP/1.1 transport.
"""

from __future__ import annotations

import logging
import re
import urllib.parse

import grpc
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.apis import regression_pb2

from serving import dispatch
from serving import errors
from serving import grpc_services
from serving import inference
from serving import names
from serving import rest_codec
from serving import rest_http
from serving.config_files import MonitoringOptions
from serving.errors import ServingError
from serving.metrics import ServingMetrics
from serving.model_manager import ModelManager
from serving.rest_http import RestResponse
from serving.rest_http import error_response

_log = logging.getLogger(__name__)
PROTOCOL = "rest"
_ROUTE = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
    r"(?:(?P<metadata>/metadata)|:(?P<verb>[a-z]+))?$"
)

# TF Serving's --rest_api_timeout_in_ms default.
DEFAULT_TIMEOUT_MS = 30_000


class RestApp:
    """Routes REST requests to the manager; the transport is ``RestServer``.

    Args:
        manager: The loaded models.
        metrics: Request metrics (also served at the Prometheus path).
        monitoring: Whether and where to serve Prometheus metrics.
        max_request_bytes: Largest request body accepted (413 above it).
        rest_api_timeout_in_ms: Per-request deadline, from the moment the
            body has been read to the moment the answer is ready (TF
            Serving's ``--rest_api_timeout_in_ms``); past it the client gets
            504 DEADLINE_EXCEEDED. 0 or less: no deadline.
    """

    def __init__(self, manager: ModelManager, metrics: ServingMetrics, *,
                 monitoring: MonitoringOptions, max_request_bytes: int,
                 rest_api_timeout_in_ms: int = DEFAULT_TIMEOUT_MS,
                 in_flight: dispatch.InFlightLimit | None = None):
        self.manager = manager
        self.in_flight = in_flight or dispatch.InFlightLimit(0)
        self.metrics = metrics
        self.monitoring = monitoring
        self.max_request_bytes = max_request_bytes
        self.timeout_s = rest_api_timeout_in_ms / 1000 if rest_api_timeout_in_ms > 0 else None

    def check_body(self, method: str, content_length: str | None, *,
                   chunked: bool = False) -> RestResponse | None:
        """An error answer for a request whose body must not be read, else None.

        POST needs ``Content-Length`` or chunked transfer encoding (whose
        reader enforces the limit); a declared length over
        ``max_request_bytes`` is refused with 413 before the body is read.
        """
        if chunked:
            if content_length is None:
                return None
            return error_response(errors.invalid_argument(
                "A request must not have both Content-Length and Transfer-Encoding."),
                close=True)
        if content_length is None:
            if method != "POST":
                return None
            return error_response(errors.invalid_argument(
                "POST requests need a Content-Length header."), close=True)
        try:
            length = int(content_length)
        except ValueError:
            length = -1
        if length < 0:
            return error_response(errors.invalid_argument(
                f"Invalid Content-Length {content_length!r}."), close=True)
        if length > self.max_request_bytes:
            return self.too_large(length)
        return None

    def too_large(self, length: int | None = None) -> RestResponse:
        """413 for a body over ``max_request_bytes``."""
        size = f"of {length} bytes" if length is not None else "larger than the limit"
        return error_response(ServingError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"Request body {size} exceeds the limit of {self.max_request_bytes} bytes; "
            "send fewer rows per request or raise --max_request_bytes.",
            http_status=413), close=True)

    def handle(self, method: str, target: str, body: bytes = b"") -> RestResponse:
        """Answers one request; never raises.

        Args:
            method: HTTP method.
            target: The request target as sent (path, percent-escapes intact,
                and query).
            body: The request body.
        """
        try:
            return self._route(method, target, body)
        except ServingError as e:
            return error_response(e)
        except RecursionError:
            return error_response(errors.invalid_argument(
                "The request is nested too deeply."))
        except Exception as e:  # noqa: BLE001 - a bad request never takes the server down.
            _log.exception("REST request failed unexpectedly")
            return RestResponse(500, rest_codec.dumps({"error": f"Internal error: {e}"}))

    def _route(self, method: str, target: str, body: bytes) -> RestResponse:
        path = urllib.parse.urlsplit(target).path
        if self.monitoring.prometheus_enabled and path == self.monitoring.prometheus_path:
            if method != "GET":
                raise _method_not_allowed(method, path)
            return RestResponse(200, self.metrics.render(), self.metrics.content_type)
        match = _ROUTE.match(path)
        if match is None:
            raise errors.not_found(
                f"Malformed request: {method} {path}; expected /v1/models/NAME"
                "[/versions/N|/labels/LABEL][/metadata|:predict|:classify|:regress]."
            )
        spec = _model_spec(match)
        verb, metadata = match["verb"], match["metadata"]
        if verb is None:
            if method != "GET":
                raise _method_not_allowed(method, path)
            if metadata:
                return RestResponse(200, self._metadata(spec))
            response = grpc_services.status_response(self.manager, spec)
            return RestResponse(200, rest_codec.status_json(response))
        if method != "POST":
            raise _method_not_allowed(method, path)
        if verb not in ("predict", "classify", "regress"):
            raise errors.not_found(
                f"Unknown verb ':{verb}' in {path}; use :predict, :classify or :regress.")
        payload = rest_codec.parse_json(body)
        signature_name = payload.get("signature_name", "")
        if not isinstance(signature_name, str):
            raise errors.invalid_argument("'signature_name' must be a string.")
        spec.signature_name = signature_name
        handler = getattr(self, f"_{verb}")
        result = dispatch.serve(self.manager, self.metrics, lambda s: handler(s, spec, payload),
                                api=verb, protocol=PROTOCOL, model_spec=spec,
                                limit=self.in_flight)
        return RestResponse(200, rest_codec.dumps(result))

    def _metadata(self, spec) -> bytes:
        request = get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=spec, metadata_field=[inference.SIGNATURE_DEF_FIELD])
        response = dispatch.serve(
            self.manager, self.metrics,
            lambda s: inference.get_model_metadata(s, request),
            api="metadata", protocol=PROTOCOL, model_spec=spec)
        return rest_codec.metadata_json(response, inference.SIGNATURE_DEF_FIELD)

    @staticmethod
    def _predict(servable, spec, payload) -> dict:
        signature = inference._spec(servable, spec.signature_name)  # noqa: SLF001
        inputs, row_format = rest_codec.predict_inputs(payload, signature)
        _, outputs = inference.run_predict(servable, signature.key, inputs)
        return rest_codec.predict_response(outputs, row_format=row_format)

    @staticmethod
    def _classify(servable, spec, payload) -> dict:
        request = classification_pb2.ClassificationRequest(
            model_spec=spec, input=rest_codec.examples_input(payload))
        return rest_codec.classify_response(inference.classify(servable, request))

    @staticmethod
    def _regress(servable, spec, payload) -> dict:
        request = regression_pb2.RegressionRequest(
            model_spec=spec, input=rest_codec.examples_input(payload))
        return rest_codec.regress_response(inference.regress(servable, request))


def _method_not_allowed(method: str, path: str) -> ServingError:
    return errors.invalid_argument(f"Method {method} is not supported for {path}.")


def _model_spec(match: re.Match) -> model_pb2.ModelSpec:
    name = urllib.parse.unquote(match["name"])
    names.check_model_name(name)
    spec = model_pb2.ModelSpec(name=name)
    if match["version"] is not None:
        spec.version.value = names.parse_version(urllib.parse.unquote(match["version"]))
    elif match["label"] is not None:
        spec.version_label = urllib.parse.unquote(match["label"])
    return spec


# --- Transport -------------------------------------------------------------------------------

class RestServer:
    """The REST API over HTTP/1.1 on a background thread (``serving.rest_http``).

    One thread per connection (up to ``max_connections``) reads, runs and
    answers its requests in order.

    Args:
        app: The request router.
        host: Interface to bind.
        port: Port (0 picks a free one; see ``port`` after construction).
        backlog: Listen backlog: connections the kernel queues before they
            are accepted.
        max_connections: Connections served at once (one thread each); a
            connection beyond it is answered 503 and closed.
        idle_timeout_s: A connection with no request in progress is closed
            after this many seconds.
        read_timeout_s: Once a request line has arrived, its headers and body
            must arrive within this many seconds (else 408 and the connection
            is closed); the answer must be taken within it too.
        reuse_port: Bind with ``SO_REUSEPORT`` (``--num_server_processes``).
    """

    def __init__(self, app: RestApp, *, host: str, port: int, backlog: int = 1024,
                 max_connections: int = 1024, idle_timeout_s: float = 60.0,
                 read_timeout_s: float = 60.0, reuse_port: bool = False):
        self._http = rest_http.HttpServer(
            app, host=host, port=port, backlog=backlog, max_connections=max_connections,
            idle_timeout_s=idle_timeout_s, read_timeout_s=read_timeout_s, reuse_port=reuse_port)
        self.port = self._http.port

    def start(self) -> None:
        """Starts serving in the background."""
        self._http.start()

    def stop(self, grace: float = 1.0) -> None:
        """Stops accepting, closes idle connections now and busy ones after ``grace`` s."""
        self._http.stop(grace)
