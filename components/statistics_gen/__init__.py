"""StatisticsGen: per-split DatasetFeatureStatisticsList protos computed in Beam."""

from components.statistics_gen.component import StatisticsGen, StatisticsGenParameters  # noqa: F401
