"""The latest blessed model, read from the Pusher's destination.

A model reaches ``<push_destination>/<model_name>/<version>/`` only when every
blessing said yes, so the newest version there is the latest blessed (and served)
model: the natural baseline for the Evaluator's change thresholds. The resolver
copies it into its Model output (``Format-Serving/<version>``). When nothing has
been pushed yet, the output has no ``serving_model`` and ``found=False``; the
Evaluator then judges the candidate on value thresholds only.

The pipeline framework gives an executor no access to other components' past
outputs, so the push destination (a directory the pipeline owns anyway) is the
record here. The versions present are part of the cache key, so a new push reruns
the resolver.

Example:
    >>> r = LatestPushedModelResolver(push_destination="/srv/models", model_name="taxi")
    >>> r.outputs["model"].artifact_type.TYPE_NAME
    'Model'
"""

from __future__ import annotations

import dataclasses
import os

from components import fileio
from components.artifacts import Model
from components.base import Component, ExecutionContext
from components.pusher.component import PusherParameters
from components.pusher.executor import destination_dir, existing_versions
from components.trainer.model_paths import SERVING_DIR


@dataclasses.dataclass(frozen=True)
class ResolverParameters:
    """Attributes:
        push_destination: The Pusher's push_destination.
        model_name: The Pusher's model_name.
    """

    push_destination: str
    model_name: str

    def __post_init__(self) -> None:
        PusherParameters(self.push_destination, self.model_name)  # same checks, same messages

    @property
    def model_dir(self) -> str:
        return destination_dir(self.push_destination, self.model_name)


class LatestPushedModelResolver(Component):
    """Outputs the newest pushed version of a model (or an empty Model if none).

    Args:
        push_destination, model_name: As given to the Pusher.
        id: Node id (default "LatestPushedModelResolver").
    """

    OUTPUTS = {"model": Model}
    PARAMETERS = ResolverParameters
    EXECUTOR = "components.resolver.latest_pushed:run"

    def __init__(self, *, push_destination: str, model_name: str, id: str | None = None):
        super().__init__(inputs={}, parameters=ResolverParameters(push_destination, model_name), id=id)

    def fingerprint_extras(self) -> dict[str, str]:
        """Adds the versions present, so a new push (or a removed version) reruns the resolver."""
        extras = super().fingerprint_extras()
        extras["versions"] = ",".join(map(str, existing_versions(self.parameters.model_dir, complete_only=True)))
        return extras


def run(ctx: ExecutionContext) -> None:
    params = ctx.parameters
    out = ctx.outputs["model"]
    versions = existing_versions(params.model_dir, complete_only=True)
    if not versions:
        ctx.report(f"no version under {params.model_dir}: no baseline")
        out.properties.update(found=False, reason=f"nothing pushed under {params.model_dir} yet")
        return
    version = versions[-1]
    relative = os.path.join(SERVING_DIR, str(version))
    source = fileio.join(params.model_dir, str(version))
    fileio.copytree(source, os.path.join(out.uri, relative))
    out.properties.update(found=True, serving_model=relative, pushed_version=version, source=source)
