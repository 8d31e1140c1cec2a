"""The TF Serving REST API on the standard library's ThreadingHTTPServer.

Routes (``{spec}`` is ``/v1/models/NAME`` optionally followed by
``/versions/N`` or ``/labels/LABEL``):

* ``GET {spec}`` - model version status.
* ``GET {spec}/metadata`` - signature_def metadata.
* ``POST {spec}:predict|:classify|:regress`` - inference.
* ``GET <prometheus path>`` - metrics, when enabled by the monitoring config.

Errors are ``{"error": "..."}`` with the HTTP status of the gRPC code.
"""

from __future__ import annotations

import http.server
import json
import logging
import re
import threading
import urllib.parse

import grpc
from google.protobuf import json_format
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
from serving.config_files import MonitoringOptions
from serving.errors import ServingError
from serving.metrics import ServingMetrics
from serving.model_manager import ModelManager

_log = logging.getLogger(__name__)
PROTOCOL = "rest"
_ROUTE = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
    r"(?:(?P<metadata>/metadata)|:(?P<verb>[a-z]+))?$"
)
_STATE_NAMES = {v: k for k, v in grpc_services.get_model_status_pb2.ModelVersionStatus.State.items()}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "serving-rest"
    app: RestApp  # set per server class

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature.
        _log.debug("%s - " + format, self.address_string(), *args)

    def do_GET(self):  # noqa: N802 - stdlib name.
        self.app.handle(self, "GET")

    def do_POST(self):  # noqa: N802
        self.app.handle(self, "POST")

    def do_PUT(self):  # noqa: N802
        self.app.handle(self, "PUT")

    def do_DELETE(self):  # noqa: N802
        self.app.handle(self, "DELETE")


class RestApp:
    """Routes REST requests to the manager; used by ``RestServer``."""

    def __init__(self, manager: ModelManager, metrics: ServingMetrics, *,
                 monitoring: MonitoringOptions, max_request_bytes: int):
        self.manager = manager
        self.metrics = metrics
        self.monitoring = monitoring
        self.max_request_bytes = max_request_bytes

    def handle(self, request: http.server.BaseHTTPRequestHandler, method: str) -> None:
        """Answers one request; never raises."""
        try:
            status, body, content_type = self._route(request, method)
        except ServingError as e:
            status, body, content_type = e.http_status, _json({"error": e.message}), "application/json"
        except Exception as e:  # noqa: BLE001 - a bad request never takes the server down.
            _log.exception("REST request failed unexpectedly")
            status, body, content_type = 500, _json({"error": f"Internal error: {e}"}), "application/json"
        try:
            request.send_response(status)
            request.send_header("Content-Type", content_type)
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            request.wfile.write(body)
        except OSError:
            request.close_connection = True

    def _read_body(self, request) -> bytes:
        length_header = request.headers.get("Content-Length")
        if length_header is None:
            request.close_connection = True
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                               "POST requests need a Content-Length header.")
        try:
            length = int(length_header)
        except ValueError:
            length = -1
        if length < 0:
            request.close_connection = True
            raise errors.invalid_argument(f"Invalid Content-Length {length_header!r}.")
        if length > self.max_request_bytes:
            if length <= 2 * self.max_request_bytes:
                _discard(request.rfile, length)  # Lets the client read our answer.
            request.close_connection = True
            raise _TooLarge(
                f"Request body of {length} bytes exceeds the limit of "
                f"{self.max_request_bytes} bytes; send fewer rows per request or raise "
                "--max_request_bytes."
            )
        return request.rfile.read(length)

    def _route(self, request, method: str):
        path = urllib.parse.urlsplit(request.path).path
        if self.monitoring.prometheus_enabled and path == self.monitoring.prometheus_path:
            if method != "GET":
                raise _method_not_allowed(method, path)
            return 200, self.metrics.render(), self.metrics.content_type
        body = self._read_body(request) if method == "POST" else b""
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
                return 200, _json(self._metadata(spec)), "application/json"
            response = grpc_services.status_response(self.manager, spec)
            return 200, _json(_status_json(response)), "application/json"
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
                                api=verb, protocol=PROTOCOL, model_spec=spec)
        return 200, _json(result), "application/json"

    def _metadata(self, spec) -> dict:
        request = get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=spec, metadata_field=[inference.SIGNATURE_DEF_FIELD])
        response = dispatch.serve(
            self.manager, self.metrics,
            lambda s: inference.get_model_metadata(s, request),
            api="metadata", protocol=PROTOCOL, model_spec=spec)
        return json_format.MessageToDict(response, preserving_proto_field_name=True)

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


class _TooLarge(ServingError):
    def __init__(self, message):
        super().__init__(grpc.StatusCode.RESOURCE_EXHAUSTED, message)

    @property
    def http_status(self) -> int:
        return 413


def _discard(stream, length: int) -> None:
    while length > 0:
        chunk = stream.read(min(length, 1 << 16))
        if not chunk:
            return
        length -= len(chunk)


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


def _status_json(response) -> dict:
    return {"model_version_status": [
        {
            "version": str(s.version),
            "state": _STATE_NAMES.get(s.state, "UNKNOWN"),
            "status": {
                "error_code": grpc_services.grpc_code_name(s.status.error_code),
                "error_message": s.status.error_message,
            },
        }
        for s in response.model_version_status
    ]}


def _json(value) -> bytes:
    return json.dumps(value).encode("utf-8")


class RestServer:
    """A ThreadingHTTPServer serving ``RestApp`` on a background thread.

    Args:
        app: The request router.
        host: Interface to bind.
        port: Port (0 picks a free one; see ``port`` after construction).
    """

    def __init__(self, app: RestApp, *, host: str, port: int):
        handler = type("Handler", (_Handler,), {"app": app})
        self._httpd = http.server.ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.2},
                                        name="rest-server", daemon=True)

    def start(self) -> None:
        """Starts serving in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stops serving and closes the socket."""
        self._httpd.shutdown()
        self._httpd.server_close()
