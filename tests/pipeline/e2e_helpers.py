"""Helpers for end-to-end tests that run the real CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TAXI_PY = os.path.join(REPO, "pipeline", "examples", "taxi_pipeline.py")
TAXI_YAML = os.path.join(REPO, "pipeline", "examples", "taxi.yaml")
ALL = ["ExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform"]
MODEL_NODES = ["WarmStartResolver", "Trainer", "BaselineResolver", "Evaluator", "InfraValidator", "Pusher"]  # YAML with model:


def cli(*args: str, timeout: float = 400) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def states(root: str, run_index: int = 0) -> dict[str, str]:
    """component -> state for a run of the store under root (0 = newest run)."""
    from pipeline.metadata import MetadataStore

    store = MetadataStore(f"sqlite:///{root}/metadata.sqlite")
    run = store.list_runs()[run_index]
    return {e["component"]: e["state"] for e in store.executions_of_run(run["id"])}


def raw_feature_spec(schema_path: str) -> dict:
    """The raw tf.Example parsing spec of a Schema artifact's schema file."""
    from tensorflow_transform.tf_metadata import schema_utils

    from components.schema_gen.executor import load_schema

    return schema_utils.schema_as_feature_spec(load_schema(schema_path)).feature_spec


def serialized_examples(csv_path: str, raw_spec: dict, *, skip: set[str], limit: int = 20) -> list[bytes]:
    """Raw tf.Examples from CSV rows, typed by the raw parse spec; empty cells are missing features.

    ``skip`` columns (the label) are left out; rows missing another required (FixedLen)
    feature are skipped.
    """
    import csv

    import tensorflow as tf

    required = [k for k, v in raw_spec.items() if isinstance(v, tf.io.FixedLenFeature) and k not in skip]
    serialized = []
    with open(csv_path, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            if any(row.get(k, "") == "" for k in required):
                continue
            feature = {}
            for name, spec in raw_spec.items():
                if name in skip or row.get(name, "") == "":
                    continue
                if spec.dtype == tf.int64:
                    feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(row[name])]))
                elif spec.dtype == tf.float32:
                    feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(row[name])]))
                else:
                    feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[row[name].encode()]))
            serialized.append(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
            if len(serialized) == limit:
                break
    return serialized


def run_outputs(root: str, component: str, run_index: int = 0) -> dict:
    """output key -> Artifact of ``component`` in a run of the store under root (0 = newest run)."""
    from pipeline.metadata import MetadataStore

    store = MetadataStore(f"sqlite:///{root}/metadata.sqlite")
    run = store.list_runs()[run_index]
    execution = [e for e in store.executions_of_run(run["id"]) if e["component"] == component][0]
    return store.outputs_of(execution["id"])
