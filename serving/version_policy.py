"""Which on-disk versions of a model are served: latest{N}, all or specific.

Mirrors ``FileSystemStoragePathSourceConfig.ServableVersionPolicy`` from
``tensorflow_serving.config.file_system_storage_path_source_pb2``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from tensorflow_serving.config import file_system_storage_path_source_pb2

_ProtoPolicy = file_system_storage_path_source_pb2.FileSystemStoragePathSourceConfig.ServableVersionPolicy

LATEST = "latest"
ALL = "all"
SPECIFIC = "specific"


@dataclasses.dataclass(frozen=True)
class VersionPolicy:
    """A servable version policy.

    Args:
        kind: ``"latest"``, ``"all"`` or ``"specific"``.
        num_versions: How many of the highest versions ``latest`` serves.
        versions: The versions ``specific`` serves.

    Example:
        >>> VersionPolicy(LATEST, num_versions=2).select([1, 2, 3])
        {2, 3}
    """

    kind: str = LATEST
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    def __post_init__(self):
        if self.kind not in (LATEST, ALL, SPECIFIC):
            raise ValueError(
                f"VersionPolicy got kind={self.kind!r}; expected one of "
                f"'latest', 'all', 'specific'."
            )
        if self.kind == LATEST and self.num_versions < 1:
            raise ValueError(
                f"VersionPolicy got num_versions={self.num_versions!r}; expected >= 1 "
                "for the 'latest' policy (use latest { num_versions: 1 })."
            )
        if self.kind == SPECIFIC and not self.versions:
            raise ValueError(
                "VersionPolicy got kind='specific' with no versions; list at least "
                "one, e.g. specific { versions: 1 }."
            )

    @classmethod
    def from_proto(cls, proto: _ProtoPolicy) -> VersionPolicy:
        """Builds a policy from a ``ServableVersionPolicy`` (unset means latest 1)."""
        which = proto.WhichOneof("policy_choice")
        if which == "all":
            return cls(ALL)
        if which == "specific":
            return cls(SPECIFIC, versions=tuple(sorted(proto.specific.versions)))
        if which == "latest":
            return cls(LATEST, num_versions=proto.latest.num_versions or 1)
        return cls(LATEST)

    def select(self, versions: Iterable[int]) -> set[int]:
        """Returns the subset of ``versions`` this policy aspires to serve."""
        found = set(versions)
        if self.kind == ALL:
            return found
        if self.kind == SPECIFIC:
            return found & set(self.versions)
        return set(sorted(found)[-self.num_versions:])
