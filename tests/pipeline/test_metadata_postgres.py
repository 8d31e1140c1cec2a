"""The metadata store on a real PostgreSQL server (started here on 127.0.0.1, stopped at the end):
the store's API as on SQLite, concurrent runs of one pipeline from two processes, and
abandonment by heartbeat lease.

The server binaries come from Debian's postgresql package (scripts/system_packages.sh);
``PG_BINDIR`` points elsewhere. As root, the server runs as the ``postgres`` user (PostgreSQL
refuses to run as root) in a temp dir it owns.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import pytest
import sqlalchemy as sa

from components.artifacts import Examples
from pipeline.metadata import (
    SCHEMA_REVISION, Heartbeat, MetadataStore, executions, runs,
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINDIR = os.environ.get("PG_BINDIR", "/usr/lib/postgresql/15/bin")
START_TIMEOUT_S = 30


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    """Starts ``postgres`` in a temp dir; yields the URL of its ``postgres`` database; always stops it."""
    initdb, postgres = os.path.join(BINDIR, "initdb"), os.path.join(BINDIR, "postgres")
    if not (os.access(initdb, os.X_OK) and os.access(postgres, os.X_OK)):
        pytest.skip(f"no PostgreSQL server binaries in {BINDIR} (set PG_BINDIR; scripts/system_packages.sh "
                    "installs Debian's postgresql)")
    as_user: list[str] = []
    base = tempfile.mkdtemp(prefix="pipeline-pg-")
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(base)
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        os.chown(base, user.pw_uid, user.pw_gid)
        as_user = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--"]
    data, port = os.path.join(base, "data"), _free_port()
    log = open(os.path.join(base, "server.log"), "w+")
    process = None
    try:
        subprocess.run([*as_user, initdb, "-D", data, "-U", "pipeline", "--auth=trust", "-E", "UTF8",
                        "--no-sync"], check=True, capture_output=True, timeout=60)
        process = subprocess.Popen(
            [*as_user, postgres, "-D", data, "-p", str(port), "-h", "127.0.0.1", "-k", base,
             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"postgresql+psycopg://pipeline@127.0.0.1:{port}/postgres"
        engine = sa.create_engine(url)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with engine.connect():
                    break
            except sa.exc.OperationalError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"PostgreSQL did not start in {START_TIMEOUT_S} s: {log.read()[-2000:]}")
                time.sleep(0.2)
        engine.dispose()
        yield url
    finally:
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGINT)  # fast shutdown: ends the sessions
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=15)
        log.close()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_url(server):
    """A fresh database on the server for one test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return server.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/metadata.sqlite"
    return request.getfixturevalue("pg_url")


def test_the_store_api_works_alike_on_sqlite_and_postgresql(store_url):
    store = MetadataStore(store_url)
    assert store.schema_revision() == SCHEMA_REVISION
    assert MetadataStore(store_url).schema_revision() == SCHEMA_REVISION  # opening again: no migration
    before = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    run = store.start_run("p", run_key="k")
    assert store.ensure_run("p", "k") == run == store.run_id_of("p", "k")
    execution = store.start_execution(run, "p", "Source", "Source", fingerprint="f" * 64, parameters='{"a": 1}')
    out = {"examples": Examples(uri="/data/1")}
    store.register_outputs(execution, "p", "Source", out)
    out["examples"].properties.update(span=3, split_names=["train"])
    store.publish(execution, out)
    cached_from, outputs = store.find_cached("p", "Source", "f" * 64) or (None, {})
    assert cached_from is None  # /data/1 does not exist on disk
    assert store.run_outputs(run, "Source")["examples"][0].properties["span"] == 3
    [published] = store.published("p", "Source", "examples")
    assert published.id == out["examples"].id and published.properties["split_names"] == ["train"]
    assert store.lineage(published.id)["execution"]["component"] == "Source"
    assert store.find_artifact("/data/1").id == published.id
    [row] = store.list_runs()
    assert row["run_key"] == "k" and row["executions"] == {"COMPLETE": 1}
    assert row["started"].tzinfo is None and before <= row["started"] <= before + dt.timedelta(seconds=30)
    assert row["expires"] > row["heartbeat"]
    assert store.mark_abandoned("p") == 0  # its heartbeat is alive
    store.finish_run(run, "COMPLETE")
    taken, holder = store.try_lock("run:p", "me", lease_s=30)
    assert taken and holder.token == "me" and store.try_lock("run:p", "you", lease_s=30)[0] is False
    assert store.renew_lock("run:p", "me", lease_s=30)
    store.release_lock("run:p", "me")
    assert store.lock_holder("run:p") is None


def test_the_local_runner_on_postgresql_caches_and_resolves(pg_url, tmp_path):
    from pipeline.dsl import Pipeline
    from pipeline.runner import LocalRunner
    from tests.pipeline.toy_components import Add, Source

    def toy():
        source = Source(4)
        add = Add(source.outputs["examples"], baseline=source.outputs["examples"].previous_span(), add=1)
        return Pipeline("toy", str(tmp_path), [source, add], metadata=pg_url)

    first = LocalRunner(lock_timeout=0).run(toy())
    second = LocalRunner(lock_timeout=0).run(toy())
    assert first.executed == ["Source", "Add"] and second.cached == ["Source", "Add"]
    assert second.outputs["Add"]["statistics"].properties["total"] == 5


CONCURRENT = '''
import sys, time
from pipeline.dsl import Pipeline
from pipeline.launcher import launch_node
from tests.pipeline.toy_components import Add, SchemaOf, Source

root, url, key, value = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
source = Source(value, sleep=1.0)
add = Add(source.outputs["examples"], add=100)
pipeline = Pipeline("shared", root, [source, add, SchemaOf(add.outputs["statistics"])], metadata=url)
for node in ("Source", "Add", "SchemaOf"):
    result = launch_node(pipeline, node, key, lease_s=2)
    print(node, result.state, result.execution_id, flush=True)
'''


def test_two_processes_launch_two_runs_at_once_and_nothing_is_lost_or_cross_wired(pg_url, tmp_path):
    script = tmp_path / "launch.py"
    script.write_text(CONCURRENT)
    root = tmp_path / "root"
    children = [subprocess.Popen([sys.executable, str(script), str(root), pg_url, key, str(value)], cwd=REPO,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env={**os.environ, "PYTHONPATH": REPO}, start_new_session=True)
                for key, value in (("run-1", 1), ("run-2", 2))]
    try:
        results = [child.communicate(timeout=60) + (child.returncode,) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
    for out, err, code in results:
        assert code == 0, err
        assert [line.split()[:2] for line in out.splitlines()] == [
            ["Source", "COMPLETE"], ["Add", "COMPLETE"], ["SchemaOf", "COMPLETE"]]
    store = MetadataStore(pg_url)
    for key, value in (("run-1", 1), ("run-2", 2)):
        run_id = store.run_id_of("shared", key)
        [source] = store.run_outputs(run_id, "Source")["examples"]
        [stats] = store.run_outputs(run_id, "Add")["statistics"]
        assert stats.properties["total"] == value + 100 and stats.properties["inputs"] == [source.id]
        assert [e["state"] for e in store.executions_of_run(run_id)] == ["COMPLETE"] * 3
        for art in (source, stats, store.run_outputs(run_id, "SchemaOf")["schema"][0]):
            assert os.path.isdir(art.uri) and art.properties["_state"] == "PUBLISHED"
    for node, key in (("Source", "examples"), ("Add", "statistics"), ("SchemaOf", "schema")):
        assert len(os.listdir(root / node / key)) == 2  # one published dir per run, no .tmp-* left
    assert not os.listdir(root / ".temp")


KILLABLE = '''
import sys
from pipeline.dsl import Pipeline
from pipeline.launcher import launch_node
from tests.pipeline.toy_components import Source

root, url = sys.argv[1], sys.argv[2]
launch_node(Pipeline("shared", root, [Source(7, sleep=120)], metadata=url), "Source", "doomed", lease_s=2)
'''


def _rows(store, table, **where):
    with store.engine.connect() as conn:
        return conn.execute(sa.select(table).where(*[table.c[k] == v for k, v in where.items()])).mappings().all()


def test_a_run_whose_heartbeat_stopped_is_abandoned_after_the_lease_and_a_live_one_elsewhere_is_not(
        pg_url, tmp_path):
    store = MetadataStore(pg_url)
    root = tmp_path / "root"
    # A live run on another machine: its heartbeat is fresh, its scratch must survive.
    live_run = store.start_run("shared", run_key="elsewhere", lease_s=60)
    live_execution = store.start_execution(live_run, "shared", "Source", "Source", fingerprint="x",
                                           parameters="{}", lease_s=60)
    with store.engine.begin() as conn:
        for table, row_id in ((runs, live_run), (executions, live_execution)):
            conn.execute(table.update().where(table.c.id == row_id).values(
                host="other-host.example", pid=1, node="other-host.example:boot:pidns"))
    live_tmp = root / "Source" / "examples" / f".tmp-{live_execution}"
    live_tmp.mkdir(parents=True)
    (root / ".temp" / str(live_execution)).mkdir(parents=True)

    script = tmp_path / "killable.py"
    script.write_text(KILLABLE)
    child = subprocess.Popen([sys.executable, str(script), str(root), pg_url], cwd=REPO,
                             env={**os.environ, "PYTHONPATH": REPO}, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not _rows(store, executions, state="RUNNING", pid=child.pid):
            assert child.poll() is None and time.monotonic() < deadline, child.stderr.read()
            time.sleep(0.1)
        [first] = _rows(store, executions, pid=child.pid)
        time.sleep(1.2)  # the heartbeat renews every lease / 4 = 0.5 s
        [renewed] = _rows(store, executions, pid=child.pid)
        assert renewed["expires"] > first["expires"]
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=15)
    doomed = renewed["id"]
    # Make it look like another machine's: only its lease can tell that it is gone.
    with store.engine.begin() as conn:
        conn.execute(executions.update().where(executions.c.id == doomed).values(node="dead-host:boot:pidns"))
        conn.execute(runs.update().where(runs.c.run_key == "doomed").values(node="dead-host:boot:pidns"))
    [row] = _rows(store, executions, id=doomed)
    assert store.mark_abandoned("shared") == 0 or row["expires"] < dt.datetime.now(dt.timezone.utc).replace(
        tzinfo=None)  # (not yet, unless the machine was too slow to ask within the lease)
    time.sleep(max(0.0, (row["expires"] - dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))
                   .total_seconds()) + 0.3)

    from pipeline.dsl import Pipeline
    from pipeline.launcher import launch_node
    from tests.pipeline.toy_components import Source

    # The next launch abandons it and deletes its leftovers; the live run's are untouched.
    assert launch_node(Pipeline("shared", str(root), [Source(8)], metadata=pg_url), "Source", "next").state \
        == "COMPLETE"
    assert store.execution_state(doomed) == "ABANDONED"
    assert _rows(store, runs, run_key="doomed")[0]["state"] == "ABANDONED"
    assert not (root / "Source" / "examples" / f".tmp-{doomed}").exists()
    assert not (root / ".temp" / str(doomed)).exists()
    assert store.execution_state(live_execution) == "RUNNING"
    assert _rows(store, runs, id=live_run)[0]["state"] == "RUNNING"
    assert live_tmp.is_dir() and (root / ".temp" / str(live_execution)).is_dir()
    with Heartbeat(store, run_id=live_run, lease_s=60) as beat:
        beat.add(live_execution)
        beat.beat()
    assert store.mark_abandoned("shared") == 0
