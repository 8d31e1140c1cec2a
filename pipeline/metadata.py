"""The metadata store: runs, executions, artifacts and lineage, in SQL via SQLAlchemy.

SQLite by default; any SQLAlchemy URL (PostgreSQL, MySQL) when several
machines share one store.

Example:
    >>> store = MetadataStore("sqlite://")
    >>> run_id = store.start_run("demo")
    >>> [r["pipeline"] for r in store.list_runs()]
    ['demo']
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import socket
import threading
import time
import uuid
from typing import Any

import sqlalchemy as sa

from components.artifacts import Artifact, artifact_class
from components.base import process_alive

RUNNING, COMPLETE, CACHED, FAILED, ABANDONED = "RUNNING", "COMPLETE", "CACHED", "FAILED", "ABANDONED"
PENDING, PUBLISHED = "PENDING", "PUBLISHED"
INPUT, OUTPUT = "INPUT", "OUTPUT"

_meta = sa.MetaData()
runs = sa.Table(
    "runs", _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("pipeline", sa.String(200), nullable=False, index=True),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("started", sa.DateTime, nullable=False),
    sa.Column("finished", sa.DateTime),
    sa.Column("host", sa.String(200)),
    sa.Column("pid", sa.Integer),
    sa.Column("error", sa.Text),
)
executions = sa.Table(
    "executions", _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False, index=True),
    sa.Column("pipeline", sa.String(200), nullable=False),
    sa.Column("component", sa.String(200), nullable=False),
    sa.Column("component_type", sa.String(200), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("fingerprint", sa.String(64), index=True),
    sa.Column("parameters", sa.Text),
    sa.Column("started", sa.DateTime, nullable=False),
    sa.Column("finished", sa.DateTime),
    sa.Column("cached_from", sa.Integer),
    sa.Column("error", sa.Text),
)
artifacts = sa.Table(
    "artifacts", _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("type", sa.String(100), nullable=False),
    sa.Column("uri", sa.Text, nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("properties", sa.Text, nullable=False),
    sa.Column("pipeline", sa.String(200), nullable=False),
    sa.Column("component", sa.String(200), nullable=False),
    sa.Column("output_key", sa.String(200), nullable=False),
    sa.Column("span", sa.Integer),
    sa.Column("created", sa.DateTime, nullable=False),
)
events = sa.Table(
    "events", _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("execution_id", sa.Integer, sa.ForeignKey("executions.id"), nullable=False, index=True),
    sa.Column("artifact_id", sa.Integer, sa.ForeignKey("artifacts.id"), nullable=False, index=True),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("key", sa.String(200), nullable=False),
)

locks = sa.Table(
    "locks", _meta,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("token", sa.String(64), nullable=False),
    sa.Column("host", sa.String(200)),
    sa.Column("pid", sa.Integer),
    sa.Column("run_id", sa.Integer),
    sa.Column("acquired", sa.DateTime, nullable=False),
    sa.Column("renewed", sa.DateTime, nullable=False),
    sa.Column("expires", sa.DateTime, nullable=False),
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class MetadataStore:
    """Records runs, executions (state, timing, parameters, errors), artifacts and lineage.

    Args:
        url: A SQLAlchemy URL, e.g. ``sqlite:////abs/path/metadata.sqlite``.
    """

    def __init__(self, url: str):
        if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
            os.makedirs(os.path.dirname(url[len("sqlite:///"):]) or ".", exist_ok=True)
        try:
            # SQLite: several processes share one file; wait for a writer instead of failing at once.
            kwargs = {"connect_args": {"timeout": 30}} if url.startswith("sqlite") else {}
            self.engine = sa.create_engine(url, **kwargs)
        except sa.exc.ArgumentError as e:
            raise ValueError(
                f"MetadataStore got url={url!r}; expected a SQLAlchemy URL such as "
                f"'sqlite:////tmp/metadata.sqlite'. How to fix: correct the URL ({e})."
            ) from None
        for attempt in range(5):  # two processes creating the tables at once: one sees them created
            try:
                _meta.create_all(self.engine)
                break
            except sa.exc.OperationalError:
                if attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))
        self.url = url

    # Runs ------------------------------------------------------------------
    def start_run(self, pipeline: str) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(runs.insert().values(
                pipeline=pipeline, state=RUNNING, started=_now(),
                host=socket.gethostname(), pid=os.getpid()))
            return int(result.inserted_primary_key[0])

    def finish_run(self, run_id: int, state: str, error: str | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(runs.update().where(runs.c.id == run_id).values(
                state=state, finished=_now(), error=error))

    def mark_abandoned(self, pipeline: str) -> int:
        """Marks RUNNING runs of the pipeline whose owner is gone ABANDONED; returns how many.

        A run is left alone while it holds an unexpired lock (see `lock`), and while its
        process is alive when it runs on this host. So a run elsewhere is only abandoned
        once its lock expired or was released: call this while holding the pipeline's
        run lock, as `LocalRunner` does.
        """
        count = 0
        now = _now()
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(runs).where(
                runs.c.pipeline == pipeline, runs.c.state == RUNNING)).mappings().all()
            leased = {r[0] for r in conn.execute(sa.select(locks.c.run_id).where(
                locks.c.expires >= now, locks.c.run_id.is_not(None))).all()}
            for row in rows:
                if row["id"] in leased:
                    continue
                if row["host"] == socket.gethostname() and process_alive(row["pid"]):
                    continue
                conn.execute(runs.update().where(runs.c.id == row["id"]).values(
                    state=ABANDONED, finished=_now(), error="process died"))
                conn.execute(executions.update().where(
                    executions.c.run_id == row["id"], executions.c.state == RUNNING
                ).values(state=ABANDONED, finished=_now(), error="process died"))
                count += 1
        return count

    def list_runs(self, limit: int = 50) -> list[dict[str, Any]]:
        """The latest runs, newest first, with per-state execution counts."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(runs).order_by(runs.c.id.desc()).limit(limit)).mappings().all()
            result = []
            for row in rows:
                states = conn.execute(
                    sa.select(executions.c.state, sa.func.count()).where(
                        executions.c.run_id == row["id"]).group_by(executions.c.state)).all()
                result.append({**dict(row), "executions": dict(states)})
            return result

    # Locks (leases) ----------------------------------------------------------
    def try_lock(self, name: str, token: str, *, lease_s: float) -> tuple[bool, LockInfo | None]:
        """Takes (or renews) the lock ``name`` for ``token`` for ``lease_s`` seconds.

        Returns (True, the lock) when taken, else (False, its holder). A lock whose holder
        stopped renewing it past its expiry, or whose process on this host is gone, is
        taken over. Each step is one conditional statement, so two processes racing for a
        lock never both get it.
        """
        now = _now()
        mine = {"token": token, "host": socket.gethostname(), "pid": os.getpid(), "run_id": None,
                "acquired": now, "renewed": now, "expires": now + dt.timedelta(seconds=lease_s)}
        try:
            with self.engine.begin() as conn:
                conn.execute(locks.insert().values(name=name, **mine))
            return True, self.lock_holder(name)
        except sa.exc.IntegrityError:
            pass  # held (or just released and taken again): try a renewal or a takeover
        if self.renew_lock(name, token, lease_s=lease_s):
            return True, self.lock_holder(name)
        with self.engine.begin() as conn:  # an expired lock: take it over
            taken = conn.execute(locks.update().where(locks.c.name == name, locks.c.expires < now)
                                 .values(**mine)).rowcount
        holder = self.lock_holder(name)
        if taken:
            return True, holder
        if holder is None:  # released between the statements: try again
            return self.try_lock(name, token, lease_s=lease_s)
        if holder.host == socket.gethostname() and holder.pid and not process_alive(holder.pid):
            with self.engine.begin() as conn:  # its process died: take it over now
                taken = conn.execute(locks.update().where(
                    locks.c.name == name, locks.c.token == holder.token).values(**mine)).rowcount
            if taken:
                return True, self.lock_holder(name)
        return False, holder

    def renew_lock(self, name: str, token: str, *, lease_s: float) -> bool:
        """Extends the lease; False when ``token`` no longer holds the lock (it was taken over)."""
        now = _now()
        with self.engine.begin() as conn:
            return conn.execute(locks.update().where(locks.c.name == name, locks.c.token == token).values(
                renewed=now, expires=now + dt.timedelta(seconds=lease_s))).rowcount == 1

    def set_lock_run(self, name: str, token: str, run_id: int) -> None:
        """Records which run holds the lock (for messages and `mark_abandoned`)."""
        with self.engine.begin() as conn:
            conn.execute(locks.update().where(locks.c.name == name, locks.c.token == token).values(
                run_id=run_id))

    def release_lock(self, name: str, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(locks.delete().where(locks.c.name == name, locks.c.token == token))

    def lock_holder(self, name: str) -> LockInfo | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(locks).where(locks.c.name == name)).mappings().first()
        return LockInfo(**dict(row)) if row is not None else None

    def lock(self, name: str, *, lease_s: float = 60.0) -> Lease:
        """A `Lease` on the lock ``name`` (not yet acquired)."""
        return Lease(self, name, lease_s=lease_s)

    # Executions -------------------------------------------------------------
    def start_execution(self, run_id: int, pipeline: str, component: str, component_type: str, *,
                        fingerprint: str, parameters: str, state: str = RUNNING,
                        cached_from: int | None = None) -> int:
        with self.engine.begin() as conn:
            now = _now()
            result = conn.execute(executions.insert().values(
                run_id=run_id, pipeline=pipeline, component=component,
                component_type=component_type, state=state, fingerprint=fingerprint,
                parameters=parameters, started=now, cached_from=cached_from,
                finished=now if state != RUNNING else None))
            return int(result.inserted_primary_key[0])

    def record_inputs(self, execution_id: int, inputs: dict[str, list[Artifact]]) -> None:
        with self.engine.begin() as conn:
            for key, arts in inputs.items():
                for art in arts:
                    conn.execute(events.insert().values(
                        execution_id=execution_id, artifact_id=art.id, kind=INPUT, key=key))

    def register_outputs(self, execution_id: int, pipeline: str, component: str,
                         outputs: dict[str, Artifact]) -> None:
        """Registers PENDING output artifacts (sets their ids)."""
        with self.engine.begin() as conn:
            for key, art in outputs.items():
                result = conn.execute(artifacts.insert().values(
                    type=art.TYPE_NAME, uri=art.uri, state=PENDING, properties="{}",
                    pipeline=pipeline, component=component, output_key=key, created=_now()))
                art.id = int(result.inserted_primary_key[0])
                conn.execute(events.insert().values(
                    execution_id=execution_id, artifact_id=art.id, kind=OUTPUT, key=key))

    def publish(self, execution_id: int, outputs: dict[str, Artifact]) -> None:
        """In one transaction: outputs become PUBLISHED, the execution COMPLETE."""
        with self.engine.begin() as conn:
            for art in outputs.values():
                span = art.properties.get("span")
                conn.execute(artifacts.update().where(artifacts.c.id == art.id).values(
                    uri=art.uri, state=PUBLISHED, span=span,
                    properties=json.dumps({k: v for k, v in art.properties.items() if not k.startswith("_")},
                                          sort_keys=True, default=str)))
            conn.execute(executions.update().where(executions.c.id == execution_id).values(
                state=COMPLETE, finished=_now()))

    def set_artifact_uri(self, artifact_id: int, uri: str) -> None:
        """Records that an (unpublished) artifact's directory moved, e.g. a failed execution's kept output."""
        with self.engine.begin() as conn:
            conn.execute(artifacts.update().where(artifacts.c.id == artifact_id).values(uri=uri))

    def record_resolved(self, execution_id: int, outputs: dict[str, list[Artifact]]) -> None:
        """A resolver's execution: OUTPUT events to the existing artifacts it chose; COMPLETE."""
        with self.engine.begin() as conn:
            for key, arts in outputs.items():
                for art in arts:
                    conn.execute(events.insert().values(
                        execution_id=execution_id, artifact_id=art.id, kind=OUTPUT, key=key))
            conn.execute(executions.update().where(executions.c.id == execution_id).values(
                state=COMPLETE, finished=_now()))

    def fail_execution(self, execution_id: int, error: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(executions.update().where(executions.c.id == execution_id).values(
                state=FAILED, finished=_now(), error=error))

    def record_cached(self, run_id: int, pipeline: str, component: str, component_type: str, *,
                      fingerprint: str, parameters: str, cached_from: int,
                      inputs: dict[str, list[Artifact]], outputs: dict[str, Artifact]) -> int:
        execution_id = self.start_execution(
            run_id, pipeline, component, component_type, fingerprint=fingerprint,
            parameters=parameters, state=CACHED, cached_from=cached_from)
        self.record_inputs(execution_id, inputs)
        with self.engine.begin() as conn:
            for key, art in outputs.items():
                conn.execute(events.insert().values(
                    execution_id=execution_id, artifact_id=art.id, kind=OUTPUT, key=key))
        return execution_id

    def find_cached(self, pipeline: str, component: str, fingerprint: str
                    ) -> tuple[int, dict[str, Artifact]] | None:
        """The newest COMPLETE execution with this fingerprint whose outputs all still exist."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(executions.c.id).where(
                executions.c.pipeline == pipeline, executions.c.component == component,
                executions.c.fingerprint == fingerprint, executions.c.state == COMPLETE,
            ).order_by(executions.c.id.desc())).all()
        for (execution_id,) in rows:
            outputs = self.outputs_of(execution_id)
            if all(a.properties.get("_state") == PUBLISHED and os.path.isdir(a.uri)
                   for a in outputs.values()):
                return execution_id, outputs
        return None

    def outputs_of(self, execution_id: int) -> dict[str, Artifact]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(events.c.key, artifacts).join(artifacts, events.c.artifact_id == artifacts.c.id)
                .where(events.c.execution_id == execution_id, events.c.kind == OUTPUT)).mappings().all()
        return {row["key"]: _artifact(row) for row in rows}

    # Artifacts ---------------------------------------------------------------
    def published(self, pipeline: str, component: str, output_key: str) -> list[Artifact]:
        """Published artifacts of one node's output, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(artifacts).where(
                artifacts.c.pipeline == pipeline, artifacts.c.component == component,
                artifacts.c.output_key == output_key, artifacts.c.state == PUBLISHED,
            ).order_by(artifacts.c.id.desc())).mappings().all()
        return [_artifact(row) for row in rows]

    def artifact(self, artifact_id: int) -> Artifact:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(artifacts).where(artifacts.c.id == artifact_id)).mappings().first()
        if row is None:
            raise ValueError(
                f"MetadataStore got artifact id={artifact_id!r}; no such artifact in {self.url}. "
                "How to fix: list artifacts with `python -m pipeline runs` and pick an id."
            )
        return _artifact(row)

    def find_artifact(self, id_or_uri: str) -> Artifact:
        """Looks an artifact up by id, or by (a prefix-free) URI."""
        if id_or_uri.isdigit():
            return self.artifact(int(id_or_uri))
        uri = os.path.abspath(id_or_uri).rstrip("/")
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(artifacts.c.id).where(artifacts.c.uri == uri)).first()
        if row is None:
            raise ValueError(
                f"lineage got artifact={id_or_uri!r}; no artifact has that id or URI in {self.url}. "
                "How to fix: pass an artifact id or the URI printed by `pipeline run`."
            )
        return self.artifact(int(row[0]))

    def lineage(self, artifact_id: int, depth: int = 20) -> dict[str, Any]:
        """The artifact, the execution that produced it, and recursively that execution's inputs."""
        art = self.artifact(artifact_id)
        node: dict[str, Any] = {"artifact": art, "execution": None, "inputs": []}
        if depth <= 0:
            return node
        with self.engine.connect() as conn:
            producer = conn.execute(
                sa.select(executions).join(events, events.c.execution_id == executions.c.id)
                .where(events.c.artifact_id == artifact_id, events.c.kind == OUTPUT)
                .order_by(executions.c.id)).mappings().first()
            if producer is None:
                return node
            node["execution"] = dict(producer)
            inputs = conn.execute(sa.select(events.c.key, events.c.artifact_id).where(
                events.c.execution_id == producer["id"], events.c.kind == INPUT)).all()
        node["inputs"] = [(key, self.lineage(aid, depth - 1)) for key, aid in inputs]
        return node

    def producer_inputs(self, artifact_id: int) -> dict[str, list[Artifact]]:
        """The inputs (key -> artifacts) of the execution that first produced the artifact."""
        with self.engine.connect() as conn:
            producer = conn.execute(
                sa.select(events.c.execution_id).where(
                    events.c.artifact_id == artifact_id, events.c.kind == OUTPUT)
                .order_by(events.c.execution_id)).first()
            if producer is None:
                return {}
            rows = conn.execute(
                sa.select(events.c.key, artifacts).join(artifacts, events.c.artifact_id == artifacts.c.id)
                .where(events.c.execution_id == producer[0], events.c.kind == INPUT)
                .order_by(events.c.id)).mappings().all()
        inputs: dict[str, list[Artifact]] = {}
        for row in rows:
            inputs.setdefault(row["key"], []).append(_artifact(row))
        return inputs

    def running_fingerprints(self, pipeline: str, component: str) -> dict[int, str]:
        """execution id -> fingerprint of the node's RUNNING executions."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(executions.c.id, executions.c.fingerprint).where(
                executions.c.pipeline == pipeline, executions.c.component == component,
                executions.c.state == RUNNING)).all()
        return {int(execution_id): fingerprint for execution_id, fingerprint in rows}

    def execution_state(self, execution_id: int) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(executions.c.state).where(executions.c.id == execution_id)).first()
        return row[0] if row else None

    def executions_of_run(self, run_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(executions).where(
                executions.c.run_id == run_id).order_by(executions.c.id)).mappings().all()
        return [dict(r) for r in rows]


@dataclasses.dataclass(frozen=True)
class LockInfo:
    """A row of the ``locks`` table: who holds the lock ``name`` and until when (UTC)."""

    name: str
    token: str
    host: str | None
    pid: int | None
    run_id: int | None
    acquired: dt.datetime
    renewed: dt.datetime
    expires: dt.datetime

    def describe(self) -> str:
        """``run 5 (host h, pid 123)``, or ``a starting run (host h, pid 123)`` before it has a run id."""
        who = f"run {self.run_id}" if self.run_id is not None else "a starting run"
        return f"{who} (host {self.host}, pid {self.pid})"


class LockTimeout(RuntimeError):
    """`Lease.acquire` waited ``timeout_s`` and another holder still has the lock."""

    def __init__(self, message: str, holder: LockInfo | None):
        super().__init__(message)
        self.holder = holder


class Lease:
    """A lock in the metadata store, held by this process and renewed by a heartbeat thread.

    The holder renews it every ``lease_s / 4`` seconds; a holder that stops renewing (killed,
    frozen, cut off from the store) loses it ``lease_s`` after its last renewal, and the
    next one to ask takes it over. A holder on this host whose process is gone loses it
    at once. Hosts sharing a store must agree on the time within a fraction of ``lease_s``.

    Example:
        >>> lease = MetadataStore("sqlite://").lock("run:demo", lease_s=30)
        >>> lease.acquire(timeout_s=0).name
        'run:demo'
        >>> lease.release()
    """

    def __init__(self, store: MetadataStore, name: str, *, lease_s: float = 60.0):
        if not lease_s > 0:
            raise ValueError(f"Lease got lease_s={lease_s!r}; expected a positive number of seconds. "
                             "How to fix: pass e.g. lease_s=60.")
        self.store, self.name, self.lease_s = store, name, float(lease_s)
        self.token = uuid.uuid4().hex
        self.lost: str | None = None  # why the lease was lost, once it was
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self, *, timeout_s: float, poll_s: float = 0.5,
                on_wait: Any = None) -> LockInfo:
        """Waits up to ``timeout_s`` for the lock, then starts the heartbeat.

        ``on_wait(holder)`` is called once, when the lock is found held.
        Raises LockTimeout when it is still held by another after ``timeout_s``.
        """
        deadline = time.monotonic() + max(0.0, timeout_s)
        told = False
        while True:
            try:
                taken, holder = self.store.try_lock(self.name, self.token, lease_s=self.lease_s)
            except sa.exc.OperationalError:  # SQLite busy past its timeout: ask again
                taken, holder = False, None
            if taken:
                break
            if holder is not None and on_wait is not None and not told:
                on_wait(holder)
                told = True
            if time.monotonic() >= deadline:
                raise LockTimeout(f"lock {self.name!r} is held by "
                                  f"{holder.describe() if holder else 'another process'}", holder)
            time.sleep(min(poll_s, max(0.01, deadline - time.monotonic())))
        self._stop.clear()
        url = self.store.engine.url
        if not (url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")):
            # (An in-memory store is private to this process and to one thread's connection.)
            self._thread = threading.Thread(target=self._heartbeat, name=f"lease {self.name}", daemon=True)
            self._thread.start()
        return holder

    def _heartbeat(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(self.lease_s / 4):
            try:
                if not self.store.renew_lock(self.name, self.token, lease_s=self.lease_s):
                    holder = self.store.lock_holder(self.name)
                    self.lost = (f"it was taken over by {holder.describe()}, as this process had not "
                                 f"renewed it within its {self.lease_s:g} s lease" if holder else
                                 "it was released by another process")
                    return
                last = time.monotonic()
            except sa.exc.SQLAlchemyError as e:  # the store is unreachable for a moment: retry
                if time.monotonic() - last > self.lease_s:
                    self.lost = (f"it could not be renewed within its {self.lease_s:g} s lease: "
                                 f"{type(e).__name__} from the metadata store")
                    return

    def release(self) -> None:
        """Stops the heartbeat and deletes the lock if this lease still holds it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.store.release_lock(self.name, self.token)


def _artifact(row: Any) -> Artifact:
    art = artifact_class(row["type"])(uri=row["uri"], properties=json.loads(row["properties"]), id=row["id"])
    art.properties["_state"] = row["state"]
    return art
