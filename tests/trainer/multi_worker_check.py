"""One task of the MultiWorkerMirrored check, or the single-process reference.

    python tests/trainer/multi_worker_check.py worker MODEL_DIR   # a task; TF_CONFIG from the launcher
    python tests/trainer/multi_worker_check.py single MODEL_DIR   # one process, no strategy

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
from tests.trainer.distributed_models import taxi_data, taxi_input_fn, wide_deep  # noqa: E402

STEPS = 20


def main(mode: str, model_dir: str) -> None:
    strategy = tf.distribute.MultiWorkerMirroredStrategy() if mode == "worker" else None
    estimator = wide_deep(model_dir, strategy, steps=10)
    features, labels = taxi_data()
    estimator.train(taxi_input_fn(features, labels), max_steps=STEPS)
    config = trainer.RunConfig()
    print(json.dumps({"task": [config.task_type, config.task_id], "chief": config.is_chief,
                      "global_step": int(estimator.get_variable_value("global_step"))}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
