"""The local runner: runs a pipeline's DAG in this process, in topological order.

It caches (an unchanged component is reused, not rerun), publishes outputs
atomically (a killed run never leaves a half artifact that a later run
consumes), resumes after a crash (finished components come from the cache) and
runs part of the DAG (``from_nodes`` / ``to_nodes``).

Example:
    >>> from pipeline.runner import LocalRunner
    >>> # LocalRunner().run(my_pipeline)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
import traceback
from collections.abc import Iterable

from components.artifacts import Artifact
from components.base import (
    CURRENT, PREVIOUS_SPAN, SPAN_WINDOW, Channel, Component, ComponentError, ExecutionContext,
    parameters_to_json,
)
from pipeline.dsl import Pipeline, downstream_closure, upstream_closure
from pipeline.metadata import CACHED, COMPLETE, FAILED, RUNNING, MetadataStore
from pipeline.progress import ProgressListener


class PipelineRunError(RuntimeError):
    """A component failed; the message is the component's one-line summary."""

    def __init__(self, component_id: str, message: str, execution_id: int | None = None):
        super().__init__(f"{component_id} failed: {message}")
        self.component_id = component_id
        self.execution_id = execution_id


@dataclasses.dataclass
class RunResult:
    """What one run did: its id, each node's state (COMPLETE/CACHED/SKIPPED) and outputs."""

    run_id: int
    states: dict[str, str]
    outputs: dict[str, dict[str, Artifact]]
    seconds: dict[str, float]

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
    """

    def __init__(self, listener: ProgressListener | None = None):
        self.listener = listener or ProgressListener()
        self._use_cache = True

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
        self._use_cache = pipeline.enable_cache if enable_cache is None else enable_cache

        store = MetadataStore(pipeline.metadata)
        store.mark_abandoned(pipeline.name)
        run_id = store.start_run(pipeline.name)
        result = RunResult(run_id, {}, {}, {})
        self.listener.on_run_start(pipeline, run_id, [i for i in ids if i in selected])
        try:
            for component in pipeline.components:
                if component.id not in selected:
                    continue
                started = time.monotonic()
                self.listener.on_component_start(component.id)
                state, outputs = self._run_component(store, pipeline, run_id, component, result)
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
        temp_dir = os.path.join(pipeline.root, ".temp", str(execution_id))
        os.makedirs(temp_dir, exist_ok=True)

        def previous_output(key: str) -> Artifact | None:
            latest = store.published(pipeline.name, component.id, key)
            return latest[0] if latest else None

        ctx = ExecutionContext(
            component_id=component.id, execution_id=execution_id, inputs=inputs, outputs=outputs,
            parameters=component.parameters, beam_pipeline_args=pipeline.beam_pipeline_args,
            temp_dir=temp_dir, previous_output=previous_output,
            report=lambda message: self.listener.on_message(component.id, message))
        try:
            component.executor()(ctx)
        except BaseException as e:
            summary = _summary(e)
            store.fail_execution(execution_id, summary + "\n" + traceback.format_exc())
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
            raise PipelineRunError(component.id, summary, execution_id) from e
        # Atomic publish: rename each finished directory, then flip the DB state in
        # one transaction. A crash before the commit leaves only unpublished dirs.
        for key, art in outputs.items():
            os.replace(art.uri, final_uris[key])
            art.uri = final_uris[key]
        store.publish(execution_id, outputs)
        shutil.rmtree(temp_dir, ignore_errors=True)
        return COMPLETE, outputs


def _remove_stale_temp_dirs(store: MetadataStore, base: str) -> None:
    """Deletes ``.tmp-<id>`` output dirs left by killed or failed executions (never published)."""
    if not os.path.isdir(base):
        return
    for name in os.listdir(base):
        if name.startswith(".tmp-") and name[5:].isdigit() and store.execution_state(int(name[5:])) != RUNNING:
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)


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
