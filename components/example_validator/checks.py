"""Schema checks and drift measures over tensorflow_metadata protos (pure functions)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from components.example_validator.component import ExampleValidatorParameters


def feature_stats_by_name(dataset: Any) -> dict[str, Any]:
    return {(f.path.step[0] if f.path.step else f.name): f for f in dataset.features}


def _common(fs: Any) -> Any:
    return fs.string_stats.common_stats if fs.HasField("string_stats") else fs.num_stats.common_stats


def _add(anomalies: Any, name: str, kind: str, short: str, description: str) -> None:
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    info = anomalies.anomaly_info[name]
    info.severity = anomalies_pb2.AnomalyInfo.ERROR
    info.path.step[:] = [name]
    info.short_description = short if not info.short_description else "Multiple errors"
    info.description = (info.description + " " if info.description else "") + description
    info.reason.add(type=anomalies_pb2.AnomalyInfo.Type.Value(kind), short_description=short,
                    description=description)


def validate(dataset: Any, schema: Any, params: ExampleValidatorParameters) -> Any:
    """Anomalies of one split's statistics against the schema."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

    anomalies = anomalies_pb2.Anomalies()
    anomalies.baseline.CopyFrom(schema)
    anomalies.anomaly_name_format = anomalies_pb2.Anomalies.SERIALIZED_PATH
    stats = feature_stats_by_name(dataset)
    domains = {d.name: d for d in schema.string_domain}
    stat_type = {statistics_pb2.FeatureNameStatistics.INT: schema_pb2.INT,
                 statistics_pb2.FeatureNameStatistics.FLOAT: schema_pb2.FLOAT,
                 statistics_pb2.FeatureNameStatistics.STRING: schema_pb2.BYTES,
                 statistics_pb2.FeatureNameStatistics.BYTES: schema_pb2.BYTES}
    n = dataset.num_examples
    for feature in schema.feature:
        name = feature.name
        fs = stats.get(name)
        required = feature.presence.min_fraction >= 1.0 or feature.presence.min_count > 0
        if fs is None or _common(fs).num_non_missing == 0:
            if required:
                _add(anomalies, name, "SCHEMA_MISSING_COLUMN", "Column dropped",
                     f"The feature {name!r} is in the schema (required) but missing from the data.")
            continue
        common = _common(fs)
        present = common.num_non_missing / n if n else 0.0
        if present < feature.presence.min_fraction:
            _add(anomalies, name, "FEATURE_TYPE_LOW_FRACTION_PRESENT", "Column missing in some examples",
                 f"The feature {name!r} is present in {present:.1%} of examples; the schema requires "
                 f"{feature.presence.min_fraction:.1%} ({common.num_missing} missing).")
        got = stat_type.get(fs.type)
        if got != feature.type:
            _add(anomalies, name, "UNEXPECTED_DATA_TYPE", "Unexpected data type",
                 f"The feature {name!r} has {schema_pb2.FeatureType.Name(got)} values; the schema says "
                 f"{schema_pb2.FeatureType.Name(feature.type)}.")
            continue
        max_values = feature.value_count.max if feature.HasField("value_count") else (
            1 if feature.HasField("shape") else 0)
        if max_values and common.max_num_values > max_values:
            _add(anomalies, name, "FEATURE_TYPE_HIGH_NUMBER_VALUES", "Superfluous values",
                 f"The feature {name!r} has up to {common.max_num_values} values per example; the schema "
                 f"allows {max_values}.")
        domain = domains.get(feature.domain) if feature.domain else (
            feature.string_domain if feature.HasField("string_domain") else None)
        if domain is not None and fs.HasField("string_stats"):
            allowed = set(domain.value)
            unseen = [(b.label, b.sample_count) for b in fs.string_stats.rank_histogram.buckets
                      if b.label not in allowed]
            total = common.tot_num_values or 1
            fraction = sum(c for _, c in unseen) / total
            if unseen and fraction > params.max_unseen_fraction:
                examples = ", ".join(repr(v) for v, _ in unseen[:5])
                _add(anomalies, name, "ENUM_TYPE_UNEXPECTED_STRING_VALUES", "Unexpected string values",
                     f"The feature {name!r} has {len(unseen)} value(s) outside its domain ({fraction:.2%} of "
                     f"values > max_unseen_fraction={params.max_unseen_fraction}), e.g. {examples}.")
        if fs.HasField("num_stats"):
            low, high = _range(feature)
            if low is not None and fs.num_stats.min < low:
                _add(anomalies, name, "FLOAT_TYPE_SMALL_FLOAT" if feature.type == schema_pb2.FLOAT
                     else "INT_TYPE_SMALL_INT", "Out-of-range values",
                     f"The feature {name!r} has min {fs.num_stats.min:g} below the schema's min {low:g}.")
            if high is not None and fs.num_stats.max > high:
                _add(anomalies, name, "FLOAT_TYPE_BIG_FLOAT" if feature.type == schema_pb2.FLOAT
                     else "INT_TYPE_BIG_INT", "Out-of-range values",
                     f"The feature {name!r} has max {fs.num_stats.max:g} above the schema's max {high:g}.")
    known = {f.name for f in schema.feature}
    for name in stats:
        if name not in known:
            _add(anomalies, name, "SCHEMA_NEW_COLUMN", "New column",
                 f"The feature {name!r} is in the data but not in the schema.")
    return anomalies


def _range(feature: Any) -> tuple[float | None, float | None]:
    for field in ("int_domain", "float_domain"):
        if feature.HasField(field):
            domain = getattr(feature, field)
            return (domain.min if domain.HasField("min") else None,
                    domain.max if domain.HasField("max") else None)
    return None, None


def l_infinity(current: Any, baseline: Any) -> float:
    """Max absolute difference of value frequencies (rank histograms normalized)."""
    def freqs(fs: Any) -> dict[str, float]:
        buckets = fs.string_stats.rank_histogram.buckets
        total = sum(b.sample_count for b in buckets) or 1.0
        return {b.label: b.sample_count / total for b in buckets}
    a, b = freqs(current), freqs(baseline)
    return max((abs(a.get(k, 0.0) - b.get(k, 0.0)) for k in set(a) | set(b)), default=0.0)


# Numeric drift compares masses in bins at the baseline's deciles: coarse enough that sampling
# noise between two samples of one distribution stays small (< 0.01 at 7,500 rows), fine
# enough that a shift of a tenth of the spread moves mass between bins.
DRIFT_BINS = 10


def jensen_shannon(current: Any, baseline: Any) -> float:
    """Jensen-Shannon divergence (log base 2, in [0, 1]) over bins at the baseline's deciles.

    The bins are the open intervals between the baseline's distinct deciles (the outer two
    open-ended) and each decile as a point of its own, which holds repeated values such as
    many zeros. Each side's mass per bin comes from its own QUANTILES histogram (linear
    between quantiles). Equal-width bins let one outlier squeeze the bulk of the data into
    one or two buckets, so two samples of one distribution scored as drifted; at quantile
    bins an outlier falls in the outer bin and moves no mass. NaN when a side has no
    quantiles. See DRIFT_BINS.
    """
    qa, qb = _quantile_points(current), _quantile_points(baseline)
    if qa is None or qb is None:
        return math.nan
    edges = np.unique(np.interp(np.arange(1, DRIFT_BINS) / DRIFT_BINS, *qb))
    pa, pb = _bin_masses(qa, edges), _bin_masses(qb, edges)
    m = (pa + pb) / 2

    def kl(p: np.ndarray) -> float:
        mask = p > 0
        return float(np.sum(p[mask] * np.log2(p[mask] / m[mask])))
    return max(0.0, min(1.0, (kl(pa) + kl(pb)) / 2))


def _quantile_points(fs: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """(cumulative fractions, values) of the QUANTILES histogram's boundaries, or None."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    for h in fs.num_stats.histograms:
        if h.type == statistics_pb2.Histogram.QUANTILES and h.buckets:
            counts = np.array([max(b.sample_count, 0.0) for b in h.buckets])
            if counts.sum() <= 0:
                return None
            cumulative = np.concatenate([[0.0], np.cumsum(counts) / counts.sum()])
            values = np.array([h.buckets[0].low_value] + [b.high_value for b in h.buckets])
            return cumulative, np.maximum.accumulate(values)
    return None


def _cdf(points: tuple[np.ndarray, np.ndarray], x: np.ndarray, side: str) -> np.ndarray:
    """P(X <= x) (side="right") or P(X < x) (side="left"), linear between quantiles."""
    cumulative, values = points
    i = np.searchsorted(values, x, side=side)
    inside = (i > 0) & (i < len(values))
    j = np.clip(i, 1, len(values) - 1)
    low, high = values[j - 1], values[j]
    width = np.where(high > low, high - low, 1.0)
    fraction = np.clip((x - low) / width, 0.0, 1.0)
    interpolated = cumulative[j - 1] + fraction * (cumulative[j] - cumulative[j - 1])
    return np.where(inside, interpolated, np.where(i == 0, 0.0, 1.0))


def _bin_masses(points: tuple[np.ndarray, np.ndarray], edges: np.ndarray) -> np.ndarray:
    """Mass in [below e0, point e0, (e0, e1), point e1, ..., point en, above en]."""
    right, left = _cdf(points, edges, "right"), _cdf(points, edges, "left")
    mass = np.empty(2 * len(edges) + 1)
    mass[0] = left[0]
    mass[1::2] = right - left
    mass[2:-1:2] = left[1:] - right[:-1]
    mass[-1] = 1.0 - right[-1]
    mass = np.clip(mass, 0.0, None)
    total = mass.sum()
    return mass / total if total > 0 else mass


# A string feature is categorical, for the new-value check, when the baseline span holds at most
# this many distinct values (SchemaGen's default max_string_domain_size): IDs and free text,
# whose values are expected to be new in every span, are left out.
MAX_BASELINE_CATEGORIES = 100


def new_values(current: Any, baseline: Any) -> tuple[list[tuple[str, int]], float] | None:
    """Values of a string feature absent from the baseline span, and their share of its values.

    None when the feature is not categorical in the baseline (more than
    MAX_BASELINE_CATEGORIES distinct values), or its rank histogram does not list them all.
    """
    buckets = baseline.string_stats.rank_histogram.buckets
    known = {b.label for b in buckets}
    if len(known) > MAX_BASELINE_CATEGORIES or baseline.string_stats.unique > len(known):
        return None
    unseen = [(b.label, int(b.sample_count)) for b in current.string_stats.rank_histogram.buckets
              if b.label not in known]
    total = current.string_stats.common_stats.tot_num_values or 1
    return unseen, sum(c for _, c in unseen) / total


def _new_values(name: str, current: Any, baseline: Any, params: ExampleValidatorParameters,
                anomalies: Any) -> None:
    found = new_values(current, baseline)
    if found is None or not found[0] or found[1] <= params.max_new_value_fraction:
        return
    unseen, fraction = found
    examples = ", ".join(repr(v) for v, _ in sorted(unseen, key=lambda vc: -vc[1])[:5])
    _add(anomalies, name, "ENUM_TYPE_UNEXPECTED_STRING_VALUES", "New values since the baseline span",
         f"The feature {name!r} has {len(unseen)} value(s) the baseline span never had ({fraction:.2%} of "
         f"values > max_new_value_fraction={params.max_new_value_fraction}), e.g. {examples}. How to fix: "
         "if they are valid, raise max_new_value_fraction or pin the domain with ImportSchemaGen; "
         "otherwise correct the data.")


def drift(current: Any, baseline: Any, params: ExampleValidatorParameters, anomalies: Any) -> dict[str, float]:
    """Adds drift_skew_info (and anomalies past thresholds); returns feature -> measure.

    Also flags string features whose values unseen in the baseline span exceed
    ``params.max_new_value_fraction`` of the values (see `new_values`): a schema re-learned
    from the new span would include them, so the schema's domain cannot catch them.
    """
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    measures: dict[str, float] = {}
    base = feature_stats_by_name(baseline)
    for name, fs in feature_stats_by_name(current).items():
        other = base.get(name)
        if other is None or fs.HasField("string_stats") != other.HasField("string_stats"):
            continue
        categorical = fs.HasField("string_stats")
        if categorical:
            _new_values(name, fs, other, params, anomalies)
        value = l_infinity(fs, other) if categorical else jensen_shannon(fs, other)
        if math.isnan(value):
            continue
        threshold = params.feature_thresholds.get(name, params.l_infinity_threshold if categorical
                                                  else params.jensen_shannon_threshold)
        info = anomalies.drift_skew_info.add()
        info.path.step.append(name)
        measurement = info.drift_measurements.add(
            type=anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY if categorical
            else anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE, value=value)
        measures[name] = value
        if threshold is not None:
            measurement.threshold = threshold
            if value > threshold:
                kind = "COMPARATOR_L_INFTY_HIGH" if categorical else "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH"
                label = "L-infinity distance" if categorical else "Jensen-Shannon divergence"
                _add(anomalies, name, kind, "High drift",
                     f"The {label} of {name!r} between this span and the previous one is {value:.3f} "
                     f"> threshold {threshold}.")
    return measures
