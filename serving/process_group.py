"""``--num_server_processes=N``: N server processes sharing the gRPC and REST ports.

One Python process serves about one core's worth of requests (the GIL), so
on a machine with more cores the parent starts N copies of ``python -m
serving``, each with its own models and batching queue, bound to the same
ports with ``SO_REUSEPORT``; the kernel spreads *connections* over them.
The parent:

* picks the ports (``--port=0`` / ``--rest_api_port=0`` become one free port
  each, held with ``SO_REUSEPORT`` until every child has bound it);
* starts the children with the same flags plus ``--reuse_port=true
  --server_process_index=i``; only child 0 binds ``--grpc_socket_path`` and
  the profiler port, which cannot be shared;
* prefixes each child's output lines with ``[process i]``, and prints the
  usual ``Running gRPC ModelServer at HOST:PORT`` line once all are up;
* stops every child on SIGTERM/SIGINT, and stops the group (exit code 1)
  when one child dies, so the supervisor (Kubernetes, systemd) restarts it.
  Children also get SIGTERM if the parent dies (``PR_SET_PDEATHSIG``).

Each process keeps its own metrics and answers ``HandleReloadConfigRequest``
with FAILED_PRECONDITION (a reload would reach one process only); a
``--model_config_file`` with ``--model_config_file_poll_wait_seconds`` is
re-read by every process.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

from serving.flags import ServerOptions

READY = re.compile(r"^Running gRPC ModelServer at .+:(\d+)$")
START_TIMEOUT_S = 600.0
STOP_TIMEOUT_S = 30.0
_PR_SET_PDEATHSIG = 1


def _reserve_port(host: str, port: int) -> tuple[socket.socket, int]:
    """A bound (not listening) SO_REUSEPORT socket on ``port`` (0: a free one).

    The port is first bound *without* SO_REUSEPORT, so a port some other
    server already listens on is refused instead of silently shared with it.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, port))
        port = probe.getsockname()[1]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock, port


def _die_with_parent() -> None:  # Runs in the child between fork and exec.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _child_argv(argv: list[str], index: int, size: int, grpc_port: int,
                rest_port: int | None) -> list[str]:
    drop = ("--port", "--rest_api_port", "--num_server_processes", "--reuse_port",
            "--server_process_index")
    if index:
        drop += ("--grpc_socket_path", "--profiler_port")
    kept, skip_value = [], False
    for arg in argv:
        if skip_value and not arg.startswith("--"):
            skip_value = False
            continue  # The value of a dropped "--flag value" pair.
        skip_value = False
        name = arg.split("=", 1)[0]
        if name in drop:
            skip_value = "=" not in arg
            continue
        kept.append(arg)
    return [sys.executable, "-m", "serving", *kept, f"--port={grpc_port}",
            f"--rest_api_port={rest_port or 0}", "--reuse_port=true",
            f"--num_server_processes={size}", f"--server_process_index={index}"]


def _pump(index: int, child: subprocess.Popen, ready: threading.Event) -> None:
    """Copies a child's output with a prefix; keeps draining even if printing fails."""
    for line in child.stdout:
        text = line.rstrip("\n")
        if READY.match(text):
            ready.set()
        with contextlib.suppress(OSError, ValueError):
            print(f"[process {index}] {text}", flush=True)


def run_group(options: ServerOptions, argv: list[str]) -> int:
    """Runs ``options.num_server_processes`` servers on shared ports until a signal.

    Args:
        options: The parsed flags (``num_server_processes`` > 1).
        argv: The command-line flags as given (passed on to the children).

    Returns:
        The exit code: 0 after a signal, 1 if a child failed.
    """
    held = []
    try:
        grpc_sock, grpc_port = _reserve_port(options.host, options.port)
        held.append(grpc_sock)
        rest_port = None
        if options.rest_api_port is not None:
            rest_sock, rest_port = _reserve_port(options.host, options.rest_api_port)
            held.append(rest_sock)
    except OSError as e:
        for sock in held:
            sock.close()
        print(f"error: cannot reserve the ports for {options.num_server_processes} server "
              f"processes on {options.host}: {e}", file=sys.stderr)
        return 1
    children: list[subprocess.Popen] = []
    stopping = threading.Event()

    def stop(signum=None, frame=None):
        del signum, frame
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = 0
    try:
        for index in range(options.num_server_processes):
            # All children are forked before any pump thread exists (preexec_fn runs
            # between fork and exec, where other threads' locks are a hazard).
            children.append(subprocess.Popen(
                _child_argv(argv, index, options.num_server_processes, grpc_port, rest_port),
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                errors="replace", bufsize=1, preexec_fn=_die_with_parent))
        readies = [threading.Event() for _ in children]
        for index, (child, ready) in enumerate(zip(children, readies)):
            threading.Thread(target=_pump, args=(index, child, ready), daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not all(r.is_set() for r in readies):
            failed = [i for i, c in enumerate(children) if c.poll() is not None]
            if failed:
                print(f"error: server process {failed[0]} exited with code "
                      f"{children[failed[0]].returncode} before it was ready",
                      file=sys.stderr, flush=True)
                return 1
            if time.monotonic() > deadline:
                print(f"error: the server processes were not all ready within "
                      f"{START_TIMEOUT_S:g} s; stopping them", file=sys.stderr, flush=True)
                return 1
            if stopping.is_set():
                return 0
            time.sleep(0.05)
        for sock in held:
            sock.close()
        held.clear()
        print(f"Running gRPC ModelServer at {options.host}:{grpc_port} "
              f"({options.num_server_processes} processes)", flush=True)
        if rest_port is not None:
            print(f"Exporting HTTP/REST API at {options.host}:{rest_port}", flush=True)
        while not stopping.wait(0.2):
            failed = [i for i, c in enumerate(children) if c.poll() is not None]
            if failed:
                print(f"error: server process {failed[0]} exited with code "
                      f"{children[failed[0]].returncode}; stopping the others",
                      file=sys.stderr, flush=True)
                code = 1
                break
        return code
    finally:
        for sock in held:
            sock.close()
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
