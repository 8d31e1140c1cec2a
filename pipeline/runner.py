"""The local runner: runs a pipeline's DAG in this process, in topological order.

It caches (an unchanged component is reused, not rerun), publishes outputs
atomically (a killed run never leaves a half artifact that a later run
consumes), resumes after a crash (finished components come from the cache, and
an execution rerun with the same inputs gets back its scratch directory, e.g.
the Trainer's checkpoints), resolves resolver nodes from the metadata store and
runs part of the DAG (``from_nodes`` / ``to_nodes``).

Two runs of one pipeline on one metadata store never run side by side: a run holds
the pipeline's run lock (``run:<pipeline name>`` in the store's ``locks`` table, see
`pipeline.metadata.Lease`) from before it is recorded until it ends, renewing it
every ``lock_lease / 4`` seconds. Another run waits for it up to ``lock_timeout``
seconds (default `DEFAULT_LOCK_TIMEOUT_S`, or the environment variable
``PIPELINE_LOCK_TIMEOUT``), then finds what the first one finished in the cache, or
fails with `PipelineLockedError` naming the holder. A lock whose holder stopped
renewing it for ``lock_lease`` seconds (or whose process on this host is gone) is
taken over.

When an executor fails, its non-empty outputs are moved from ``.tmp-<id>`` to
``failed-<id>`` beside them, and the error message names that place: it is kept until
the next execution of that node ends.

Example:
    >>> from pipeline.runner import LocalRunner
    >>> # LocalRunner().run(my_pipeline)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import time
import traceback
from collections.abc import Iterable
from typing import IO

from components.artifacts import Artifact
from components.base import (
    CURRENT, PREVIOUS_SPAN, SPAN_WINDOW, Channel, Component, ComponentError, ExecutionContext,
    parameters_to_json,
)
from components.resolver.base import Resolver
from pipeline.dsl import Pipeline, downstream_closure, upstream_closure
from pipeline.logs import component_log, log_path
from pipeline.metadata import CACHED, COMPLETE, FAILED, RUNNING, Lease, LockInfo, LockTimeout, MetadataStore
from pipeline.progress import ProgressListener

DEFAULT_LOCK_TIMEOUT_S = 600.0
DEFAULT_LOCK_LEASE_S = 60.0
LOCK_TIMEOUT_ENV = "PIPELINE_LOCK_TIMEOUT"
FAILED_PREFIX = "failed-"
_log = logging.getLogger(__name__)


class PipelineRunError(RuntimeError):
    """A component failed; the message is the component's one-line summary."""

    def __init__(self, component_id: str, message: str, execution_id: int | None = None):
        super().__init__(f"{component_id} failed: {message}")
        self.component_id = component_id
        self.execution_id = execution_id
        self.log_path: str | None = None  # the component's full log, when the runner wrote one


class PipelineLockedError(PipelineRunError):
    """Another run of the pipeline held its run lock past ``lock_timeout``, or took this run's over."""

    def __init__(self, message: str, holder: LockInfo | None = None):
        RuntimeError.__init__(self, message)
        self.component_id = None
        self.execution_id = None
        self.holder = holder


@dataclasses.dataclass
class RunResult:
    """What one run did: its id, each node's state (COMPLETE/CACHED/SKIPPED) and outputs.

    A resolver's ``outputs`` hold the artifacts it chose (a key is absent when it chose
    none); ``resolved`` holds every resolver's full answer.
    """

    run_id: int
    states: dict[str, str]
    outputs: dict[str, dict[str, Artifact]]
    seconds: dict[str, float]
    resolved: dict[str, dict[str, list[Artifact]]] = dataclasses.field(default_factory=dict)

    @property
    def executed(self) -> list[str]:
        return [node for node, state in self.states.items() if state == COMPLETE]

    @property
    def cached(self) -> list[str]:
        return [node for node, state in self.states.items() if state == CACHED]


class LocalRunner:
    """Runs pipelines in this process.

    Args:
        listener: Receives progress events (the CLI passes a rich display).
        lock_timeout: Seconds to wait for another run of the same pipeline (same metadata
            store) to release the run lock; default ``$PIPELINE_LOCK_TIMEOUT`` or
            `DEFAULT_LOCK_TIMEOUT_S` (600). 0 fails at once.
        lock_lease: Seconds after its holder's last renewal that the run lock is taken over
            (default 60; renewed every ``lock_lease / 4``).
        quiet: Send everything a component writes to stderr (TensorFlow's C++ lines, Beam,
            subprocesses) to its log file only, ``<root>/logs/<run id>/<node id>.log``
            (`pipeline.logs`); the log files are written either way.
        terminal: With ``quiet``, where the project's own warnings still go (the CLI passes
            the terminal's stderr).
    """

    def __init__(self, listener: ProgressListener | None = None, *, lock_timeout: float | None = None,
                 lock_lease: float = DEFAULT_LOCK_LEASE_S, quiet: bool = False,
                 terminal: IO[str] | None = None):
        self.listener = listener or ProgressListener()
        self.quiet = quiet
        self.terminal = terminal
        self._use_cache = True
        if lock_timeout is None:
            raw = os.environ.get(LOCK_TIMEOUT_ENV, "")
            try:
                lock_timeout = float(raw) if raw else DEFAULT_LOCK_TIMEOUT_S
            except ValueError:
                raise ValueError(f"LocalRunner got {LOCK_TIMEOUT_ENV}={raw!r}; expected a number of "
                                 f"seconds. How to fix: set e.g. {LOCK_TIMEOUT_ENV}=600.") from None
        if not lock_timeout >= 0:
            raise ValueError(f"LocalRunner got lock_timeout={lock_timeout!r}; expected seconds >= 0. "
                             "How to fix: pass e.g. lock_timeout=600.")
        self.lock_timeout = float(lock_timeout)
        self.lock_lease = float(lock_lease)

    def run(self, pipeline: Pipeline, *, from_nodes: Iterable[str] = (), to_nodes: Iterable[str] = (),
            enable_cache: bool | None = None) -> RunResult:
        """Runs the pipeline (or the part between ``from_nodes`` and ``to_nodes``).

        Raises:
            PipelineRunError: a component failed; the run is recorded FAILED.
        """
        from_nodes, to_nodes = set(from_nodes), set(to_nodes)
        for node in from_nodes | to_nodes:
            pipeline.component(node)  # raises a clear error on an unknown id
        ids = [c.id for c in pipeline.components]
        selected = set(ids)
        if from_nodes:
            selected &= downstream_closure(pipeline.components, from_nodes)
        if to_nodes:
            selected &= upstream_closure(pipeline.components, to_nodes)
        selected |= _resolvers_feeding(pipeline, selected)
        _check_resolvers(pipeline)
        self._use_cache = pipeline.enable_cache if enable_cache is None else enable_cache

        store = MetadataStore(pipeline.metadata)
        lease = self._lock(store, pipeline)
        try:
            return self._run_locked(store, lease, pipeline, ids, selected)
        finally:
            try:
                lease.release()
            except Exception as e:  # noqa: BLE001 - the lock then expires after its lease
                _log.warning("could not release the run lock of pipeline %r (%s); it expires in %g s",
                             pipeline.name, e, self.lock_lease)

    def _lock(self, store: MetadataStore, pipeline: Pipeline) -> Lease:
        """Takes the pipeline's run lock, waiting up to ``lock_timeout`` for another run to end."""
        lease = store.lock(f"run:{pipeline.name}", lease_s=self.lock_lease)

        def waiting(holder: LockInfo) -> None:
            _log.warning("pipeline %r is being run by %s; waiting for the run lock up to %g s "
                         "(%s)", pipeline.name, holder.describe(), self.lock_timeout, LOCK_TIMEOUT_ENV)

        try:
            lease.acquire(timeout_s=self.lock_timeout, on_wait=waiting)
        except LockTimeout as e:
            raise PipelineLockedError(_locked_message(pipeline, e.holder, self.lock_timeout), e.holder) from None
        return lease

    def _run_locked(self, store: MetadataStore, lease: Lease, pipeline: Pipeline, ids: list[str],
                    selected: set[str]) -> RunResult:
        store.mark_abandoned(pipeline.name)
        _remove_stale_scratch(store, pipeline.root)
        run_id = store.start_run(pipeline.name)
        store.set_lock_run(lease.name, lease.token, run_id)
        result = RunResult(run_id, {}, {}, {})
        self.listener.on_run_start(pipeline, run_id, [i for i in ids if i in selected])
        try:
            for component in pipeline.components:
                if component.id not in selected:
                    continue
                if lease.lost:
                    raise PipelineLockedError(
                        f"run {run_id} of pipeline {pipeline.name!r} lost its run lock: {lease.lost}. "
                        f"It stopped before "
                        f"{component.id} so that two runs never execute the same node. How to fix: "
                        "run again (finished components come from the cache); if the metadata store "
                        "was unreachable or this machine was suspended, check that first.")
                started = time.monotonic()
                self.listener.on_component_start(component.id)
                path = log_path(pipeline.root, run_id, component.id)
                try:
                    with component_log(path, quiet=self.quiet, terminal=self.terminal):
                        if isinstance(component, Resolver):
                            state, outputs = self._run_resolver(store, pipeline, run_id, component, result)
                        else:
                            state, outputs = self._run_component(store, pipeline, run_id, component, result)
                except PipelineRunError as e:
                    e.log_path = path
                    raise
                result.states[component.id] = state
                result.outputs[component.id] = outputs
                result.seconds[component.id] = time.monotonic() - started
                self.listener.on_component_end(component.id, state, result.seconds[component.id], outputs)
        except BaseException as e:  # noqa: BLE001 - also record KeyboardInterrupt
            store.finish_run(run_id, FAILED, error=str(e))
            self.listener.on_run_end(run_id, FAILED)
            raise
        store.finish_run(run_id, COMPLETE)
        self.listener.on_run_end(run_id, COMPLETE)
        return result

    # ------------------------------------------------------------------------
    def _resolve(self, store: MetadataStore, pipeline: Pipeline, component: Component,
                 key: str, channel: Channel, result: RunResult) -> list[Artifact]:
        producer = channel.producer.id
        if isinstance(channel.producer, Resolver):
            if channel.policy != CURRENT:
                raise ValueError(
                    f"{component.id} got {key}={channel!r}; a resolver's output takes no span policy. "
                    "How to fix: wire resolver.outputs[...] itself.")
            return list(result.resolved[producer][channel.output_key])
        current = result.outputs.get(producer, {}).get(channel.output_key)
        if current is None:  # producer outside a partial run: its latest published output
            latest = store.published(pipeline.name, producer, channel.output_key)
            if not latest:
                raise PipelineRunError(
                    component.id,
                    f"input {key!r} needs {producer}.{channel.output_key}, which has never been "
                    f"published. How to fix: run {producer!r} first (drop --from).")
            current = latest[0]
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
            f"LocalRunner got channel policy={channel.policy!r}; expected current, "
            "previous_span or span_window. How to fix: build channels with Channel methods.")

    def _run_resolver(self, store: MetadataStore, pipeline: Pipeline, run_id: int,
                      resolver: Resolver, result: RunResult) -> tuple[str, dict[str, Artifact]]:
        """Asks the resolver for existing artifacts; records its choice as a COMPLETE execution.

        Never cached: the answer depends on the store, and it is cheap to ask again.
        """
        inputs = {key: self._resolve(store, pipeline, resolver, key, channel, result)
                  for key, channel in resolver.inputs.items()}
        params_json = parameters_to_json(resolver.parameters)
        execution_id = store.start_execution(
            run_id, pipeline.name, resolver.id, type(resolver).__name__,
            fingerprint=_fingerprint(resolver, params_json, inputs), parameters=params_json)
        store.record_inputs(execution_id, inputs)
        try:
            resolved = resolver.resolve(inputs, _History(store, pipeline.name))
            _check_resolved(resolver, resolved)
        except BaseException as e:
            summary = _summary(e)
            store.fail_execution(execution_id, summary + "\n" + traceback.format_exc())
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
            raise PipelineRunError(resolver.id, summary, execution_id) from e
        store.record_resolved(execution_id, resolved)
        result.resolved[resolver.id] = resolved
        for key, arts in resolved.items():
            self.listener.on_message(resolver.id, f"{key}: {arts[0] if arts else 'none'}")
        return COMPLETE, {key: arts[0] for key, arts in resolved.items() if arts}

    def _run_component(self, store: MetadataStore, pipeline: Pipeline, run_id: int,
                       component: Component, result: RunResult) -> tuple[str, dict[str, Artifact]]:
        inputs = {key: self._resolve(store, pipeline, component, key, channel, result)
                  for key, channel in component.inputs.items()}
        params_json = parameters_to_json(component.parameters)
        fingerprint = _fingerprint(component, params_json, inputs)
        component_type = type(component).__name__
        if self._use_cache:
            cached = store.find_cached(pipeline.name, component.id, fingerprint)
            if cached is not None:
                cached_from, outputs = cached
                store.record_cached(run_id, pipeline.name, component.id, component_type,
                                    fingerprint=fingerprint, parameters=params_json,
                                    cached_from=cached_from, inputs=inputs, outputs=outputs)
                return CACHED, outputs

        execution_id = store.start_execution(run_id, pipeline.name, component.id, component_type,
                                             fingerprint=fingerprint, parameters=params_json)
        store.record_inputs(execution_id, inputs)

        def previous_output(key: str) -> Artifact | None:
            latest = store.published(pipeline.name, component.id, key)
            return latest[0] if latest else None

        # Setup failures (a locked store, a directory that cannot be made) fail the execution
        # like executor errors, so it never stays RUNNING.
        temp_dir = os.path.join(pipeline.root, ".temp", str(execution_id))
        try:
            final_uris, outputs = {}, {}
            for key, artifact_type in component.OUTPUTS.items():
                base = os.path.join(pipeline.root, component.id, key)
                _remove_stale_temp_dirs(store, base)
                final_uris[key] = os.path.join(base, str(execution_id))
                tmp = os.path.join(base, f".tmp-{execution_id}")
                shutil.rmtree(tmp, ignore_errors=True)
                os.makedirs(tmp)
                outputs[key] = artifact_type(uri=tmp)
            store.register_outputs(execution_id, pipeline.name, component.id, outputs)
            os.makedirs(temp_dir, exist_ok=True)
            work_dir = self._work_dir(store, pipeline, component, fingerprint, execution_id)

            ctx = ExecutionContext(
                component_id=component.id, execution_id=execution_id, inputs=inputs, outputs=outputs,
                parameters=component.parameters, beam_pipeline_args=pipeline.beam_pipeline_args,
                temp_dir=temp_dir, work_dir=work_dir, previous_output=previous_output,
                report=lambda message: self.listener.on_message(component.id, message))
            component.executor()(ctx)
        except BaseException as e:
            summary, details = _summary(e), traceback.format_exc()
            if not isinstance(e, (KeyboardInterrupt, SystemExit)):
                summary, details = _keep_failed_outputs(store, component.id, execution_id, outputs,
                                                        summary, details)
            store.fail_execution(execution_id, summary + "\n" + details)
            shutil.rmtree(temp_dir, ignore_errors=True)  # scratch; the outputs are kept above
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
            raise PipelineRunError(component.id, summary, execution_id) from e
        # Atomic publish: rename each finished directory, then flip the DB state in
        # one transaction. A crash before the commit leaves only unpublished dirs.
        for key, art in outputs.items():
            os.replace(art.uri, final_uris[key])
            art.uri = final_uris[key]
        store.publish(execution_id, outputs)
        for art in outputs.values():  # what older failed executions of this node kept
            _remove_failed_dirs(os.path.dirname(art.uri))
        shutil.rmtree(temp_dir, ignore_errors=True)
        shutil.rmtree(work_dir, ignore_errors=True)
        return COMPLETE, outputs

    def _work_dir(self, store: MetadataStore, pipeline: Pipeline, component: Component,
                  fingerprint: str, execution_id: int) -> str:
        """The execution's resumable scratch dir: ``<root>/.work/<node>/<fingerprint>``.

        It survives a crash or a failure, so the next execution with the same fingerprint
        (same inputs, parameters and code) picks up where that one stopped; it is removed
        once an execution is published. Scratch dirs of other fingerprints are removed
        unless a live execution uses them. While another live execution holds this
        fingerprint's dir, this one gets a private ``<fingerprint>-<execution id>`` dir.
        ``enable_cache=False`` starts from an empty dir.
        """
        base = os.path.join(pipeline.root, ".work", component.id)
        running = store.running_fingerprints(pipeline.name, component.id)
        busy = {fp for eid, fp in running.items() if eid != execution_id}
        name = fingerprint if fingerprint not in busy else f"{fingerprint}-{execution_id}"
        if os.path.isdir(base):
            for entry in os.listdir(base):
                entry_fingerprint, _, owner = entry.partition("-")
                in_use = int(owner) in running if owner.isdigit() else entry_fingerprint in busy
                if entry != name and not in_use:
                    shutil.rmtree(os.path.join(base, entry), ignore_errors=True)
        path = os.path.join(base, name)
        if not self._use_cache:
            shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path, exist_ok=True)
        return path


class _History:
    """`ArtifactHistory` over the metadata store, for one pipeline (what resolvers may read)."""

    def __init__(self, store: MetadataStore, pipeline_name: str):
        self._store = store
        self._pipeline = pipeline_name

    def published(self, component_id: str, output_key: str) -> list[Artifact]:
        return self._store.published(self._pipeline, component_id, output_key)

    def producer_inputs(self, artifact: Artifact) -> dict[str, list[Artifact]]:
        return self._store.producer_inputs(artifact.id)


def _resolvers_feeding(pipeline: Pipeline, selected: set[str]) -> set[str]:
    """Resolver nodes whose outputs a selected node consumes (resolved in every run that needs them)."""
    return {channel.producer.id for component in pipeline.components if component.id in selected
            for channel in component.inputs.values() if isinstance(channel.producer, Resolver)}


def _check_resolvers(pipeline: Pipeline) -> None:
    ids = {c.id for c in pipeline.components}
    for component in pipeline.components:
        if not isinstance(component, Resolver):
            continue
        for node in component.referenced_nodes():
            if node not in ids:
                raise ValueError(
                    f"{component.id} reads the history of node {node!r}, which is not in pipeline "
                    f"{pipeline.name!r} (nodes: {sorted(ids)}). How to fix: pass the id of that "
                    "node, e.g. pusher='Pusher'.")


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


def _remove_stale_temp_dirs(store: MetadataStore, base: str) -> None:
    """Deletes ``.tmp-<id>`` output dirs left by killed or failed executions (never published)."""
    if not os.path.isdir(base):
        return
    for name in os.listdir(base):
        if name.startswith(".tmp-") and name[5:].isdigit() and store.execution_state(int(name[5:])) != RUNNING:
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)


def _remove_stale_scratch(store: MetadataStore, root: str) -> None:
    """Deletes ``<root>/.temp/<id>`` scratch dirs of executions that are not running (killed ones)."""
    base = os.path.join(root, ".temp")
    if not os.path.isdir(base):
        return
    for name in os.listdir(base):
        if name.isdigit() and store.execution_state(int(name)) != RUNNING:
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)


def _remove_failed_dirs(base: str, keep: str | None = None) -> None:
    """Deletes the ``failed-<id>`` output dirs kept from failed executions (but ``keep``)."""
    if not os.path.isdir(base):
        return
    for name in os.listdir(base):
        if name.startswith(FAILED_PREFIX) and name[len(FAILED_PREFIX):].isdigit() and name != keep:
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)


def _keep_failed_outputs(store: MetadataStore, component_id: str, execution_id: int,
                         outputs: dict[str, Artifact], summary: str, details: str) -> tuple[str, str]:
    """Moves a failed execution's non-empty ``.tmp-<id>`` outputs to ``failed-<id>`` (the next run
    deletes ``.tmp-*`` dirs) and rewrites the paths in the error; returns (summary, details)."""
    kept = []
    for art in outputs.values():
        temp = art.uri
        base = os.path.dirname(temp)
        if os.path.basename(temp) != f".tmp-{execution_id}" or not os.path.isdir(temp):
            continue
        if not os.listdir(temp):
            shutil.rmtree(temp, ignore_errors=True)
            continue
        target = os.path.join(base, f"{FAILED_PREFIX}{execution_id}")
        try:
            _remove_failed_dirs(base)  # one failed execution's outputs at a time per output
            os.replace(temp, target)
        except OSError:
            continue  # left as it was: the message still names where it is now
        summary, details = summary.replace(temp, target), details.replace(temp, target)
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


def _locked_message(pipeline: Pipeline, holder: LockInfo | None, timeout: float) -> str:
    """The error of a run that did not get the run lock in time: who holds it and what to do."""
    if holder is None:
        who = "another run (it released the lock as the wait ended)"
        expiry = ""
    else:
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)  # the store keeps naive UTC
        who = (f"{holder.describe()}, started {holder.acquired:%Y-%m-%d %H:%M:%S} UTC, last heartbeat "
               f"{max(0, (now - holder.renewed).total_seconds()):.0f} s ago")
        expiry = (f" If that process is gone, its lock expires at {holder.expires:%H:%M:%S} UTC (a lease "
                  "after its last heartbeat) and the next run takes it over.")
    return (f"pipeline {pipeline.name!r} is being run by {who}; waited {timeout:g} s for it to finish. "
            "How to fix: run again once it has finished (what it finished comes from the cache), or wait "
            f"longer with LocalRunner(lock_timeout=SECONDS) or {LOCK_TIMEOUT_ENV}=SECONDS." + expiry)


def _fingerprint(component: Component, params_json: str, inputs: dict[str, list[Artifact]]) -> str:
    material = {
        "type": f"{type(component).__module__}.{type(component).__qualname__}",
        "parameters": params_json,
        "inputs": {key: [a.id for a in arts] for key, arts in sorted(inputs.items())},
        "extras": component.fingerprint_extras(),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _summary(error: BaseException) -> str:
    """A one-line summary: the user-facing error if one is in the chain, else the first line."""
    seen = error
    while seen is not None:
        if isinstance(seen, ComponentError):
            return str(seen).strip() or type(seen).__name__
        seen = seen.__cause__ or seen.__context__
    text = str(error).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(error).__name__}: {first}"
