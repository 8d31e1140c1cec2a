"""Scheduled retraining of the bundled taxi pipeline: one Airflow 3 DAG run a day.

Each run is the whole taxi pipeline (pipeline/examples/taxi_full_pipeline.py), one task per
node, with the DAG run's id as the pipeline's run key. ExampleGen reads the newest span of
``$TAXI_DATA_ROOT/$TAXI_FILE_PATTERN``; the Trainer warm-starts from the latest blessed model;
the Evaluator compares the candidate with that model; the Pusher pushes only a model that
passes (``$TAXI_PIPELINE_ROOT/serving/taxi/<version>``). A run on unchanged data comes from
the cache. See docs/airflow.md.

Settings (environment of the DAG processor and the workers; the defaults run on one machine):

- ``TAXI_PIPELINE_ROOT``: the artifact root every worker sees (default ``runs/airflow-taxi``
  in this repository);
- ``TAXI_METADATA_URL``: the metadata store (default SQLite under the root; a
  ``postgresql+psycopg://`` URL for workers on several machines);
- ``TAXI_DATA_ROOT`` / ``TAXI_FILE_PATTERN``: where new data lands (default the bundled
  ``data/taxi/data.csv``; e.g. ``span-{SPAN}.csv`` for a new file per day);
- ``TAXI_TRAIN_STEPS`` (default 1000), ``TAXI_RANDOM_SEED`` (seeds the Trainer's initial
  weights and shuffling; default unseeded), ``PIPELINE_PYTHON`` (the interpreter that runs the
  nodes; default Airflow's).

Parsing this file imports Airflow, the DSL and the component classes only (no TensorFlow,
Beam or TFT); tests/orchestration/test_airflow.py checks it and times it.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from pipeline.airflow_dag import build_dag

REPO = Path(__file__).resolve().parents[2]

dag = build_dag(
    REPO / "pipeline" / "examples" / "taxi_full_pipeline.py",
    dag_id="taxi_retraining",
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    root=os.environ.get("TAXI_PIPELINE_ROOT", str(REPO / "runs" / "airflow-taxi")),
    metadata=os.environ.get("TAXI_METADATA_URL") or None,
    overrides={
        "data_root": os.environ.get("TAXI_DATA_ROOT", str(REPO / "data" / "taxi")),
        "file_pattern": os.environ.get("TAXI_FILE_PATTERN", "data.csv"),
        "train_steps": int(os.environ.get("TAXI_TRAIN_STEPS", "1000")),
        **({"random_seed": int(os.environ["TAXI_RANDOM_SEED"])} if os.environ.get("TAXI_RANDOM_SEED") else {}),
    },
    python=os.environ.get("PIPELINE_PYTHON") or None,
    retries=2,
    retry_delay=dt.timedelta(minutes=2),
    execution_timeout=dt.timedelta(hours=2),
    tags=("pipeline", "taxi", "retraining"),
    doc_md=__doc__,
)
