"""Progress listeners: the runner reports to one; the CLI shows it with rich.

Example:
    >>> listener = ProgressListener()  # does nothing; subclass to display
    >>> listener.on_message("ExampleGen", "reading data.csv")
"""

from __future__ import annotations

import time
from typing import Any


class ProgressListener:
    """Receives runner events. Every method is a no-op; override what you need."""

    def on_run_start(self, pipeline: Any, run_id: int, nodes: list[str]) -> None:
        """A run started; ``nodes`` are the ids it will go through."""

    def on_component_start(self, component_id: str) -> None:
        """A component is about to be resolved (cached or executed)."""

    def on_message(self, component_id: str, message: str) -> None:
        """An executor reported progress (Beam stage, rows read, ...)."""

    def on_component_end(self, component_id: str, state: str, seconds: float, outputs: dict) -> None:
        """A component finished: ``state`` is COMPLETE or CACHED."""

    def on_run_end(self, run_id: int, state: str) -> None:
        """The run finished with ``state`` (COMPLETE or FAILED)."""


class RichProgress(ProgressListener):
    """Live display: which component runs, elapsed time, and the executor's last message."""

    def __init__(self, console: Any = None):
        from rich.console import Console

        self.console = console or Console(stderr=True)
        self._status = None
        self._started = 0.0
        self._component = ""

    def on_run_start(self, pipeline: Any, run_id: int, nodes: list[str]) -> None:
        self.console.print(f"[bold]run {run_id}[/] of pipeline [cyan]{pipeline.name}[/]: "
                           f"{' -> '.join(nodes)}")

    def on_component_start(self, component_id: str) -> None:
        self._component, self._started = component_id, time.monotonic()
        self._status = self.console.status(f"[bold blue]{component_id}[/] running")
        self._status.start()

    def on_message(self, component_id: str, message: str) -> None:
        if self._status is not None:
            elapsed = time.monotonic() - self._started
            self._status.update(f"[bold blue]{component_id}[/] {elapsed:5.1f}s  {message}")

    def on_component_end(self, component_id: str, state: str, seconds: float, outputs: dict) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
        mark = "[green]done[/]" if state == "COMPLETE" else "[yellow]cached[/]"
        uris = ", ".join(f"{k}={a.id}" for k, a in outputs.items())
        self.console.print(f"  {mark:22} {component_id:20} {seconds:6.1f}s  artifacts: {uris}")

    def on_run_end(self, run_id: int, state: str) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
        color = "green" if state == "COMPLETE" else "red"
        self.console.print(f"[bold {color}]run {run_id} {state}[/]")
