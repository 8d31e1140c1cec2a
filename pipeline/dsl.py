"""The pipeline DSL: a named DAG of components, checked when it is built.

Example:
    >>> from pipeline.dsl import Pipeline
    >>> p = Pipeline("empty", root="/tmp/empty", components=[])
    >>> p.name
    'empty'
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from components import fileio
from components.base import Component, check_channel_type


class Pipeline:
    """A pipeline: components wired by their channels, run by a runner.

    Args:
        name: The pipeline's name (a key in the metadata store).
        root: Directory holding artifacts and, by default, the SQLite metadata; or an object-store
            URL (``gs://bucket/taxi``, with ``metadata`` then required): the components then run on
            local copies that are uploaded before they are published (see `pipeline.staging`).
        components: The components; their order does not matter.
        enable_cache: Reuse the outputs of an unchanged component.
        beam_pipeline_args: Passed unchanged to every Beam pipeline
            (e.g. ``["--runner=FlinkRunner", "--flink_master=host:8081"]``).
        metadata: A SQLAlchemy URL; default ``sqlite:///<root>/metadata.sqlite``.

    Raises:
        ValueError: on duplicate ids, a missing upstream component or a cycle.
        TypeError: on an input wired to an output of the wrong artifact type.
    """

    def __init__(self, name: str, root: str, components: Sequence[Component], *,
                 enable_cache: bool = True, beam_pipeline_args: Sequence[str] = (),
                 metadata: str | None = None):
        if not name or not isinstance(name, str):
            raise ValueError(
                f"Pipeline got name={name!r}; expected a non-empty str. "
                "How to fix: name the pipeline, e.g. Pipeline('taxi', ...)."
            )
        self.name = name
        root = os.fspath(root)
        if fileio.is_url(root):
            if not metadata:
                raise ValueError(
                    f"Pipeline(root={root!r}) needs metadata=URL: the metadata store cannot live in an "
                    "object store. How to fix: pass metadata='postgresql+psycopg://user@host/db' (a store "
                    "every machine of the pipeline reaches), or a local 'sqlite:////path/metadata.sqlite' "
                    "for runs on one machine.")
            self.root = root.rstrip("/")
        else:
            self.root = os.path.abspath(fileio.local_path(root))
        self.enable_cache = enable_cache
        self.beam_pipeline_args = tuple(beam_pipeline_args)
        self.metadata = metadata or f"sqlite:///{os.path.join(self.root, 'metadata.sqlite')}"
        self.components = topological_order(list(components))

    def component(self, component_id: str) -> Component:
        """Returns the component with this id."""
        for component in self.components:
            if component.id == component_id:
                return component
        raise ValueError(
            f"Pipeline {self.name!r} got component id {component_id!r}; expected one of "
            f"{[c.id for c in self.components]}. How to fix: use a node id from that list."
        )


def topological_order(components: list[Component]) -> list[Component]:
    """Checks ids, channel types and acyclicity; returns the components in run order."""
    by_id: dict[str, Component] = {}
    for component in components:
        if not isinstance(component, Component):
            raise TypeError(
                f"Pipeline got component {component!r}; expected a Component. "
                "How to fix: pass component instances."
            )
        if component.id in by_id:
            raise ValueError(
                f"Pipeline got two components with id={component.id!r}; expected unique ids. "
                "How to fix: give one of them another id with .with_id('...')."
            )
        by_id[component.id] = component
    for component in components:
        for key, channel in component.inputs.items():
            check_channel_type(component.id, key, channel, type(component).INPUTS[key].artifact_type)
            producer = channel.producer
            produced = type(producer).OUTPUTS.get(channel.output_key)
            if produced is None or not issubclass(produced, channel.artifact_type):
                raise TypeError(
                    f"Pipeline got {component.id}.{key}={channel!r}, but {producer.id} produces "
                    f"{channel.output_key}={produced.__name__ if produced else None}. How to fix: "
                    "wire producer.outputs[...] instead of building channels by hand."
                )
            if by_id.get(producer.id) is not producer:
                raise ValueError(
                    f"Pipeline got {component.id}.{key} wired to {producer.id!r}, which is not "
                    "in the pipeline. How to fix: add that component to components=[...]."
                )
    order: list[Component] = []
    state: dict[str, str] = {}

    def visit(component: Component, path: list[str]) -> None:
        if state.get(component.id) == "done":
            return
        if state.get(component.id) == "visiting":
            cycle = " -> ".join(path[path.index(component.id):] + [component.id])
            raise ValueError(
                f"Pipeline got a cycle: {cycle}; expected a DAG. "
                "How to fix: remove one of those input wirings."
            )
        state[component.id] = "visiting"
        for upstream in component.upstream:
            visit(upstream, path + [component.id])
        state[component.id] = "done"
        order.append(component)

    for component in components:
        visit(component, [])
    return order


def downstream_closure(components: Sequence[Component], start: set[str]) -> set[str]:
    """The ids in ``start`` plus every component that (transitively) consumes them."""
    result = set(start)
    for component in components:  # topological order: one pass suffices
        if any(up.id in result for up in component.upstream):
            result.add(component.id)
    return result


def upstream_closure(components: Sequence[Component], end: set[str]) -> set[str]:
    """The ids in ``end`` plus every component they (transitively) consume."""
    result = set(end)
    for component in reversed(list(components)):
        if component.id in result:
            result.update(up.id for up in component.upstream)
    return result


def task_dependencies(components: Sequence[Component]) -> dict[str, tuple[str, ...]]:
    """Each node's upstream node ids for an orchestrator that runs nodes as separate tasks.

    The pipeline's channels, plus one rule that keeps the local runner's meaning: a node whose
    outputs nothing consumes (a *gate*, e.g. ExampleValidator) must pass before every later node
    (in run order) that depends on the same data, i.e. that consumes, directly or not, one of
    the gate's producers. The local runner stops at a failed ExampleValidator, so an Airflow or
    KFP run must not go on to train and push on data that failed validation.

    Example: with ``ExampleGen -> StatisticsGen -> ExampleValidator`` and
    ``StatisticsGen -> Transform``, Transform gets ExampleValidator as an upstream.
    """
    order = topological_order(list(components))
    consumed = {up.id for c in order for up in c.upstream}
    upstream = {c.id: list(dict.fromkeys(up.id for up in c.upstream)) for c in order}

    def ancestors(node_id: str) -> set[str]:
        seen, stack = set(), list(upstream[node_id])
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(upstream[current])
        return seen

    for index, gate in enumerate(order):
        if gate.id in consumed or not gate.upstream:
            continue
        same_data = downstream_closure(order, {up.id for up in gate.upstream})
        for later in order[index + 1:]:
            # Only where the gate is not already upstream (directly or through another node).
            if later.id in same_data and gate.id not in ancestors(later.id):
                upstream[later.id].append(gate.id)
    return {node: tuple(ids) for node, ids in upstream.items()}
