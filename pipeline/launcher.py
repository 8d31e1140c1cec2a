"""Launches one node of one pipeline run: driver, executor, publisher (TFX's ``Launcher``).

`launch_node` is what an orchestrator runs for each task (Airflow, Kubeflow, or
``python -m pipeline run-node`` in a container); `pipeline.runner.LocalRunner` is a loop
over it. For a node of the run identified by ``run_key`` (the orchestrator's run id):

1. **driver**: its inputs are the outputs its producers made *in the same run* (a
   ``run_key`` is unique per pipeline, so overlapping runs and backfills never
   cross-wire), plus span history and resolvers' picks; a producer that has not
   completed in the run is an error. Only producers named in ``latest_outside``
   (a partial local run's nodes left out) take their latest published output instead.
   Then the cache: an execution with the same fingerprint whose outputs still exist is
   reused (recorded CACHED).
2. **executor**: outputs go to ``.tmp-<execution id>`` dirs; a heartbeat keeps the
   execution alive in the store (`pipeline.metadata.Heartbeat`).
3. **publisher**: the dirs are renamed to ``<execution id>`` and the artifacts and the
   execution flip to PUBLISHED / COMPLETE in one transaction.

Nodes of different runs may launch at the same time from different processes or
machines on one store and one root: each execution has its own directories, and only
what belongs to executions that are not RUNNING (abandoned: their heartbeat stopped) is
ever cleaned up. See docs/orchestration.md.

Example:
    >>> from pipeline.launcher import launch_node
    >>> # launch_node(my_pipeline, "Trainer", run_key="scheduled__2026-01-01")
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import traceback
from collections.abc import Collection
from typing import IO

from components import fileio
from components.artifacts import Artifact
from components.base import (
    CURRENT, PREVIOUS_SPAN, SPAN_WINDOW, Channel, Component, ComponentError, ExecutionContext,
    parameters_to_json,
)
from components.resolver.base import Resolver
from pipeline.dsl import Pipeline
from pipeline.logs import component_log, log_path
from pipeline.metadata import (
    CACHED, COMPLETE, DEFAULT_HEARTBEAT_LEASE_S, FAILED, RUNNING, Heartbeat, MetadataStore,
)
from pipeline.progress import ProgressListener
from pipeline.staging import Staging, local_log_path, upload, upload_file

FAILED_PREFIX = "failed-"


class PipelineRunError(RuntimeError):
    """A component failed; the message is the component's one-line summary."""

    def __init__(self, component_id: str, message: str, execution_id: int | None = None):
        super().__init__(f"{component_id} failed: {message}")
        self.component_id = component_id
        self.execution_id = execution_id
        self.log_path: str | None = None  # the component's full log, when the launcher wrote one


@dataclasses.dataclass(frozen=True)
class NodeResult:
    """What launching one node did.

    ``state`` is COMPLETE (executed, or a resolver answered) or CACHED. ``outputs`` holds one
    artifact per output key (a resolver's first pick per key, absent when it picked none);
    ``resolved`` holds a resolver's full answer (None for a component).
    """

    run_id: int
    node_id: str
    state: str
    execution_id: int
    outputs: dict[str, Artifact]
    resolved: dict[str, list[Artifact]] | None = None


def launch_node(pipeline: Pipeline, node_id: str, run_key: str, *, enable_cache: bool | None = None,
                quiet: bool = False, lease_s: float = DEFAULT_HEARTBEAT_LEASE_S) -> NodeResult:
    """Runs the node ``node_id`` of the pipeline's run ``run_key`` (recorded if new).

    Args:
        pipeline: The pipeline; its ``metadata`` URL names the (shared) store.
        node_id: The component or resolver to run.
        run_key: The orchestrator's id of the run, e.g. Airflow's ``run_id``.
        enable_cache: Reuse an execution with the same fingerprint; default ``pipeline.enable_cache``.
        quiet: Send what the component writes to stderr to its log file only.
        lease_s: The heartbeat lease: the execution is abandoned this long after this
            process stops renewing it.

    Raises:
        PipelineRunError: the node failed, or a producer has not completed in this run.
    """
    launcher = Launcher(MetadataStore(pipeline.metadata), enable_cache=enable_cache, quiet=quiet,
                        lease_s=lease_s)
    return launcher.launch(pipeline, node_id, run_key)


@dataclasses.dataclass(frozen=True)
class FinishedRun:
    """What `finish_run` recorded: the store's run id, its state and the reason for FAILED."""

    run_id: int
    state: str
    error: str | None


def finish_run(pipeline: Pipeline, run_key: str) -> FinishedRun | None:
    """Marks the run ``run_key`` COMPLETE or FAILED once its orchestrator has ended it (a KFP exit
    handler's task); None when no node of it ever started.

    COMPLETE when every node of the pipeline has a COMPLETE or CACHED execution in the run;
    FAILED naming the newest failed node and its one-line error, or else the nodes that did not
    run (the orchestrator skipped them after an upstream failure, or a task died first).
    """
    store = MetadataStore(pipeline.metadata)
    run_id = store.run_id_of(pipeline.name, run_key)
    if run_id is None:
        return None
    executions = store.executions_of_run(run_id)
    failed = [e for e in executions if e["state"] == FAILED]
    done = {e["component"] for e in executions if e["state"] in (COMPLETE, CACHED)}
    missing = [c.id for c in pipeline.components if c.id not in done]
    if failed:
        summary = (failed[-1]["error"] or "no error recorded").split("\n", 1)[0]
        state, error = FAILED, f"{failed[-1]['component']} failed: {summary}"
    elif missing:
        state, error = FAILED, f"nodes {missing} did not run"
    else:
        state, error = COMPLETE, None
    store.finish_run(run_id, state, error)
    return FinishedRun(run_id, state, error)


class Launcher:
    """Launches nodes against one metadata store (see the module docstring).

    Args:
        store: The metadata store.
        listener: Receives the components' progress messages.
        enable_cache: Reuse cached executions; default each pipeline's ``enable_cache``.
        lease_s: Heartbeat lease of the runs and executions it records.
        quiet: See `pipeline.logs.component_log`; the log file is written either way.
        terminal: With ``quiet``, where the project's own warnings still go.
    """

    def __init__(self, store: MetadataStore, *, listener: ProgressListener | None = None,
                 enable_cache: bool | None = None, lease_s: float = DEFAULT_HEARTBEAT_LEASE_S,
                 quiet: bool = False, terminal: IO[str] | None = None):
        self.store = store
        self.listener = listener or ProgressListener()
        self.enable_cache = enable_cache
        self.lease_s = lease_s
        self.quiet = quiet
        self.terminal = terminal

    def launch(self, pipeline: Pipeline, node_id: str, run_key: str, *,
               latest_outside: Collection[str] = ()) -> NodeResult:
        """Runs one node of the run ``run_key``; see `launch_node`.

        ``latest_outside``: producers not part of this run (a partial run's unselected
        nodes), whose latest published outputs are taken instead.
        """
        node = pipeline.component(node_id)  # raises a clear error on an unknown id
        run_id = self.store.ensure_run(pipeline.name, run_key, lease_s=self.lease_s)
        staging = Staging(pipeline.name, pipeline.root, pipeline.metadata) if fileio.is_url(pipeline.root) else None
        path = local_log_path(pipeline.name, pipeline.root, pipeline.metadata, run_id, node_id)
        run = _Run(pipeline, run_key, run_id, frozenset(latest_outside), staging)
        try:
            with component_log(path, quiet=self.quiet, terminal=self.terminal), \
                    Heartbeat(self.store, run_id=run_id, lease_s=self.lease_s) as heartbeat:
                if isinstance(node, Resolver):
                    return self._run_resolver(run, node)
                return self._run_component(run, node, heartbeat)
        except PipelineRunError as e:
            e.log_path = path
            raise
        finally:
            if staging is not None and os.path.isfile(path):
                _upload_log(path, log_path(pipeline.root, run_id, node_id))

    # Driver ------------------------------------------------------------------
    def _resolve(self, run: _Run, component: Component, key: str, channel: Channel) -> list[Artifact]:
        store, pipeline = self.store, run.pipeline
        producer = channel.producer.id
        if isinstance(channel.producer, Resolver) and channel.policy != CURRENT:
            raise ValueError(
                f"{component.id} got {key}={channel!r}; a resolver's output takes no span policy. "
                "How to fix: wire resolver.outputs[...] itself.")
        if producer in run.latest_outside and not isinstance(channel.producer, Resolver):
            latest = store.published(pipeline.name, producer, channel.output_key)
            if not latest:
                raise PipelineRunError(
                    component.id,
                    f"input {key!r} needs {producer}.{channel.output_key}, which has never been "
                    f"published. How to fix: run {producer!r} first (drop --from).")
            current = latest[0]
        else:
            produced = store.run_outputs(run.run_id, producer)
            if produced is None:
                raise PipelineRunError(
                    component.id,
                    f"input {key!r} needs {producer}.{channel.output_key}, which run {run.run_key!r} of "
                    f"pipeline {pipeline.name!r} has not produced ({producer} has not completed in it). "
                    f"How to fix: launch {producer!r} with run key {run.run_key!r} first.")
            if isinstance(channel.producer, Resolver):
                return list(produced.get(channel.output_key, []))
            current = produced[channel.output_key][0]
        if channel.policy == CURRENT:
            return [current]
        history = store.published(pipeline.name, producer, channel.output_key)
        span = int(current.properties.get("span", 0))
        by_span: dict[int, Artifact] = {}
        for art in history:  # newest first: keep the newest artifact of each span
            by_span.setdefault(int(art.properties.get("span", 0)), art)
        if channel.policy == PREVIOUS_SPAN:
            earlier = sorted(s for s in by_span if s < span)
            return [by_span[earlier[-1]]] if earlier else []
        if channel.policy == SPAN_WINDOW:
            by_span[span] = current
            spans = sorted((s for s in by_span if s <= span), reverse=True)[:channel.window]
            return [by_span[s] for s in spans]
        raise ValueError(
            f"Launcher got channel policy={channel.policy!r}; expected current, "
            "previous_span or span_window. How to fix: build channels with Channel methods.")

    def _run_resolver(self, run: _Run, resolver: Resolver) -> NodeResult:
        """Asks the resolver for existing artifacts; records its choice as a COMPLETE execution.

        Never cached: the answer depends on the store, and it is cheap to ask again.
        """
        store, pipeline = self.store, run.pipeline
        inputs = {key: self._resolve(run, resolver, key, channel) for key, channel in resolver.inputs.items()}
        params_json = parameters_to_json(resolver.parameters)
        execution_id = store.start_execution(
            run.run_id, pipeline.name, resolver.id, type(resolver).__name__,
            fingerprint=fingerprint(resolver, params_json, inputs), parameters=params_json,
            lease_s=self.lease_s)
        store.record_inputs(execution_id, inputs)
        try:
            resolved = resolver.resolve(inputs, _History(store, pipeline.name))
            _check_resolved(resolver, resolved)
        except BaseException as e:
            summary = summarize(e)
            store.fail_execution(execution_id, summary + "\n" + traceback.format_exc())
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
            raise PipelineRunError(resolver.id, summary, execution_id) from e
        store.record_resolved(execution_id, resolved)
        for key, arts in resolved.items():
            self.listener.on_message(resolver.id, f"{key}: {arts[0] if arts else 'none'}")
        outputs = {key: arts[0] for key, arts in resolved.items() if arts}
        return NodeResult(run.run_id, resolver.id, COMPLETE, execution_id, outputs, resolved)

    def _run_component(self, run: _Run, component: Component, heartbeat: Heartbeat) -> NodeResult:
        store, pipeline = self.store, run.pipeline
        inputs = {key: self._resolve(run, component, key, channel) for key, channel in component.inputs.items()}
        params_json = parameters_to_json(component.parameters)
        key_ = fingerprint(component, params_json, inputs)
        component_type = type(component).__name__
        use_cache = pipeline.enable_cache if self.enable_cache is None else self.enable_cache
        if use_cache:
            cached = store.find_cached(pipeline.name, component.id, key_)
            if cached is not None:
                cached_from, outputs = cached
                execution_id = store.record_cached(
                    run.run_id, pipeline.name, component.id, component_type, fingerprint=key_,
                    parameters=params_json, cached_from=cached_from, inputs=inputs, outputs=outputs)
                return NodeResult(run.run_id, component.id, CACHED, execution_id, outputs)

        store.mark_abandoned(pipeline.name)  # so that their leftovers below can go
        staging = run.staging
        scratch = scratch_root(pipeline)  # temp and work dirs stay local
        remove_stale_scratch(store, scratch)
        execution_id = store.start_execution(run.run_id, pipeline.name, component.id, component_type,
                                             fingerprint=key_, parameters=params_json, lease_s=self.lease_s)
        heartbeat.add(execution_id)
        store.record_inputs(execution_id, inputs)

        def local(artifact: Artifact) -> Artifact:
            return staging.localize(artifact) if staging else artifact

        def previous_output(key: str) -> Artifact | None:
            latest = store.published(pipeline.name, component.id, key)
            return local(latest[0]) if latest else None

        # Setup failures (a locked store, a directory that cannot be made, a download) fail the
        # execution like executor errors, so it never stays RUNNING.
        temp_dir = os.path.join(scratch, ".temp", str(execution_id))
        outputs: dict[str, Artifact] = {}
        final_uris: dict[str, str] = {}
        try:
            for key, artifact_type in component.OUTPUTS.items():
                base = fileio.join(pipeline.root, component.id, key)
                _remove_stale_output_dirs(store, base)
                final_uris[key] = fileio.join(base, str(execution_id))
                # Locally the executor writes a .tmp dir that is renamed when published; on a URL
                # root it writes a local staging dir that is uploaded before the store's commit.
                tmp = (staging.output_dir(component.id, key, execution_id) if staging
                       else os.path.join(base, f".tmp-{execution_id}"))
                shutil.rmtree(tmp, ignore_errors=True)
                os.makedirs(tmp)
                outputs[key] = artifact_type(uri=final_uris[key] if staging else tmp)
            store.register_outputs(execution_id, pipeline.name, component.id, outputs)
            if staging:
                for key, art in outputs.items():
                    art.uri = staging.output_dir(component.id, key, execution_id)
            exec_inputs = {key: [local(a) for a in arts] for key, arts in inputs.items()}
            os.makedirs(temp_dir, exist_ok=True)
            work_dir = _work_dir(store, pipeline, component, key_, execution_id, fresh=not use_cache,
                                 root=scratch)

            ctx = ExecutionContext(
                component_id=component.id, execution_id=execution_id, inputs=exec_inputs, outputs=outputs,
                parameters=component.parameters, beam_pipeline_args=pipeline.beam_pipeline_args,
                temp_dir=temp_dir, work_dir=work_dir, previous_output=previous_output,
                report=lambda message: self.listener.on_message(component.id, message))
            component.executor()(ctx)
            # Publisher, part 1: the outputs reach their final place. Locally a rename; on a URL
            # root an upload, after which nothing is published yet (the commit is the store's).
            for key, art in outputs.items():
                if staging:
                    upload(art.uri, final_uris[key])
                else:
                    os.replace(art.uri, final_uris[key])
                art.uri = final_uris[key]
        except BaseException as e:
            summary, details = summarize(e), traceback.format_exc()
            if not isinstance(e, (KeyboardInterrupt, SystemExit)):
                summary, details = _keep_failed_outputs(store, component.id, execution_id, outputs,
                                                        summary, details, pipeline.root)
            store.fail_execution(execution_id, summary + "\n" + details)
            shutil.rmtree(temp_dir, ignore_errors=True)  # scratch; the outputs are kept above
            if staging:
                staging.remove_outputs(component, execution_id)
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
            raise PipelineRunError(component.id, summary, execution_id) from e
        # Publisher, part 2: the artifacts and the execution flip to PUBLISHED / COMPLETE in one
        # transaction. A crash before the commit leaves only unpublished dirs, which readers never
        # take and the next execution of this node removes.
        store.publish(execution_id, outputs)
        heartbeat.discard(execution_id)
        for art in outputs.values():  # what older failed executions of this node kept
            _remove_failed_dirs(_parent(art.uri))
        shutil.rmtree(temp_dir, ignore_errors=True)
        shutil.rmtree(work_dir, ignore_errors=True)
        if staging:
            staging.remove_outputs(component, execution_id)
        return NodeResult(run.run_id, component.id, COMPLETE, execution_id, outputs)


@dataclasses.dataclass(frozen=True)
class _Run:
    pipeline: Pipeline
    run_key: str
    run_id: int
    latest_outside: frozenset[str]
    staging: Staging | None = None  # the local working copies of a URL root


class _History:
    """`ArtifactHistory` over the metadata store, for one pipeline (what resolvers may read)."""

    def __init__(self, store: MetadataStore, pipeline_name: str):
        self._store = store
        self._pipeline = pipeline_name

    def published(self, component_id: str, output_key: str) -> list[Artifact]:
        return self._store.published(self._pipeline, component_id, output_key)

    def producer_inputs(self, artifact: Artifact) -> dict[str, list[Artifact]]:
        return self._store.producer_inputs(artifact.id)


def _work_dir(store: MetadataStore, pipeline: Pipeline, component: Component, key: str,
              execution_id: int, *, fresh: bool, root: str) -> str:
    """The execution's resumable scratch dir: ``<root>/.work/<node>/<fingerprint>`` (``root``: the
    pipeline root, or the staging dir of a URL root).

    It survives a crash or a failure, so the next execution with the same fingerprint
    (same inputs, parameters and code) picks up where that one stopped; it is removed
    once an execution is published. Scratch dirs of other fingerprints are removed
    unless a RUNNING execution (one whose heartbeat is alive, on any machine) uses them.
    While another RUNNING execution holds this fingerprint's dir, this one gets a private
    ``<fingerprint>-<execution id>`` dir. ``fresh`` (caching off) starts from an empty dir.
    """
    base = os.path.join(root, ".work", component.id)
    running = store.running_fingerprints(pipeline.name, component.id)
    busy = {fp for eid, fp in running.items() if eid != execution_id}
    name = key if key not in busy else f"{key}-{execution_id}"
    if os.path.isdir(base):
        for entry in os.listdir(base):
            entry_fingerprint, _, owner = entry.partition("-")
            in_use = int(owner) in running if owner.isdigit() else entry_fingerprint in busy
            if entry != name and not in_use:
                shutil.rmtree(os.path.join(base, entry), ignore_errors=True)
    path = os.path.join(base, name)
    if fresh:
        shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, exist_ok=True)
    return path


def _check_resolved(resolver: Resolver, resolved: dict[str, list[Artifact]]) -> None:
    if not isinstance(resolved, dict) or set(resolved) != set(resolver.OUTPUTS):
        raise TypeError(
            f"{type(resolver).__name__}.resolve returned {resolved!r}; expected a dict with the keys "
            f"{sorted(resolver.OUTPUTS)}. How to fix: return every output key, with [] for none.")
    for key, arts in resolved.items():
        expected = resolver.OUTPUTS[key]
        if not isinstance(arts, list) or any(not isinstance(a, expected) or a.id is None for a in arts):
            raise TypeError(
                f"{type(resolver).__name__}.resolve returned {key}={arts!r}; expected a list of "
                f"published {expected.TYPE_NAME} artifacts. How to fix: return artifacts read from "
                "the history.")


def _remove_stale_output_dirs(store: MetadataStore, base: str) -> None:
    """Deletes output dirs under ``base`` (one node's output) that no execution will publish: the
    ``.tmp-<id>`` dirs of executions that are not running (abandoned or failed), and ``<id>`` dirs
    whose execution is known and neither running nor COMPLETE (an upload to a URL root, or a
    rename, cut short before the store's commit)."""
    temporary, published = {}, {}  # execution id -> dir name
    for name in fileio.listdir(base):
        if name.startswith(".tmp-") and name[5:].isdigit():
            temporary[int(name[5:])] = name
        elif name.isdigit():
            published[int(name)] = name
    states = store.execution_states([*temporary, *published])  # one query, however long the history
    stale = [name for eid, name in temporary.items() if states.get(eid) != RUNNING]
    stale += [name for eid, name in published.items() if states.get(eid) not in (None, RUNNING, COMPLETE)]
    for name in stale:
        fileio.rmtree(fileio.join(base, name))


def scratch_root(pipeline: Pipeline) -> str:
    """Where the pipeline's scratch (``.temp``, ``.work``) lives: its root, or for a URL root its
    local staging dir."""
    if fileio.is_url(pipeline.root):
        return Staging(pipeline.name, pipeline.root, pipeline.metadata).dir
    return pipeline.root


def remove_stale_scratch(store: MetadataStore, root: str) -> None:
    """Deletes ``<root>/.temp/<id>`` scratch dirs of executions that are not running (killed ones)."""
    base = os.path.join(root, ".temp")
    if not os.path.isdir(base):
        return
    for name in os.listdir(base):
        if name.isdigit() and store.execution_state(int(name)) != RUNNING:
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)


def _remove_failed_dirs(base: str, keep: str | None = None) -> None:
    """Deletes the ``failed-<id>`` output dirs kept from failed executions (but ``keep``)."""
    for name in fileio.listdir(base):
        if name.startswith(FAILED_PREFIX) and name[len(FAILED_PREFIX):].isdigit() and name != keep:
            fileio.rmtree(fileio.join(base, name))


def _parent(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[0] if fileio.is_url(uri) else os.path.dirname(uri)


def _keep_failed_outputs(store: MetadataStore, component_id: str, execution_id: int,
                         outputs: dict[str, Artifact], summary: str, details: str,
                         root: str) -> tuple[str, str]:
    """Keeps a failed execution's non-empty outputs as ``failed-<id>`` next to where they would
    have been published (the next run deletes ``.tmp-*`` dirs and local staging copies), and
    rewrites the paths in the error; returns (summary, details)."""
    kept = []
    for key, art in outputs.items():
        written = art.uri
        if fileio.is_url(written):
            continue  # already uploaded (the upload of a later output failed): removed as stale
        if fileio.is_url(root):
            base = fileio.join(root, component_id, key)
            expected = True
        else:
            base = os.path.dirname(written)
            expected = os.path.basename(written) == f".tmp-{execution_id}"
        if not expected or not os.path.isdir(written):
            continue
        if not os.listdir(written):
            shutil.rmtree(written, ignore_errors=True)
            continue
        target = fileio.join(base, f"{FAILED_PREFIX}{execution_id}")
        try:
            _remove_failed_dirs(base)  # one failed execution's outputs at a time per output
            if fileio.is_url(target):
                upload(written, target)
            else:
                os.replace(written, target)
        except Exception:  # noqa: BLE001 - left as it was: the message still names where it is now
            continue
        summary, details = summary.replace(written, target), details.replace(written, target)
        if art.id is not None:
            store.set_artifact_uri(art.id, target)
        art.uri = target
        kept.append(target)
    if kept and any(path in summary for path in kept):
        summary += f" (kept until the next execution of {component_id} ends)"
    elif kept:
        details = (f"outputs of the failed execution kept in {', '.join(kept)} until the next execution "
                   f"of {component_id} ends\n") + details
    return summary, details


def _upload_log(local: str, url: str) -> None:
    """Uploads a node's log to the URL root; a failure is logged, never raised over the node's
    own outcome."""
    try:
        upload_file(local, url)
    except Exception as e:  # noqa: BLE001
        logging.getLogger(__name__).warning("could not upload the log %s to %s: %s", local, url, e)


def fingerprint(component: Component, params_json: str, inputs: dict[str, list[Artifact]]) -> str:
    """The cache key: sha256 of the component's class, parameters, input ids and extras."""
    material = {
        "type": f"{type(component).__module__}.{type(component).__qualname__}",
        "parameters": params_json,
        "inputs": {key: [a.id for a in arts] for key, arts in sorted(inputs.items())},
        "extras": component.fingerprint_extras(),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def summarize(error: BaseException) -> str:
    """A one-line summary: the user-facing error if one is in the chain, else the first line."""
    seen = error
    while seen is not None:
        if isinstance(seen, ComponentError):
            return str(seen).strip() or type(seen).__name__
        seen = seen.__cause__ or seen.__context__
    text = str(error).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(error).__name__}: {first}"
