"""One task of the MultiWorkerMirrored check, or the single-process reference.

    python tests/trainer/multi_worker_check.py worker MODEL_DIR   # a task; TF_CONFIG from the launcher
    python tests/trainer/multi_worker_check.py single MODEL_DIR   # one process, no strategy
    python tests/trainer/multi_worker_check.py tae MODEL_DIR      # train_and_evaluate, any task
    python tests/trainer/multi_worker_check.py long MODEL_DIR     # a worker, to LONG_STEPS, slowly

Both train the taxi wide & deep (tests/trainer/distributed_models.py) for STEPS steps on
the same global batches; `tests/trainer/test_multi_worker.py` compares the checkpoints.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import tensorflow as tf  # noqa: E402

import trainer  # noqa: E402
from tests.trainer.distributed_models import taxi_columns, taxi_data, taxi_input_fn, wide_deep  # noqa: E402

STEPS = 20
LONG_STEPS = 60


class Slow(trainer.SessionRunHook):
    """Paces training so a test can kill a worker between two checkpoints."""

    def after_run(self, run_context, run_values):
        import time

        time.sleep(0.2)


def train_and_evaluate(model_dir: str) -> None:
    """Every task runs this: workers train together, the evaluator evaluates and exports."""
    config = trainer.RunConfig()
    strategy = tf.distribute.MultiWorkerMirroredStrategy() if config.task_type != "evaluator" else None
    estimator = wide_deep(model_dir, strategy, steps=10)
    features, labels = taxi_data()
    wide, deep = taxi_columns()
    receiver = trainer.export.build_parsing_serving_input_receiver_fn(
        trainer.feature_column.make_parse_example_spec(wide + deep))
    result, exports = trainer.train_and_evaluate(
        estimator, trainer.TrainSpec(taxi_input_fn(features, labels), max_steps=STEPS),
        trainer.EvalSpec(taxi_input_fn(features, labels, repeat=False), steps=None, start_delay_secs=0,
                         throttle_secs=0, exporters=trainer.LatestExporter("latest", receiver)))
    print(json.dumps({"task": [config.task_type, config.task_id], "chief": config.is_chief,
                      "eval_step": None if result is None else int(result["global_step"]),
                      "exports": len(exports)}), flush=True)


def main(mode: str, model_dir: str) -> None:
    if mode == "tae":
        train_and_evaluate(model_dir)
        return
    if mode == "long":
        estimator = wide_deep(model_dir, tf.distribute.MultiWorkerMirroredStrategy(), steps=10)
        latest = estimator.latest_checkpoint()
        start = int(estimator.get_variable_value("global_step")) if latest else 0
        print(json.dumps({"start_step": start}), flush=True)
        features, labels = taxi_data()
        estimator.train(taxi_input_fn(features, labels), max_steps=LONG_STEPS, hooks=[Slow()])
        print(json.dumps({"global_step": int(estimator.get_variable_value("global_step"))}), flush=True)
        return
    strategy = tf.distribute.MultiWorkerMirroredStrategy() if mode == "worker" else None
    estimator = wide_deep(model_dir, strategy, steps=10)
    features, labels = taxi_data()
    estimator.train(taxi_input_fn(features, labels), max_steps=STEPS)
    config = trainer.RunConfig()
    print(json.dumps({"task": [config.task_type, config.task_id], "chief": config.is_chief,
                      "global_step": int(estimator.get_variable_value("global_step"))}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
