"""``python -m pipeline report``: one self-contained HTML page per pipeline run.

The page reads the metadata store and the run's artifacts and shows, one section each: the
DAG with every node's state, timing, cache hit and log file; the statistics of each split;
the anomalies; the Transform's vocabularies and bucket boundaries; the Trainer's loss and
evaluation metrics over steps; TFMA's metrics overall and per slice with ROC and PR curves;
the blessing with each threshold; the pushed version and its lineage back to the input
files. A node that did not run in the run says so; a cached one shows the artifact it reused.

Charts are altair (Vega-Lite) specs rendered to SVG by vl-convert and inlined: the page has
no script and loads nothing. Nothing here imports TensorFlow, TFMA or Beam
(`pipeline.report_readers` reads their files), so a report takes a few seconds.

Example:
    >>> path = write_report(root="runs/taxi")  # doctest: +SKIP
    >>> path  # doctest: +SKIP
    '.../runs/taxi/reports/run-1.html'
"""

from __future__ import annotations

import dataclasses
import json
import os
import urllib.parse
from typing import Any

import sqlalchemy as sa

from components import fileio
from components.artifacts import Artifact, artifact_class
from pipeline import metadata as md
from pipeline.logs import log_path
from pipeline.report_html import Html, Section, code, esc, note, page
from pipeline.staging import Staging, upload_file

REPORTS_DIR = "reports"
NOT_IN_RUN = "not in this run"


@dataclasses.dataclass
class Node:
    """A pipeline node as one run saw it.

    Attributes:
        id: The node id (``Trainer``).
        type: The component's class name (``Trainer``, ``LatestBlessedModelResolver``).
        execution: Its execution row in this run, or None when it was not part of the run.
        inputs, outputs: key -> artifacts, from the execution's events.
        producers: (node id, "run" or "earlier") for each node it read from: an input made in
            this run, or by an earlier run (for the DAG).
    """

    id: str
    type: str
    execution: dict[str, Any] | None
    inputs: dict[str, list[Artifact]] = dataclasses.field(default_factory=dict)
    outputs: dict[str, list[Artifact]] = dataclasses.field(default_factory=dict)
    producers: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    @property
    def state(self) -> str:
        return self.execution["state"] if self.execution else NOT_IN_RUN

    def output(self, key: str) -> Artifact | None:
        found = self.outputs.get(key) or []
        return found[0] if found else None


@dataclasses.dataclass
class RunView:
    """One run of the store: its row, its nodes (run's first), where the page goes."""

    store: md.MetadataStore
    run: dict[str, Any]
    nodes: list[Node]
    root: str | None
    out: str
    url_root: str | None = None  # a URL root: ``root`` is then its local staging copy
    upload_to: str | None = None  # where the page is uploaded, under a URL root

    @property
    def run_id(self) -> int:
        return int(self.run["id"])

    def of_type(self, *types: str) -> list[Node]:
        return [n for n in self.nodes if n.type in types]

    def log_href(self, node_id: str) -> str | None:
        """A link (relative to the page) to the node's log file, when the file exists."""
        if self.root is None:
            return None
        path = log_path(self.root, self.run_id, node_id)
        if not os.path.isfile(path):
            return None
        return urllib.parse.quote(os.path.relpath(path, os.path.dirname(os.path.abspath(self.out))))


def _artifact(row: Any) -> Artifact:
    art = artifact_class(row["type"])(uri=row["uri"], properties=json.loads(row["properties"]), id=row["id"])
    art.properties["_state"] = row["state"]
    return art


def load_run(store: md.MetadataStore, run_id: int | None = None, *, root: str | None = None,
             out: str | None = None) -> RunView:
    """The run ``run_id`` (default: the newest) with its nodes, inputs and outputs.

    Raises:
        ValueError: The store has no runs, or none with that id (the message says which exist).
    """
    where = f"--root={root!r}" if root else store.url
    with store.engine.connect() as conn:
        run_ids = [r[0] for r in conn.execute(sa.select(md.runs.c.id).order_by(md.runs.c.id))]
        if not run_ids:
            raise ValueError(f"report found no runs in {where}. How to fix: run a pipeline first "
                             "(python -m pipeline run FILE --root DIR), or pass the root it used.")
        if run_id is None:
            run_id = run_ids[-1]
        if run_id not in run_ids:
            listed = ", ".join(map(str, run_ids[-10:]))
            has = (f"has only run {listed}" if len(run_ids) == 1 else
                   f"has runs {listed}{' (the newest 10)' if len(run_ids) > 10 else ''}")
            lister = f"python -m pipeline runs --root {root}" if root else "python -m pipeline runs"
            raise ValueError(f"report got --run={run_id}; {where} {has}. How to fix: pass one of them "
                             f"({lister} lists them), or leave --run out for the newest.")
        run = dict(conn.execute(sa.select(md.runs).where(md.runs.c.id == run_id)).mappings().one())
        executions = [dict(r) for r in conn.execute(sa.select(md.executions).where(
            md.executions.c.run_id == run_id).order_by(md.executions.c.id)).mappings()]
        events = conn.execute(
            sa.select(md.events.c.execution_id, md.events.c.kind, md.events.c.key, md.artifacts)
            .join(md.artifacts, md.events.c.artifact_id == md.artifacts.c.id)
            .where(md.events.c.execution_id.in_([e["id"] for e in executions]))
            .order_by(md.events.c.id)).mappings().all()
        # Nodes of the pipeline that other runs had: shown as not part of this run, with the
        # inputs their latest execution read (for the DAG).
        others = conn.execute(
            sa.select(md.executions.c.component, md.executions.c.component_type,
                      sa.func.max(md.executions.c.id).label("latest"))
            .where(md.executions.c.pipeline == run["pipeline"],
                   md.executions.c.component.not_in([e["component"] for e in executions]))
            .group_by(md.executions.c.component, md.executions.c.component_type)
            .order_by(sa.func.min(md.executions.c.id))).mappings().all()
        other_inputs = conn.execute(
            sa.select(md.events.c.execution_id, md.artifacts.c.component)
            .join(md.artifacts, md.events.c.artifact_id == md.artifacts.c.id)
            .where(md.events.c.execution_id.in_([o["latest"] for o in others]),
                   md.events.c.kind == md.INPUT)).all()
    nodes = [Node(e["component"], e["component_type"], e) for e in executions]
    by_execution = {e["id"]: n for e, n in zip(executions, nodes)}
    produced_by: dict[int, str] = {}  # artifact id -> the node of this run that output it
    made_by: dict[int, str] = {}  # artifact id -> the node that made it, in any run
    for row in events:
        node = by_execution[row["execution_id"]]
        side = node.outputs if row["kind"] == md.OUTPUT else node.inputs
        side.setdefault(row["key"], []).append(_artifact(row))
        made_by[row["id"]] = row["component"]
        if row["kind"] == md.OUTPUT:
            produced_by.setdefault(row["id"], node.id)
    for node in nodes:
        for arts in node.inputs.values():
            for art in arts:
                # An input no node of this run output comes from an earlier run (a partial run).
                edge = (produced_by[art.id], "run") if art.id in produced_by else (made_by[art.id], "earlier")
                if edge not in node.producers:
                    node.producers.append(edge)
    for other in others:
        node = Node(other["component"], other["component_type"], None)
        node.producers = sorted({(c, "run") for e, c in other_inputs if e == other["latest"]})
        nodes.append(node)
    if root and fileio.is_url(root):
        return _url_root_view(store, run, nodes, root.rstrip("/"), out)
    root = os.path.abspath(root) if root else _infer_root(nodes)
    if out is None:  # without a root (a --metadata URL whose runs wrote nothing), the working directory
        out = os.path.join(root, REPORTS_DIR, f"run-{run_id}.html") if root else f"run-{run_id}-report.html"
    return RunView(store, run, nodes, root, os.path.abspath(out))


# The artifact types whose files the report reads (Examples and Models are never downloaded).
_READ_TYPES = ("ExampleStatistics", "Schema", "ExampleAnomalies", "TransformGraph", "ModelRun", "ModelEvaluation")


def _url_root_view(store: md.MetadataStore, run: dict[str, Any], nodes: list[Node], root: str,
                   out: str | None) -> RunView:
    """The view of a run under an object-store root: the artifacts it reads and the logs are
    downloaded to the pipeline's staging dir (`pipeline.staging`), where the page is written
    (then uploaded to ``<root>/reports/``, see `write_report`)."""
    staging = Staging(run["pipeline"], root, store.url)
    run_id = int(run["id"])
    for node in nodes:
        for arts in [*node.inputs.values(), *node.outputs.values()]:
            for art in arts:
                if art.TYPE_NAME in _READ_TYPES and fileio.is_url(art.uri) and fileio.isdir(art.uri):
                    art.properties["_uri"] = art.uri
                    art.uri = staging.localize(art).uri
        remote, local = log_path(root, run_id, node.id), log_path(staging.dir, run_id, node.id)
        if fileio.isfile(remote):
            os.makedirs(os.path.dirname(local), exist_ok=True)
            fileio.copy_file(remote, local)
    name = f"run-{run_id}.html"
    return RunView(store, run, nodes, staging.dir, os.path.abspath(out or staging.path(REPORTS_DIR, name)),
                   url_root=root, upload_to=fileio.join(root, REPORTS_DIR, name))


def _infer_root(nodes: list[Node]) -> str | None:
    """The pipeline root from an output's URI, ``<root>/<node>/<output>/<execution id>``."""
    for node in nodes:
        for key, arts in node.outputs.items():
            for art in arts:
                parts = os.path.normpath(art.uri).split(os.sep)
                if len(parts) > 3 and parts[-3] == node.id and parts[-2] == key:
                    return os.sep.join(parts[:-3]) or os.sep
    return None


def _header(view: RunView) -> Html:
    run = view.run
    took = ""
    if run.get("finished") and run.get("started"):
        took = f", took {(run['finished'] - run['started']).total_seconds():.1f} s"
    lines = [f"<h1>Pipeline {esc(run['pipeline'])}: run {view.run_id}</h1>",
             f"<p>State <b>{esc(run['state'])}</b>; started {esc(str(run['started'])[:19])} UTC{esc(took)}"
             f" on {esc(run.get('host') or '?')} (pid {esc(run.get('pid') or '?')}).</p>"]
    if view.root:
        lines.append(f"<p>Root {code(view.url_root or view.root)}</p>")
    if run.get("error"):
        lines.append(f"<p>Error: {esc(run['error'])}</p>")
    return Html("".join(lines))


def build_sections(view: RunView) -> list[Section]:
    """Every section of the page, in order.

    A section whose files cannot be read (an artifact deleted since, a truncated file) says
    so instead of failing the page.
    """
    from google.protobuf import message, text_format

    from pipeline import report_data, report_model, report_run

    builders = [("dag", "Run and DAG", report_run.dag_section),
                ("statistics", "Statistics", report_data.statistics_section),
                ("anomalies", "Anomalies", report_data.anomalies_section),
                ("transform", "Transform", report_data.transform_section),
                ("training", "Training", report_model.training_section),
                ("evaluation", "Evaluation", report_model.evaluation_section),
                ("blessing", "Blessing", report_model.blessing_section),
                ("push", "Push and lineage", report_run.push_section)]
    sections = []
    for key, title, build in builders:
        try:
            sections.append(Section(key, title, build(view)))
        except (OSError, ValueError, message.DecodeError, text_format.ParseError) as e:
            sections.append(Section(key, title, note(f"This section could not be made: {type(e).__name__}: {e}",
                                                     "bad")))
    return sections


def render(view: RunView) -> str:
    """The HTML page of the run (its charts drawn by a worker process meanwhile)."""
    from pipeline.report_svg import rendering

    with rendering() as renderer:
        text = page(title=f"{view.run['pipeline']} run {view.run_id}", header=_header(view),
                    sections=build_sections(view))
        return renderer.fill(text) if renderer is not None else text


def write_report(*, root: str | None = None, metadata: str | None = None, run: int | None = None,
                 out: str | None = None) -> str:
    """Writes the report of run ``run`` (default: the newest) and returns the file's path.

    Args:
        root: The pipeline root (holds ``metadata.sqlite``, the logs, and by default the report
            under ``reports/run-<N>.html``). Under an object-store root the page is written in the
            pipeline's local staging dir, whose path is returned, and uploaded to the root's.
        metadata: A SQLAlchemy URL of the store, instead of the root's SQLite file.
        run: The run id (``python -m pipeline runs`` lists them).
        out: The HTML file to write.

    Raises:
        ValueError: No store, no runs, or no such run.
    """
    if metadata:
        store = md.MetadataStore(metadata)
    elif root and fileio.is_url(root):
        raise ValueError(f"report got --root={root!r} without --metadata; an object-store root holds no "
                         "metadata store. How to fix: pass --metadata URL, the store the pipeline used.")
    elif root:
        path = os.path.join(os.path.abspath(root), "metadata.sqlite")
        if not os.path.isfile(path):
            raise ValueError(f"report got --root={root!r}; there is no metadata.sqlite in it. How to fix: "
                             "pass the root a run used (python -m pipeline run FILE --root DIR), or --metadata URL.")
        store = md.MetadataStore(f"sqlite:///{path}")
    else:
        raise ValueError("report needs --root DIR or --metadata URL to find the metadata store.")
    view = load_run(store, run, root=root, out=out)
    text = render(view)
    os.makedirs(os.path.dirname(view.out), exist_ok=True)
    temporary = f"{view.out}.tmp-{os.getpid()}"
    with open(temporary, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(temporary, view.out)
    if view.upload_to:
        upload_file(view.out, view.upload_to)
    return view.out


def state_note(node: Node, view: RunView, what: str) -> Html | None:
    """Why a node's section has nothing to show (None when it ran or was cached)."""
    if node.execution is None:
        return note(f"{node.id} did not run in run {view.run_id}: it is not part of this run "
                    "(left out with --from/--to, or the run stopped before it).", "info")
    state = node.execution["state"]
    if state == md.CACHED:
        return None
    if state == md.COMPLETE:
        return None
    error = (node.execution.get("error") or "").strip().splitlines()
    detail = f": {error[0]}" if error else ""
    kind = "bad" if state == md.FAILED else "warn"
    return note(f"{node.id} is {state} in run {view.run_id}{detail}; no {what} to show.", kind)


def cached_note(node: Node) -> Html:
    """Says that a node reused an earlier execution's outputs (empty when it ran)."""
    if node.execution is None or node.execution["state"] != md.CACHED:
        return Html("")
    return note(f"{node.id} was a cache hit: it reused the outputs of execution "
                f"{node.execution.get('cached_from')}, shown here.", "info")


def nodes_or_note(view: RunView, types: tuple[str, ...], what: str) -> tuple[list[Node], Html]:
    """The nodes of these component types that have outputs to show, and notes for the others."""
    nodes = view.of_type(*types)
    if not nodes:
        return [], note(f"No {' or '.join(types)} ran in run {view.run_id}: the pipeline has none, "
                        f"or it was not part of this run.", "info")
    usable, notes = [], []
    for node in nodes:
        why = state_note(node, view, what)
        if why is None:
            usable.append(node)
        else:
            notes.append(why)
    return usable, Html("".join(notes))


def report_after_run(pipeline: Any, *, run_id: int | None = None, execution_id: int | None = None) -> str:
    """Writes the report of a run that just ended (given its id, or one of its executions' ids).

    The CLI calls it at the end of ``python -m pipeline run``, also after a failed run.
    """
    if run_id is None:
        store = md.MetadataStore(pipeline.metadata)
        with store.engine.connect() as conn:
            run_id = conn.execute(sa.select(md.executions.c.run_id).where(
                md.executions.c.id == execution_id)).scalar()
        if run_id is None:
            raise ValueError(f"report got execution_id={execution_id!r}, which is in no run of {store.url}.")
    return write_report(root=pipeline.root, metadata=pipeline.metadata, run=run_id)
