"""kill -9 during Transform, then rerun: it finishes and reuses the finished components."""

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.pipeline.e2e_helpers import REPO, TAXI_PY, cli, states
from pipeline.metadata import MetadataStore


def _transform_running(root: str) -> bool:
    path = os.path.join(root, "metadata.sqlite")
    if not os.path.isfile(path):
        return False
    try:
        store = MetadataStore(f"sqlite:///{path}")
        runs = store.list_runs()
        return bool(runs) and any(e["component"] == "Transform" and e["state"] == "RUNNING"
                                  for e in store.executions_of_run(runs[0]["id"]))
    except Exception:  # noqa: BLE001 - the child may hold a write lock for a moment
        return False


@pytest.mark.slow
def test_kill_9_during_transform_then_rerun_resumes(tmp_path):
    root = str(tmp_path / "root")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    child = subprocess.Popen([sys.executable, "-m", "pipeline", "run", TAXI_PY, "--root", root], cwd=REPO, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not _transform_running(root):
            assert child.poll() is None, "the run ended before Transform started"
            assert time.monotonic() < deadline, "Transform never started"
            time.sleep(0.5)
        time.sleep(3)  # let tf.Transform get going (TFT's fixed start-up alone is ~10 s)
        assert child.poll() is None
    finally:
        os.killpg(child.pid, signal.SIGKILL)  # the process group this test started
        child.wait()

    # Nothing of Transform is published: only a temporary directory is left.
    store = MetadataStore(f"sqlite:///{root}/metadata.sqlite")
    assert store.published("taxi", "Transform", "transform_graph") == []
    graph_dir = os.path.join(root, "Transform", "transform_graph")
    assert [n for n in os.listdir(graph_dir) if not n.startswith(".tmp-")] == []

    rerun = cli("run", TAXI_PY, "--root", root)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert states(root) == {"ExampleGen": "CACHED", "StatisticsGen": "CACHED", "SchemaGen": "CACHED",
                            "ExampleValidator": "CACHED", "Transform": "COMPLETE"}
    killed = store.list_runs()[1]
    assert killed["state"] == "ABANDONED" and killed["executions"] == {"ABANDONED": 1, "COMPLETE": 4}
    assert [n for n in os.listdir(graph_dir) if n.startswith(".tmp-")] == []  # stale temp dir cleaned
    assert len(store.published("taxi", "Transform", "transform_graph")) == 1
