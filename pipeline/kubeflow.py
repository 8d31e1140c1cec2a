"""Kubeflow Pipelines v2: a project pipeline compiled to KFP IR YAML, one task per node.

The only module that imports kfp (the ``kubeflow`` extra). Each node of the pipeline
becomes one KFP task that runs, in the pipeline image (see the repository's Dockerfile)::

    python -m pipeline run-node FILE --node ID --run-key {{$.pipeline_job_uuid}} \\
        --root ROOT --metadata URL [--set KEY=VALUE ...] [--beam-arg=ARG ...]

with the pipeline's edges as task dependencies (``.after()``), all inside a ``dsl.ExitHandler``
whose task, ``finish-run``, runs ``python -m pipeline finish-run`` once they have all ended
(whatever their outcome) and marks the store's run COMPLETE or FAILED. The run key is KFP's run id,
so every task of one KFP run reads the inputs its producers made in that run (see
docs/orchestration.md). KFP's own caching is off for these tasks: the project's metadata
store caches (a node whose fingerprint is unchanged is recorded CACHED by run-node). No
artifact passes through KFP: they stay under ROOT (a volume every pod mounts at the same
path) and in the metadata store (PostgreSQL, shared by the pods). ROOT and the metadata URL
are run-time parameters of the compiled pipeline (``root``, ``metadata``).

Two modes build the same DAG with the same command lines:

* ``container`` (default): container components (``dsl.ContainerSpec``), what a cluster runs.
* ``local``: lightweight Python components, each starting the same ``run-node`` command in
  this Python; kfp 2.16's ``kfp.local.SubprocessRunner`` runs only lightweight Python
  components (it refuses container components, and its DockerRunner needs Docker), so this
  is the mode `run_local` uses. See docs/kubeflow.md for what differs.

Example:
    >>> from pipeline.kubeflow import compile_pipeline
    >>> # compile_pipeline("pipeline/examples/taxi.yaml", "taxi-kfp.yaml",
    >>> #                  image="registry.example/estimator-pipeline:0.1.0",
    >>> #                  metadata="postgresql+psycopg://pipeline@db:5432/metadata")

From a shell::

    python -m pipeline.kubeflow compile pipeline/examples/taxi.yaml --output taxi-kfp.yaml \\
        --image registry.example/estimator-pipeline:0.1.0 --root /mnt/pipeline/taxi \\
        --metadata postgresql+psycopg://pipeline@db:5432/metadata
    python -m pipeline.kubeflow run-local tests/x/toy_pipeline.py --root /tmp/toy
"""

import argparse
import dataclasses
import os
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

try:
    from kfp import compiler, dsl
    from kfp.dsl import python_component
except ImportError as e:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "pipeline.kubeflow needs kfp 2.16 (the kubeflow extra), which is not installed. How to fix: "
        "pip install -c constraints.txt -e '.[kubeflow]'") from e

from pipeline.cli import _join_beam_args, load_pipeline
from pipeline.staging import local_log_path
from pipeline.metadata import FAILED, MetadataStore

CONTAINER = "container"
LOCAL = "local"
MODES = (CONTAINER, LOCAL)

# The image built by the repository's Dockerfile; tag and push it to a registry the cluster
# pulls from, and pass that name (--image).
DEFAULT_IMAGE = "estimator-pipeline:0.1.0"
# Where every pod mounts the shared volume holding the artifacts; the default ROOT is
# <DEFAULT_ROOT_DIR>/<pipeline name>.
DEFAULT_ROOT_DIR = "/mnt/pipeline"
# The lightweight components' nominal image (kfp.local runs them in this Python instead).
LOCAL_BASE_IMAGE = "python:3.11-slim"
RUN_NODE_COMMAND = ("python", "-m", "pipeline", "run-node")
FINISH_RUN_COMMAND = ("python", "-m", "pipeline", "finish-run")
FINISH_TASK = "finish-run"  # the exit handler's task: runs after every node task, whatever their outcome
# KFP resolves this to the run's id (a UUID on a cluster; kfp.local makes a random number).
RUN_KEY_PLACEHOLDER = dsl.PIPELINE_JOB_ID_PLACEHOLDER

TaskHook = Callable[[Any, str], None]


@dataclasses.dataclass(frozen=True)
class Node:
    """One task of the compiled pipeline: a node id and the ids of the nodes it consumes."""

    id: str
    upstream: tuple[str, ...]


def pipeline_nodes(pipeline: Any) -> list[Node]:
    """The pipeline's nodes in run order, each with its producers and the gates it waits for
    (`pipeline.dsl.task_dependencies`)."""
    from pipeline.dsl import task_dependencies

    return [Node(node_id, upstream) for node_id, upstream in task_dependencies(pipeline.components).items()]


def kfp_name(name: str) -> str:
    """A KFP pipeline name (``[a-z0-9][a-z0-9-]*``, at most 128 characters) made from ``name``."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    if not cleaned:
        raise ValueError(f"pipeline name {name!r} has no letter or digit; KFP needs one. How to fix: "
                         "name the pipeline with letters or digits.")
    return cleaned[:128]


def run_node_args(pipeline_file: str, node_id: str, run_key: Any, root: Any, metadata: Any, *,
                  overrides: Sequence[str] = (), beam_args: Sequence[str] = ()) -> list:
    """The arguments after ``python -m pipeline run-node`` for one node (values may be KFP placeholders)."""
    return [pipeline_file, "--node", node_id, "--run-key", run_key, "--root", root, "--metadata", metadata,
            *_extra_args(overrides, beam_args)]


def _extra_args(overrides: Sequence[str], beam_args: Sequence[str]) -> list[str]:
    """``--set KEY=VALUE`` and ``--beam-arg=ARG`` options of run-node."""
    args = []
    for override in overrides:
        args += ["--set", override]
    return args + [f"--beam-arg={arg}" for arg in beam_args]


def build_kfp_pipeline(pipeline_file: str, *, mode: str = CONTAINER, image: str = DEFAULT_IMAGE,
                       file_in_image: str | None = None, root: str | None = None, metadata: str = "",
                       overrides: Sequence[str] = (), beam_args: Sequence[str] = (), retries: int = 0,
                       workdir: str | None = None, configure_task: TaskHook | None = None) -> Any:
    """The KFP pipeline (a ``@dsl.pipeline`` graph component) of a project pipeline file.

    Args:
        pipeline_file: A .yaml spec or a .py file defining ``create_pipeline()``, as for
            ``python -m pipeline run``. It is loaded here (no TensorFlow is imported) to read the
            nodes and their edges.
        mode: ``container`` (for a cluster) or ``local`` (for ``kfp.local``; see the module docstring).
        image: The image the container tasks run (built from the Dockerfile).
        file_in_image: The pipeline file's path in the image, relative to its working directory
            (/app) or absolute. Default: ``pipeline_file`` itself when it is relative and inside
            the current directory (the repository root, which the image holds at /app).
        root: Default of the ``root`` run parameter: the pipeline root every task uses (a shared
            volume's path). Default ``/mnt/pipeline/<name>`` (container) or the pipeline's own
            root (local).
        metadata: Default of the ``metadata`` run parameter: the metadata store's SQLAlchemy URL
            (``postgresql+psycopg://...`` on a cluster); empty: the pipeline's default (SQLite in
            the root).
        overrides: ``KEY=VALUE`` fields (``--set``) passed to every task's run-node.
        beam_args: Beam pipeline arguments passed to every task's run-node.
        retries: How many times KFP retries a failed task (a retried node finds its own earlier
            outputs in the project's cache).
        workdir: (local mode) the directory run-node starts in; default the current directory.
        configure_task: Called as ``configure_task(task, node_id)`` for each task, and as
            ``configure_task(task, "finish-run")`` for the exit handler's task, e.g. to mount the
            shared volume with kfp-kubernetes or set resources.

    Raises:
        ValueError: an unknown mode, a bad ``retries``, or a pipeline file without a path in the image.
    """
    if mode not in MODES:
        raise ValueError(f"kubeflow got mode={mode!r}; expected one of {list(MODES)}. How to fix: pass "
                         "'container' for a cluster or 'local' for kfp.local.")
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise ValueError(f"kubeflow got retries={retries!r}; expected an int >= 0.")
    if mode == CONTAINER and not image:
        raise ValueError("kubeflow got image=''; expected the pipeline image's name. How to fix: pass "
                         f"--image REGISTRY/estimator-pipeline:TAG (default {DEFAULT_IMAGE}).")
    pipeline = load_pipeline(pipeline_file, root=root, metadata=metadata or None, overrides=list(overrides))
    nodes = pipeline_nodes(pipeline)
    if mode == CONTAINER:
        task_file = _file_in_image(pipeline_file, file_in_image)
        default_root = root or f"{DEFAULT_ROOT_DIR}/{pipeline.name}"
    else:
        task_file = os.path.abspath(pipeline_file)
        default_root = pipeline.root  # root, made absolute (a URL kept)
        workdir = os.path.abspath(workdir or os.getcwd())
    factories = {node.id: (_container_component(node.id, task_file, image, overrides, beam_args)
                           if mode == CONTAINER else _local_component(node.id)) for node in nodes}

    def kfp_pipeline(root: str = default_root, metadata: str = metadata):
        if mode == CONTAINER:  # kfp.local runs no exit handler; run_local marks the run itself
            finish = _finish_component(task_file, image, overrides, beam_args)(
                run_key=RUN_KEY_PLACEHOLDER, root=root, metadata=metadata)
            finish.set_env_variable("PYTHONUNBUFFERED", "1")
            finish.set_display_name(FINISH_TASK)
            finish.set_caching_options(False)
            if configure_task is not None:
                configure_task(finish, FINISH_TASK)
            with dsl.ExitHandler(finish, name="pipeline-nodes"):
                node_tasks(root, metadata)
        else:
            node_tasks(root, metadata)

    def node_tasks(root: Any, metadata: Any) -> None:
        tasks: dict[str, Any] = {}
        for node in nodes:
            if mode == CONTAINER:
                task = factories[node.id](run_key=RUN_KEY_PLACEHOLDER, root=root, metadata=metadata)
                task.set_env_variable("PYTHONUNBUFFERED", "1")
            else:
                task = factories[node.id](
                    pipeline_file=task_file, node=node.id, run_key=RUN_KEY_PLACEHOLDER, root=root,
                    metadata=metadata, extra_args=_extra_args(overrides, beam_args), workdir=workdir)
            task.set_display_name(node.id)
            task.set_caching_options(False)  # the project's metadata store caches
            if retries:
                task.set_retry(retries)
            for upstream in node.upstream:
                task.after(tasks[upstream])
            if configure_task is not None:
                configure_task(task, node.id)
            tasks[node.id] = task

    kfp_pipeline.__doc__ = (f"The project pipeline {pipeline.name!r} ({os.path.basename(pipeline_file)}), one "
                            "task per node running python -m pipeline run-node.")
    return dsl.pipeline(name=kfp_name(pipeline.name), display_name=pipeline.name)(kfp_pipeline)


def compile_pipeline(pipeline_file: str, package_path: str, **options: Any) -> str:
    """Compiles a project pipeline file to KFP v2 IR YAML at ``package_path``; returns that path.

    ``options`` are those of `build_kfp_pipeline` (mode, image, file_in_image, root, metadata,
    overrides, beam_args, retries, workdir, configure_task).
    """
    if not package_path.endswith((".yaml", ".yml")):
        raise ValueError(f"kubeflow got package_path={package_path!r}; expected a .yaml file (KFP's IR "
                         "YAML). How to fix: name the output e.g. taxi-kfp.yaml.")
    kfp_pipeline = build_kfp_pipeline(pipeline_file, **options)
    compiler.Compiler().compile(kfp_pipeline, package_path)
    return package_path


@dataclasses.dataclass(frozen=True)
class LocalRun:
    """A finished `run_local` run: its id and key in the metadata store, and each node's state."""

    run_id: int
    run_key: str
    states: dict[str, str]


def run_local(pipeline_file: str, *, root: str | None = None, metadata: str = "",
              overrides: Sequence[str] = (), beam_args: Sequence[str] = (), workdir: str | None = None,
              kfp_root: str | None = None) -> LocalRun:
    """Runs the pipeline with ``kfp.local`` (its SubprocessRunner, in this Python), node by node.

    The local-mode pipeline of `build_kfp_pipeline` is run: each task starts ``python -m
    pipeline run-node`` with KFP's run id as the run key, as on a cluster. At the end the run is
    marked COMPLETE (or FAILED) in the metadata store. Run one at a time per store: the run is
    found as the pipeline's run that started during this call.

    Args:
        root, metadata, overrides, beam_args, workdir: As in `build_kfp_pipeline` (``root``
            defaults to the pipeline's own root).
        kfp_root: Where kfp.local writes its own task files; default a temporary directory.

    Raises:
        PipelineRunError: a node failed; the message is the component's error, as recorded in the
            metadata store, and ``log_path`` its log.
        RuntimeError: kfp.local failed before any node recorded a failure (see its log above).
    """
    from kfp import local

    from pipeline.launcher import PipelineRunError, finish_run

    pipeline = load_pipeline(pipeline_file, root=root, metadata=metadata or None, overrides=list(overrides))
    kfp_pipeline = build_kfp_pipeline(pipeline_file, mode=LOCAL, root=pipeline.root, metadata=metadata,
                                      overrides=overrides, beam_args=beam_args, workdir=workdir)
    store = MetadataStore(pipeline.metadata)
    newest = store.list_runs(limit=1)
    before = newest[0]["id"] if newest else 0
    failure: RuntimeError | None = None
    with tempfile.TemporaryDirectory(prefix="kfp-local-") as tmp:
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=kfp_root or tmp,
                   raise_on_error=True)
        try:
            kfp_pipeline(root=pipeline.root, metadata=metadata)
        except RuntimeError as e:  # kfp.local: "Pipeline ... finished with status FAILURE ..."
            failure = e
    runs = [r for r in store.list_runs(limit=100) if r["id"] > before and r["pipeline"] == pipeline.name]
    if failure is not None:
        for run in runs:
            failed = [e for e in store.executions_of_run(run["id"]) if e["state"] == FAILED]
            if failed:
                execution = failed[-1]
                summary = (execution["error"] or "no error recorded").split("\n", 1)[0]
                finish_run(pipeline, run["run_key"])  # FAILED, naming that node
                error = PipelineRunError(execution["component"], summary, execution["id"])
                error.log_path = local_log_path(pipeline.name, pipeline.root, pipeline.metadata, run["id"],
                                                execution["component"])
                raise error from failure
        raise RuntimeError(f"{failure} No node recorded a failure in {_safe_url(pipeline.metadata)}; see "
                           "the failed task's log above.") from failure
    if len(runs) != 1:
        raise RuntimeError(f"kfp.local finished, but {len(runs)} new runs of pipeline {pipeline.name!r} are in "
                           f"{_safe_url(pipeline.metadata)} (expected 1). How to fix: run one local run at a "
                           "time per metadata store.")
    run = runs[0]
    states = {e["component"]: e["state"] for e in store.executions_of_run(run["id"])}
    finish_run(pipeline, run["run_key"])
    return LocalRun(run["id"], run["run_key"], states)


def _safe_url(url: str) -> str:
    """The URL without a password."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def _file_in_image(pipeline_file: str, file_in_image: str | None) -> str:
    if file_in_image:
        return file_in_image
    relative = pipeline_file if not os.path.isabs(pipeline_file) else os.path.relpath(pipeline_file)
    relative = os.path.normpath(relative)
    if relative.startswith(".."):
        raise ValueError(
            f"kubeflow got pipeline file {pipeline_file!r}, which is outside the current directory, so its "
            "path in the image is unknown. How to fix: run from the repository root (the image holds it at "
            "/app), or pass file_in_image / --file-in-image with the file's path inside the image.")
    return relative.replace(os.sep, "/")


def _container_component(node_id: str, pipeline_file: str, image: str, overrides: Sequence[str],
                         beam_args: Sequence[str]) -> Any:
    """A container component running ``run-node`` for ``node_id`` (KFP names it after the node)."""

    def node_task(run_key: str, root: str, metadata: str) -> dsl.ContainerSpec:
        return dsl.ContainerSpec(
            image=image, command=list(RUN_NODE_COMMAND),
            args=run_node_args(pipeline_file, node_id, run_key, root, metadata, overrides=overrides,
                               beam_args=beam_args))

    node_task.__name__ = node_task.__qualname__ = node_id
    node_task.__doc__ = f"Runs node {node_id} (python -m pipeline run-node)."
    return dsl.container_component(node_task)


def _finish_component(pipeline_file: str, image: str, overrides: Sequence[str], beam_args: Sequence[str]) -> Any:
    """The exit handler's container component: ``python -m pipeline finish-run`` marks the store's
    run COMPLETE or FAILED once every node task has ended, whatever their outcome."""

    def finish_task(run_key: str, root: str, metadata: str) -> dsl.ContainerSpec:
        return dsl.ContainerSpec(
            image=image, command=list(FINISH_RUN_COMMAND),
            args=[pipeline_file, "--run-key", run_key, "--root", root, "--metadata", metadata,
                  *_extra_args(overrides, beam_args)])

    finish_task.__name__ = finish_task.__qualname__ = FINISH_TASK
    finish_task.__doc__ = "Marks the run COMPLETE or FAILED in the metadata store (python -m pipeline finish-run)."
    return dsl.container_component(finish_task)


def run_node(pipeline_file: str, node: str, run_key: str, root: str, metadata: str, extra_args: list,
             workdir: str):
    """Lightweight KFP component: ``python -m pipeline run-node`` for one node, in this Python.

    KFP copies this function's source into the task, so it imports what it needs itself.
    The command line is a container task's; the child's output is relayed, and a failure
    raises with run-node's one-line error.
    """
    import subprocess
    import sys

    command = [sys.executable, "-m", "pipeline", "run-node", pipeline_file, "--node", node,
               "--run-key", run_key, "--root", root, "--metadata", metadata, *extra_args]
    print("run-node:", " ".join(command[4:]), flush=True)
    last_error = ""
    with subprocess.Popen(command, cwd=workdir or None, stderr=subprocess.PIPE, text=True, bufsize=1) as child:
        for line in child.stderr:
            sys.stderr.write(line)
            if line.startswith("error: "):
                last_error = line.strip()
    if child.returncode != 0:
        raise RuntimeError(f"run-node --node {node} exited with status {child.returncode}: "
                           f"{last_error or 'see its output above'}")


_RUN_NODE_COMPONENT: Any = None


def _local_component(node_id: str) -> Any:
    """The `run_node` lightweight component, named after ``node_id`` (so is its KFP task)."""
    global _RUN_NODE_COMPONENT
    if _RUN_NODE_COMPONENT is None:
        # No pip install in the task: kfp.local runs it in this Python, where kfp is installed.
        _RUN_NODE_COMPONENT = dsl.component(run_node, base_image=LOCAL_BASE_IMAGE, install_kfp_package=False)
    spec = dataclasses.replace(_RUN_NODE_COMPONENT.component_spec, name=node_id)
    return python_component.PythonComponent(component_spec=spec, python_func=run_node)


# CLI -------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline.kubeflow",
                                     description="Compile a pipeline for Kubeflow Pipelines v2, or run it "
                                                 "with kfp.local.")
    sub = parser.add_subparsers(dest="command", required=True)
    comp = sub.add_parser("compile", help="write the KFP v2 IR YAML (one task per node)")
    comp.add_argument("file", help="pipeline.py (defines create_pipeline()) or pipeline.yaml")
    comp.add_argument("--output", "-o", required=True, help="the IR YAML to write, e.g. taxi-kfp.yaml")
    comp.add_argument("--image", default=DEFAULT_IMAGE, help=f"the pipeline image (default {DEFAULT_IMAGE})")
    comp.add_argument("--file-in-image", help="the pipeline file's path inside the image (default FILE, "
                      "relative to the repository root = the image's /app)")
    comp.add_argument("--mode", choices=MODES, default=CONTAINER,
                      help="container (for a cluster, default) or local (lightweight components for kfp.local)")
    comp.add_argument("--retries", type=int, default=0, help="KFP retries of a failed task (default 0)")
    for p in (comp, sub.add_parser("run-local", help="run the pipeline with kfp.local's SubprocessRunner")):
        if p is not comp:
            p.add_argument("file", help="pipeline.py or pipeline.yaml")
        p.add_argument("--workdir", help="(local mode) the directory run-node starts in (default: the current one)")
        p.add_argument("--root", help="pipeline root (default: /mnt/pipeline/<name> for compile, the "
                       "pipeline's own root for run-local); a run parameter of the compiled pipeline")
        p.add_argument("--metadata", default="", help="SQLAlchemy URL of the metadata store (default: SQLite "
                       "in the root); a run parameter of the compiled pipeline")
        p.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE",
                       help="override a field of a .yaml spec or a create_pipeline() argument, in every task")
        p.add_argument("--beam-arg", action="append", default=[], dest="beam_args", metavar="ARG",
                       help="a Beam pipeline arg for every task; repeat it")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pipeline.kubeflow compile|run-local ...``; exit 0, 1 (a node failed) or 2 (bad input)."""
    from pipeline.launcher import PipelineRunError

    args = _parser().parse_args(_join_beam_args(list(sys.argv[1:] if argv is None else argv)))
    try:
        if args.command == "compile":
            path = compile_pipeline(
                args.file, args.output, mode=args.mode, image=args.image, file_in_image=args.file_in_image,
                root=args.root, metadata=args.metadata, overrides=args.overrides, beam_args=args.beam_args,
                retries=args.retries, workdir=args.workdir)
            print(f"wrote {path}")
            if args.mode == CONTAINER and not args.metadata.startswith("postgresql"):
                print("note: no PostgreSQL --metadata URL: the tasks share a SQLite file in the root; "
                      "pass --metadata postgresql+psycopg://... (or set the run's 'metadata' parameter) "
                      "for a cluster", file=sys.stderr)
            return 0
        result = run_local(args.file, root=args.root, metadata=args.metadata, overrides=args.overrides,
                           beam_args=args.beam_args, workdir=args.workdir)
    except PipelineRunError as e:
        log = f" (full log: {e.log_path})" if e.log_path and os.path.exists(e.log_path) else ""
        print(f"error: {e}{log}".replace("\n", " "), file=sys.stderr)
        return 1
    except (ValueError, TypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    states = ", ".join(f"{node}={state}" for node, state in result.states.items())
    print(f"run {result.run_id} (key {result.run_key!r}): {states}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
