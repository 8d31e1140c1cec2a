"""Load generator for ``benchmarks/serving_load.py``, run as its own process.

Sends one pre-serialized ``PredictRequest`` over and over, as raw bytes (no
TensorFlow import, no proto work per request), so the client costs as little
CPU as gRPC allows and the server, not the client, is what gets measured.

* ``--mode latency``: one request in flight, sequential blocking calls;
  prints p50/p99 in ms.
* ``--mode throughput``: ``--inflight`` requests in flight on one
  ``grpc.aio`` channel for ``--seconds`` (or ``--max_requests``); prints
  requests/s, and the CPU the client and the server used in that window, in
  cores (CPU seconds per wall second), so a reader can see which one
  saturates.

Prints one JSON line. Example:

    .venv/bin/python benchmarks/serving_load_client.py --target 127.0.0.1:8500 \
        --request_file req.pb --mode throughput --inflight 16 --seconds 5 \
        --server_pid 1234
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time

import grpc

PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"
_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (all its threads), from /proc."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def latency(target: str, payload: bytes, requests: int, warmup: int) -> dict:
    with grpc.insecure_channel(target) as channel:
        predict = channel.unary_unary(PREDICT_METHOD)
        for _ in range(warmup):
            predict(payload, timeout=30)
        samples = []
        for _ in range(requests):
            start = time.perf_counter()
            predict(payload, timeout=30)
            samples.append(time.perf_counter() - start)
    return {"requests": requests, "p50_ms": round(percentile(samples, 50) * 1e3, 3),
            "p99_ms": round(percentile(samples, 99) * 1e3, 3)}


async def _throughput(target: str, payload: bytes, *, inflight: int, seconds: float,
                      max_requests: int, warmup: int, server_pid: int) -> dict:
    async with grpc.aio.insecure_channel(target) as channel:
        predict = channel.unary_unary(PREDICT_METHOD)
        await asyncio.gather(*(predict(payload, timeout=30) for _ in range(warmup)))
        done, failures = [0], [0]
        loop = asyncio.get_running_loop()
        stop = loop.time() + seconds

        async def worker():
            while loop.time() < stop and done[0] + failures[0] < max_requests:
                try:
                    await predict(payload, timeout=30)
                    done[0] += 1
                except grpc.RpcError:
                    failures[0] += 1

        server_cpu0, client_cpu0 = process_cpu_seconds(server_pid), time.process_time()
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(inflight)))
        elapsed = time.perf_counter() - start
        server_cpu = process_cpu_seconds(server_pid) - server_cpu0
        client_cpu = time.process_time() - client_cpu0
    return {
        "requests": done[0], "failures": failures[0], "seconds": round(elapsed, 3),
        "requests_per_s": round(done[0] / elapsed, 1),
        "client_cpu_cores": round(client_cpu / elapsed, 2),
        "server_cpu_cores": round(server_cpu / elapsed, 2),
        "server_cpu_ms_per_request": round(server_cpu / max(done[0], 1) * 1e3, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", required=True)
    parser.add_argument("--request_file", required=True)
    parser.add_argument("--mode", choices=("latency", "throughput"), required=True)
    parser.add_argument("--requests", type=int, default=500, help="latency: requests timed")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--inflight", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--max_requests", type=int, default=200_000)
    parser.add_argument("--server_pid", type=int, default=0)
    args = parser.parse_args()
    with open(args.request_file, "rb") as f:
        payload = f.read()
    if args.mode == "latency":
        result = latency(args.target, payload, args.requests, args.warmup)
    else:
        result = asyncio.run(_throughput(
            args.target, payload, inflight=args.inflight, seconds=args.seconds,
            max_requests=args.max_requests, warmup=args.warmup,
            server_pid=args.server_pid or os.getpid()))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
