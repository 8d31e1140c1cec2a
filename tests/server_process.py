"""``python -m serving`` as a subprocess in tests: the gRPC port it bound, and a clean stop."""

from __future__ import annotations

import re
import signal
import subprocess
import time

READY = re.compile(r"Running gRPC ModelServer at 127\.0\.0\.1:(\d+)")


def wait_for_grpc_port(process: subprocess.Popen, timeout: float = 120) -> tuple[int | None, list[str]]:
    """Reads the server's output (text mode, stderr merged) until it names its gRPC port.

    Returns (port or None if the server exited or ``timeout`` passed first, the lines read).
    """
    port, lines, deadline = None, [], time.monotonic() + timeout
    while port is None and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        match = READY.match(line)
        port = int(match.group(1)) if match else None
    return port, lines


def stop(process: subprocess.Popen, timeout: float = 30) -> int | None:
    """SIGTERM, then SIGKILL if it does not exit within ``timeout``; returns the exit code of the SIGTERM."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
