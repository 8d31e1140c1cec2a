"""Load generator for ``benchmarks/serving_load.py``, run as its own process.

Reads a plan (JSON: a list of scenarios) and, for each scenario, sends one
pre-serialized request over and over: gRPC as raw message bytes on a
``grpc`` channel (no proto work per request), REST as a pre-built HTTP/1.1
request on keep-alive connections over plain sockets. The client does as
little work per request as it can, so the server, not the client, is what
gets measured. It imports neither TensorFlow nor the serving package, and
works the same against any server (ours, TF Serving, a peer).

Per scenario, in order:

* latency: one request in flight, sequential blocking calls, at most
  ``latency_requests`` requests or ``latency_seconds`` seconds after
  ``latency_warmup`` untimed ones; p50/p99 in ms.
* load: ``inflight`` requests in flight (one ``grpc.aio`` channel, or one
  keep-alive connection per in-flight request for REST) for ``seconds``
  after ``warmup`` untimed requests; requests/s, failures, and the CPU the
  client and the server (``server_pids`` and all their descendants) used in
  that window, in cores (CPU seconds per wall second).

A scenario is a JSON object::

    {"id": "...", "protocol": "grpc" | "rest", "target": "127.0.0.1:8500",
     "method": "/tensorflow.serving.PredictionService/Predict"   (gRPC)
               or "/v1/models/m:predict"                          (REST),
     "request_file": "req.bin", "latency_requests": 300, "latency_seconds": 2,
     "latency_warmup": 20, "inflight": 16, "seconds": 3, "warmup": 64,
     "channels": 1, "server_pids": [1234]}

Prints one JSON line per scenario as it finishes (``{"id": ..., "latency":
{...}, "load": {...}}`` or ``{"id": ..., "error": "..."}``).

    .venv/bin/python benchmarks/serving_load_driver.py --plan plan.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import time

import grpc

_TICKS = os.sysconf("SC_CLK_TCK")
MAX_REQUESTS = 1_000_000
TIMEOUT_S = 30.0


# ---------------------------------------------------------------- CPU accounting

def _children(pid: int) -> list[int]:
    found = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as f:
                found += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return found


def process_tree(pids: list[int]) -> list[int]:
    """``pids`` and all their descendants (a server may run worker processes)."""
    seen, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.append(pid)
            todo += _children(pid)
    return seen


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds of each live process in ``pids`` (all threads)."""
    out = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime
    return out


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


# ---------------------------------------------------------------- HTTP/1.1

class HttpError(Exception):
    pass


def http_request_bytes(target: str, path: str, body: bytes) -> bytes:
    head = (f"POST {path} HTTP/1.1\r\nHost: {target}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("ascii") + body


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise HttpError(f"bad status line {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


class SyncHttp:
    """One keep-alive connection with blocking sockets (for latency)."""

    def __init__(self, target: str):
        self.host, port = target.rsplit(":", 1)
        self.port = int(port)
        self.sock = self.reader = None

    def _connect(self):
        self.close()
        self.sock = socket.create_connection((self.host, self.port), timeout=TIMEOUT_S)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb")

    def close(self):
        if self.sock is not None:
            self.reader.close()
            self.sock.close()
            self.sock = self.reader = None

    def call(self, request: bytes) -> tuple[int, bytes]:
        try:
            return self._call(request)
        except BaseException:
            self.close()
            raise

    def _call(self, request: bytes) -> tuple[int, bytes]:
        if self.sock is None:
            self._connect()
        self.sock.sendall(request)
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            line = self.reader.readline()
            if not line:
                raise HttpError("connection closed before the response")
            head += line
        status, headers = _parse_head(head[:-4])
        if "content-length" in headers:
            body = self.reader.read(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.reader.readline().split(b";")[0], 16)
                body += self.reader.read(size)
                self.reader.readline()
                if size == 0:
                    break
        else:
            body = self.reader.read()
            self.close()
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, body


class AsyncHttp:
    """One keep-alive connection on asyncio streams (for load)."""

    def __init__(self, target: str):
        self.host, port = target.rsplit(":", 1)
        self.port = int(port)
        self.reader = self.writer = None

    async def close(self):
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
            self.reader = self.writer = None

    async def call(self, request: bytes) -> tuple[int, bytes]:
        try:
            return await self._call(request)
        except BaseException:
            await self.close()  # a half-read response leaves the connection unusable
            raise

    async def _call(self, request: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            self.writer.get_extra_info("socket").setsockopt(
                socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.writer.write(request)
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as e:
            raise HttpError("connection closed before the response") from e
        status, headers = _parse_head(head[:-4])
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                body += await self.reader.readexactly(size)
                await self.reader.readline()
                if size == 0:
                    break
        else:
            body = await self.reader.read()
            await self.close()
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, body


# ---------------------------------------------------------------- scenarios

def _check_http(status: int, body: bytes) -> None:
    if status != 200:
        raise HttpError(f"HTTP {status}: {body[:300].decode('utf-8', 'replace')}")


def latency(s: dict, payload: bytes) -> dict:
    n, limit = s.get("latency_requests", 300), s.get("latency_seconds", 2.0)
    samples = []
    if s["protocol"] == "grpc":
        channel = grpc.insecure_channel(s["target"])
        method = channel.unary_unary(s["method"])
        call = lambda: method(payload, timeout=TIMEOUT_S)  # noqa: E731
        close = channel.close
    else:
        http = SyncHttp(s["target"])
        request = http_request_bytes(s["target"], s["method"], payload)
        call = lambda: _check_http(*http.call(request))  # noqa: E731
        close = http.close
    try:
        for _ in range(s.get("latency_warmup", 20)):
            call()
        deadline = time.perf_counter() + limit
        while len(samples) < n and (not samples or time.perf_counter() < deadline):
            start = time.perf_counter()
            call()
            samples.append(time.perf_counter() - start)
    finally:
        close()
    return {"requests": len(samples), "p50_ms": round(percentile(samples, 50) * 1e3, 3),
            "p99_ms": round(percentile(samples, 99) * 1e3, 3)}


async def _load(s: dict, payload: bytes) -> dict:
    inflight, seconds = s.get("inflight", 16), s.get("seconds", 3.0)
    errors: list[str] = []
    if s["protocol"] == "grpc":
        # Several channels, each its own TCP connection (no shared subchannel), let a
        # server of several processes on one SO_REUSEPORT port spread the load.
        channels = [grpc.aio.insecure_channel(s["target"],
                                              options=[("grpc.use_local_subchannel_pool", 1)])
                    for _ in range(max(1, s.get("channels", 1)))]
        methods = [c.unary_unary(s["method"]) for c in channels]
        calls = [(lambda m=methods[i % len(methods)]: m(payload, timeout=TIMEOUT_S))
                 for i in range(inflight)]

        async def close():
            for channel in channels:
                await channel.close()
    else:
        request = http_request_bytes(s["target"], s["method"], payload)
        conns = [AsyncHttp(s["target"]) for _ in range(inflight)]

        def make_call(conn):
            async def call():
                _check_http(*await conn.call(request))
            return call
        calls = [make_call(c) for c in conns]

        async def close():
            for c in conns:
                await c.close()
    try:
        warm = s.get("warmup", 64)
        for start in range(0, warm, inflight):
            await asyncio.gather(*(calls[i]() for i in range(min(inflight, warm - start))))
        loop = asyncio.get_running_loop()
        done, failures = [0], [0]
        stop = loop.time() + seconds

        async def worker(call):
            while loop.time() < stop and done[0] + failures[0] < MAX_REQUESTS:
                try:
                    await call()
                    done[0] += 1
                except (grpc.RpcError, HttpError, OSError, ValueError,
                        asyncio.IncompleteReadError) as e:
                    failures[0] += 1
                    if len(errors) < 3:
                        errors.append(str(e)[:300])

        pids = process_tree(s.get("server_pids", []))
        server0, client0 = cpu_seconds(pids), time.process_time()
        start = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in calls))
        elapsed = time.perf_counter() - start
        server1 = cpu_seconds(pids)
        client_cpu = time.process_time() - client0
    finally:
        await close()
    server_cpu = sum(server1[p] - server0[p] for p in server1 if p in server0)
    out = {
        "requests": done[0], "failures": failures[0], "seconds": round(elapsed, 3),
        "requests_per_s": round(done[0] / elapsed, 1),
        "client_cpu_cores": round(client_cpu / elapsed, 2),
        "server_cpu_cores": round(server_cpu / elapsed, 2),
        "server_processes": len(pids),
        "server_cpu_ms_per_request": round(server_cpu / max(done[0], 1) * 1e3, 3),
    }
    if errors:
        out["errors"] = errors
    return out


def run(s: dict) -> dict:
    with open(s["request_file"], "rb") as f:
        payload = f.read()
    result: dict = {"id": s["id"]}
    try:
        if s.get("latency_requests", 300) > 0:
            result["latency"] = latency(s, payload)
        if s.get("seconds", 3.0) > 0:
            result["load"] = asyncio.run(_load(s, payload))
    except Exception as e:  # noqa: BLE001 (one broken scenario must not stop the others)
        detail = e.details() if isinstance(e, grpc.RpcError) and hasattr(e, "details") else str(e)
        result["error"] = f"{type(e).__name__}: {detail}"[:500]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plan", required=True, help="JSON file: a list of scenarios")
    args = parser.parse_args()
    with open(args.plan, encoding="utf-8") as f:
        plan = json.load(f)
    for scenario in plan:
        print(json.dumps(run(scenario)), flush=True)


if __name__ == "__main__":
    main()
