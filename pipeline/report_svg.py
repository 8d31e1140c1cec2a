"""Renders the run report's Vega-Lite specs to SVG in a helper process, beside the report's own work.

vl-convert holds the interpreter lock while it renders, and its JavaScript runtime takes most
of a second to start. A `Renderer` starts a worker process (this file, run as a script: it
imports only the standard library and vl_convert) before the report imports altair, so the
runtime starts while the report reads the metadata store and the artifacts; the report then
hands each chart's spec over as soon as it is built, gets a placeholder for the page, and
`Renderer.fill` puts the SVGs in at the end. Without a worker (it could not start), charts are
rendered in this process.

Example:
    >>> with rendering() as renderer:  # doctest: +SKIP
    ...     page = "<p>" + submit({"mark": "point", "data": {"values": []}}) + "</p>"
    ...     page = renderer.fill(page)
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import json
import os
import re
import struct
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from typing import Any

_LENGTH = struct.Struct(">I")
_current: contextvars.ContextVar[Renderer | None] = contextvars.ContextVar("report_renderer", default=None)
_svg_ids = itertools.count(1)


def finish(svg_text: str) -> str:
    """An SVG from vl-convert made ready to inline in an HTML page.

    The namespace attributes go (the HTML parser sets them), and element ids get a prefix of
    their own: vl-convert numbers its clip paths from 1 in every SVG, and ids must be unique
    within the page.
    """
    prefix = f"c{next(_svg_ids)}-"
    text = re.sub(r'\sxmlns(:xlink)?="[^"]*"', "", svg_text, count=2)
    text = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', text)
    text = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}{m.group(1)})", text)
    return re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}{m.group(1)}"', text)


class Renderer:
    """A worker process that renders specs in the order they are submitted.

    If the worker cannot take a spec or exits early, `fill` renders what is left in this
    process, so a missing or broken worker only costs time.

    Args:
        timeout_s: How long `fill` waits for the worker's last SVG.

    Raises:
        OSError: The worker could not be started.
    """

    def __init__(self, *, timeout_s: float = 120.0):
        self.timeout_s = timeout_s
        # -I: no user site, no environment, and not this file's directory on sys.path.
        self._process = subprocess.Popen([sys.executable, "-I", os.path.abspath(__file__)], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        with contextlib.suppress(AttributeError, OSError):  # a larger pipe: a spec is written at once
            import fcntl

            fcntl.fcntl(self._process.stdin.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)
        self._nonce = uuid.uuid4().hex[:8]
        self._requests: list[tuple[dict, str | None]] = []
        self._results: list[tuple[bool, str]] = []
        self._sending = True
        self._reader = threading.Thread(target=self._read, name="report-svg-reader", daemon=True)
        self._reader.start()

    def submit(self, spec: dict, vl_version: str | None) -> str:
        """Sends a spec to the worker; returns the placeholder `fill` replaces with its SVG."""
        token = f"<!--chart-{self._nonce}-{len(self._requests)}-->"
        self._requests.append((spec, vl_version))
        if self._sending:
            request = json.dumps({"spec": spec, "vl_version": vl_version}, allow_nan=False).encode()
            try:
                self._process.stdin.write(_LENGTH.pack(len(request)) + request)
                self._process.stdin.flush()
            except OSError:  # the worker exited: `fill` renders the rest here
                self._sending = False
        return token

    def _read(self) -> None:
        source = self._process.stdout
        while True:
            header = source.read(1 + _LENGTH.size)
            if len(header) < 1 + _LENGTH.size:
                return
            (length,) = _LENGTH.unpack(header[1:])
            self._results.append((header[:1] == b"o", source.read(length).decode("utf-8")))

    def fill(self, text: str) -> str:
        """Waits for every SVG and puts each in place of its placeholder.

        A chart that vl-convert refused becomes a note saying why; the rest of the page stands.

        Raises:
            TimeoutError: The worker was still rendering after ``timeout_s``.
        """
        with contextlib.suppress(OSError):
            self._process.stdin.close()
        self._reader.join(self.timeout_s)
        if self._reader.is_alive():
            self.close()
            raise TimeoutError(f"the report's SVG worker rendered {len(self._results)} of {len(self._requests)} "
                               f"charts in {self.timeout_s:g} s. How to fix: run `python -m pipeline report` "
                               "again; if it persists, check that vl-convert-python renders a chart.")
        results = self._results + [_render(spec, version) for spec, version in
                                   self._requests[len(self._results):]]
        for index, (ok, payload) in enumerate(results):
            text = text.replace(f"<!--chart-{self._nonce}-{index}-->", finish(payload) if ok else
                                f'<p class="note bad">This chart could not be drawn: {_escape(payload)}</p>', 1)
        return text

    def close(self) -> None:
        """Ends the worker (at once if it is still busy)."""
        if self._process.poll() is None:
            with contextlib.suppress(OSError):
                self._process.stdin.close()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process.stdout.close()


def _render(spec: dict, vl_version: str | None) -> tuple[bool, str]:
    """(True, SVG) or (False, why vl-convert refused the spec)."""
    import vl_convert

    try:
        return True, vl_convert.vegalite_to_svg(spec, vl_version=vl_version)
    except Exception as e:  # noqa: BLE001 (shown in the chart's place)
        return False, f"{type(e).__name__}: {e}"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@contextlib.contextmanager
def rendering() -> Iterator[Renderer | None]:
    """Within the block, `submit` hands specs to a worker process (None: none could start)."""
    try:
        renderer = Renderer()
    except OSError:
        renderer = None
    token = _current.set(renderer)
    try:
        yield renderer
    finally:
        _current.reset(token)
        if renderer is not None:
            renderer.close()


def submit(spec: dict, vl_version: str | None = None) -> str:
    """The spec's SVG, or a placeholder for it when a `rendering` block has a worker."""
    renderer = _current.get()
    if renderer is not None:
        return renderer.submit(spec, vl_version)
    ok, payload = _render(spec, vl_version)
    if not ok:
        raise ValueError(f"vl-convert could not draw a chart: {payload}")
    return finish(payload)


def _serve() -> None:
    """The worker: length-prefixed JSON requests in, status byte + length-prefixed SVG out."""
    import vl_convert

    source, sink = sys.stdin.buffer, sys.stdout.buffer
    vl_convert.vegalite_to_svg({"data": {"values": []}, "mark": "point"})  # starts the JavaScript runtime
    while True:
        header = source.read(_LENGTH.size)
        if len(header) < _LENGTH.size:
            return
        request: Any = json.loads(source.read(_LENGTH.unpack(header)[0]))
        ok, payload = _render(request["spec"], request["vl_version"])
        data = payload.encode("utf-8")
        sink.write((b"o" if ok else b"e") + _LENGTH.pack(len(data)) + data)
        sink.flush()


if __name__ == "__main__":
    _serve()
