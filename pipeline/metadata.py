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

import datetime as dt
import json
import os
import socket
from typing import Any

import sqlalchemy as sa

from components.artifacts import Artifact, artifact_class

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
            self.engine = sa.create_engine(url)
            _meta.create_all(self.engine)
        except sa.exc.ArgumentError as e:
            raise ValueError(
                f"MetadataStore got url={url!r}; expected a SQLAlchemy URL such as "
                f"'sqlite:////tmp/metadata.sqlite'. How to fix: correct the URL ({e})."
            ) from None
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
        """Marks RUNNING runs of dead processes (on this host) ABANDONED; returns how many."""
        count = 0
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(runs).where(
                runs.c.pipeline == pipeline, runs.c.state == RUNNING)).mappings().all()
            for row in rows:
                if row["host"] == socket.gethostname() and _alive(row["pid"]):
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


def _artifact(row: Any) -> Artifact:
    art = artifact_class(row["type"])(uri=row["uri"], properties=json.loads(row["properties"]), id=row["id"])
    art.properties["_state"] = row["state"]
    return art


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
