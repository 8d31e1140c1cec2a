"""Helpers for end-to-end tests that run the real CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TAXI_PY = os.path.join(REPO, "pipeline", "examples", "taxi_pipeline.py")
TAXI_YAML = os.path.join(REPO, "pipeline", "examples", "taxi.yaml")
ALL = ["ExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform"]


def cli(*args: str, timeout: float = 400) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def states(root: str, run_index: int = 0) -> dict[str, str]:
    """component -> state for a run of the store under root (0 = newest run)."""
    from pipeline.metadata import MetadataStore

    store = MetadataStore(f"sqlite:///{root}/metadata.sqlite")
    run = store.list_runs()[run_index]
    return {e["component"]: e["state"] for e in store.executions_of_run(run["id"])}
