"""The kill -9 matrix (issue 14): the full taxi pipeline killed with SIGKILL at a dozen points of a
run, as one chain (kill, rerun, kill the rerun at the next point, ...), then rerun to completion.

Each rerun marks the killed execution ABANDONED and takes what had finished from the cache; at the
end exactly one loadable version is served, no ``.tmp-*`` dir is left, and every node completed
exactly once across the chain. See tests/pipeline/kill_matrix.py (also used by
benchmarks/robustness.py for "crash points survived over tried").
"""

from __future__ import annotations

import json
import os
import time

import pytest

from tests.pipeline.kill_matrix import DEFAULT_POINTS, final_checks, run_kill_chain, summary

DEADLINE_S = 25 * 60  # hard bound on the whole chain; every process it started is killed past it
MIN_KILLED = 8
# "copy" (default): the checkout as it is, copied first; "head": as committed (while others edit it).
SOURCE = os.environ.get("KILL_MATRIX_SOURCE", "copy")


@pytest.mark.slow
def test_kill_9_at_many_points_then_rerun_completes_once(tmp_path):
    root = str(tmp_path / "root")
    started = time.monotonic()
    steps = run_kill_chain(root, DEFAULT_POINTS, deadline_s=DEADLINE_S, log_path=str(tmp_path / "runs.log"),
                           source=SOURCE)
    checks = final_checks(root, steps)
    line = summary(steps, checks)
    line["chain_s"] = round(time.monotonic() - started, 1)
    print("KILL_MATRIX " + json.dumps(line))

    assert checks["problems"] == [], (checks, steps)
    killed = [s for s in steps if s.get("killed_running")]
    assert len(killed) >= MIN_KILLED, line
    for step in killed:  # the next run abandoned it and reused what had finished
        assert step["abandoned"] is True and step["killed_run_state"] == "ABANDONED", step
        assert step["rerun_cached_ok"] is True, step
    assert line["survived"] == line["killed_running"]
    [version] = checks["versions"]
    assert version.isdigit()
