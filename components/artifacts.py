"""Typed artifacts: what components read and write.

An artifact is a directory (its ``uri``) plus a small dict of JSON properties
(split names, span, row counts, ...). The runner gives every output artifact a
URI under ``<pipeline_root>/<component id>/<output key>/<execution id>/`` and
records it, with its properties and lineage, in the metadata store.

Example:
    >>> examples = Examples(uri="/tmp/x", properties={"split_names": ["train"]})
    >>> examples.split_names
    ['train']
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, ClassVar


@dataclasses.dataclass
class Artifact:
    """An artifact: a directory plus JSON properties.

    Attributes:
        uri: The directory holding the artifact's files.
        properties: JSON-serializable properties set by the producing executor.
        id: The metadata-store id, or None before the artifact is registered.
    """

    TYPE_NAME: ClassVar[str] = "Artifact"

    uri: str = ""
    properties: dict[str, Any] = dataclasses.field(default_factory=dict)
    id: int | None = None

    def __repr__(self) -> str:
        return f"{self.TYPE_NAME}(id={self.id}, uri={self.uri!r})"


class _SplitArtifact(Artifact):
    """An artifact with one sub-directory per split (``Split-<name>``)."""

    @property
    def split_names(self) -> list[str]:
        return list(self.properties.get("split_names", []))

    def split_uri(self, split: str) -> str:
        return os.path.join(self.uri, f"Split-{split}")

    @property
    def span(self) -> int:
        return int(self.properties.get("span", 0))

    @property
    def version(self) -> int | None:
        return self.properties.get("version")


class Examples(_SplitArtifact):
    """tf.Examples in gzip TFRecord files, one directory per split.

    Properties: ``split_names``, ``span``, ``version``, ``row_counts``
    (split -> rows), ``rows_in``, ``quarantined``, ``quarantine_file`` (relative), ``files``,
    ``column_kinds``; for CSV also ``lines_in`` and ``lines_quarantined`` (physical data lines:
    one quarantined row may span many), and ``inference_warnings`` (kinds inferred despite odd
    values).
    """

    TYPE_NAME = "Examples"

    def file_pattern(self, split: str) -> str:
        return os.path.join(self.split_uri(split), "*.gz")

    @property
    def quarantine_path(self) -> str | None:
        """The JSON-lines file of quarantined rows, or None when no row was quarantined."""
        relative = self.properties.get("quarantine_file")
        return os.path.join(self.uri, relative) if relative else None


class ExampleStatistics(_SplitArtifact):
    """One ``FeatureStats.pb`` (a DatasetFeatureStatisticsList) per split."""

    TYPE_NAME = "ExampleStatistics"

    def stats_path(self, split: str) -> str:
        return os.path.join(self.split_uri(split), "FeatureStats.pb")


class Schema(Artifact):
    """A tensorflow_metadata Schema in ``schema.pbtxt``."""

    TYPE_NAME = "Schema"

    @property
    def schema_path(self) -> str:
        return os.path.join(self.uri, "schema.pbtxt")


class ExampleAnomalies(_SplitArtifact):
    """One ``anomalies.pbtxt`` (an Anomalies proto) per split."""

    TYPE_NAME = "ExampleAnomalies"


class TransformGraph(Artifact):
    """A tf.Transform output directory (``transform_fn/``, ``transformed_metadata/``)."""

    TYPE_NAME = "TransformGraph"


class TransformCache(Artifact):
    """A tf.Transform analyzer cache, keyed by dataset (span)."""

    TYPE_NAME = "TransformCache"


class Model(Artifact):
    """A trained model (SavedModel export)."""

    TYPE_NAME = "Model"


class ModelRun(Artifact):
    """Training logs and checkpoints of one trainer run."""

    TYPE_NAME = "ModelRun"


class ModelEvaluation(Artifact):
    """TFMA evaluation output."""

    TYPE_NAME = "ModelEvaluation"


class ModelBlessing(Artifact):
    """The evaluator's verdict (property ``blessed``)."""

    TYPE_NAME = "ModelBlessing"


class InfraBlessing(Artifact):
    """The infra validator's verdict (property ``blessed``)."""

    TYPE_NAME = "InfraBlessing"


class PushedModel(Artifact):
    """Where a model was pushed (property ``pushed_destination``)."""

    TYPE_NAME = "PushedModel"


class InferenceResult(_SplitArtifact):
    """BulkInferrer's predictions, one directory per split.

    Each ``Split-<name>`` holds ``prediction_logs-*.gz`` (gzip TFRecords of TF Serving
    ``PredictionLog`` protos, request and response per example) and, per requested format,
    ``predictions.csv`` / ``predictions.parquet`` (key columns, then prediction columns).
    Properties: ``inferred`` (False when the model was not blessed: nothing was scored and
    ``reason`` says why), ``reason``, ``split_names``, ``row_counts``, ``signature_name``,
    ``method``, ``columns``, ``key_columns``, ``output_formats``, ``model_id``, ``examples_id``,
    ``span``.
    """

    TYPE_NAME = "InferenceResult"

    @property
    def inferred(self) -> bool:
        return bool(self.properties.get("inferred"))

    def prediction_logs_pattern(self, split: str) -> str:
        return os.path.join(self.split_uri(split), "prediction_logs-*.gz")

    def table_path(self, split: str, output_format: str) -> str:
        """``Split-<split>/predictions.<output_format>`` (``csv`` or ``parquet``)."""
        return os.path.join(self.split_uri(split), f"predictions.{output_format}")


class HyperParameters(Artifact):
    """The Tuner's best hyperparameters: ``best_hyperparameters.json`` and the study's ``trials.csv``.

    Properties: ``values`` (name -> value), ``metric``, ``direction``, ``best_value``,
    ``best_trial``, ``trials`` (state -> count), ``study_name``, ``storage``, ``mean_trial_seconds``.
    """

    TYPE_NAME = "HyperParameters"

    @property
    def best_hyperparameters_path(self) -> str:
        return os.path.join(self.uri, "best_hyperparameters.json")

    @property
    def trials_path(self) -> str:
        return os.path.join(self.uri, "trials.csv")


ARTIFACT_TYPES: dict[str, type[Artifact]] = {
    cls.TYPE_NAME: cls
    for cls in (
        Artifact, Examples, ExampleStatistics, Schema, ExampleAnomalies,
        TransformGraph, TransformCache, Model, ModelRun, ModelEvaluation,
        ModelBlessing, InfraBlessing, PushedModel,
        InferenceResult,
        HyperParameters,
    )
}


def artifact_class(type_name: str) -> type[Artifact]:
    """Returns the artifact class registered under ``type_name``."""
    try:
        return ARTIFACT_TYPES[type_name]
    except KeyError:
        raise ValueError(
            f"artifact_class got type_name={type_name!r}; expected one of "
            f"{sorted(ARTIFACT_TYPES)}. How to fix: register the class in "
            "components.artifacts.ARTIFACT_TYPES."
        ) from None
