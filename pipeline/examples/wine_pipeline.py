"""The 3-class wine pipeline in the Python DSL, with a custom model_fn (pipeline/examples/wine_model.py).

ExampleGen -> StatisticsGen -> SchemaGen -> ExampleValidator -> Transform -> Trainer (the
module's ``trainer_fn``) -> Evaluator (multi-class metrics) / InfraValidator -> Pusher.
The same data and model as pipeline/examples/wine.yaml, written out in Python so that each
piece can be changed. Walk-through: docs/example_wine.md.

Run it with ``python -m pipeline run pipeline/examples/wine_pipeline.py --root runs/wine``;
a blessed model lands in ``<root>/serving/wine/<version>/``.

Example:
    >>> p = create_pipeline(root="/tmp/wine")
    >>> [c.id for c in p.components]  # doctest: +NORMALIZE_WHITESPACE
    ['ExampleGen', 'StatisticsGen', 'SchemaGen', 'ExampleValidator', 'Transform', 'WarmStartResolver',
     'Trainer', 'BaselineResolver', 'Evaluator', 'InfraValidator', 'Pusher']
    >>> p.component("Evaluator").parameters.metrics
    ('ExampleCount', 'SparseCategoricalAccuracy', 'SparseCategoricalCrossentropy', 'MultiClassConfusionMatrixPlot')
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from components.evaluator import Evaluator, MetricThreshold
from components.example_gen import ExampleGen
from components.example_validator import ExampleValidator
from components.feature_spec import FeatureSpec, Label, Numeric
from components.infra_validator import InfraValidator
from components.pusher import Pusher
from components.resolver import LatestBlessedModelResolver
from components.schema_gen import SchemaGen
from components.statistics_gen import StatisticsGen
from components.trainer import Trainer
from components.transform import Transform
from pipeline.dsl import Pipeline

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(os.path.dirname(os.path.dirname(HERE)), "data", "wine")
MODEL_FILE = os.path.join(HERE, "wine_model.py")
MEASUREMENTS = ("alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols", "flavanoids",
                "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue", "od280_od315", "proline")
WINE_FEATURES = FeatureSpec(features=tuple(Numeric(name) for name in MEASUREMENTS), label=Label("cultivar"))


def create_pipeline(*, root: str = "runs/wine", data_root: str = DATA, beam_pipeline_args: Sequence[str] = (),
                    metadata: str | None = None, enable_cache: bool = True, train_steps: int = 300,
                    model_config: Mapping[str, Any] | None = None, min_accuracy: float = 0.85,
                    push_destination: str | None = None) -> Pipeline:
    """Builds the wine pipeline.

    Args:
        root: Pipeline root (artifacts and SQLite metadata).
        data_root: Directory holding data.csv (13 measurements and ``cultivar``, 0-2).
        beam_pipeline_args: Passed unchanged to Beam.
        metadata: A SQLAlchemy URL (default: SQLite under root).
        enable_cache: Reuse unchanged components.
        train_steps: Training steps.
        model_config: The module's hyperparameters (``custom_config``): hidden_units,
            learning_rate, batch_size, random_seed.
        min_accuracy: The Evaluator blesses a model whose eval accuracy is at least this.
        push_destination: Where blessed models go (default ``<root>/serving``).
    """
    example_gen = ExampleGen(data_root, file_pattern="data.csv", column_types=WINE_FEATURES.column_types(),
                             label="cultivar")
    examples = example_gen.outputs["examples"]
    statistics_gen = StatisticsGen(examples)
    statistics = statistics_gen.outputs["statistics"]
    schema_gen = SchemaGen(statistics)
    schema = schema_gen.outputs["schema"]
    validator = ExampleValidator(statistics, schema)
    transform = Transform(examples, schema, feature_spec=WINE_FEATURES)
    transformed = transform.outputs["transformed_examples"]
    warm = LatestBlessedModelResolver(before=transformed, pusher="Pusher", id="WarmStartResolver")
    trainer = Trainer(transformed, transform.outputs["transform_graph"], schema, base_model=warm.outputs["model"],
                      statistics=statistics, module_file=MODEL_FILE, train_steps=train_steps, label_key="cultivar",
                      custom_config={"random_seed": 1, **(model_config or {})})
    baseline = LatestBlessedModelResolver(before=trainer.outputs["model"], pusher="Pusher", id="BaselineResolver")
    # task="multiclass": the model's 'probabilities' against the class id, with multi-class metrics.
    evaluator = Evaluator(
        examples, trainer.outputs["model"], baseline_model=baseline.outputs["model"], label_key="cultivar",
        task="multiclass",
        thresholds=(MetricThreshold("SparseCategoricalAccuracy", lower_bound=min_accuracy, min_change=-0.05),
                    MetricThreshold("SparseCategoricalCrossentropy", upper_bound=0.5, higher_is_better=False)))
    infra = InfraValidator(trainer.outputs["model"], examples, request_kinds=("classify", "predict"))
    pusher = Pusher(trainer.outputs["model"], model_blessing=evaluator.outputs["blessing"],
                    infra_blessing=infra.outputs["blessing"],
                    push_destination=push_destination or os.path.join(root, "serving"), model_name="wine",
                    id="Pusher")
    return Pipeline("wine", root, [example_gen, statistics_gen, schema_gen, validator, transform, warm, trainer,
                                   baseline, evaluator, infra, pusher],
                    enable_cache=enable_cache, beam_pipeline_args=beam_pipeline_args, metadata=metadata)
