"""Pusher's spec: copies a blessed model to ``<push_destination>/<model_name>/<version>/``.

Example:
    >>> params = PusherParameters(push_destination="/srv/models", model_name="taxi")
    >>> params.versions_to_keep
    5
"""

from __future__ import annotations

import dataclasses

from components.artifacts import InfraBlessing, Model, ModelBlessing, PushedModel
from components.base import Channel, Component, InputSpec

VERSION_POLICIES = ("timestamp", "increment")


@dataclasses.dataclass(frozen=True)
class PusherParameters:
    """Attributes:
        push_destination: The serving base directory (TF Serving's ``--model_base_path``'s parent).
        model_name: The model's directory under push_destination.
        versions_to_keep: Newest pushed versions kept; older ones are deleted after a push.
        version_policy: ``"timestamp"`` (seconds since the epoch, default) or ``"increment"``
            (1, 2, 3, ...). Either way a new version is greater than every existing one.
    """

    push_destination: str
    model_name: str
    versions_to_keep: int = 5
    version_policy: str = "timestamp"

    def __post_init__(self) -> None:
        if not isinstance(self.push_destination, str) or not self.push_destination:
            raise ValueError(
                f"Pusher got push_destination={self.push_destination!r}; expected a directory path. "
                "How to fix: pass the serving base directory, e.g. push_destination='serving_models'.")
        name = self.model_name
        if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
            raise ValueError(
                f"Pusher got model_name={name!r}; expected a plain directory name. How to fix: "
                "pass e.g. model_name='taxi' (no slashes, not starting with '.').")
        if not isinstance(self.versions_to_keep, int) or self.versions_to_keep < 1:
            raise ValueError(
                f"Pusher got versions_to_keep={self.versions_to_keep!r}; expected an int >= 1. How "
                "to fix: pass how many pushed versions to keep, e.g. 5.")
        if self.version_policy not in VERSION_POLICIES:
            raise ValueError(
                f"Pusher got version_policy={self.version_policy!r}; expected one of "
                f"{list(VERSION_POLICIES)}. How to fix: pick 'timestamp' or 'increment'.")


class Pusher(Component):
    """Pushes the model when every given blessing says blessed; otherwise records why not.

    The copy goes to a unique staging sibling (``.tmp-<version>-<uuid>-<pid>-<host>``, which
    TF Serving ignores) and is renamed into place, so a server never loads a half-copied
    version. Each version holds a ``push_record.json`` naming the model it came from; a
    rerun whose model is already the newest version (a crash before the push was recorded)
    reuses that version instead of pushing it twice (``reused=True`` in the output).
    Staging dirs left by killed pushes are removed by the next push.

    Args:
        model: The Trainer's Model.
        model_blessing: The Evaluator's ModelBlessing (optional).
        infra_blessing: The InfraValidator's InfraBlessing (optional).
        push_destination, model_name, versions_to_keep, version_policy: See PusherParameters.
        id: Node id (default "Pusher").
    """

    INPUTS = {"model": InputSpec(Model), "model_blessing": InputSpec(ModelBlessing, optional=True),
              "infra_blessing": InputSpec(InfraBlessing, optional=True)}
    OUTPUTS = {"pushed_model": PushedModel}
    PARAMETERS = PusherParameters
    EXECUTOR = "components.pusher.executor:run"

    def __init__(self, model: Channel, *, push_destination: str, model_name: str,
                 model_blessing: Channel | None = None, infra_blessing: Channel | None = None,
                 versions_to_keep: int = 5, version_policy: str = "timestamp", id: str | None = None):
        super().__init__(inputs={"model": model, "model_blessing": model_blessing,
                                 "infra_blessing": infra_blessing},
                         parameters=PusherParameters(push_destination, model_name, versions_to_keep,
                                                     version_policy), id=id)
