"""The Chicago taxi pipeline in the Python DSL: ExampleGen -> ... -> Transform.

Run it with ``python -m pipeline run pipeline/examples/taxi_pipeline.py``.
The label ``big_tipper`` is derived in ExampleGen by the expression
``tips > 0.2 * fare`` (``derived_columns`` + ``label``), and declared in the
FeatureSpec with the same expression.

Example:
    >>> p = create_pipeline(root="/tmp/taxi")
    >>> [c.id for c in p.components]
    ['ExampleGen', 'StatisticsGen', 'SchemaGen', 'ExampleValidator', 'Transform']
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from components.example_gen import ExampleGen
from components.example_validator import ExampleValidator
from components.feature_spec import Bucketized, Crossed, Embedding, FeatureSpec, Hashed, Label, Numeric, Vocabulary
from components.schema_gen import SchemaGen
from components.statistics_gen import StatisticsGen
from components.transform import Transform
from pipeline.dsl import Pipeline

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(REPO, "data", "taxi")
LABEL = Label("big_tipper", expression="tips > 0.2 * fare")

TAXI_FEATURES = FeatureSpec(
    features=(
        Numeric("trip_miles"),
        Numeric("fare"),
        Numeric("trip_seconds"),
        Bucketized("pickup_latitude", num_buckets=10),
        Bucketized("pickup_longitude", num_buckets=10),
        Bucketized("dropoff_latitude", num_buckets=10),
        Bucketized("dropoff_longitude", num_buckets=10),
        Vocabulary("payment_type", top_k=10, num_oov_buckets=1),
        Vocabulary("company", top_k=100, num_oov_buckets=1),
        Vocabulary("trip_start_hour", num_oov_buckets=1),
        Vocabulary("trip_start_day", num_oov_buckets=1),
        Vocabulary("trip_start_month", num_oov_buckets=1),
        Hashed("pickup_community_area", hash_bucket_size=100),
        Hashed("dropoff_community_area", hash_bucket_size=100),
        Crossed("day_x_hour", keys=("trip_start_day", "trip_start_hour"), hash_bucket_size=200),
        Embedding("company_embedding", source="company", dimension=8),
    ),
    label=LABEL,
)


def create_pipeline(*, root: str = "runs/taxi", data_root: str = DATA, file_pattern: str = "data.csv",
                    beam_pipeline_args: Sequence[str] = (), enable_cache: bool = True,
                    metadata: str | None = None, on_anomaly: str = "fail",
                    analyze_spans: int = 1) -> Pipeline:
    """Builds the taxi pipeline.

    Args:
        root: Pipeline root (artifacts and SQLite metadata).
        data_root: Directory of the CSV files.
        file_pattern: e.g. "data.csv", or "span-{SPAN}.csv" for data/taxi_spans.
        beam_pipeline_args: Passed unchanged to Beam.
        enable_cache: Reuse unchanged components.
        metadata: A SQLAlchemy URL (default: SQLite under root).
        on_anomaly: "fail" or "warn".
        analyze_spans: How many latest spans Transform analyzes (cached spans are not re-read).
    """
    example_gen = ExampleGen(
        data_root, file_pattern=file_pattern, column_types=TAXI_FEATURES.column_types(),
        derived_columns={LABEL.name: LABEL.expression}, label=LABEL.name, bad_rows="quarantine")
    examples = example_gen.outputs["examples"]
    statistics_gen = StatisticsGen(examples)
    statistics = statistics_gen.outputs["statistics"]
    schema_gen = SchemaGen(statistics)
    validator = ExampleValidator(
        statistics, schema_gen.outputs["schema"], baseline_statistics=statistics.previous_span(),
        on_anomaly=on_anomaly, l_infinity_threshold=0.3, jensen_shannon_threshold=0.3)
    transform = Transform(
        examples.span_window(analyze_spans) if analyze_spans > 1 else examples,
        schema_gen.outputs["schema"], feature_spec=TAXI_FEATURES)
    return Pipeline("taxi", root, [example_gen, statistics_gen, schema_gen, validator, transform],
                    enable_cache=enable_cache, beam_pipeline_args=beam_pipeline_args, metadata=metadata)
