"""The latest blessed Model, read from the metadata store: the warm start and the baseline.

A Model counts as blessed when the Pusher pushed it and every blessing the Pusher
read (the Evaluator's ModelBlessing, required, and the InfraValidator's
InfraBlessing, when wired) said blessed. The resolver walks the Pusher's published
outputs, newest first, through their lineage to the Model they pushed, and hands
that very artifact (its SavedModel and its checkpoint) to the consumers. When no
model qualifies, the output is empty: the Trainer cold-starts and the Evaluator
judges value thresholds only.

``before`` makes the resolution a function of its input: only pushes recorded
before the ``before`` artifact was created count. Wired to the Trainer's input
examples (warm start) or to the candidate Model (baseline), a rerun on unchanged
inputs resolves the same model as the run it reuses, so it stays cached; a model
is never its own baseline; and a run on new data resolves the newest blessed model.

Example:
    >>> r = LatestBlessedModelResolver(id="BaselineModelResolver")
    >>> r.referenced_nodes()
    ('Pusher',)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from components import fileio
from components.artifacts import Artifact, Model
from components.base import Channel, InputSpec
from components.resolver.base import ArtifactHistory, Resolver

PUSHED_MODEL = "pushed_model"
BLESSING_KEYS = ("model_blessing", "infra_blessing")


@dataclasses.dataclass(frozen=True)
class LatestBlessedParameters:
    """Attributes:
        pusher: The node id of the Pusher whose pushes define "blessed".
    """

    pusher: str = "Pusher"

    def __post_init__(self) -> None:
        if not isinstance(self.pusher, str) or not self.pusher:
            raise ValueError(
                f"LatestBlessedModelResolver got pusher={self.pusher!r}; expected the Pusher's node "
                "id. How to fix: pass e.g. pusher='Pusher'.")


class LatestBlessedModelResolver(Resolver):
    """Outputs the newest Model that was blessed and pushed (or nothing).

    Args:
        before: Optional channel; only pushes recorded before its artifact count.
        pusher: The Pusher's node id (default "Pusher").
        id: Node id (default "LatestBlessedModelResolver").
    """

    INPUTS = {"before": InputSpec(Artifact, optional=True)}
    OUTPUTS = {"model": Model}
    PARAMETERS = LatestBlessedParameters

    def __init__(self, *, before: Channel | None = None, pusher: str = "Pusher", id: str | None = None):
        super().__init__(inputs={"before": before}, parameters=LatestBlessedParameters(pusher), id=id)

    def referenced_nodes(self) -> tuple[str, ...]:
        return (self.parameters.pusher,)

    def resolve(self, inputs: Mapping[str, list[Artifact]],
                history: ArtifactHistory) -> dict[str, list[Artifact]]:
        before = [a.id for a in inputs.get("before") or [] if a.id is not None]
        limit = max(before) if before else None
        for pushed in history.published(self.parameters.pusher, PUSHED_MODEL):
            if limit is not None and pushed.id > limit:
                continue
            if not pushed.properties.get("pushed"):
                continue
            model = _blessed_model(history.producer_inputs(pushed))
            if model is not None:
                return {"model": [model]}
        return {"model": []}


def _blessed_model(push_inputs: Mapping[str, list[Artifact]]) -> Model | None:
    """The pushed Model, if the push read a blessed ModelBlessing and no unblessed blessing."""
    if not push_inputs.get("model_blessing"):
        return None  # pushed without an Evaluator's verdict: not blessed
    for key in BLESSING_KEYS:
        if not all(b.properties.get("blessed") is True for b in push_inputs.get(key) or []):
            return None
    models = push_inputs.get("model") or []
    if not models or not fileio.isdir(models[0].uri):
        return None
    return models[0]
