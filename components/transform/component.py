"""Transform's spec.

Example:
    >>> from components.feature_spec import FeatureSpec, Numeric
    >>> from components.example_gen import ExampleGen
    >>> from components.statistics_gen import StatisticsGen
    >>> from components.schema_gen import SchemaGen
    >>> gen = ExampleGen("data/taxi")
    >>> schema = SchemaGen(StatisticsGen(gen.outputs["examples"]).outputs["statistics"])
    >>> t = Transform(gen.outputs["examples"], schema.outputs["schema"],
    ...               feature_spec=FeatureSpec(features=(Numeric("fare"),)))
    >>> sorted(t.outputs)
    ['transform_graph', 'transformed_examples', 'updated_analyzer_cache']
"""

from __future__ import annotations

import dataclasses
import os

from components.artifacts import Examples, Schema, TransformCache, TransformGraph
from components.base import SPAN_WINDOW, Channel, Component, InputSpec, file_digest
from components.feature_spec import FeatureSpec


@dataclasses.dataclass(frozen=True)
class TransformParameters:
    """Attributes:
        feature_spec: Generate the preprocessing_fn from this spec (or use module_file).
        module_file: A Python file defining ``preprocessing_fn(inputs) -> outputs``.
        preprocessing_fn: The function's name in module_file.
        analyze_splits: Splits the analyzers see (the current span's and, with a span window,
            the earlier spans').
        use_analyzer_cache: Write an analyzer cache, and reuse the previous execution's for
            datasets (spans) analyzed before.
    """

    feature_spec: FeatureSpec | None = None
    module_file: str | None = None
    preprocessing_fn: str = "preprocessing_fn"
    analyze_splits: tuple[str, ...] = ("train",)
    use_analyzer_cache: bool = True


class Transform(Component):
    """Runs tf.Transform: analyzes, writes the transform graph and transformed examples.

    Args:
        examples: Examples; pass ``gen.outputs["examples"].span_window(n)`` to analyze the
            latest n spans (earlier spans come from the analyzer cache when unchanged).
            The newest span is the one transformed.
        schema: The raw data's Schema.
        feature_spec: A FeatureSpec; its preprocessing_fn is generated.
        module_file: Or a user module with ``preprocessing_fn`` (its code is part of the cache key).
        preprocessing_fn, analyze_splits: See TransformParameters.
        use_analyzer_cache: Default (None): on when ``examples`` is a span window, the case where
            a later run re-analyzes spans seen before; off otherwise, since per-dataset analysis and
            cache writing cost a few seconds for nothing to reuse.
        id: Node id (default "Transform").
    """

    INPUTS = {"examples": InputSpec(Examples), "schema": InputSpec(Schema)}
    OUTPUTS = {"transform_graph": TransformGraph, "transformed_examples": Examples,
               "updated_analyzer_cache": TransformCache}
    PARAMETERS = TransformParameters
    EXECUTOR = "components.transform.executor:run"

    def __init__(self, examples: Channel, schema: Channel, *, feature_spec: FeatureSpec | None = None,
                 module_file: str | None = None, preprocessing_fn: str = "preprocessing_fn",
                 analyze_splits: tuple[str, ...] = ("train",), use_analyzer_cache: bool | None = None,
                 id: str | None = None):
        if (feature_spec is None) == (module_file is None):
            raise ValueError(
                f"Transform got feature_spec={feature_spec!r}, module_file={module_file!r}; expected "
                "exactly one of them. How to fix: pass a FeatureSpec, or a module file defining "
                "preprocessing_fn.")
        if feature_spec is not None and not isinstance(feature_spec, FeatureSpec):
            raise TypeError(
                f"Transform got feature_spec={feature_spec!r}; expected a FeatureSpec. How to fix: "
                "build one, e.g. FeatureSpec.from_config({...}).")
        if module_file is not None and not os.path.isfile(module_file):
            raise ValueError(
                f"Transform got module_file={module_file!r}; no such file. How to fix: pass the path "
                "of a .py file defining preprocessing_fn.")
        if use_analyzer_cache is None:
            use_analyzer_cache = isinstance(examples, Channel) and examples.policy == SPAN_WINDOW
        super().__init__(inputs={"examples": examples, "schema": schema}, parameters=TransformParameters(
            feature_spec, os.path.abspath(module_file) if module_file else None, preprocessing_fn,
            tuple(analyze_splits), use_analyzer_cache), id=id)

    def fingerprint_extras(self) -> dict[str, str]:
        """Adds the user module's code, so editing it reruns Transform."""
        extras = super().fingerprint_extras()
        if self.parameters.module_file:
            extras["module_file"] = file_digest(self.parameters.module_file)
        generator = os.path.join(os.path.dirname(__file__), "preprocessing.py")
        extras["generator"] = file_digest(generator)
        return extras
