"""The whole taxi pipeline: ExampleGen -> ... -> Transform -> Trainer -> Evaluator -> InfraValidator -> Pusher.

Run it with ``python -m pipeline run pipeline/examples/taxi_full_pipeline.py --root runs/taxi``;
a blessed model lands in ``<root>/serving/taxi/<version>/``, ready for
``python -m serving --model_name=taxi --model_base_path=<root>/serving/taxi``.

Scheduled retraining: `LatestBlessedModelResolver` finds, in the metadata store, the newest
Model that was blessed and pushed. The Trainer warm-starts from it (``WarmStartResolver``:
pushed before these transformed examples were made) and the Evaluator compares the candidate
with it (``BaselineResolver``: pushed before the candidate was trained). The first run, with
nothing blessed, cold-starts and is judged on value thresholds only; a run on a new span
(``file_pattern="span-{SPAN}.csv"``) warm-starts from the served model and pushes only if the
change thresholds pass; a rerun on unchanged data resolves the same models and stays cached.

Example:
    >>> p = create_pipeline(root="/tmp/taxi")
    >>> [c.id for c in p.components][5:]
    ['WarmStartResolver', 'Trainer', 'BaselineResolver', 'Evaluator', 'InfraValidator', 'Pusher']
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from components.bulk_inferrer import BulkInferrer
from components.evaluator import Evaluator, MetricThreshold
from components.infra_validator import InfraValidator
from components.pusher import Pusher
from components.resolver import LatestBlessedModelResolver
from components.trainer import CannedEstimatorConfig, Trainer
from pipeline.dsl import Pipeline
from pipeline.examples import taxi_pipeline
from pipeline.examples.taxi_pipeline import DATA, LABEL, TAXI_FEATURES

MODEL_NAME = "taxi"
# tf.estimator's wide & deep defaults (Adagrad 0.001, FTRL 0.005) need several thousand steps;
# these rates reach AUC ~0.95 in the 1000 steps the demo trains.
MODEL_ARGS = {"dnn_hidden_units": [32, 16],
              "dnn_optimizer": {"name": "Adagrad", "learning_rate": 0.05},
              "linear_optimizer": {"name": "Ftrl", "learning_rate": 0.2}}
# AUC: the model must rank big tippers first (a few hundred steps reach ~0.94 on 300 rows), and
# not lose more than 0.01 against the served model. Calibration (mean prediction / mean label):
# its predicted share of big tippers must be within [0.6, 1.5] times the real share.
THRESHOLDS = (
    MetricThreshold("AUC", lower_bound=0.9, min_change=-0.01),
    MetricThreshold("Calibration", lower_bound=0.6, upper_bound=1.5),
)


def create_pipeline(*, root: str = "runs/taxi", data_root: str = DATA, file_pattern: str = "data.csv",
                    beam_pipeline_args: Sequence[str] = (), enable_cache: bool = True,
                    metadata: str | None = None, on_anomaly: str = "fail", train_steps: int = 1000,
                    push_destination: str | None = None, random_seed: int | None = None,
                    thresholds: tuple[MetricThreshold, ...] = THRESHOLDS, warm_start: bool = True,
                    save_checkpoints_steps: int | None = 100, bulk_inference: bool = False) -> Pipeline:
    """Builds the full taxi pipeline.

    Args:
        root, data_root, file_pattern, beam_pipeline_args, enable_cache, metadata, on_anomaly:
            As in `pipeline.examples.taxi_pipeline.create_pipeline`.
        train_steps: Training steps of the wide & deep classifier (absolute, also when
            warm-starting: the global step starts from 0).
        push_destination: Serving base directory (default ``<root>/serving``).
        random_seed: Seeds the Trainer's initial weights and shuffling (None: not seeded).
        thresholds: The Evaluator's thresholds (all must pass to push).
        warm_start: Warm-start the Trainer from the latest blessed model (False: train from
            scratch; the Evaluator still compares with the latest blessed model).
        save_checkpoints_steps: The Trainer's checkpoint interval (a killed run resumes from
            the newest checkpoint).
        bulk_inference: Also score ExampleGen's ``eval`` split with the model once it is
            blessed (a BulkInferrer; predictions.csv keyed by ``trip_start_timestamp``).
    """
    data = taxi_pipeline.create_pipeline(
        root=root, data_root=data_root, file_pattern=file_pattern, beam_pipeline_args=beam_pipeline_args,
        enable_cache=enable_cache, metadata=metadata, on_anomaly=on_anomaly)
    by_id = {c.id: c for c in data.components}
    examples = by_id["ExampleGen"].outputs["examples"]
    transform = by_id["Transform"]
    push_destination = push_destination or os.path.join(root, "serving")
    transformed = transform.outputs["transformed_examples"]
    warm = LatestBlessedModelResolver(before=transformed, pusher="Pusher", id="WarmStartResolver")
    trainer = Trainer(
        transformed, transform.outputs["transform_graph"], by_id["SchemaGen"].outputs["schema"],
        base_model=warm.outputs["model"] if warm_start else None, train_steps=train_steps,
        statistics=by_id["StatisticsGen"].outputs["statistics"],
        canned=CannedEstimatorConfig("DNNLinearCombinedClassifier", feature_spec=TAXI_FEATURES,
                                     kwargs=MODEL_ARGS, random_seed=random_seed,
                                     save_checkpoints_steps=save_checkpoints_steps))
    baseline = LatestBlessedModelResolver(before=trainer.outputs["model"], pusher="Pusher",
                                          id="BaselineResolver")
    evaluator = Evaluator(
        examples, trainer.outputs["model"], baseline_model=baseline.outputs["model"], label_key=LABEL.name,
        slicing_features=(("trip_start_hour",),), thresholds=thresholds)
    infra = InfraValidator(trainer.outputs["model"], examples)
    pusher = Pusher(trainer.outputs["model"], model_blessing=evaluator.outputs["blessing"],
                    infra_blessing=infra.outputs["blessing"], push_destination=push_destination,
                    model_name=MODEL_NAME, id="Pusher")
    nodes = [*data.components, *([warm] if warm_start else []), trainer, baseline, evaluator, infra, pusher]
    if bulk_inference:
        nodes.append(BulkInferrer(examples, trainer.outputs["model"], model_blessing=evaluator.outputs["blessing"],
                                  splits=["eval"], key_columns=["trip_start_timestamp"], id="BulkInferrer"))
    return Pipeline("taxi", root, nodes,
                    enable_cache=enable_cache, beam_pipeline_args=beam_pipeline_args, metadata=metadata)
