"""The metadata store: runs, executions, artifacts and lineage, in SQL via SQLAlchemy.

SQLite by default (embedded, one machine); PostgreSQL (``postgresql+psycopg://...``) when
several machines share one store. The schema is versioned with Alembic
(``pipeline/migrations``): opening a store upgrades it to the newest revision, and a
store made before the schema was versioned is upgraded in place, keeping its rows.

Runs and executions carry a heartbeat: the process running them renews ``expires``
(`Heartbeat`); one whose owner stopped renewing past ``expires`` is ABANDONED by
`MetadataStore.mark_abandoned`. See docs/orchestration.md.

Example:
    >>> store = MetadataStore("sqlite://")
    >>> run_id = store.start_run("demo")
    >>> [r["pipeline"] for r in store.list_runs()]
    ['demo']
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import os
import socket
import threading
import time
import uuid
from typing import Any

import sqlalchemy as sa

from components import fileio
from components.artifacts import Artifact, artifact_class
from components.base import process_alive

RUNNING, COMPLETE, CACHED, FAILED, ABANDONED = "RUNNING", "COMPLETE", "CACHED", "FAILED", "ABANDONED"
PENDING, PUBLISHED = "PENDING", "PUBLISHED"
INPUT, OUTPUT = "INPUT", "OUTPUT"

SCHEMA_REVISION = "0002"  # the head of pipeline/migrations/versions (a test checks they agree)
DEFAULT_HEARTBEAT_LEASE_S = 60.0
_UTC = dt.timezone.utc


class UTCDateTime(sa.types.TypeDecorator):
    """A ``TIMESTAMP WITH TIME ZONE`` column that Python code reads and writes as naive UTC.

    PostgreSQL stores an instant; SQLite stores the UTC text it always did. Naive values
    are taken to be UTC, aware ones are converted.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=_UTC) if value.tzinfo is None else value.astimezone(_UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(_UTC).replace(tzinfo=None)
        return value


_meta = sa.MetaData()
runs = sa.Table(
    "runs", _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("pipeline", sa.String(200), nullable=False, index=True),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("started", UTCDateTime, nullable=False),
    sa.Column("finished", UTCDateTime),
    sa.Column("host", sa.String(200)),
    sa.Column("pid", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("run_key", sa.String(200)),  # the orchestrator's run id; unique per pipeline
    sa.Column("node", sa.String(200)),  # the owner's machine identity (`machine_identity`)
    sa.Column("heartbeat", UTCDateTime),  # the owner's last renewal
    sa.Column("expires", UTCDateTime),  # abandoned once this passes without a renewal
    sa.Index("ix_runs_pipeline_run_key", "pipeline", "run_key", unique=True),
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
    sa.Column("started", UTCDateTime, nullable=False),
    sa.Column("finished", UTCDateTime),
    sa.Column("cached_from", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("host", sa.String(200)),
    sa.Column("pid", sa.Integer),
    sa.Column("node", sa.String(200)),
    sa.Column("heartbeat", UTCDateTime),
    sa.Column("expires", UTCDateTime),
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
    sa.Column("created", UTCDateTime, nullable=False),
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
    sa.Column("node", sa.String(200)),
    sa.Column("acquired", UTCDateTime, nullable=False),
    sa.Column("renewed", UTCDateTime, nullable=False),
    sa.Column("expires", UTCDateTime, nullable=False),
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


@functools.lru_cache(maxsize=1)
def machine_identity() -> str:
    """This kernel boot and pid namespace: where a pid means one process.

    Two rows with the same identity were written under one kernel and pid namespace, so a
    pid that is not alive here is a process that is gone. Containers that share a host
    name but not a pid namespace get different identities; the hostname alone is not enough.
    """
    parts = [socket.gethostname()]
    for path, read in (("/proc/sys/kernel/random/boot_id", lambda p: open(p).read().strip()),
                       ("/proc/self/ns/pid", os.readlink)):
        try:
            parts.append(read(path))
        except OSError:
            return ""  # unknown: no same-machine fast path, leases only
    return ":".join(parts)[:200]


def _owner(lease_s: float) -> dict[str, Any]:
    """The columns that say who runs a row and until when it counts as alive."""
    now = _now()
    return {"host": socket.gethostname(), "pid": os.getpid(), "node": machine_identity(),
            "heartbeat": now, "expires": now + dt.timedelta(seconds=lease_s)}


def _owner_gone(row: Any) -> bool:
    """The row's process ran under this kernel and pid namespace and is gone (provably dead)."""
    node = machine_identity()
    return bool(node) and row["node"] == node and not process_alive(row["pid"])


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
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as e:
            raise ValueError(
                f"MetadataStore got url={url!r}; expected a SQLAlchemy URL such as "
                f"'sqlite:////tmp/metadata.sqlite' or 'postgresql+psycopg://user@host:5432/db'. "
                f"How to fix: correct the URL ({e})."
            ) from None
        self.url = url
        if self.schema_revision() != SCHEMA_REVISION:
            from pipeline.migrations import upgrade

            upgrade(self.engine)

    def schema_revision(self) -> str | None:
        """The store's Alembic revision; None before the schema was versioned (or created)."""
        try:
            with self.engine.connect() as conn:
                return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        except sa.exc.DBAPIError:
            return None

    # Runs ------------------------------------------------------------------
    def start_run(self, pipeline: str, *, run_key: str | None = None,
                  lease_s: float = DEFAULT_HEARTBEAT_LEASE_S) -> int:
        """Records a RUNNING run owned by this process (renew it with `Heartbeat`).

        Raises:
            ValueError: the pipeline already has a run with this ``run_key``.
        """
        try:
            with self.engine.begin() as conn:
                result = conn.execute(runs.insert().values(
                    pipeline=pipeline, state=RUNNING, started=_now(), run_key=run_key, **_owner(lease_s)))
                return int(result.inserted_primary_key[0])
        except sa.exc.IntegrityError:
            raise ValueError(f"MetadataStore got run_key={run_key!r}; pipeline {pipeline!r} already has a "
                             "run with that key. How to fix: pass a new key, or use ensure_run to join "
                             "it.") from None

    def ensure_run(self, pipeline: str, run_key: str, *, lease_s: float = DEFAULT_HEARTBEAT_LEASE_S) -> int:
        """The id of the pipeline's run ``run_key``, recorded RUNNING if it is new.

        A run that was ABANDONED (nothing of it ran for a lease) is RUNNING again. Two
        processes asking at once get the same run: the unique (pipeline, run_key) index
        lets one insert win and the other read it.
        """
        for _ in range(3):
            with self.engine.begin() as conn:
                row = conn.execute(sa.select(runs.c.id, runs.c.state).where(
                    runs.c.pipeline == pipeline, runs.c.run_key == run_key)).first()
                if row is not None:
                    if row.state == ABANDONED:
                        conn.execute(runs.update().where(runs.c.id == row.id, runs.c.state == ABANDONED)
                                     .values(state=RUNNING, finished=None, error=None, **_owner(lease_s)))
                    return int(row.id)
            try:
                return self.start_run(pipeline, run_key=run_key, lease_s=lease_s)
            except ValueError:
                continue  # another process inserted it first: read it
        raise RuntimeError(f"could not record run {run_key!r} of pipeline {pipeline!r} in {self.url}")

    def finish_run(self, run_id: int, state: str, error: str | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(runs.update().where(runs.c.id == run_id).values(
                state=state, finished=_now(), error=error))

    def renew(self, *, run_id: int | None = None, execution_ids: tuple[int, ...] = (),
              lease_s: float = DEFAULT_HEARTBEAT_LEASE_S) -> None:
        """Extends the heartbeat of this process's RUNNING run and executions by ``lease_s``."""
        now = _now()
        values = {"heartbeat": now, "expires": now + dt.timedelta(seconds=lease_s)}
        with self.engine.begin() as conn:
            if run_id is not None:
                conn.execute(runs.update().where(runs.c.id == run_id, runs.c.state == RUNNING).values(**values))
            if execution_ids:
                conn.execute(executions.update().where(
                    executions.c.id.in_(execution_ids), executions.c.state == RUNNING).values(**values))

    def mark_abandoned(self, pipeline: str) -> int:
        """Marks RUNNING runs and executions of the pipeline whose owner is gone ABANDONED.

        An owner is gone when it stopped renewing the row's heartbeat past its ``expires``
        (it was killed, frozen or cut off from the store), or, at once, when it ran under
        this kernel and pid namespace (`machine_identity`) and its pid is not alive. A row
        whose owner renews it is never touched, whichever machine it runs on. Each row is
        flipped by one conditional UPDATE, so a renewal racing with this call wins or loses
        as a whole. Returns how many runs were abandoned.
        """
        now = _now()
        count = 0
        gone = {"finished": now, "error": "process died or stopped renewing its heartbeat"}
        with self.engine.begin() as conn:
            for table in (executions, runs):
                rows = conn.execute(sa.select(table.c.id, table.c.node, table.c.pid, table.c.expires).where(
                    table.c.pipeline == pipeline, table.c.state == RUNNING)).mappings().all()
                for row in rows:
                    expired = row["expires"] is None or row["expires"] < now
                    if not (expired or _owner_gone(row)):
                        continue
                    condition = [table.c.id == row["id"], table.c.state == RUNNING]
                    if not _owner_gone(row):  # not renewed since it was read
                        condition.append(sa.or_(table.c.expires.is_(None), table.c.expires < now))
                    done = conn.execute(table.update().where(*condition).values(state=ABANDONED, **gone)).rowcount
                    count += done if table is runs else 0
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
        stopped renewing it past its expiry, or whose process is gone (known only under this
        kernel and pid namespace, see `machine_identity`), is taken over. Each step is one
        conditional statement, so two processes racing for a lock never both get it.
        """
        now = _now()
        mine = {"token": token, "host": socket.gethostname(), "pid": os.getpid(), "run_id": None,
                "node": machine_identity(), "acquired": now, "renewed": now, "expires": now + dt.timedelta(seconds=lease_s)}
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
        if _owner_gone({"node": holder.node, "pid": holder.pid}):
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
                        cached_from: int | None = None,
                        lease_s: float = DEFAULT_HEARTBEAT_LEASE_S) -> int:
        """Records an execution; a RUNNING one is owned by this process (renew it with `Heartbeat`)."""
        with self.engine.begin() as conn:
            now = _now()
            result = conn.execute(executions.insert().values(
                run_id=run_id, pipeline=pipeline, component=component,
                component_type=component_type, state=state, fingerprint=fingerprint,
                parameters=parameters, started=now, cached_from=cached_from,
                finished=now if state != RUNNING else None, **_owner(lease_s)))
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
            if all(a.properties.get("_state") == PUBLISHED and fileio.isdir(a.uri)
                   for a in outputs.values()):
                return execution_id, outputs
        return None

    def outputs_of(self, execution_id: int) -> dict[str, Artifact]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(events.c.key, artifacts).join(artifacts, events.c.artifact_id == artifacts.c.id)
                .where(events.c.execution_id == execution_id, events.c.kind == OUTPUT)).mappings().all()
        return {row["key"]: _artifact(row) for row in rows}

    def run_outputs(self, run_id: int, component: str) -> dict[str, list[Artifact]] | None:
        """What the node's newest COMPLETE or CACHED execution in the run output (key -> artifacts
        in the order recorded); None when the node has not completed in that run."""
        with self.engine.connect() as conn:
            execution_id = conn.execute(sa.select(executions.c.id).where(
                executions.c.run_id == run_id, executions.c.component == component,
                executions.c.state.in_((COMPLETE, CACHED))).order_by(executions.c.id.desc())).scalar()
            if execution_id is None:
                return None
            rows = conn.execute(
                sa.select(events.c.key, artifacts).join(artifacts, events.c.artifact_id == artifacts.c.id)
                .where(events.c.execution_id == execution_id, events.c.kind == OUTPUT)
                .order_by(events.c.id)).mappings().all()
        outputs: dict[str, list[Artifact]] = {}
        for row in rows:
            outputs.setdefault(row["key"], []).append(_artifact(row))
        return outputs

    def run_id_of(self, pipeline: str, run_key: str) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(runs.c.id).where(
                runs.c.pipeline == pipeline, runs.c.run_key == run_key)).scalar()

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
        uri = (id_or_uri if fileio.is_url(id_or_uri) else os.path.abspath(id_or_uri)).rstrip("/")
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
        return self.execution_states([execution_id]).get(execution_id)

    def execution_states(self, execution_ids: list[int]) -> dict[int, str]:
        """execution id -> state, in one query; ids with no execution are absent."""
        if not execution_ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(executions.c.id, executions.c.state).where(
                executions.c.id.in_(execution_ids))).all()
        return {int(execution_id): state for execution_id, state in rows}

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
    node: str | None
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
    next one to ask takes it over. A holder whose process is gone under this kernel and pid
    namespace (`machine_identity`) loses it at once. Hosts sharing a store must agree on the time within a fraction of ``lease_s``.

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


class Heartbeat:
    """Renews a run's and its executions' ``expires`` every ``lease_s / 4`` s from a thread.

    While it beats, `MetadataStore.mark_abandoned` leaves them alone on every machine; once
    the process stops (killed, frozen, cut off), they are abandoned ``lease_s`` after the
    last renewal. Hosts sharing a store must agree on the time within a fraction of ``lease_s``.

    Example:
        >>> store = MetadataStore("sqlite://")
        >>> with Heartbeat(store, run_id=store.start_run("demo"), lease_s=30) as beat:
        ...     beat.add(42)  # an execution id this process now runs
    """

    def __init__(self, store: MetadataStore, *, run_id: int | None = None,
                 lease_s: float = DEFAULT_HEARTBEAT_LEASE_S):
        if not lease_s > 0:
            raise ValueError(f"Heartbeat got lease_s={lease_s!r}; expected a positive number of seconds. "
                             "How to fix: pass e.g. lease_s=60.")
        self.store, self.run_id, self.lease_s = store, run_id, float(lease_s)
        self._executions: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, execution_id: int) -> None:
        with self._lock:
            self._executions.add(execution_id)

    def discard(self, execution_id: int) -> None:
        with self._lock:
            self._executions.discard(execution_id)

    def beat(self) -> None:
        """Renews now (the thread calls this every ``lease_s / 4`` s)."""
        with self._lock:
            ids = tuple(sorted(self._executions))
        self.store.renew(run_id=self.run_id, execution_ids=ids, lease_s=self.lease_s)

    def __enter__(self) -> Heartbeat:
        url = self.store.engine.url
        if not (url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")):
            # (An in-memory store is private to this process and to one thread's connection.)
            self._thread = threading.Thread(target=self._run, name="metadata heartbeat", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.lease_s / 4):
            try:
                self.beat()
            except sa.exc.SQLAlchemyError:  # the store is unreachable for a moment: the next beat retries
                pass


def _artifact(row: Any) -> Artifact:
    art = artifact_class(row["type"])(uri=row["uri"], properties=json.loads(row["properties"]), id=row["id"])
    art.properties["_state"] = row["state"]
    return art
