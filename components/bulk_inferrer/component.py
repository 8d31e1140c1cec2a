"""BulkInferrer's spec: score an Examples artifact with a Model, in Beam, into PredictionLogs.

Example:
    >>> params = BulkInferrerParameters(splits=("eval",), key_columns=("trip_start_timestamp",))
    >>> params.signature_name, params.output_formats
    ('serving_default', ('csv',))
"""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Sequence

from components.artifacts import Examples, InferenceResult, Model, ModelBlessing
from components.base import Channel, Component, InputSpec, file_digest

DEFAULT_SIGNATURE = "serving_default"
CSV, PARQUET = "csv", "parquet"
OUTPUT_FORMATS = (CSV, PARQUET)


def _names(field: str, value: Sequence[str], example: str) -> tuple[str, ...]:
    """A tuple of distinct non-empty strings; a bare string is refused (it would become its letters)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(
            f"BulkInferrer got {field}={value!r}; expected a list of names. How to fix: pass "
            f"{field}=[{example!r}].")
    names = tuple(value)
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(
                f"BulkInferrer got {field} entry {name!r}; expected a non-empty string. How to fix: "
                f"pass e.g. {field}=[{example!r}].")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(
            f"BulkInferrer got {field}={list(names)!r} naming {repeated} twice; expected each once. "
            "How to fix: remove the repeats.")
    return names


@dataclasses.dataclass(frozen=True)
class BulkInferrerParameters:
    """Attributes:
        splits: The Examples splits to score; empty (the default): every split of the artifact.
        signature_name: The SavedModel signature to call. A ``tensorflow/serving/classify`` or
            ``.../regress`` signature (the Trainer's ``serving_default``, ``classification``,
            ``regression``) gives ClassifyLogs/RegressLogs; any other signature that takes one
            tensor of serialized tf.Examples (the Trainer's ``predict``) gives PredictLogs.
        key_columns: Raw tf.Example features copied into every CSV/Parquet row, so predictions
            can be joined back to their inputs (rows come in no particular order).
        output_formats: Tables written besides the PredictionLogs: ``"csv"`` (default),
            ``"parquet"``, both, or none (``()``).
        batch_size: Examples per model call.
    """

    splits: tuple[str, ...] = ()
    signature_name: str = DEFAULT_SIGNATURE
    key_columns: tuple[str, ...] = ()
    output_formats: tuple[str, ...] = (CSV,)
    batch_size: int = 256

    def __post_init__(self) -> None:
        object.__setattr__(self, "splits", _names("splits", self.splits, "eval"))
        object.__setattr__(self, "key_columns", _names("key_columns", self.key_columns, "trip_id"))
        object.__setattr__(self, "output_formats", _names("output_formats", self.output_formats, CSV))
        if not isinstance(self.signature_name, str) or not self.signature_name:
            raise ValueError(
                f"BulkInferrer got signature_name={self.signature_name!r}; expected a signature key of "
                f"the model. How to fix: pass e.g. signature_name={DEFAULT_SIGNATURE!r}.")
        unknown = [f for f in self.output_formats if f not in OUTPUT_FORMATS]
        if unknown:
            raise ValueError(
                f"BulkInferrer got output_formats={list(self.output_formats)!r}; expected a subset of "
                f"{list(OUTPUT_FORMATS)}. How to fix: drop {unknown} (PredictionLogs are always written).")
        if self.key_columns and not self.output_formats:
            raise ValueError(
                f"BulkInferrer got key_columns={list(self.key_columns)!r} with output_formats=(); key "
                "columns go into the CSV/Parquet tables. How to fix: add output_formats=['csv'] or drop "
                "key_columns (each PredictionLog already holds its whole input example).")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(
                f"BulkInferrer got batch_size={self.batch_size!r}; expected an int >= 1. How to fix: "
                "pass e.g. batch_size=256.")


class BulkInferrer(Component):
    """Scores every row of an Examples artifact with a Model's serving signature, in Beam.

    Runs only for a blessed model when ``model_blessing`` is given: for an unblessed one it
    publishes an empty InferenceResult with ``inferred=False`` and the blessing's reason, and
    succeeds (as TFX's BulkInferrer does), so a pipeline with a rejected candidate still completes.
    The SavedModel is loaded once per DoFn instance and called on batches of serialized
    tf.Examples, exactly as TF Serving would be called for them.

    Args:
        examples: The Examples to score (an unlabeled split, or a new span of an ExampleGen).
        model: The Trainer's Model.
        model_blessing: The Evaluator's ModelBlessing (optional).
        splits, signature_name, key_columns, output_formats, batch_size: See BulkInferrerParameters.
        id: Node id (default "BulkInferrer").

    Example:
        >>> inferrer = BulkInferrer(gen.outputs["examples"], trainer.outputs["model"],  # doctest: +SKIP
        ...                         model_blessing=evaluator.outputs["blessing"], splits=["eval"],
        ...                         key_columns=["trip_start_timestamp"], output_formats=["csv", "parquet"])
    """

    INPUTS = {"examples": InputSpec(Examples), "model": InputSpec(Model),
              "model_blessing": InputSpec(ModelBlessing, optional=True)}
    OUTPUTS = {"inference_result": InferenceResult}
    PARAMETERS = BulkInferrerParameters
    EXECUTOR = "components.bulk_inferrer.executor:run"

    def __init__(self, examples: Channel, model: Channel, *, model_blessing: Channel | None = None,
                 splits: Sequence[str] = (), signature_name: str = DEFAULT_SIGNATURE,
                 key_columns: Sequence[str] = (), output_formats: Sequence[str] = (CSV,),
                 batch_size: int = 256, id: str | None = None):
        super().__init__(
            inputs={"examples": examples, "model": model, "model_blessing": model_blessing},
            parameters=BulkInferrerParameters(splits, signature_name, key_columns, output_formats,
                                              batch_size), id=id)

    def fingerprint_extras(self) -> dict[str, str]:
        """The executor's helper modules are part of the cache key too (a fix there reruns)."""
        extras = super().fingerprint_extras()
        for module in ("signature", "tables", "prediction_logs", "scoring"):
            spec = importlib.util.find_spec(f"components.bulk_inferrer.{module}")
            if spec is not None and spec.origin:
                extras[f"{module}_code"] = file_digest(spec.origin)
        return extras
