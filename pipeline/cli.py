"""``python -m pipeline``: run a pipeline (Python or YAML), list runs, show lineage.

TensorFlow and Beam are imported only when a component runs, so ``--help`` is fast.

Example:
    $ python -m pipeline run pipeline/examples/taxi.yaml --root /tmp/taxi
    $ python -m pipeline run pipeline/examples/taxi.yaml --set training.steps=200
    $ python -m pipeline run pipeline/examples/taxi_pipeline.py --beam-arg=--direct_num_workers=1
    $ python -m pipeline runs --root /tmp/taxi
    $ python -m pipeline lineage 12 --root /tmp/taxi
    $ python -m pipeline report --root /tmp/taxi --run 3
    $ python -m pipeline run-node pipeline/examples/taxi.yaml --node Trainer --run-key manual__1
    $ python -m pipeline finish-run pipeline/examples/taxi.yaml --run-key manual__1
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import os
import sys
from typing import Any


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a pipeline file (.py with create_pipeline(), or .yaml)")
    run.add_argument("file", help="pipeline.py (defines create_pipeline(**overrides)) or pipeline.yaml")
    run.add_argument("--root", help="pipeline root (artifacts + default SQLite metadata)")
    run.add_argument("--metadata", help="SQLAlchemy URL of the metadata store")
    run.add_argument("--beam-arg", action="append", default=None, dest="beam_args", metavar="ARG",
                     help="a Beam pipeline arg, passed unchanged; repeat it, e.g. --beam-arg --runner=FlinkRunner")
    run.add_argument("--from", dest="from_nodes", action="append", default=[], metavar="NODE",
                     help="run only this node and what is downstream of it")
    run.add_argument("--to", dest="to_nodes", action="append", default=[], metavar="NODE",
                     help="run only this node and what is upstream of it")
    run.add_argument("--no-cache", action="store_true", help="rerun every selected component")
    run.add_argument("--require-push", action="store_true",
                     help="exit with status 3 when the run completes without pushing a model (for schedulers)")
    run.add_argument("--verbose", action="store_true",
                     help="show TensorFlow's, Beam's and the components' own output on the terminal "
                          "(by default it goes only to <root>/logs/<run>/<node>.log)")
    run.add_argument("--lock-timeout", type=float, default=None, metavar="SECONDS",
                     help="wait this long for another run of the pipeline on the same metadata store "
                          "(default $PIPELINE_LOCK_TIMEOUT or 600)")
    run.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE",
                     help="override a field of a .yaml spec (dotted KEY, VALUE parsed as YAML), or pass a "
                          "keyword argument to a .py file's create_pipeline(); repeat it, "
                          "e.g. --set training.steps=200 --set push.model_name=taxi, or --set data_root=DIR")
    run.add_argument("--no-report", action="store_true",
                     help="do not write the run's HTML report (<root>/reports/run-<N>.html)")
    sub.add_parser("compile-kfp", add_help=False,
                   help="compile FILE to Kubeflow Pipelines v2 IR YAML "
                        "(options: python -m pipeline.kubeflow compile --help)")
    report = sub.add_parser("report", help="write a run's HTML report (DAG, statistics, metrics, lineage)")
    report.add_argument("--root", help="pipeline root holding metadata.sqlite")
    report.add_argument("--metadata", help="SQLAlchemy URL of the metadata store")
    report.add_argument("--run", type=int, help="run id (default: the newest run)")
    report.add_argument("--out", help="HTML file to write (default: <root>/reports/run-<N>.html)")
    node = sub.add_parser("run-node", help="run one node of a run (for an orchestrator's task, e.g. in a "
                          "container): its inputs are what its producers made in the same run")
    node.add_argument("file", help="pipeline.py or pipeline.yaml, as for run")
    node.add_argument("--node", required=True, metavar="ID", help="the component or resolver id")
    node.add_argument("--run-key", required=True, metavar="KEY",
                      help="the orchestrator's run id (e.g. Airflow's run_id); one key per pipeline run")
    _orchestrated_options(node)
    finish = sub.add_parser("finish-run", help="mark a run COMPLETE or FAILED from its nodes' executions (an "
                            "orchestrator's final task, e.g. a KFP exit handler)")
    finish.add_argument("file", help="pipeline.py or pipeline.yaml, as for run")
    finish.add_argument("--run-key", required=True, metavar="KEY", help="the run's key, as given to run-node")
    _orchestrated_options(finish)
    for name, help_ in (("runs", "list runs"), ("lineage", "show where an artifact came from")):
        p = sub.add_parser(name, help=help_)
        if name == "lineage":
            p.add_argument("artifact", help="artifact id or URI")
        p.add_argument("--root", help="pipeline root holding metadata.sqlite")
        p.add_argument("--metadata", help="SQLAlchemy URL of the metadata store")
    check = sub.add_parser("check", help="validate a pipeline file without running it")
    check.add_argument("file")
    check.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE",
                       help="override a field of a .yaml spec, as for run")
    return parser


def load_pipeline(path: str, *, root: str | None = None, beam_args: list[str] | None = None,
                  metadata: str | None = None, overrides: list[str] | None = None) -> Any:
    """Builds the Pipeline from a .yaml spec or a .py file defining ``create_pipeline``.

    ``overrides`` (``KEY=VALUE``, the CLI's ``--set``) change fields of a .yaml spec, or pass
    keyword arguments to a .py file's ``create_pipeline`` (``--set data_root=/data/taxi``; the
    VALUE is parsed as YAML, so ``--set train_steps=200`` gives an int).
    """
    if path.endswith((".yaml", ".yml")):
        from pipeline.yaml_spec import build_pipeline, load_spec

        return build_pipeline(load_spec(path, overrides=overrides or ()), root=root,
                              beam_pipeline_args=beam_args, metadata=metadata)
    if not path.endswith(".py") or not os.path.isfile(path):
        raise ValueError(f"pipeline got file={path!r}; expected an existing .py or .yaml file. "
                         "How to fix: check the path.")
    module_spec = importlib.util.spec_from_file_location("user_pipeline", path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules["user_pipeline"] = module
    module_spec.loader.exec_module(module)
    create = getattr(module, "create_pipeline", None)
    if create is None:
        raise ValueError(f"pipeline got file={path!r}, which defines no create_pipeline(). How to fix: define "
                         "create_pipeline(*, root=..., beam_pipeline_args=..., metadata=...) returning a Pipeline.")
    accepted = inspect.signature(create).parameters
    kwargs = {k: v for k, v in (("root", root), ("beam_pipeline_args", beam_args), ("metadata", metadata))
              if v is not None}
    unsupported = [k for k in kwargs if k not in accepted]
    if unsupported:
        raise ValueError(f"{path}: create_pipeline() does not accept {unsupported}. How to fix: add those "
                         "keyword arguments to it.")
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    for override in overrides or ():
        key, value = _py_override(path, override)
        if key not in accepted and not takes_any:
            names = [n for n, p in accepted.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
            raise ValueError(f"{path}: --set {override!r}: create_pipeline() has no parameter {key!r}. "
                             f"How to fix: use one of {names}, or add {key!r} to create_pipeline().")
        if key in kwargs:
            raise ValueError(f"{path}: --set {override!r} repeats --{key.replace('_', '-')}. How to fix: give "
                             "it once.")
        kwargs[key] = value
    return create(**kwargs)


def _py_override(path: str, override: str) -> tuple[str, Any]:
    """``KEY=VALUE`` for a .py pipeline: a create_pipeline() keyword and its YAML-parsed value."""
    import yaml

    key, sep, raw = override.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise ValueError(f"{path}: --set {override!r}: expected KEY=VALUE with KEY a create_pipeline() "
                         "parameter name, e.g. --set data_root=/data/taxi.")
    try:
        return key, yaml.safe_load(raw) if raw.strip() else raw
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: --set {override!r}: VALUE is not valid YAML ({e}). How to fix: quote it, "
                         f"e.g. --set '{key}=\"...\"'.") from None


def _store(args: argparse.Namespace) -> Any:
    from pipeline.metadata import MetadataStore

    if args.metadata:
        return MetadataStore(args.metadata)
    from components.fileio import is_url

    if args.root and is_url(args.root):
        raise ValueError(f"pipeline got --root={args.root!r} without --metadata; an object-store root holds "
                         "no metadata store. How to fix: pass --metadata URL, the store the pipeline used.")
    if args.root:
        path = os.path.join(os.path.abspath(args.root), "metadata.sqlite")
        if not os.path.isfile(path):
            raise ValueError(f"pipeline got --root={args.root!r}; there is no metadata.sqlite in it. "
                             "How to fix: pass the root a run used, or --metadata URL.")
        return MetadataStore(f"sqlite:///{path}")
    raise ValueError("pipeline needs --root DIR or --metadata URL to find the metadata store.")


def _cmd_run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from pipeline.progress import RichProgress
    from pipeline.runner import LocalRunner, PipelineRunError

    quiet = not args.verbose
    terminal = None
    if quiet:
        from pipeline.logs import quiet_environment, terminal_stream

        quiet_environment()  # before anything loads TensorFlow
        terminal = terminal_stream()
    console = Console(file=terminal) if terminal is not None else Console(stderr=True)
    pipeline = load_pipeline(args.file, root=args.root, beam_args=args.beam_args, metadata=args.metadata,
                             overrides=args.overrides)
    try:
        result = LocalRunner(RichProgress(console), lock_timeout=args.lock_timeout, quiet=quiet,
                             terminal=terminal).run(
            pipeline, from_nodes=args.from_nodes, to_nodes=args.to_nodes,
            enable_cache=False if args.no_cache else None)
    except PipelineRunError as e:
        console.print("[bold red]error:[/] " + str(e).replace("[", r"\["))
        if e.log_path and os.path.exists(e.log_path):
            console.print(f"full log: {e.log_path}", markup=False, highlight=False)
        _print_report(pipeline, console, args, execution_id=e.execution_id)
        return 1
    print(f"run {result.run_id}: executed {result.executed}, cached {result.cached}")
    status = _push_outcome(result, console, require=args.require_push)
    from pipeline.serving_hints import serving_hints, this_python

    try:
        from pipeline.launcher import scratch_root

        # The sample requests go under the root, or a URL root's local staging dir (the client reads files).
        for hints in serving_hints(result.outputs, root=scratch_root(pipeline), executed=result.executed):
            print("\n".join(hints.lines(python=this_python())))
    except OSError as e:  # the run succeeded; only the hints could not be made
        from rich.markup import escape

        console.print("[yellow]warning:[/] no serving hints: " + escape(str(e)))
    _print_report(pipeline, console, args, run_id=result.run_id)
    return status


def _print_report(pipeline: Any, console: Any, args: argparse.Namespace, *, run_id: int | None = None,
                  execution_id: int | None = None) -> None:
    """Writes the run's HTML report and prints its path (not under --no-report)."""
    if args.no_report or (run_id is None and execution_id is None):
        return
    from pipeline.report import report_after_run

    try:
        print(f"report: {report_after_run(pipeline, run_id=run_id, execution_id=execution_id)}")
    except Exception as e:  # noqa: BLE001 (the run's outcome stands; only its report is missing)
        from rich.markup import escape

        console.print(f"[yellow]warning:[/] no report: {type(e).__name__}: " + escape(str(e)))


def _cmd_report(args: argparse.Namespace) -> int:
    from pipeline.report import write_report

    print(write_report(root=args.root, metadata=args.metadata, run=args.run, out=args.out))
    return 0


def _cmd_run_node(args: argparse.Namespace) -> int:
    """Exit 0 when the node executed or came from the cache; 1 with a one-line error otherwise."""
    from pipeline.launcher import PipelineRunError, launch_node

    pipeline = load_pipeline(args.file, root=args.root, beam_args=args.beam_args, metadata=args.metadata,
                             overrides=args.overrides)
    try:
        result = launch_node(pipeline, args.node, args.run_key)
    except PipelineRunError as e:
        log = f" (full log: {e.log_path})" if e.log_path and os.path.exists(e.log_path) else ""
        print(f"error: {e}{log}".replace("\n", " "), file=sys.stderr)
        return 1
    outputs = ", ".join(f"{key}={art.id}" for key, art in result.outputs.items())
    print(f"{result.node_id}: {result.state} (run {result.run_id}, key {args.run_key!r}, execution "
          f"{result.execution_id}){': ' + outputs if outputs else ''}")
    return 0


def _cmd_finish_run(args: argparse.Namespace) -> int:
    """Exit 0 once the run is marked (COMPLETE or FAILED: the orchestrator reports the failure
    itself), or when no node of it started; 2 for a bad argument."""
    from pipeline.launcher import finish_run

    pipeline = load_pipeline(args.file, root=args.root, beam_args=args.beam_args, metadata=args.metadata,
                             overrides=args.overrides)
    finished = finish_run(pipeline, args.run_key)
    if finished is None:
        print(f"no run with key {args.run_key!r} of pipeline {pipeline.name!r}: no node of it started; "
              "nothing to mark")
        return 0
    reason = f": {finished.error}" if finished.error else ""
    print(f"run {finished.run_id} (key {args.run_key!r}) of pipeline {pipeline.name!r}: {finished.state}{reason}")
    return 0


NOT_PUSHED_EXIT = 3


def _push_outcome(result: Any, console: Any, *, require: bool) -> int:
    """Says each Evaluator's verdict and which Pushers did not push and why; the exit status
    under ``--require-push``."""
    from rich.markup import escape

    pushed_any, lines = False, []
    for node, produced in result.outputs.items():
        for artifact in produced.values():
            if artifact.TYPE_NAME == "ModelBlessing" and "verdict" in artifact.properties:
                console.print(f"{node}: {artifact.properties['verdict']}: "
                              + escape(str(artifact.properties.get("reason", ""))), soft_wrap=True)
            if artifact.TYPE_NAME != "PushedModel":
                continue
            if artifact.properties.get("pushed"):  # now, or by the cached execution reused
                pushed_any = True
                continue
            reason = artifact.properties.get("reason", "no reason recorded")
            lines.append(f"{node}: not pushed: {reason}")
    for line in lines:
        console.print("[yellow]" + escape(line) + "[/]", soft_wrap=True)
    if not require or pushed_any:
        return 0
    if not lines:
        console.print("[yellow]--require-push: this run has no Pusher output (no Pusher in the "
                      "pipeline, or it was left out with --from/--to)[/]")
    return NOT_PUSHED_EXIT


def _cmd_runs(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from pipeline.progress import notes

    store = _store(args)
    table = Table("run", "pipeline", "state", "started", "finished", "executions", "notes")
    for run in store.list_runs():
        # What a user must not miss (quarantined rows and lines, warned anomalies), from the
        # outputs each execution of the run produced.
        run_notes = [f"{e['component']}: {note}" for e in store.executions_of_run(run["id"])
                     if e["state"] == "COMPLETE" for note in notes(store.outputs_of(e["id"]))]
        table.add_row(str(run["id"]), run["pipeline"], run["state"], str(run["started"])[:19],
                      str(run["finished"] or "")[:19], ", ".join(f"{k}={v}" for k, v in sorted(run["executions"].items())),
                      "\n".join(run_notes))
    Console().print(table)
    return 0


def _cmd_lineage(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.tree import Tree

    store = _store(args)
    artifact = store.find_artifact(args.artifact)

    def add(tree: Any, node: dict) -> None:
        art, execution = node["artifact"], node["execution"]
        label = f"{art.TYPE_NAME} #{art.id} {art.uri}"
        if execution is not None:
            label += f"  <- {execution['component']} (execution {execution['id']}, {execution['state']})"
        branch = tree.add(label)
        for key, child in node["inputs"]:
            add(branch.add(f"[dim]{key}[/]"), child)

    root = Tree(f"lineage of artifact {artifact.id}")
    add(root, store.lineage(artifact.id))
    Console().print(root)
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from components.evaluator.component import check_evaluators

    pipeline = load_pipeline(args.file, overrides=args.overrides)
    check_evaluators(pipeline.components)  # each Evaluator's task and label against its Trainer's model
    print(f"{pipeline.name}: {' -> '.join(c.id for c in pipeline.components)} (root {pipeline.root})")
    return 0


def _orchestrated_options(parser: argparse.ArgumentParser) -> None:
    """The options run-node and finish-run share (an orchestrator passes the same to both)."""
    parser.add_argument("--root", help="pipeline root (artifacts + default SQLite metadata)")
    parser.add_argument("--metadata", help="SQLAlchemy URL of the (shared) metadata store")
    parser.add_argument("--beam-arg", action="append", default=None, dest="beam_args", metavar="ARG",
                        help="a Beam pipeline arg, as for run")
    parser.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE",
                        help="override a field of a .yaml spec or a create_pipeline() argument, as for run")


def _join_beam_args(argv: list[str]) -> list[str]:
    """Accepts ``--beam-arg --runner=X`` as well as ``--beam-arg=--runner=X``."""
    joined, i = [], 0
    while i < len(argv):
        if argv[i] == "--beam-arg" and i + 1 < len(argv):
            joined.append(f"--beam-arg={argv[i + 1]}")
            i += 2
        else:
            joined.append(argv[i])
            i += 1
    return joined


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["compile-kfp"]:  # its options are pipeline.kubeflow's own
        from pipeline.kubeflow import main as kubeflow_main

        return kubeflow_main(["compile", *argv[1:]])
    args = _parser().parse_args(_join_beam_args(argv))
    command = {"run": _cmd_run, "run-node": _cmd_run_node, "finish-run": _cmd_finish_run,
               "runs": _cmd_runs, "lineage": _cmd_lineage,
               "check": _cmd_check, "report": _cmd_report}[args.command]
    try:
        return command(args)
    except (ValueError, TypeError, NotImplementedError) as e:  # a bad or unsupported setting
        print(f"error: {e}", file=sys.stderr)
        return 2
