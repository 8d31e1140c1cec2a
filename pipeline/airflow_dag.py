"""Airflow 3 DAGs from pipeline files: one task per node, scheduled retraining.

`build_dag` turns a pipeline file (a ``.yaml`` spec or a ``.py`` file defining
``create_pipeline``, as ``python -m pipeline run`` takes) into an Airflow 3 DAG:

- one `PipelineNodeOperator` task per component or resolver, its task id the node id;
- a dependency for every channel (``producer >> consumer``);
- each task runs ``python -m pipeline run-node FILE --node ID --run-key <Airflow run_id>``
  in a subprocess, so the nodes of one DAG run read each other's outputs and never those of
  another DAG run or backfill (see docs/orchestration.md, run keys);
- what the node prints, and its component log (``<root>/logs/<run>/<node>.log``), go to
  the task's Airflow log as they are written;
- at the end of the DAG run, its run in the pipeline's metadata store is marked COMPLETE or
  FAILED.

Why a subprocess rather than `pipeline.launcher.launch_node` in the task's own process: the
node's TensorFlow, Beam and TFT state (threads, gRPC servers, GPU memory) ends with the
node; the node can run in another interpreter than Airflow's (``python=``: a venv where the
pipeline's pins do not have to agree with Airflow's); a task killed by Airflow (timeout,
"mark failed") takes the node's process group with it; and the command is exactly what a
container runs (`node_command`, for a KubernetesPodOperator). It costs one interpreter start
per task (about a second plus the imports the node needs).

Parsing a DAG made here imports Airflow, the project's DSL and the component classes, but
not TensorFlow, Beam or TFT: those load only when a node runs, in its subprocess. A pipeline
``.py`` file must keep it so (import TensorFlow inside functions); `build_dag` warns when
loading the file imported one of them.

Only this module (and the DAG files that call it) imports ``airflow``.

Example:
    A DAG file in Airflow's dags folder::

        from datetime import datetime
        from pipeline.airflow_dag import build_dag

        dag = build_dag("/srv/pipelines/taxi.yaml", dag_id="taxi_retraining", schedule="@daily",
                        start_date=datetime(2026, 1, 1), root="/shared/taxi",
                        metadata="postgresql+psycopg://pipeline@db:5432/metadata", retries=2)
"""

from __future__ import annotations

import collections
import datetime as dt
import inspect
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from airflow.sdk import DAG, BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

# Modules that must not load while a DAG file is parsed (TFX users' DAGs hung on them).
HEAVY_MODULES = ("tensorflow", "apache_beam", "tensorflow_transform", "tfx_bsl",
                 "tensorflow_model_analysis")
# run-node's exit status for a bad argument (a file, a node id, an override): retrying cannot help.
BAD_ARGUMENT_EXIT = 2
# The node's last output lines kept for the error message (all of them go to the task log).
_KEPT_LINES = 500
_TASK_ID = re.compile(r"^[\w.-]+$")
_log = logging.getLogger(__name__)


def build_dag(pipeline: str | os.PathLike[str] | Callable[..., Any], *, dag_id: str | None = None,
              schedule: Any = None, start_date: dt.datetime | None = None,
              end_date: dt.datetime | None = None, root: str | os.PathLike[str] | None = None,
              metadata: str | None = None, overrides: Mapping[str, Any] | Sequence[str] = (),
              beam_args: Sequence[str] = (), python: str | None = None,
              env: Mapping[str, str] | None = None, retries: int | None = None,
              retry_delay: dt.timedelta | None = None,
              execution_timeout: dt.timedelta | None = None, catchup: bool = False,
              max_active_runs: int = 1, default_args: Mapping[str, Any] | None = None,
              tags: Sequence[str] = ("pipeline",), image: str | None = None,
              **dag_kwargs: Any) -> DAG:
    """Builds an Airflow 3 DAG that runs the pipeline, one task per node.

    Args:
        pipeline: A ``.yaml``/``.yml`` spec or a ``.py`` file defining ``create_pipeline``, or
            that ``create_pipeline`` function itself (its file is used). The file is loaded
            here, while the DAG is parsed, to learn the nodes and edges, and again by every
            task's subprocess.
        dag_id: The DAG id; default the pipeline's name.
        schedule: Airflow's ``schedule``: a cron string or preset (``"@daily"``), a
            ``timedelta``, a timetable (``CronTriggerTimetable``, ...), assets, or None
            (triggered runs only).
        start_date, end_date: The first and last logical dates to schedule.
        root: The pipeline root (artifacts; the default SQLite store). Every worker must see
            it at this path. Default the pipeline's own root (a spec's ``root:``; a ``.py``
            file's default, made absolute where the DAG is parsed): give it explicitly.
        metadata: The metadata store's SQLAlchemy URL; default ``sqlite:///<root>/metadata.sqlite``,
            which is for one machine. Workers on several machines share a PostgreSQL URL
            (``postgresql+psycopg://user@host:5432/db``); keep the password out of the URL
            (``PGPASSWORD`` in ``env``, or ``~/.pgpass``).
        overrides: ``--set`` values: ``{"training.steps": 200}`` for a spec, or
            ``{"data_root": "/data/taxi"}`` for a ``create_pipeline`` argument (also as
            ``"KEY=VALUE"`` strings). Applied when parsing and in every task.
        beam_args: Beam pipeline args for every node (``--beam-arg``).
        python: The interpreter that runs the nodes (one with this project installed);
            default the interpreter running Airflow.
        env: Extra environment variables for the nodes' processes (on top of the worker's).
        retries, retry_delay, execution_timeout: Each task's retry count (default 0), the wait
            between tries (default 5 minutes), and the time after which Airflow kills a try
            (default none). A retried node reuses what its DAG run already produced; only the
            failed node runs again.
        catchup: Schedule the runs missed since ``start_date`` (one run key each).
        max_active_runs: Default 1: scheduled retraining runs one after another, so each run's
            resolvers see the model the previous run blessed. Runs never share outputs
            (run keys); more at once only race for the newest blessed model.
        default_args: More Airflow task arguments (``pool``, ``queue``, ``owner``,
            ``on_failure_callback``, ...); the arguments above, when given, win.
        tags: The DAG's tags.
        image: Not supported: running each node in a container image. Use `node_command`
            with the container operator of your Airflow deployment instead.
        **dag_kwargs: Passed to ``airflow.sdk.DAG`` (``description``, ``doc_md``, ``params``, ...).

    Returns:
        The DAG; assign it to a module-level name in a file of Airflow's dags folder.

    Raises:
        ValueError: a bad file, override, node id or argument (the message says how to fix it).
        NotImplementedError: ``image``, or a Jinja template in ``overrides``/``beam_args``.
    """
    if image is not None:
        raise NotImplementedError(
            f"build_dag got image={image!r}: running nodes in container images is not supported. "
            "How to fix: leave image unset (the nodes run as subprocesses of the Airflow worker), or "
            "build your own tasks with your container operator and "
            "pipeline.airflow_dag.node_command(...) as the container's command.")
    path = pipeline_file(pipeline)
    sets = _overrides(overrides)
    beam = [str(a) for a in beam_args]
    for value in (*sets, *beam):
        if "{{" in value or "{%" in value:
            raise NotImplementedError(
                f"build_dag got {value!r}: Jinja templates in overrides and beam_args are not "
                "supported (the DAG's nodes are fixed when it is parsed, and every task of a run must "
                "see the same pipeline). How to fix: pass a fixed value; for data that changes per run, "
                "use a {SPAN} file pattern, so that each run takes the newest span.")
    if retries is not None and (not isinstance(retries, int) or retries < 0):
        raise ValueError(f"build_dag got retries={retries!r}; expected an int >= 0. How to fix: e.g. retries=2.")
    if not isinstance(max_active_runs, int) or max_active_runs < 1:
        raise ValueError(f"build_dag got max_active_runs={max_active_runs!r}; expected an int >= 1. "
                         "How to fix: e.g. max_active_runs=1.")

    loaded = load_for_dag(path, root=root, metadata=metadata, overrides=sets, beam_args=beam)
    dag_id = dag_id or loaded.name
    for node in loaded.components:
        if not _TASK_ID.match(node.id):
            raise ValueError(
                f"{path}: node id {node.id!r} is not a valid Airflow task id (letters, digits, '_', "
                "'-', '.'). How to fix: give the node another id with .with_id('...') or id=...")

    spec = NodeSpec(file=path, pipeline_name=loaded.name, root=loaded.root, metadata=loaded.metadata,
                    overrides=tuple(sets), beam_args=tuple(beam), python=python or sys.executable,
                    env=dict(env or {}))
    args = {"retries": 0, "retry_delay": dt.timedelta(minutes=5), **(default_args or {})}
    given = {"retries": retries, "retry_delay": retry_delay, "execution_timeout": execution_timeout}
    args.update({key: value for key, value in given.items() if value is not None})
    on_success = _callbacks(_FinishRun(spec, failed=False), dag_kwargs.pop("on_success_callback", None))
    on_failure = _callbacks(_FinishRun(spec, failed=True), dag_kwargs.pop("on_failure_callback", None))
    dag = DAG(dag_id, schedule=schedule, start_date=start_date, end_date=end_date, catchup=catchup,
              max_active_runs=max_active_runs, default_args=args, tags=list(tags),
              on_success_callback=on_success, on_failure_callback=on_failure,
              **_with_doc(dag_kwargs, loaded, path))
    tasks = {node.id: PipelineNodeOperator(task_id=node.id, spec=spec, dag=dag) for node in loaded.components}
    from pipeline.dsl import task_dependencies

    for node_id, upstream_ids in task_dependencies(loaded.components).items():
        for upstream_id in upstream_ids:
            tasks[upstream_id] >> tasks[node_id]
    return dag


def pipeline_file(pipeline: str | os.PathLike[str] | Callable[..., Any]) -> str:
    """The absolute path of the pipeline file that ``pipeline`` names (see `build_dag`)."""
    from pipeline.dsl import Pipeline

    if isinstance(pipeline, Pipeline):
        raise ValueError(
            "build_dag got a Pipeline object; expected its file, which each task's process loads "
            "again. How to fix: pass the path of the .py file whose create_pipeline() builds it.")
    if callable(pipeline):
        source = inspect.getsourcefile(pipeline) if inspect.isfunction(pipeline) else None
        if getattr(pipeline, "__name__", None) != "create_pipeline" or not source \
                or getattr(pipeline, "__qualname__", "") != "create_pipeline":
            raise ValueError(
                f"build_dag got pipeline={pipeline!r}; expected a pipeline file or a module-level "
                "create_pipeline function (each task loads it again from its file). How to fix: pass "
                "the path of the .py or .yaml file.")
        return os.path.abspath(source)
    if not isinstance(pipeline, (str, os.PathLike)):
        raise ValueError(f"build_dag got pipeline={pipeline!r}; expected the path of a .py or .yaml "
                         "pipeline file. How to fix: pass that path.")
    path = os.path.abspath(os.fspath(pipeline))
    if not path.endswith((".py", ".yaml", ".yml")) or not os.path.isfile(path):
        raise ValueError(f"build_dag got pipeline={os.fspath(pipeline)!r}; expected an existing .py or "
                         ".yaml pipeline file. How to fix: check the path (relative paths are taken from "
                         f"the current directory, {os.getcwd()}; prefer an absolute one).")
    return path


def load_for_dag(path: str, *, root: str | os.PathLike[str] | None = None, metadata: str | None = None,
                 overrides: Sequence[str] = (), beam_args: Sequence[str] = ()) -> Any:
    """Loads the pipeline as the CLI does; warns when that imported TensorFlow, Beam or TFT."""
    from pipeline.cli import load_pipeline

    before = {m for m in HEAVY_MODULES if m in sys.modules}
    pipeline = load_pipeline(path, root=os.fspath(root) if root is not None else None,
                             beam_args=list(beam_args) or None, metadata=metadata, overrides=list(overrides))
    heavy = sorted(m for m in HEAVY_MODULES if m in sys.modules and m not in before)
    if heavy:
        _log.warning("%s imported %s while the DAG was parsed, which makes parsing slow (Airflow's "
                     "dagbag_import_timeout kills it). How to fix: import them inside the functions that "
                     "run the component, not at the top of the pipeline file.", path, ", ".join(heavy))
    return pipeline


def node_command(spec: NodeSpec, node_id: str, run_key: str) -> list[str]:
    """The ``python -m pipeline run-node`` command line of one node of one run."""
    command = [spec.python, "-m", "pipeline", "run-node", spec.file, "--node", node_id,
               "--run-key", run_key, "--root", spec.root, "--metadata", spec.metadata]
    for value in spec.overrides:
        command += ["--set", value]
    command += [f"--beam-arg={arg}" for arg in spec.beam_args]
    return command


class NodeSpec:
    """How a task runs its node: the file, root, store and interpreter (see `build_dag`)."""

    def __init__(self, *, file: str, pipeline_name: str, root: str, metadata: str,
                 overrides: tuple[str, ...] = (), beam_args: tuple[str, ...] = (),
                 python: str = sys.executable, env: dict[str, str] | None = None):
        self.file = file
        self.pipeline_name = pipeline_name
        self.root = root
        self.metadata = metadata
        self.overrides = overrides
        self.beam_args = beam_args
        self.python = python
        self.env = dict(env or {})

    def __repr__(self) -> str:
        return f"NodeSpec({self.file!r}, root={self.root!r}, metadata={redact(self.metadata)!r})"


class PipelineNodeOperator(BaseOperator):
    """Runs one pipeline node for the DAG run: ``python -m pipeline run-node`` in a subprocess.

    The run key is the DAG run's ``run_id``. The subprocess's output and the node's
    component log are copied into the task log as they come. Exit status 1 (the node
    failed) fails the try, which Airflow retries; 2 (a bad argument) fails the task without
    retrying.
    """

    ui_color = "#d9ead3"

    def __init__(self, *, spec: NodeSpec, poll_s: float = 0.5, kill_grace_s: float = 10.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.spec = spec
        self.poll_s = poll_s
        self.kill_grace_s = kill_grace_s
        self._process: subprocess.Popen[bytes] | None = None

    def execute(self, context: Any) -> dict[str, Any]:
        run_key = str(context["run_id"])
        command = node_command(self.spec, self.task_id, run_key)
        self.log.info("run key %s: %s", run_key, " ".join(redact(c) for c in command))
        tail = _ComponentLogTail(self.spec, self.task_id, run_key)
        env = {**os.environ, **self.spec.env, "PYTHONUNBUFFERED": "1"}
        try:
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                       start_new_session=True)
        except OSError as e:
            raise AirflowFailException(
                f"node {self.task_id}: cannot start {self.spec.python!r} ({e}). How to fix: pass build_dag "
                "python= an interpreter that has this project installed.") from e
        self._process = process
        lines: collections.deque[str] = collections.deque(maxlen=_KEPT_LINES)
        reader = threading.Thread(target=self._forward, args=(process, lines), daemon=True,
                                  name=f"{self.task_id}-output")
        reader.start()
        try:
            while process.poll() is None:
                tail.forward(self.log)
                time.sleep(self.poll_s)
            reader.join(timeout=30)
            tail.forward(self.log)
        finally:
            self._stop(process)
        if process.returncode != 0:
            details = tail.failure_details()
            if details:
                self.log.error("%s (from the metadata store):\n%s", self.task_id, details)
            errors = [line for line in lines if line.startswith("error:")]
            message = errors[-1] if errors else (lines[-1] if lines else "no output")
            summary = (f"node {self.task_id} of pipeline {self.spec.pipeline_name!r} exited with "
                       f"status {process.returncode} (run key {run_key!r}): {message}")
            if process.returncode == BAD_ARGUMENT_EXIT:
                raise AirflowFailException(summary)
            raise AirflowException(summary)
        return _parse_result(lines)

    def _forward(self, process: subprocess.Popen[bytes], lines: collections.deque[str]) -> None:
        assert process.stdout is not None
        for raw in iter(process.stdout.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            lines.append(line)
            if line.startswith("error:"):
                self.log.error("%s", line)
            else:
                self.log.info("%s", line)

    def on_kill(self) -> None:
        if self._process is not None:
            self._stop(self._process)

    def _stop(self, process: subprocess.Popen[bytes]) -> None:
        """Ends the node's process group (SIGTERM, then SIGKILL after ``kill_grace_s``)."""
        if process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, self.kill_grace_s), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue


_RESULT = re.compile(r"^(?P<node>[\w.-]+): (?P<state>[A-Z]+) \(run (?P<run>\d+), key .*, execution "
                     r"(?P<execution>\d+)\)")


def _parse_result(lines: collections.deque[str]) -> dict[str, Any]:
    """The XCom value: ``{"state", "run_id", "execution_id"}`` from run-node's last line."""
    for line in reversed(lines):
        match = _RESULT.match(line)
        if match:
            return {"state": match["state"], "run_id": int(match["run"]),
                    "execution_id": int(match["execution"])}
    return {}


class _ComponentLogTail:
    """Copies new lines of ``<root>/logs/<run id>/<node>.log`` into the task log.

    The file is appended to by every try of the node in one run: a retry starts from the
    size the file had when it started, so each try's log shows only its own lines.
    """

    def __init__(self, spec: NodeSpec, node_id: str, run_key: str):
        self.spec = spec
        self.node_id = node_id
        self.run_key = run_key
        self.store: Any = None
        self.path: str | None = None
        self.offset = 0
        self.partial = b""
        self.executions_before = 0
        run_id = self._locate()
        if self.path is not None and os.path.exists(self.path):
            self.offset = os.path.getsize(self.path)
        if run_id is not None:
            self.executions_before = max((e["id"] for e in self.store.executions_of_run(run_id)), default=0)

    def _locate(self) -> int | None:
        """Finds the run (recorded by the node's process if new) and its log file; returns the run id."""
        from pipeline.metadata import MetadataStore
        from pipeline.staging import local_log_path

        try:
            if self.store is None:
                self.store = MetadataStore(self.spec.metadata)
            run_id = self.store.run_id_of(self.spec.pipeline_name, self.run_key)
        except Exception as e:  # the subprocess reports a store it cannot open
            _log.debug("metadata store not readable yet: %s", e)
            return None
        if run_id is not None:
            self.path = local_log_path(self.spec.pipeline_name, self.spec.root, self.spec.metadata, run_id,
                                       self.node_id)
        return run_id

    def failure_details(self) -> str | None:
        """The error and traceback the store recorded for this node's newest failed execution."""
        from pipeline.metadata import FAILED

        try:
            if self.store is None:
                return None
            run_id = self.store.run_id_of(self.spec.pipeline_name, self.run_key)
            failed = [e for e in self.store.executions_of_run(run_id) if e["component"] == self.node_id
                      and e["state"] == FAILED] if run_id is not None else []
        except Exception as e:  # the store is what failed: run-node's own output says so
            _log.debug("could not read the failed execution: %s", e)
            return None
        failed = [e for e in failed if e["id"] > self.executions_before]  # this try's, not an earlier one's
        if not failed:
            return None
        return str(max(failed, key=lambda e: e["id"])["error"] or "") or None

    def forward(self, log: Any) -> None:
        if self.path is None:
            self._locate()
            if self.path is None:
                return
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return
        self.offset += len(data)
        data = self.partial + data
        *complete, self.partial = data.split(b"\n")
        for raw in complete:
            log.info("[%s.log] %s", self.node_id, raw.decode("utf-8", errors="replace"))


class _FinishRun:
    """DAG callback: marks the DAG run's run in the pipeline's metadata store COMPLETE or FAILED."""

    def __init__(self, spec: NodeSpec, *, failed: bool):
        self.spec = spec
        self.failed = failed

    def __repr__(self) -> str:
        state = "FAILED" if self.failed else "COMPLETE"
        return f"<mark the run of pipeline {self.spec.pipeline_name!r} {state} in {redact(self.spec.metadata)}>"

    def __call__(self, context: Any) -> None:
        from pipeline.metadata import COMPLETE, FAILED, MetadataStore

        dag_run = context.get("dag_run")
        if dag_run is None:
            return
        store = MetadataStore(self.spec.metadata)
        run_id = store.run_id_of(self.spec.pipeline_name, dag_run.run_id)
        if run_id is None:
            return  # no node ran
        error = f"Airflow DAG run {dag_run.run_id}: {context.get('reason') or 'failed'}" if self.failed else None
        store.finish_run(run_id, FAILED if self.failed else COMPLETE, error)


def _callbacks(ours: Callable[[Any], None], theirs: Any) -> list[Callable[[Any], None]]:
    """Our callback first, then the user's (one callable or a list)."""
    if theirs is None:
        return [ours]
    return [ours, *(theirs if isinstance(theirs, (list, tuple)) else [theirs])]


def _overrides(overrides: Mapping[str, Any] | Sequence[str]) -> list[str]:
    if isinstance(overrides, Mapping):
        result = []
        for key, value in overrides.items():
            result.append(f"{key}={json.dumps(value)}")  # JSON is YAML: the value arrives as given
        return result
    if isinstance(overrides, str):
        raise ValueError(f"build_dag got overrides={overrides!r}; expected a dict or a list of "
                         "'KEY=VALUE' strings. How to fix: wrap it in a list.")
    result = [str(o) for o in overrides]
    bad = [o for o in result if "=" not in o]
    if bad:
        raise ValueError(f"build_dag got overrides {bad}; expected 'KEY=VALUE'. How to fix: e.g. "
                         "'training.steps=200', or pass a dict.")
    return result


def _with_doc(dag_kwargs: dict[str, Any], loaded: Any, path: str) -> dict[str, Any]:
    if "doc_md" not in dag_kwargs and "description" not in dag_kwargs:
        dag_kwargs["description"] = f"pipeline {loaded.name} ({os.path.basename(path)}), root {loaded.root}"
    return dag_kwargs


def redact(text: str) -> str:
    """``text`` with the password of a URL in it replaced by ``***``."""
    return re.sub(r"(://[^:/@\s]+:)[^@\s]+@", r"\1***@", text)
