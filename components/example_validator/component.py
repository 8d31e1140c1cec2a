"""ExampleValidator's spec.

Example:
    >>> from components.example_gen import ExampleGen
    >>> from components.statistics_gen import StatisticsGen
    >>> from components.schema_gen import SchemaGen
    >>> stats = StatisticsGen(ExampleGen("data/taxi").outputs["examples"])
    >>> schema = SchemaGen(stats.outputs["statistics"])
    >>> v = ExampleValidator(stats.outputs["statistics"], schema.outputs["schema"], on_anomaly="warn")
    >>> v.parameters.on_anomaly
    'warn'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from components.artifacts import ExampleAnomalies, ExampleStatistics, Schema
from components.base import Channel, Component, InputSpec

ON_ANOMALY = ("fail", "warn")


@dataclasses.dataclass(frozen=True)
class ExampleValidatorParameters:
    """Attributes:
        on_anomaly: "fail" stops the run with a readable report; "warn" records and goes on.
        max_unseen_fraction: Fraction of a string feature's values allowed outside its domain.
        max_new_value_fraction: With a baseline span, the fraction of a categorical string
            feature's values (default 1%) that may be values the baseline span never had; more
            is an ENUM_TYPE_UNEXPECTED_STRING_VALUES anomaly ("New values since the baseline
            span"). The schema cannot catch them when SchemaGen re-learns it from the new span.
            Categorical: at most 100 distinct values in the baseline (checks.MAX_BASELINE_CATEGORIES).
        l_infinity_threshold: Drift threshold for categorical (string) features; None: measure only.
        jensen_shannon_threshold: Drift threshold for numeric features; None: measure only.
        feature_thresholds: Per-feature drift thresholds that override the two above.
        drift_split: The split compared with the baseline span.
    """

    on_anomaly: str = "fail"
    max_unseen_fraction: float = 0.0
    l_infinity_threshold: float | None = None
    jensen_shannon_threshold: float | None = None
    feature_thresholds: Mapping[str, float] = dataclasses.field(default_factory=dict)
    drift_split: str = "train"
    max_new_value_fraction: float = 0.01


class ExampleValidator(Component):
    """Checks statistics against a schema, and (given a baseline) drift between spans.

    Args:
        statistics: ExampleStatistics of the current data.
        schema: The Schema to check against.
        baseline_statistics: Statistics of the previous span, e.g.
            ``statistics_gen.outputs["statistics"].previous_span()``; drift is skipped when empty.
        on_anomaly, max_unseen_fraction, l_infinity_threshold, jensen_shannon_threshold,
        feature_thresholds, drift_split, max_new_value_fraction: See ExampleValidatorParameters.
        id: Node id (default "ExampleValidator").
    """

    INPUTS = {"statistics": InputSpec(ExampleStatistics), "schema": InputSpec(Schema),
              "baseline_statistics": InputSpec(ExampleStatistics, optional=True)}
    OUTPUTS = {"anomalies": ExampleAnomalies}
    PARAMETERS = ExampleValidatorParameters
    EXECUTOR = "components.example_validator.executor:run"

    def __init__(self, statistics: Channel, schema: Channel, *, baseline_statistics: Channel | None = None,
                 on_anomaly: str = "fail", max_unseen_fraction: float = 0.0,
                 l_infinity_threshold: float | None = None, jensen_shannon_threshold: float | None = None,
                 feature_thresholds: Mapping[str, float] | None = None, drift_split: str = "train",
                 max_new_value_fraction: float = 0.01, id: str | None = None):
        if on_anomaly not in ON_ANOMALY:
            raise ValueError(
                f"ExampleValidator got on_anomaly={on_anomaly!r}; expected one of {ON_ANOMALY}. "
                "How to fix: use 'fail' to stop the run, 'warn' to record and continue.")
        for name, value in [("max_unseen_fraction", max_unseen_fraction),
                            ("max_new_value_fraction", max_new_value_fraction),
                            ("l_infinity_threshold", l_infinity_threshold),
                            ("jensen_shannon_threshold", jensen_shannon_threshold),
                            *[(f"feature_thresholds[{k!r}]", v) for k, v in (feature_thresholds or {}).items()]]:
            if value is not None and not 0.0 <= float(value) <= 1.0:
                raise ValueError(
                    f"ExampleValidator got {name}={value!r}; expected a number in [0, 1]. "
                    "How to fix: use a fraction such as 0.1.")
        super().__init__(
            inputs={"statistics": statistics, "schema": schema, "baseline_statistics": baseline_statistics},
            parameters=ExampleValidatorParameters(
                on_anomaly, max_unseen_fraction, l_infinity_threshold, jensen_shannon_threshold,
                dict(feature_thresholds or {}), drift_split, max_new_value_fraction), id=id)
