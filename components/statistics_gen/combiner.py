"""A Beam CombineFn from Arrow RecordBatches (decoded tf.Examples) to feature statistics.

Accumulators hold tfx-bsl sketches (quantiles, Misra-Gries top-k, KMV distinct
counts), so they merge across workers and stay small whatever the data size.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tfx_bsl import sketches

INT, FLOAT, STRING = "int", "float", "string"


@dataclasses.dataclass
class _Feature:
    kind: str | None = None
    present: int = 0
    values: int = 0
    min_values: int = 1 << 62
    max_values: int = 0
    minimum: float = math.inf
    maximum: float = -math.inf
    total: float = 0.0
    total_sq: float = 0.0
    zeros: int = 0
    length: int = 0
    quantiles: Any = None
    top: Any = None
    distinct: Any = None


@dataclasses.dataclass
class _Accumulator:
    examples: int = 0
    features: dict[str, _Feature] = dataclasses.field(default_factory=dict)


class StatsCombineFn:
    """Beam-compatible CombineFn (duck-typed: wrapped by ``as_beam_combine_fn``)."""

    def __init__(self, num_rank_buckets: int = 1000):
        self.num_rank_buckets = num_rank_buckets

    def create_accumulator(self) -> _Accumulator:
        return _Accumulator()

    def add_input(self, acc: _Accumulator, batch: pa.RecordBatch) -> _Accumulator:
        acc.examples += batch.num_rows
        for name, column in zip(batch.schema.names, batch.columns):
            feature = acc.features.setdefault(name, _Feature())
            lengths = pc.list_value_length(column)
            present = batch.num_rows - column.null_count
            if not present:
                continue
            feature.present += present
            valid_lengths = lengths.drop_null()
            feature.values += pc.sum(valid_lengths).as_py() or 0
            feature.min_values = min(feature.min_values, pc.min(valid_lengths).as_py())
            feature.max_values = max(feature.max_values, pc.max(valid_lengths).as_py())
            flat = pc.list_flatten(column)
            if len(flat) == 0:
                continue
            kind = _kind(flat.type)
            feature.kind = feature.kind or kind
            if kind == STRING:
                self._add_strings(feature, flat)
            else:
                self._add_numbers(feature, flat)
        return acc

    def _add_numbers(self, feature: _Feature, flat: pa.Array) -> None:
        values = flat.to_numpy(zero_copy_only=False).astype(np.float64)
        finite = values[np.isfinite(values)]
        if finite.size:
            feature.minimum = min(feature.minimum, float(finite.min()))
            feature.maximum = max(feature.maximum, float(finite.max()))
            feature.total += float(finite.sum())
            feature.total_sq += float(np.square(finite).sum())
        feature.zeros += int((values == 0).sum())
        if feature.quantiles is None:
            feature.quantiles = sketches.QuantilesSketch(0.001, 1 << 32, 1)
        feature.quantiles.AddValues(pa.array(finite))

    def _add_strings(self, feature: _Feature, flat: pa.Array) -> None:
        feature.length += pc.sum(pc.binary_length(flat)).as_py() or 0
        if feature.top is None:
            feature.top = sketches.MisraGriesSketch(self.num_rank_buckets)
            feature.distinct = sketches.KmvSketch(1024)
        feature.top.AddValues(flat)
        feature.distinct.AddValues(flat)

    def merge_accumulators(self, accumulators: Any) -> _Accumulator:
        merged = _Accumulator()
        for acc in accumulators:
            merged.examples += acc.examples
            for name, f in acc.features.items():
                m = merged.features.get(name)
                if m is None:
                    merged.features[name] = f
                    continue
                m.kind = m.kind or f.kind
                m.present += f.present
                m.values += f.values
                m.min_values, m.max_values = min(m.min_values, f.min_values), max(m.max_values, f.max_values)
                m.minimum, m.maximum = min(m.minimum, f.minimum), max(m.maximum, f.maximum)
                m.total, m.total_sq = m.total + f.total, m.total_sq + f.total_sq
                m.zeros += f.zeros
                m.length += f.length
                for attr in ("quantiles", "top", "distinct"):
                    mine, theirs = getattr(m, attr), getattr(f, attr)
                    if mine is None:
                        setattr(m, attr, theirs)
                    elif theirs is not None:
                        mine.Merge(theirs)
        return merged

    def compact(self, acc: _Accumulator) -> _Accumulator:
        for f in acc.features.values():
            if f.quantiles is not None:
                f.quantiles.Compact()
        return acc


def _kind(arrow_type: pa.DataType) -> str:
    if pa.types.is_integer(arrow_type):
        return INT
    if pa.types.is_floating(arrow_type):
        return FLOAT
    return STRING


def to_proto(acc: _Accumulator, split: str, *, num_top_values: int, num_quantiles: int) -> Any:
    """Builds a DatasetFeatureStatisticsList with one dataset named ``split``."""
    from tensorflow_metadata.proto.v0 import statistics_pb2 as sp

    result = sp.DatasetFeatureStatisticsList()
    dataset = result.datasets.add(name=split, num_examples=acc.examples)
    for name in sorted(acc.features):
        f = acc.features[name]
        stats = dataset.features.add()
        stats.path.step.append(name)
        stats.type = {INT: sp.FeatureNameStatistics.INT, FLOAT: sp.FeatureNameStatistics.FLOAT,
                      STRING: sp.FeatureNameStatistics.STRING, None: sp.FeatureNameStatistics.FLOAT}[f.kind]
        common = sp.CommonStatistics(
            num_non_missing=f.present, num_missing=acc.examples - f.present,
            min_num_values=f.min_values if f.present else 0, max_num_values=f.max_values,
            avg_num_values=f.values / f.present if f.present else 0.0, tot_num_values=f.values)
        if f.kind == STRING:
            s = stats.string_stats
            s.common_stats.CopyFrom(common)
            s.unique = int(f.distinct.Estimate()) if f.distinct is not None else 0
            s.avg_length = f.length / f.values if f.values else 0.0
            if f.top is not None:
                estimate = f.top.Estimate()
                pairs = sorted(zip(estimate.field(0).to_pylist(), estimate.field(1).to_pylist()),
                               key=lambda vc: (-vc[1], vc[0]))
                for rank, (value, count) in enumerate(pairs):
                    label = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
                    if rank < num_top_values:
                        s.top_values.add(value=label, frequency=count)
                    s.rank_histogram.buckets.add(low_rank=rank, high_rank=rank, label=label, sample_count=count)
            continue
        n = stats.num_stats
        n.common_stats.CopyFrom(common)
        finite = f.values
        if finite and f.quantiles is not None:
            n.mean = f.total / finite
            n.std_dev = math.sqrt(max(f.total_sq / finite - n.mean ** 2, 0.0))
            n.min, n.max, n.num_zeros = f.minimum, f.maximum, f.zeros
            q = np.asarray(f.quantiles.GetQuantiles(num_quantiles).flatten().to_numpy(zero_copy_only=False),
                           dtype=np.float64)
            n.median = float(q[len(q) // 2])
            _histograms(n, q, finite, sp)
    return result


def _histograms(n: Any, q: np.ndarray, count: int, sp: Any) -> None:
    """A QUANTILES histogram (len(q) - 1 equal-mass buckets) and a STANDARD one (10 equal-width).

    The QUANTILES buckets keep the full quantile resolution (``num_quantiles``, default 100):
    drift is measured on bins at the baseline's quantiles, and with coarse buckets one outlier
    would spread a tenth of the mass between the last decile and the max.
    """
    quantiles = n.histograms.add(type=sp.Histogram.QUANTILES)
    buckets = len(q) - 1
    for i in range(buckets):
        quantiles.buckets.add(low_value=q[i], high_value=q[i + 1], sample_count=count / buckets)
    standard = n.histograms.add(type=sp.Histogram.STANDARD)
    low, high = float(q[0]), float(q[-1])
    edges = np.linspace(low, high, 11) if high > low else np.array([low, high])
    # The fraction of quantile points inside each bucket approximates its mass.
    positions = np.searchsorted(q, edges, side="left").astype(float)
    positions[-1] = len(q)
    for i in range(len(edges) - 1):
        mass = (positions[i + 1] - positions[i]) / len(q)
        standard.buckets.add(low_value=edges[i], high_value=edges[i + 1], sample_count=mass * count)
