"""StatisticsGen's spec.

Example:
    >>> from components.example_gen import ExampleGen
    >>> stats = StatisticsGen(ExampleGen("data/taxi").outputs["examples"])
    >>> stats.parameters.num_top_values
    20
"""

from __future__ import annotations

import dataclasses

from components.artifacts import Examples, ExampleStatistics
from components.base import Channel, Component, InputSpec


@dataclasses.dataclass(frozen=True)
class StatisticsGenParameters:
    """Attributes:
        num_top_values: Top values kept per string feature.
        num_rank_histogram_buckets: Values kept in the rank histogram (used for unseen-value checks).
        num_quantiles: Quantile resolution of numeric features: the QUANTILES histogram has this
            many equal-mass buckets (ExampleValidator measures numeric drift on them).
    """

    num_top_values: int = 20
    num_rank_histogram_buckets: int = 1000
    num_quantiles: int = 100


class StatisticsGen(Component):
    """Computes counts, missing, min/max/mean/std, quantiles, top-k and unique counts per split.

    Args:
        examples: An Examples channel.
        num_top_values: Top values kept per string feature.
        id: Node id (default "StatisticsGen").
    """

    INPUTS = {"examples": InputSpec(Examples)}
    OUTPUTS = {"statistics": ExampleStatistics}
    PARAMETERS = StatisticsGenParameters
    EXECUTOR = "components.statistics_gen.executor:run"

    def __init__(self, examples: Channel, *, num_top_values: int = 20, id: str | None = None):
        super().__init__(inputs={"examples": examples},
                         parameters=StatisticsGenParameters(num_top_values=num_top_values), id=id)
