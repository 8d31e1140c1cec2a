"""The local runner: runs a pipeline's DAG in this process, in topological order.

It is a loop over `pipeline.launcher.Launcher` (one node at a time, all with one fresh
run key, ``local-<uuid>``), so it caches (an unchanged component is reused, not rerun), publishes outputs
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
renewing it for ``lock_lease`` seconds (or whose process is gone under this kernel and
pid namespace, `pipeline.metadata.machine_identity`) is taken over.

A partial run (``from_nodes`` / ``to_nodes``) takes the latest published outputs of the
producers it leaves out, whichever run made them; every other input comes from this run.

The run and its executions carry a heartbeat (`pipeline.metadata.Heartbeat`, lease
``lock_lease``): a run elsewhere whose heartbeat is alive is never abandoned, and only
the leftovers of abandoned or failed executions are deleted.

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
import logging
import os
import time
import uuid
from collections.abc import Iterable
from typing import IO

from components.artifacts import Artifact
from components.resolver.base import Resolver
from pipeline.dsl import Pipeline, downstream_closure, upstream_closure
from pipeline.launcher import FAILED_PREFIX, Launcher, PipelineRunError, remove_stale_scratch, scratch_root
from pipeline.metadata import (
    CACHED, COMPLETE, FAILED, Heartbeat, Lease, LockInfo, LockTimeout, MetadataStore,
)
from pipeline.progress import ProgressListener

DEFAULT_LOCK_TIMEOUT_S = 600.0
DEFAULT_LOCK_LEASE_S = 60.0
LOCK_TIMEOUT_ENV = "PIPELINE_LOCK_TIMEOUT"
RUN_KEY_PREFIX = "local-"
_log = logging.getLogger(__name__)
__all__ = ["FAILED_PREFIX", "LocalRunner", "PipelineLockedError", "PipelineRunError", "RunResult"]


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
    run_key: str = ""

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
        remove_stale_scratch(store, scratch_root(pipeline))
        run_key = f"{RUN_KEY_PREFIX}{uuid.uuid4().hex}"
        run_id = store.start_run(pipeline.name, run_key=run_key, lease_s=self.lock_lease)
        store.set_lock_run(lease.name, lease.token, run_id)
        result = RunResult(run_id, {}, {}, {}, run_key=run_key)
        launcher = Launcher(store, listener=self.listener, enable_cache=self._use_cache,
                            lease_s=self.lock_lease, quiet=self.quiet, terminal=self.terminal)
        outside = frozenset(ids) - selected
        self.listener.on_run_start(pipeline, run_id, [i for i in ids if i in selected])
        try:
            with Heartbeat(store, run_id=run_id, lease_s=self.lock_lease):
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
                    node = launcher.launch(pipeline, component.id, run_key, latest_outside=outside)
                    result.states[component.id] = node.state
                    result.outputs[component.id] = node.outputs
                    if node.resolved is not None:
                        result.resolved[component.id] = node.resolved
                    result.seconds[component.id] = time.monotonic() - started
                    self.listener.on_component_end(component.id, node.state, result.seconds[component.id],
                                                   node.outputs)
        except BaseException as e:  # noqa: BLE001 - also record KeyboardInterrupt
            store.finish_run(run_id, FAILED, error=str(e))
            self.listener.on_run_end(run_id, FAILED)
            raise
        store.finish_run(run_id, COMPLETE)
        self.listener.on_run_end(run_id, COMPLETE)
        return result


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
