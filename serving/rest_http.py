"""HTTP/1.1 for the REST API: the standard library's threading server, tuned.

One thread per connection reads a request, runs it and writes the answer, so
a request costs no hand-off between threads. Measured on a 2-core machine
against an aiohttp server (same app, model calls on a thread pool), single-row
predict on a tiny model: sequential keep-alive p50 0.98 ms vs 1.76 ms (the
in-process call is 0.48 ms), 16 concurrent connections 873 vs 687 requests/s.
On top of ``http.server``:

* ``TCP_NODELAY`` and each answer in one ``sendall`` (status line, headers
  and body), so keep-alive requests are not held back by Nagle's algorithm
  and delayed ACKs;
* keep-alive by default (HTTP/1.1), ``Connection: close`` honoured, pipelined
  requests answered in order, chunked request bodies, ``Expect:
  100-continue`` answered with the final error when the body is refused;
* a listen backlog of ``backlog`` (1024) and at most ``max_connections``
  connections served at once; beyond that a new connection is answered 503;
* time limits, so a slow or idle client cannot hold a thread for ever: a
  connection waiting for its next request is closed after
  ``idle_timeout_s`` (default 60 s); once a request line has arrived, its
  headers and body must arrive within ``read_timeout_s`` (default 60 s, else
  408), and the answer must be taken within ``read_timeout_s`` too;
* a lean header parser (64 KiB lines, at most 100 headers, conflicting
  ``Content-Length`` refused) instead of the stdlib's email parser; protocol
  errors are answered ``{"error": ...}`` like every other error;
* a per-request deadline (``RestApp.timeout_s``): a request still running
  when it passes is answered 504 at once and its connection closed (the
  model call itself runs to its end in the background);
* ``stop(grace)`` closes idle connections at once and busy ones after
  ``grace`` seconds.
"""

from __future__ import annotations

import dataclasses
import functools
import heapq
import http
import http.server
import io
import itertools
import logging
import socket
import socketserver
import threading
import time

import grpc

from serving import errors
from serving import rest_codec
from serving.errors import ServingError

_log = logging.getLogger(__name__)
_REASONS = {s.value: s.phrase for s in http.HTTPStatus}
_REASONS[499] = "Client Closed Request"
_MAX_LINE = 65536
_MAX_HEADERS = 100
JSON = "application/json"
_BIG_BODY = 1 << 20  # Bodies this large are sent after their headers, not copied onto them.


@dataclasses.dataclass(frozen=True)
class RestResponse:
    """One HTTP answer.

    Args:
        status: HTTP status code.
        body: The encoded body.
        content_type: Its ``Content-Type``.
        close: Close the connection after sending it (the request body was
            not read, or could not be).
    """

    status: int
    body: bytes
    content_type: str = JSON
    close: bool = False


def error_response(error: ServingError, *, close: bool = False,
                   status: int | None = None) -> RestResponse:
    """``{"error": message}`` with the HTTP status of the error's code."""
    return RestResponse(status or error.http_status, rest_codec.dumps({"error": error.message}),
                        close=close)


def head(status: int, content_type: str, length: int, *, connection: str | None) -> bytes:
    """Status line and headers of an answer."""
    return (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {length}\r\n"
        + (f"Connection: {connection}\r\n" if connection else "")
        + "\r\n"
    ).encode("latin-1")


class _DeadlineSocketReader(io.RawIOBase):
    """Socket reads that time out at ``deadline`` (``time.monotonic()``), not per read."""

    def __init__(self, sock: socket.socket):
        super().__init__()
        self._sock = sock
        self.deadline = 0.0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the client was too slow sending its request")
        self._sock.settimeout(remaining)
        return self._sock.recv_into(buffer)


class _Headers(dict):
    """Request headers by lower-case name; ``get`` takes any case."""

    def get(self, name: str, default=None):
        return super().get(name.lower(), default)

    def __getitem__(self, name: str):
        return super().__getitem__(name.lower())


class _Writer:
    """``wfile`` for the stdlib's own answers (100 Continue, parse errors)."""

    def __init__(self, handler: _Handler):
        self._handler = handler

    def write(self, data: bytes) -> int:
        self._handler.send_bytes(data, final=False)
        return len(data)

    def flush(self) -> None:
        pass

    @property
    def closed(self) -> bool:
        return False

    def close(self) -> None:
        pass


class _Watchdog:
    """One thread that runs callbacks at their deadlines (cancellable)."""

    def __init__(self):
        self._heap: list = []
        self._cancelled: set[int] = set()
        self._ids = itertools.count()
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def arm(self, when: float, callback) -> int:
        token = next(self._ids)
        with self._cv:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="rest-deadlines",
                                                daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, (when, token, callback))
            if self._heap[0][1] == token:
                self._cv.notify()
        return token

    def disarm(self, token: int) -> None:
        with self._cv:
            self._cancelled.add(token)

    def stop(self) -> None:
        with self._cv:
            self._stopped = True
            self._cv.notify()

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._stopped:
                    while self._heap and self._heap[0][1] in self._cancelled:
                        self._cancelled.discard(heapq.heappop(self._heap)[1])
                    now = time.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        _, token, callback = heapq.heappop(self._heap)
                        break
                    self._cv.wait(self._heap[0][0] - now if self._heap else None)
                else:
                    return
            try:
                callback()
            except Exception:  # noqa: BLE001 - the watchdog must keep running.
                _log.exception("REST deadline callback failed")


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "serving-rest"
    server: _Server

    # --- Connection ---------------------------------------------------------------------

    def setup(self):
        self.connection = self.request
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._reader = _DeadlineSocketReader(self.connection)
        self.rfile = io.BufferedReader(self._reader, 1 << 16)
        self.wfile = _Writer(self)
        self._lock = threading.Lock()
        self._request_id = 0
        self._answered = False
        self._refused = None  # The answer chosen while handling Expect: 100-continue.
        self._linger = False  # Drain the connection before closing it.
        self.busy = False
        self.server.track(self, True)

    def finish(self):
        self.server.track(self, False)
        if self._linger:
            self._drain()
        self.rfile.close()

    def _drain(self) -> None:
        """Reads what the client still sends (a refused body) so closing does not reset.

        Closing a socket with unread data makes the kernel send RST, and the
        client may lose the answer it has not read yet.
        """
        try:
            self.connection.shutdown(socket.SHUT_WR)
            end = time.monotonic() + min(2.0, self.server.read_timeout_s)
            while (remaining := end - time.monotonic()) > 0:
                self.connection.settimeout(remaining)
                if not self.connection.recv(1 << 16):
                    break
        except OSError:
            pass

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature.
        _log.debug("%s - " + format, self.address_string(), *args)

    def send_bytes(self, data, *, final: bool = True, request_id: int | None = None) -> bool:
        """Writes ``data`` (bytes, or a tuple of them) unless the request was answered.

        ``final`` marks the request answered; ``request_id`` (the deadline's)
        writes only while that request is the current one.
        """
        with self._lock:
            if self._answered or request_id is not None and request_id != self._request_id:
                return False
            if final:
                self._answered = True
            self.connection.settimeout(self.server.read_timeout_s)
            for part in data if isinstance(data, tuple) else (data,):
                self.connection.sendall(part)
            return True

    def send_error(self, code, message=None, explain=None):
        """The stdlib's protocol errors (bad request line, headers too long...) as JSON."""
        self.close_connection = True
        text = message or _REASONS.get(int(code), "Error")
        if explain:
            text = f"{text}: {explain}"
        self._reply(int(code), rest_codec.dumps({"error": text}), JSON)

    # --- One request ---------------------------------------------------------------------

    def handle_one_request(self):
        server = self.server
        with self._lock:
            self._request_id += 1
            self._answered = False
        self._refused = None
        try:
            self._reader.deadline = time.monotonic() + server.idle_timeout_s
            self.raw_requestline = self.rfile.readline(_MAX_LINE + 1)
            if not self.raw_requestline or server.stopping:
                self.close_connection = True
                return
            self.busy = True
            self._reader.deadline = time.monotonic() + server.read_timeout_s
            if len(self.raw_requestline) > _MAX_LINE:
                self.requestline = self.request_version = self.command = ""
                self.send_error(http.HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not self.parse_request():
                return
            self._serve(self.command)
        except TimeoutError:
            if self.busy and not self._answered:
                self._reply(408, rest_codec.dumps({"error": (
                    f"The request did not arrive within {server.read_timeout_s:g} s; "
                    "send it faster or closer to the server.")}), JSON, close=True)
            self.close_connection = True
        except (ConnectionError, OSError):
            self.close_connection = True
        finally:
            self.busy = False

    def parse_request(self) -> bool:
        """The request line and headers (a lean stand-in for the stdlib's email parser).

        Sets ``command``, ``path``, ``request_version``, ``headers`` and
        ``close_connection``; answers 400/431/505 itself and returns False
        for a request it cannot read.
        """
        self.command = ""
        self.request_version = version = "HTTP/0.9"
        self.requestline = line = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = line.split()
        if len(words) != 3 or not words[2].startswith("HTTP/"):
            self.send_error(400, f"Bad request syntax ({line!r})")
            return False
        command, path, version = words
        try:
            major, minor = (int(part) for part in version[5:].split("."))
            if major < 0 or minor < 0 or len(version) > 16:
                raise ValueError(version)
        except ValueError:
            self.send_error(400, f"Bad request version ({version!r})")
            return False
        self.command, self.request_version = command, version
        if (major, minor) >= (2, 0):
            self.send_error(505, f"Invalid HTTP version ({version})")
            return False
        self.path = "/" + path.lstrip("/") if path.startswith("//") else path
        headers = _Headers()
        while True:
            raw = self.rfile.readline(_MAX_LINE + 1)
            if len(raw) > _MAX_LINE:
                self.send_error(431, "Line too long")
                return False
            if raw in (b"\r\n", b"\n", b""):
                break
            if len(headers) >= _MAX_HEADERS:
                self.send_error(431, f"Too many headers (more than {_MAX_HEADERS})")
                return False
            name, colon, value = str(raw, "iso-8859-1").partition(":")
            name = name.lower()
            if not colon or not name or name != name.strip() or raw[:1] in b" \t":
                self.send_error(400, f"Malformed header line {raw[:80]!r}")
                return False
            value = value.strip()
            if name in headers:
                if name in ("content-length", "transfer-encoding", "host"):
                    if headers[name] != value:
                        self.send_error(400, f"Conflicting {name} headers")
                        return False
                    continue
                value = f"{headers[name]}, {value}"
            headers[name] = value
        self.headers = headers
        tokens = {t.strip() for t in headers.get("connection", "").lower().split(",")}
        self.close_connection = "close" in tokens or (
            (major, minor) < (1, 1) and "keep-alive" not in tokens)
        if (headers.get("expect", "").lower() == "100-continue" and (major, minor) >= (1, 1)
                and not self.handle_expect_100()):
            return False
        return True

    def handle_expect_100(self):
        self._refused = self._check_body()
        if self._refused is None:
            return super().handle_expect_100()
        return True  # The refusal is sent as the final answer, without 100 Continue.

    def _check_body(self):
        headers = self.headers
        chunked = "chunked" in headers.get("Transfer-Encoding", "").lower()
        return self.server.app.check_body(self.command, headers.get("Content-Length"),
                                          chunked=chunked)

    def _serve(self, method: str) -> None:
        app = self.server.app
        response = self._refused or self._check_body()
        if response is None:
            body = b""
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                body = self._read_chunked(app)
                if not isinstance(body, bytes):
                    response = body
            elif self.headers.get("Content-Length"):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if len(body) < int(self.headers["Content-Length"]):
                    self.close_connection = True
                    return
            if response is None:
                response = self._run(app, "GET" if method == "HEAD" else method, body)
        if response.close:
            self.close_connection = True
            self._linger = True
        self._reply(response.status, response.body, response.content_type,
                    head_only=method == "HEAD")

    def _run(self, app, method: str, body: bytes):
        timeout = app.timeout_s
        if timeout is None:
            return app.handle(method, self.path, body)
        token = self.server.watchdog.arm(
            time.monotonic() + timeout,
            functools.partial(self._deadline_passed, self._request_id, timeout))
        try:
            return app.handle(method, self.path, body)
        finally:
            self.server.watchdog.disarm(token)

    def _deadline_passed(self, request_id: int, timeout: float) -> None:
        error = ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, (
            f"The request did not finish within the REST deadline of {timeout:g} s "
            "(--rest_api_timeout_in_ms); send fewer rows per request or raise the deadline."))
        body = rest_codec.dumps({"error": error.message})
        try:
            if self.send_bytes(head(error.http_status, JSON, len(body), connection="close")
                               + body, request_id=request_id):
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _read_chunked(self, app):
        body = bytearray()  # One buffer: many tiny chunks cost their bytes, not a list entry each.
        while True:
            line = self.rfile.readline(_MAX_LINE + 1)
            try:
                length = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                length = -1
            if length < 0 or not line.endswith(b"\n"):
                return error_response(errors.invalid_argument(
                    "Malformed chunked request body."), close=True)
            if length == 0:
                while self.rfile.readline(_MAX_LINE + 1) not in (b"\r\n", b"\n", b""):
                    pass  # Trailers.
                return bytes(body)
            if len(body) + length > app.max_request_bytes:
                return app.too_large()
            data = self.rfile.read(length)
            if len(data) != length or self.rfile.readline(_MAX_LINE + 1) not in (b"\r\n", b"\n"):
                return error_response(errors.invalid_argument(
                    "Malformed chunked request body: a chunk is shorter than its size line "
                    "says, or is not followed by CRLF."), close=True)
            body += data

    def _reply(self, status: int, body: bytes, content_type: str, *, close: bool = False,
               head_only: bool = False) -> None:
        if close:
            self.close_connection = True
        connection = None
        if self.close_connection:
            connection = "close"
        elif getattr(self, "request_version", "") == "HTTP/1.0":
            connection = "keep-alive"
        data = head(status, content_type, len(body), connection=connection)
        if head_only:
            pass
        elif len(body) > _BIG_BODY:
            data = (data, body)
        else:
            data += body
        try:
            self.send_bytes(data)
        except OSError:
            self.close_connection = True


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address, app, *, backlog: int, max_connections: int,
                 idle_timeout_s: float, read_timeout_s: float, reuse_port: bool = False):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.allow_reuse_port = reuse_port  # Processes of a --num_server_processes group.
        self.request_queue_size = backlog
        self.app = app
        self.idle_timeout_s = idle_timeout_s
        self.read_timeout_s = read_timeout_s
        self.watchdog = _Watchdog()
        self.stopping = False
        self._slots = threading.BoundedSemaphore(max_connections)
        self._max_connections = max_connections
        self._handlers: set[_Handler] = set()
        self._handlers_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """Binds without ``HTTPServer``'s reverse DNS lookup of the host."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def track(self, handler: _Handler, alive: bool) -> None:
        with self._handlers_lock:
            (self._handlers.add if alive else self._handlers.discard)(handler)

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            body = rest_codec.dumps({"error": (
                f"The server is serving {self._max_connections} connections, its limit; "
                "retry later or reuse connections.")})
            try:
                request.settimeout(1.0)
                request.sendall(head(503, JSON, len(body),
                                     connection="close") + body)
                request.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address):
        _log.debug("REST connection from %s failed", client_address, exc_info=True)

    def close_connections(self, grace: float) -> None:
        """Closes idle connections now and busy ones after ``grace`` seconds."""
        self.stopping = True
        end = time.monotonic() + grace
        while True:
            with self._handlers_lock:
                handlers = list(self._handlers)
            busy = False
            for handler in handlers:
                if handler.busy and time.monotonic() < end:
                    busy = True
                    continue
                try:
                    handler.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            if not busy:
                break
            time.sleep(0.01)
        self.watchdog.stop()


class HttpServer:
    """The REST API's HTTP/1.1 server on a background thread (see the module doc)."""

    def __init__(self, app, *, host: str, port: int, backlog: int, max_connections: int,
                 idle_timeout_s: float, read_timeout_s: float, reuse_port: bool = False):
        self._httpd = _Server((host, port), app, backlog=backlog,
                              max_connections=max_connections,
                              idle_timeout_s=idle_timeout_s, read_timeout_s=read_timeout_s,
                              reuse_port=reuse_port)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.2},
                                        name="rest-server", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, grace: float) -> None:
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd.close_connections(grace)
