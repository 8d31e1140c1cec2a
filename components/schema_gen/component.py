"""SchemaGen and ImportSchemaGen specs.

Example:
    >>> ImportSchemaGen("my/schema.pbtxt").parameters.schema_file.endswith("my/schema.pbtxt")
    True
"""

from __future__ import annotations

import dataclasses
import os

from components.artifacts import ExampleStatistics, Schema
from components.base import Channel, Component, InputSpec, file_digest


@dataclasses.dataclass(frozen=True)
class SchemaGenParameters:
    """Attributes:
        splits: The splits whose statistics define the schema (empty: all of them), so a value
            or a missing cell seen only in eval is not an anomaly of the data it came from.
        infer_feature_shape: Give always-present single-valued features a fixed shape [1]
            (Transform then sees dense tensors instead of sparse ones).
        max_string_domain_size: Strings with at most this many distinct values get a domain
            (unseen values are then anomalies).
    """

    splits: tuple[str, ...] = ()
    infer_feature_shape: bool = True
    max_string_domain_size: int = 100


class SchemaGen(Component):
    """Infers a tensorflow_metadata Schema: types, presence, value counts, string domains.

    Args:
        statistics: An ExampleStatistics channel.
        splits: The splits to infer from (default: all).
        infer_feature_shape: See SchemaGenParameters.
        max_string_domain_size: See SchemaGenParameters.
        id: Node id (default "SchemaGen").
    """

    INPUTS = {"statistics": InputSpec(ExampleStatistics)}
    OUTPUTS = {"schema": Schema}
    PARAMETERS = SchemaGenParameters
    EXECUTOR = "components.schema_gen.executor:infer"

    def __init__(self, statistics: Channel, *, splits: tuple[str, ...] = (), infer_feature_shape: bool = True,
                 max_string_domain_size: int = 100, id: str | None = None):
        super().__init__(inputs={"statistics": statistics}, parameters=SchemaGenParameters(
            tuple(splits), infer_feature_shape, max_string_domain_size), id=id)


@dataclasses.dataclass(frozen=True)
class ImportSchemaGenParameters:
    """Attributes:
        schema_file: Path of a text-format Schema (schema.pbtxt).
    """

    schema_file: str


class ImportSchemaGen(Component):
    """Publishes the user's schema.pbtxt as a Schema artifact (checked to parse).

    Args:
        schema_file: Path of a text-format tensorflow_metadata Schema.
        id: Node id (default "ImportSchemaGen").
    """

    OUTPUTS = {"schema": Schema}
    PARAMETERS = ImportSchemaGenParameters
    EXECUTOR = "components.schema_gen.executor:import_schema"

    def __init__(self, schema_file: str, *, id: str | None = None):
        super().__init__(inputs={}, parameters=ImportSchemaGenParameters(os.path.abspath(schema_file)), id=id)

    def fingerprint_extras(self) -> dict[str, str]:
        """Adds the schema file's digest, so editing it reruns downstream."""
        extras = super().fingerprint_extras()
        path = self.parameters.schema_file
        extras["schema_file"] = file_digest(path) if os.path.isfile(path) else "missing"
        return extras
