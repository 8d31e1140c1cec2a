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


def jensen_shannon(current: Any, baseline: Any) -> float:
    """Jensen-Shannon divergence (log base 2, in [0, 1]) of the two STANDARD histograms.

    Both histograms are rebucketed on the union of their boundaries, assuming mass is
    spread uniformly inside a bucket (point-mass buckets keep their mass).
    """
    ha, hb = _standard(current), _standard(baseline)
    if ha is None or hb is None:
        return 0.0
    edges = np.unique(np.concatenate([[x for b in h for x in b[:2]] for h in (ha, hb)]))
    pa, pb = _rebucket(ha, edges), _rebucket(hb, edges)
    m = (pa + pb) / 2
    def kl(p: np.ndarray) -> float:
        mask = p > 0
        return float(np.sum(p[mask] * np.log2(p[mask] / m[mask])))
    return max(0.0, min(1.0, (kl(pa) + kl(pb)) / 2))


def _standard(fs: Any) -> list[tuple[float, float, float]] | None:
    from tensorflow_metadata.proto.v0 import statistics_pb2

    for h in fs.num_stats.histograms:
        if h.type == statistics_pb2.Histogram.STANDARD and h.buckets:
            return [(b.low_value, b.high_value, b.sample_count) for b in h.buckets]
    return None


def _rebucket(hist: list[tuple[float, float, float]], edges: np.ndarray) -> np.ndarray:
    """Mass per point and interval of ``edges``: [point e0, (e0,e1), point e1, ...]."""
    mass = np.zeros(2 * len(edges) - 1)
    for low, high, count in hist:
        if count <= 0:
            continue
        if high <= low:
            mass[2 * int(np.searchsorted(edges, low))] += count
            continue
        i, j = int(np.searchsorted(edges, low)), int(np.searchsorted(edges, high))
        for k in range(i, j):
            mass[2 * k + 1] += count * (edges[k + 1] - edges[k]) / (high - low)
    total = mass.sum()
    return mass / total if total > 0 else mass


def drift(current: Any, baseline: Any, params: ExampleValidatorParameters, anomalies: Any) -> dict[str, float]:
    """Adds drift_skew_info (and anomalies past thresholds); returns feature -> measure."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    measures: dict[str, float] = {}
    base = feature_stats_by_name(baseline)
    for name, fs in feature_stats_by_name(current).items():
        other = base.get(name)
        if other is None or fs.HasField("string_stats") != other.HasField("string_stats"):
            continue
        categorical = fs.HasField("string_stats")
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
