"""Loads a page in headless Chromium and reports what a user would see: errors, elements, a screenshot.

Chromium speaks the DevTools protocol over two pipes (``--remote-debugging-pipe``: it reads
commands from file descriptor 3 and writes replies and events to 4, each JSON message ended
by a NUL byte), so no websocket client and no browser driver package are needed. Every wait
has a deadline, and the browser's whole process group is killed when the page is done or
anything fails, so no Chromium outlives a test.

Example:
    >>> page = load_page("file:///tmp/report.html", screenshot="/tmp/shot.png")  # doctest: +SKIP
    >>> page.errors  # doctest: +SKIP
    []
"""

from __future__ import annotations

import base64
import dataclasses
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Any

CHROMIUM = "/usr/bin/chromium"
# The machine has no network: without the background-networking flags Chromium hangs on connections.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-pipe")


@dataclasses.dataclass
class Page:
    """What loading a page showed.

    Attributes:
        errors: Console errors, uncaught exceptions and failed loads, one line each.
        requests: Every URL the page requested (the page itself included).
        value: What ``evaluate`` (a JavaScript expression) returned, as JSON data.
        screenshot: The PNG written, or None.
        profile: The browser's profile directory (removed; no process uses it any more).
    """

    errors: list[str]
    requests: list[str]
    value: Any
    screenshot: str | None
    profile: str


class _Pipe:
    """DevTools protocol messages over Chromium's debugging pipes."""

    def __init__(self, to_browser: int, from_browser: int):
        self._out, self._in = to_browser, from_browser
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, *, session: str | None = None,
             deadline: float) -> dict:
        """Sends one command and waits for its reply; events that arrive meanwhile are kept."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"Chromium answered {method} with {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, *, deadline: float) -> dict:
        """Waits for an event (one already received counts)."""
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._read(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return event

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer in time")
            ready, _, _ = select.select([self._in], [], [], left)
            if ready:
                chunk = os.read(self._in, 1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium closed its debugging pipe (it exited)")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)


def _errors(events: list[dict]) -> list[str]:
    lines = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            lines.append(f"exception: {details.get('exception', {}).get('description') or details.get('text')}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            lines.append("console.error: " + " ".join(str(a.get("value", a.get("description")))
                                                      for a in params.get("args", [])))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            lines.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}".strip())
        elif method == "Network.loadingFailed":
            lines.append(f"load failed: {params.get('errorText')}")
    return lines


def processes_using(profile: str) -> list[int]:
    """Ids of the live processes started with ``--user-data-dir=<profile>`` (ours: the dir is new)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                command = f.read()
        except OSError:
            continue
        if f"--user-data-dir={profile}".encode() in command.split(b"\0"):
            found.append(int(pid))
    return found


def _kill_group(process: subprocess.Popen, profile: str) -> None:
    """Kills the browser's process group, then any process still using its profile."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    for pid in processes_using(profile):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _move_above_9(fd: int) -> int:
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


def load_page(url: str, *, evaluate: str = "null", screenshot: str | None = None, width: int = 1280,
              timeout_s: float = 60.0) -> Page:
    """Opens ``url`` in a fresh headless Chromium, waits for the load event, reports.

    Args:
        url: The page, e.g. ``file:///tmp/report.html``.
        evaluate: A JavaScript expression evaluated once the page loaded; its value (JSON
            data) is returned in `Page.value`.
        screenshot: Where to write a full-page PNG (None: no screenshot).
        width: The window width in CSS pixels.
        timeout_s: The deadline for everything, start to screenshot.

    Raises:
        FileNotFoundError: Chromium is not installed.
        TimeoutError: Chromium did not load the page within ``timeout_s``.
    """
    if not os.access(CHROMIUM, os.X_OK):
        raise FileNotFoundError(f"load_page needs {CHROMIUM}. How to fix: apt-get install -y chromium "
                                "(scripts/system_packages.sh does it for `make test`).")
    deadline = time.monotonic() + timeout_s
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()
    # Chromium's ends move above 9 first, so that bash's redirections below never close them.
    to_browser_r, from_browser_w = (_move_above_9(fd) for fd in (to_browser_r, from_browser_w))
    # bash moves the pipe ends to the descriptors Chromium expects (3 and 4) and execs it.
    launch = (f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w} '
              f'{to_browser_r}<&- {from_browser_w}>&-')
    stderr = tempfile.TemporaryFile()
    process = subprocess.Popen(
        ["bash", "-c", launch, CHROMIUM, *FLAGS, f"--user-data-dir={profile}",
         f"--window-size={width},900", "about:blank"],
        pass_fds=(to_browser_r, from_browser_w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=stderr, start_new_session=True)
    os.close(to_browser_r)
    os.close(from_browser_w)
    pipe = _Pipe(to_browser_w, from_browser_r)
    try:
        target = pipe.send("Target.createTarget", {"url": "about:blank"}, deadline=deadline)["targetId"]
        session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                            deadline=deadline)["sessionId"]
        for domain in ("Runtime", "Log", "Page", "Network"):
            pipe.send(f"{domain}.enable", session=session, deadline=deadline)
        pipe.events.clear()
        pipe.send("Page.navigate", {"url": url}, session=session, deadline=deadline)
        pipe.wait_for("Page.loadEventFired", deadline=deadline)
        value = pipe.send("Runtime.evaluate", {"expression": evaluate, "returnByValue": True},
                          session=session, deadline=deadline)
        if "exceptionDetails" in value:
            raise RuntimeError(f"evaluate raised: {value['exceptionDetails']}")
        if screenshot is not None:
            size = pipe.send("Page.getLayoutMetrics", session=session, deadline=deadline)["cssContentSize"]
            pipe.send("Emulation.setDeviceMetricsOverride",
                      {"width": width, "height": int(size["height"]), "deviceScaleFactor": 1, "mobile": False},
                      session=session, deadline=deadline)
            shot = pipe.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                             session=session, deadline=deadline)
            with open(screenshot, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
        requests = [e["params"]["request"]["url"] for e in pipe.events
                    if e.get("method") == "Network.requestWillBeSent"]
        return Page(_errors(pipe.events), requests, value["result"].get("value"), screenshot, profile)
    except Exception as e:
        stderr.seek(0)
        tail = stderr.read()[-3000:].decode(errors="replace")
        raise RuntimeError(f"headless Chromium failed on {url}: {type(e).__name__}: {e}; "
                           f"its stderr ended with:\n{tail}") from e
    finally:
        os.close(to_browser_w)
        os.close(from_browser_r)
        _kill_group(process, profile)
        stderr.close()
        shutil.rmtree(profile, ignore_errors=True)
