"""Two runs of one pipeline on one root: the run lock in the metadata store makes the second wait,
then find everything cached, so nothing runs twice and one version is pushed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from pipeline.metadata import MetadataStore

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PIPELINE = '''
import dataclasses
import os

from components.artifacts import ExampleStatistics, Model
from components.base import Component, InputSpec
from components.pusher import Pusher
from pipeline.dsl import Pipeline
from tests.pipeline.toy_components import Add, Source


@dataclasses.dataclass(frozen=True)
class NoParams:
    pass


class FakeTrainer(Component):
    """A Model with an empty saved_model.pb (a valid, empty SavedModel proto): no TensorFlow to run."""

    INPUTS = {"statistics": InputSpec(ExampleStatistics)}
    OUTPUTS = {"model": Model}
    PARAMETERS = NoParams

    def __init__(self, statistics):
        super().__init__(inputs={"statistics": statistics}, parameters=NoParams())

    def executor(self):
        def run(ctx):
            out = ctx.outputs["model"]
            os.makedirs(os.path.join(out.uri, "Format-Serving", "1", "variables"))
            open(os.path.join(out.uri, "Format-Serving", "1", "saved_model.pb"), "wb").close()
            out.properties["serving_model"] = "Format-Serving/1"
        return run


def create_pipeline(*, root):
    source = Source(3, sleep=float(os.environ.get("TOY_SOURCE_SLEEP", "0")))
    add = Add(source.outputs["examples"], add=1)
    trainer = FakeTrainer(add.outputs["statistics"])
    pusher = Pusher(trainer.outputs["model"], push_destination=os.path.join(root, "serving"), model_name="toy")
    return Pipeline("toy", root=root, components=[source, add, trainer, pusher])
'''
NODES = {"Source": "examples", "Add": "statistics", "FakeTrainer": "model", "Pusher": "pushed_model"}


def _start(pipeline_file, root, **env):
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", str(pipeline_file), "--root", str(root)], cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env}, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(children, timeout):
    """Waits for every child within ``timeout`` s in all; kills the process groups of those still running."""
    deadline = time.monotonic() + timeout
    results = []
    try:
        for child in children:
            out, err = child.communicate(timeout=max(1.0, deadline - time.monotonic()))
            results.append((child.returncode, out, err))
    finally:
        _kill(children)
    return results


def _kill(children):
    for child in children:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)  # a process group this test started
        child.communicate()


def test_two_runs_at_once_on_one_root_execute_each_component_once_and_push_once(tmp_path):
    pipeline_file = tmp_path / "toy_pipeline.py"
    pipeline_file.write_text(PIPELINE)
    root = tmp_path / "root"
    children = [_start(pipeline_file, root, TOY_SOURCE_SLEEP="4") for _ in range(2)]
    results = _finish(children, timeout=240)
    for code, out, err in results:
        assert code == 0, (out, err[-3000:])

    store = MetadataStore(f"sqlite:///{root}/metadata.sqlite")
    runs = store.list_runs()
    assert [r["state"] for r in runs] == ["COMPLETE", "COMPLETE"]
    states = {node: [] for node in NODES}
    for run in runs:
        for execution in store.executions_of_run(run["id"]):
            states[execution["component"]].append(execution["state"])
    assert {node: sorted(s) for node, s in states.items()} == {node: ["CACHED", "COMPLETE"] for node in NODES}
    first, second = sorted(runs, key=lambda r: r["id"])
    assert second["started"] >= first["finished"]  # the second run waited for the lock
    for node, key in NODES.items():  # one published output per node, nothing left over
        assert os.listdir(root / node / key) == [str(store.published("toy", node, key)[0].id)]
    assert [n for n in os.listdir(root / "serving" / "toy")] != [] and \
        len(os.listdir(root / "serving" / "toy")) == 1  # one push
    assert sum("waiting for the run lock" in err for _, _, err in results) == 1


def test_a_run_that_cannot_get_the_lock_in_time_names_the_holder_and_a_killed_holders_lock_is_taken_over(
        tmp_path):
    pipeline_file = tmp_path / "toy_pipeline.py"
    pipeline_file.write_text(PIPELINE)
    root = tmp_path / "root"
    holder = _start(pipeline_file, root, TOY_SOURCE_SLEEP="60")
    try:
        store = None
        deadline = time.monotonic() + 120
        while True:  # until the holder runs Source (it holds the lock then)
            assert holder.poll() is None, holder.communicate()
            assert time.monotonic() < deadline, "the first run never started Source"
            if (root / "metadata.sqlite").exists():
                try:
                    store = store or MetadataStore(f"sqlite:///{root}/metadata.sqlite")
                    runs = store.list_runs()
                    if runs and store.executions_of_run(runs[0]["id"]):
                        break
                except Exception:  # noqa: BLE001 - the child may be creating the tables
                    pass
            time.sleep(0.3)
        holder_run = runs[0]["id"]
        (code, out, err), = _finish([_start(pipeline_file, root, PIPELINE_LOCK_TIMEOUT="1")], timeout=120)
        assert code == 1, (out, err)
        message = " ".join(err.split())
        assert f"pipeline 'toy' is being run by run {holder_run} (host " in message
        assert f"pid {holder.pid})" in message
        assert "waited 1 s for it to finish" in message
        assert "PIPELINE_LOCK_TIMEOUT" in message
        assert len(store.list_runs()) == 1  # the refused run recorded nothing
    finally:
        _kill([holder])
    # kill -9 left its lock behind; its process is gone, so the next run takes the lock over at once.
    (code, out, err), = _finish([_start(pipeline_file, root, PIPELINE_LOCK_TIMEOUT="0")], timeout=120)
    assert code == 0, (out, err)
    assert [r["state"] for r in store.list_runs()] == ["COMPLETE", "ABANDONED"]



# In-process tests of the run lock ---------------------------------------------------------------

def _toy(root):
    from pipeline.dsl import Pipeline
    from tests.pipeline.toy_components import Add, Source

    source = Source(2)
    return Pipeline("toy", str(root), [source, Add(source.outputs["examples"], add=1)])


def _hold(store, name, *, host="other-host.example", pid=4242, run_id=None, expires_in=60.0, node=None):
    """Writes a lock row as another process would have (``node``: its `machine_identity`)."""
    import datetime as dt

    from pipeline.metadata import locks

    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    with store.engine.begin() as conn:
        conn.execute(locks.insert().values(
            name=name, token="someone-else", host=host, pid=pid, run_id=run_id, acquired=now,
            renewed=now, expires=now + dt.timedelta(seconds=expires_in), node=node))


def _heartbeat(store, run_id, *, host="other-host.example", expires_in):
    """Makes a run look like another machine's, whose heartbeat expires in ``expires_in`` s."""
    import datetime as dt

    from pipeline.metadata import runs

    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    with store.engine.begin() as conn:
        conn.execute(runs.update().where(runs.c.id == run_id).values(
            host=host, node=f"{host}:boot:pidns", heartbeat=now, expires=now + dt.timedelta(seconds=expires_in)))


def test_a_held_lock_makes_the_run_fail_after_the_timeout_with_the_holders_name(tmp_path):
    from pipeline.runner import LocalRunner, PipelineLockedError

    store = MetadataStore(f"sqlite:///{tmp_path}/metadata.sqlite")
    _hold(store, "run:toy", run_id=77)
    started = time.monotonic()
    with pytest.raises(PipelineLockedError) as raised:
        LocalRunner(lock_timeout=0.5).run(_toy(tmp_path))
    assert 0.5 <= time.monotonic() - started < 5
    message = str(raised.value)
    assert message.startswith("pipeline 'toy' is being run by run 77 (host other-host.example, pid 4242), started ")
    assert "waited 0.5 s for it to finish. How to fix: run again once it has finished" in message
    assert "LocalRunner(lock_timeout=SECONDS) or PIPELINE_LOCK_TIMEOUT=SECONDS" in message
    assert "If that process is gone, its lock expires at " in message
    assert raised.value.holder.run_id == 77
    assert store.list_runs() == []  # nothing recorded, nothing executed
    assert not (tmp_path / "Source").exists()


def test_an_expired_lock_is_taken_over_and_its_run_abandoned(tmp_path):
    from pipeline.runner import LocalRunner

    store = MetadataStore(f"sqlite:///{tmp_path}/metadata.sqlite")
    stale_run = store.start_run("toy")
    _heartbeat(store, stale_run, expires_in=-1)  # that run is on another machine, which stopped renewing
    _hold(store, "run:toy", run_id=stale_run, expires_in=-1)
    result = LocalRunner(lock_timeout=0).run(_toy(tmp_path))
    assert result.executed == ["Source", "Add"]
    assert {r["id"]: r["state"] for r in store.list_runs()} == {stale_run: "ABANDONED", result.run_id: "COMPLETE"}
    assert store.lock_holder("run:toy") is None  # released at the end


def test_a_lock_of_a_dead_process_on_this_host_is_taken_over_at_once(tmp_path):
    """Only under this kernel and pid namespace (`machine_identity`) does a dead pid prove it."""
    import socket

    from pipeline.runner import LocalRunner

    from pipeline.metadata import machine_identity

    store = MetadataStore(f"sqlite:///{tmp_path}/metadata.sqlite")
    _hold(store, "run:toy", host=socket.gethostname(), pid=2**22 + 12345, expires_in=600,
          node=machine_identity())
    assert LocalRunner(lock_timeout=0).run(_toy(tmp_path)).executed == ["Source", "Add"]


def test_a_run_on_another_host_with_a_live_heartbeat_is_never_abandoned(tmp_path):
    store = MetadataStore(f"sqlite:///{tmp_path}/metadata.sqlite")
    live, dead = store.start_run("toy"), store.start_run("toy")
    _heartbeat(store, live, expires_in=60)
    _heartbeat(store, dead, expires_in=-1)  # its lease ran out
    _hold(store, "run:toy", run_id=dead)  # a lock it holds changes nothing: the heartbeat counts
    assert store.mark_abandoned("toy") == 1
    assert {r["id"]: r["state"] for r in store.list_runs()} == {live: "RUNNING", dead: "ABANDONED"}


def test_the_lock_is_released_when_the_run_fails(tmp_path):
    from pipeline.dsl import Pipeline
    from pipeline.runner import LocalRunner, PipelineRunError
    from tests.pipeline.toy_components import Add, Source

    source = Source(1)
    failing = Pipeline("toy", str(tmp_path), [source, Add(source.outputs["examples"], fail=True)])
    with pytest.raises(PipelineRunError, match="Add failed"):
        LocalRunner(lock_timeout=0).run(failing)
    assert MetadataStore(f"sqlite:///{tmp_path}/metadata.sqlite").lock_holder("run:toy") is None


def test_the_heartbeat_keeps_the_lease_and_a_lost_lease_stops_the_run(tmp_path):
    from pipeline.progress import ProgressListener
    from pipeline.runner import LocalRunner, PipelineLockedError

    store = MetadataStore(f"sqlite:///{tmp_path}/metadata.sqlite")
    lease = store.lock("demo", lease_s=0.4)
    lease.acquire(timeout_s=0)
    time.sleep(1.0)  # 2.5 leases: only the heartbeat keeps it
    assert store.try_lock("demo", "another", lease_s=1) == (False, store.lock_holder("demo"))
    assert lease.lost is None
    lease.release()
    assert store.try_lock("demo", "another", lease_s=1)[0] is True

    class Steal(ProgressListener):  # another run takes the lock over while Source runs
        def on_component_end(self, component_id, state, seconds, outputs):
            from pipeline.metadata import locks
            with store.engine.begin() as conn:
                conn.execute(locks.update().where(locks.c.name == "run:toy").values(token="thief", run_id=999))
            time.sleep(0.5)  # the heartbeat (every 0.05 s) notices

    with pytest.raises(PipelineLockedError) as raised:
        LocalRunner(Steal(), lock_timeout=0, lock_lease=0.2).run(_toy(tmp_path))
    assert "lost its run lock: it was taken over by run 999 (host " in str(raised.value)
    assert "It stopped before Add so that two runs never execute the same node" in str(raised.value)
    assert store.list_runs()[0]["state"] == "FAILED"


def test_bad_lock_timeout(monkeypatch):
    from pipeline.runner import DEFAULT_LOCK_TIMEOUT_S, LocalRunner

    assert LocalRunner().lock_timeout == DEFAULT_LOCK_TIMEOUT_S == 600
    monkeypatch.setenv("PIPELINE_LOCK_TIMEOUT", "30")
    assert LocalRunner().lock_timeout == 30 and LocalRunner(lock_timeout=5).lock_timeout == 5
    monkeypatch.setenv("PIPELINE_LOCK_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="LocalRunner got PIPELINE_LOCK_TIMEOUT='soon'; expected a number"):
        LocalRunner()
    with pytest.raises(ValueError, match="LocalRunner got lock_timeout=-1; expected seconds >= 0"):
        LocalRunner(lock_timeout=-1)
