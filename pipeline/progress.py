"""Progress listeners: the runner reports to one; the CLI shows it with rich.

Example:
    >>> listener = ProgressListener()  # does nothing; subclass to display
    >>> listener.on_message("ExampleGen", "reading data.csv")
"""

from __future__ import annotations

import os
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


def notes(outputs: dict) -> list[str]:
    """Things a user must not miss in a finished component's outputs: quarantined rows, anomalies."""
    lines = []
    for art in outputs.values():
        p = art.properties
        if p.get("quarantined"):
            physical = (f" ({p['lines_quarantined']} of {p['lines_in']} lines)"
                        if p.get("lines_in") is not None and p.get("lines_quarantined") is not None else "")
            lines.append(f"quarantined {p['quarantined']} of {p.get('rows_in')} rows{physical}: "
                         f"{os.path.join(art.uri, p.get('quarantine_file', ''))}")
        counts = p.get("anomaly_counts") or {}
        if any(counts.values()):
            lines.append(f"anomalies (warn): {counts} in {art.uri}")
    return lines


class RichProgress(ProgressListener):
    """Live display: the running component with a spinner, its elapsed time, and the executor's
    latest message (Beam runner and stage, rows read); one summary line per finished component."""

    def __init__(self, console: Any = None):
        from rich.console import Console

        self.console = console or Console(stderr=True)
        self._progress = None
        self._task = None

    def on_run_start(self, pipeline: Any, run_id: int, nodes: list[str]) -> None:
        self.console.print(f"[bold]run {run_id}[/] of pipeline [cyan]{pipeline.name}[/]: "
                           f"{' -> '.join(nodes)}")

    def on_component_start(self, component_id: str) -> None:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._stop()
        self._progress = Progress(SpinnerColumn(), TextColumn("[bold blue]{task.fields[component]}"),
                                  TimeElapsedColumn(), TextColumn("{task.description}"),
                                  console=self.console, transient=True)
        self._progress.start()
        self._task = self._progress.add_task("starting", component=component_id, total=None)

    def on_message(self, component_id: str, message: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=message.replace("[", r"\["))

    def on_component_end(self, component_id: str, state: str, seconds: float, outputs: dict) -> None:
        self._stop()
        mark = "[green]done  [/]" if state == "COMPLETE" else "[yellow]cached[/]"
        ids = ", ".join(f"{k}={a.id}" for k, a in outputs.items())
        self.console.print(f"  {mark} {component_id:20} {seconds:6.1f}s  artifacts: {ids}")
        for line in notes(outputs):
            self.console.print(f"           [yellow]{line}[/]")

    def on_run_end(self, run_id: int, state: str) -> None:
        self._stop()
        color = "green" if state == "COMPLETE" else "red"
        self.console.print(f"[bold {color}]run {run_id} {state}[/]")

    def _stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
