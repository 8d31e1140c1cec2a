"""The resolver contract: a node that picks existing artifacts from the metadata store.

A resolver node runs no executor and writes nothing. When the runner reaches it,
it calls `Resolver.resolve` with the node's resolved inputs and a read-only view
of the pipeline's history (`ArtifactHistory`); the artifacts it returns are
handed, unchanged (same ids), to the nodes that consume its outputs. Because the
consumers' cache keys include those ids, a different resolution reruns them.

Resolvers live in `components` but the store lives in `pipeline`: the runner
adapts its `MetadataStore` to `ArtifactHistory`, so this layer never imports it.

Example:
    >>> import dataclasses
    >>> from components.artifacts import Model
    >>> @dataclasses.dataclass(frozen=True)
    ... class Newest:
    ...     trainer: str = "Trainer"
    >>> class NewestModel(Resolver):
    ...     OUTPUTS = {"model": Model}
    ...     PARAMETERS = Newest
    ...     def __init__(self):
    ...         super().__init__(inputs={}, parameters=Newest())
    ...     def resolve(self, inputs, history):
    ...         return {"model": history.published(self.parameters.trainer, "model")[:1]}
    >>> NewestModel().referenced_nodes()
    ()
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from components.artifacts import Artifact
from components.base import Component


class ArtifactHistory(Protocol):
    """What a resolver may read from the metadata store, for the pipeline being run."""

    def published(self, component_id: str, output_key: str) -> list[Artifact]:
        """Published artifacts of one node's output, newest first."""

    def producer_inputs(self, artifact: Artifact) -> dict[str, list[Artifact]]:
        """The inputs (key -> artifacts) of the execution that produced ``artifact``."""


class Resolver(Component):
    """Base class of resolver nodes: subclasses declare INPUTS/OUTPUTS/PARAMETERS and `resolve`."""

    def resolve(self, inputs: Mapping[str, list[Artifact]],
                history: ArtifactHistory) -> dict[str, list[Artifact]]:
        """Returns output key -> the chosen artifacts (possibly none), newest first."""
        raise NotImplementedError

    def referenced_nodes(self) -> tuple[str, ...]:
        """Node ids the resolution reads by name; the runner checks that they exist."""
        return ()

