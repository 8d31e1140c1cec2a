"""`RunConfig`: where and how an Estimator runs, including the TF_CONFIG cluster."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import tensorflow as tf

__all__ = ["RunConfig", "TaskType"]


class TaskType:
    MASTER = "master"
    PS = "ps"
    WORKER = "worker"
    CHIEF = "chief"
    EVALUATOR = "evaluator"


_DEFAULT_SAVE_SECS = 600


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Run configuration of an Estimator (tf.estimator.RunConfig's fields).

    Checkpointing: give at most one of ``save_checkpoints_steps`` and
    ``save_checkpoints_secs``; with neither, a checkpoint is written every
    600 seconds and at the end of training, as tf.estimator did.

    ``TF_CONFIG`` (JSON with ``cluster`` and ``task``) is read once, when the
    config is built; it fills `cluster_spec`, `task_type`, `task_id`,
    `is_chief` and `num_worker_replicas`. Running on such a cluster is the
    job of the distribution layer.

    Beyond tf.estimator:
        steps_per_loop: training steps run inside one compiled call. Hooks
            see every run, i.e. every ``steps_per_loop`` steps, and checkpoints
            land on run boundaries. 1 gives tf.estimator's per-step hooks.
        jit_compile: compile the step with XLA.
        run_eagerly: call the model_fn eagerly, step by step, so it can be
            debugged with pdb or print.

    Example:
        >>> config = RunConfig(model_dir="/tmp/m", save_checkpoints_steps=100)
        >>> config.replace(keep_checkpoint_max=2).keep_checkpoint_max
        2
    """

    model_dir: str | None = None
    tf_random_seed: int | None = None
    save_summary_steps: int = 100
    save_checkpoints_steps: int | None = None
    save_checkpoints_secs: float | None = None
    session_config: Any = None
    keep_checkpoint_max: int | None = 5
    keep_checkpoint_every_n_hours: float = 10000
    log_step_count_steps: int | None = 100
    train_distribute: Any = None
    device_fn: Any = None
    protocol: str | None = None
    eval_distribute: Any = None
    experimental_distribute: Any = None
    experimental_max_worker_delay_secs: int | None = None
    session_creation_timeout_secs: int = 7200
    checkpoint_save_graph_def: bool = True
    steps_per_loop: int = 1
    jit_compile: bool = False
    run_eagerly: bool = False
    tf_config: dict | None = dataclasses.field(default=None, compare=False)

    def __post_init__(self):
        if self.save_checkpoints_steps is not None and self.save_checkpoints_secs is not None:
            raise ValueError(
                f"RunConfig got save_checkpoints_steps={self.save_checkpoints_steps!r} and "
                f"save_checkpoints_secs={self.save_checkpoints_secs!r}; set at most one."
            )
        for name in ("save_checkpoints_steps", "save_checkpoints_secs", "keep_checkpoint_max",
                     "log_step_count_steps", "save_summary_steps"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (int, float)) or value < 0):
                raise ValueError(f"RunConfig got {name}={value!r}; expected a number >= 0 or None.")
        if not isinstance(self.steps_per_loop, int) or self.steps_per_loop < 1:
            raise ValueError(
                f"RunConfig got steps_per_loop={self.steps_per_loop!r}; expected an int >= 1."
            )
        if self.model_dir is not None:
            object.__setattr__(self, "model_dir", os.fspath(self.model_dir))
        if self.tf_config is None:
            object.__setattr__(self, "tf_config", _read_tf_config())
        _check_tf_config(self.tf_config)

    # -- checkpoint policy --------------------------------------------------
    @property
    def checkpoint_every(self) -> tuple[int | None, float | None]:
        """(steps, secs) between checkpoints, with tf.estimator's default."""
        if self.save_checkpoints_steps is None and self.save_checkpoints_secs is None:
            return None, _DEFAULT_SAVE_SECS
        return self.save_checkpoints_steps, self.save_checkpoints_secs

    # -- cluster (TF_CONFIG) ------------------------------------------------
    @property
    def cluster_spec(self) -> tf.train.ClusterSpec:
        return tf.train.ClusterSpec(self.tf_config.get("cluster", {}))

    @property
    def task_type(self) -> str:
        task = self.tf_config.get("task", {})
        if task:
            return task.get("type", TaskType.WORKER)
        return TaskType.WORKER

    @property
    def task_id(self) -> int:
        return int(self.tf_config.get("task", {}).get("index", 0))

    @property
    def is_chief(self) -> bool:
        cluster = self.tf_config.get("cluster", {})
        if not cluster:
            return True
        if TaskType.CHIEF in cluster or TaskType.MASTER in cluster:
            return self.task_type in (TaskType.CHIEF, TaskType.MASTER)
        return self.task_type == TaskType.WORKER and self.task_id == 0

    @property
    def num_worker_replicas(self) -> int:
        cluster = self.tf_config.get("cluster", {})
        if not cluster:
            return 1
        return sum(len(cluster.get(t, [])) for t in (TaskType.CHIEF, TaskType.MASTER, TaskType.WORKER))

    @property
    def num_ps_replicas(self) -> int:
        return len(self.tf_config.get("cluster", {}).get(TaskType.PS, []))

    @property
    def master(self) -> str:
        cluster = self.tf_config.get("cluster", {})
        if not cluster or self.task_type == TaskType.EVALUATOR:
            return ""
        address = cluster[self.task_type][self.task_id]
        return f"grpc://{address}"

    @property
    def global_id_in_cluster(self) -> int:
        cluster = self.tf_config.get("cluster", {})
        order = [TaskType.CHIEF, TaskType.MASTER, TaskType.WORKER, TaskType.PS]
        offset = 0
        for kind in order:
            if kind == self.task_type:
                return offset + self.task_id
            offset += len(cluster.get(kind, []))
        return offset + self.task_id

    # -- copies and serialization --------------------------------------------
    def replace(self, **kwargs) -> "RunConfig":
        """Returns a copy with the given fields replaced (tf.estimator's API)."""
        unknown = set(kwargs) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(
                f"RunConfig.replace got unknown fields {sorted(unknown)}; expected some of "
                f"{[f.name for f in dataclasses.fields(self)]}."
            )
        return dataclasses.replace(self, **kwargs)

    def to_dict(self) -> dict:
        """A JSON-serializable description; objects (strategies) appear by class name."""
        out = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None or isinstance(value, (bool, int, float, str, dict, list)):
                out[field.name] = value
            else:
                out[field.name] = type(value).__name__
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def _read_tf_config() -> dict:
    raw = os.environ.get("TF_CONFIG", "")
    if not raw.strip():
        return {}
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(
            f"TF_CONFIG is not valid JSON ({e}); got {raw[:200]!r}. Expected e.g. "
            '{"cluster": {"worker": ["host:port"]}, "task": {"type": "worker", "index": 0}}.'
        ) from None
    return config


def _check_tf_config(config: dict) -> None:
    if not isinstance(config, dict):
        raise ValueError(f"TF_CONFIG must be a JSON object; got {config!r}.")
    cluster = config.get("cluster", {})
    task = config.get("task", {})
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise ValueError(f"TF_CONFIG 'cluster' and 'task' must be objects; got {config!r}.")
    if task and cluster:
        kind, index = task.get("type"), int(task.get("index", 0))
        if kind != TaskType.EVALUATOR and (kind not in cluster or index >= len(cluster[kind])):
            raise ValueError(
                f"TF_CONFIG task {task!r} is not in the cluster {sorted(cluster)}: the task "
                "type must be a key of 'cluster' and its index within that list."
            )
