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

# tf.estimator fields that nothing reads yet: field -> (default, what to use instead).
# Their defaults are accepted; any other value raises NotImplementedError.
_NOT_IMPLEMENTED = {
    "session_config": (
        None, "there is no tf.compat.v1 Session; configure TensorFlow with tf.config (e.g. "
        "tf.config.threading.set_intra_op_parallelism_threads, tf.config.set_visible_devices, "
        "tf.config.experimental.set_memory_growth) before building the Estimator."),
    "keep_checkpoint_every_n_hours": (
        10000, "use keep_checkpoint_max (None keeps every checkpoint)."),
    "device_fn": (
        None, "place ops with tf.device inside the model_fn, or spread the model over devices "
        "with train_distribute=tf.distribute.MirroredStrategy()."),
    "protocol": (
        None, "the strategies connect with gRPC; pass a cluster_resolver to the strategy "
        "(e.g. tf.distribute.cluster_resolver.TFConfigClusterResolver(rpc_layer=...)) if you "
        "need another RPC layer."),
    "experimental_distribute": (
        None, "use train_distribute= and eval_distribute=."),
    "experimental_max_worker_delay_secs": (
        None, "workers are not started with a delay (asynchronous training on a cluster is "
        "not implemented; see docs/distributed.md)."),
    "session_creation_timeout_secs": (
        7200, "there is no session to create; how long workers wait for their peers is up "
        "to the strategy (see docs/distributed.md)."),
}


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Run configuration of an Estimator (tf.estimator.RunConfig's fields).

    Checkpointing: give at most one of ``save_checkpoints_steps`` and
    ``save_checkpoints_secs``; with neither, a checkpoint is written every
    600 seconds and at the end of training, as tf.estimator did.

    ``TF_CONFIG`` (JSON with ``cluster`` and ``task``) is read once, when the
    config is built, and checked: a malformed or inconsistent one raises a
    one-line ValueError saying how to fix it (see docs/distributed.md). It
    fills `cluster_spec`, `task_type`, `task_id`, `is_chief` and
    `num_worker_replicas`. The chief is the ``chief`` task, or ``worker`` 0
    when the cluster has none; the ``evaluator`` is not part of the cluster.
    Training on such a cluster takes
    ``train_distribute=tf.distribute.MultiWorkerMirroredStrategy()``;
    parameter servers are not implemented yet (see docs/distributed.md).

    tf.estimator fields that nothing reads yet (``session_config``,
    ``device_fn``, ``protocol``, ``experimental_distribute``,
    ``keep_checkpoint_every_n_hours``, ``experimental_max_worker_delay_secs``,
    ``session_creation_timeout_secs``) accept their defaults and raise
    NotImplementedError, naming the field, for any other value.

    Beyond tf.estimator:
        steps_per_loop: training steps run inside one compiled call (a
            `tf.while_loop`). None (the default): as many as every hook allows.
            Each hook says how many steps may pass before it needs a run's values
            (`SessionRunHook.steps_until_needed`): the standard hooks answer from
            their schedule, so logging every 100 steps gives runs of 100 steps that
            end on the logged step; a hook that does not answer (your own
            SessionRunHook subclass, unless it overrides the method) gets every
            step, as in tf.estimator. Runs grow by doubling from one step while a
            run takes under a second (at most 1000 steps) and shrink when one takes
            longer, so time-based hooks stay on time. A run ends early at a NaN or
            infinite loss. On a multi-worker cluster None means one step per run.
            An int N: N steps per run; hooks see every run, i.e. every N steps,
            and checkpoints land on run boundaries. 1 gives tf.estimator's
            per-step hooks exactly.
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
    steps_per_loop: int | None = None
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
        if self.steps_per_loop is not None and (not isinstance(self.steps_per_loop, int)
                                                or isinstance(self.steps_per_loop, bool)
                                                or self.steps_per_loop < 1):
            raise ValueError(
                f"RunConfig got steps_per_loop={self.steps_per_loop!r}; expected an int >= 1, "
                "or None (as many steps per run as the hooks allow)."
            )
        for name, (default, instead) in _NOT_IMPLEMENTED.items():
            value = getattr(self, name)
            if value is not default and value != default:
                raise NotImplementedError(
                    f"RunConfig({name}={_short(value, 60)}) is not implemented yet: {instead}")
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
    # As in tf.estimator, the evaluator is not part of the training cluster: it
    # sees an empty cluster_spec, no replicas, is never the chief and has no
    # global id.
    @property
    def cluster_spec(self) -> tf.train.ClusterSpec:
        if self.task_type == TaskType.EVALUATOR:
            return tf.train.ClusterSpec({})
        return tf.train.ClusterSpec(self._cluster)

    @property
    def task_type(self) -> str:
        return (self.tf_config.get("task") or {}).get("type") or TaskType.WORKER

    @property
    def task_id(self) -> int:
        return int((self.tf_config.get("task") or {}).get("index", 0))

    @property
    def is_chief(self) -> bool:
        """The chief (or legacy master); worker 0 when the cluster has no chief."""
        cluster = self._cluster
        if not cluster:
            return True
        if TaskType.CHIEF in cluster or TaskType.MASTER in cluster:
            return self.task_type in (TaskType.CHIEF, TaskType.MASTER)
        return self.task_type == TaskType.WORKER and self.task_id == 0

    @property
    def num_worker_replicas(self) -> int:
        cluster = self._cluster
        if not cluster:
            return 1
        if self.task_type == TaskType.EVALUATOR:
            return 0
        return sum(len(cluster.get(t, [])) for t in (TaskType.CHIEF, TaskType.MASTER, TaskType.WORKER))

    @property
    def num_ps_replicas(self) -> int:
        if self.task_type == TaskType.EVALUATOR:
            return 0
        return len(self._cluster.get(TaskType.PS, []))

    @property
    def master(self) -> str:
        cluster = self._cluster
        if not cluster or self.task_type == TaskType.EVALUATOR:
            return ""
        return f"grpc://{cluster[self.task_type][self.task_id]}"

    @property
    def global_id_in_cluster(self) -> int | None:
        """Position in chief, master, worker, ps order; None for the evaluator."""
        if self.task_type == TaskType.EVALUATOR:
            return None
        cluster = self._cluster
        offset = 0
        for kind in (TaskType.CHIEF, TaskType.MASTER, TaskType.WORKER, TaskType.PS):
            if kind == self.task_type:
                return offset + self.task_id
            offset += len(cluster.get(kind, []))
        return offset + self.task_id

    @property
    def _cluster(self) -> dict:
        return self.tf_config.get("cluster") or {}

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


# -- TF_CONFIG ----------------------------------------------------------------
_TASK_TYPES = (TaskType.CHIEF, TaskType.WORKER, TaskType.PS, TaskType.EVALUATOR, TaskType.MASTER)
_CLUSTER_TYPES = (TaskType.CHIEF, TaskType.MASTER, TaskType.WORKER, TaskType.PS)
_EXAMPLE = ('{"cluster": {"worker": ["host0:2222", "host1:2222"]}, '
            '"task": {"type": "worker", "index": 0}}')


def _read_tf_config() -> dict:
    raw = os.environ.get("TF_CONFIG", "")
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except json.JSONDecodeError as e:
        before, after = raw[max(0, e.pos - 20):e.pos], raw[e.pos:e.pos + 20]
        raise ValueError(
            f"TF_CONFIG is not valid JSON: {e.msg} at line {e.lineno} column {e.colno} "
            f"(char {e.pos}), here: {before!r} >>> {after!r}. Set TF_CONFIG to a JSON object "
            f"such as {_EXAMPLE}."
        ) from None


def _check_tf_config(config: Any) -> None:
    """Raises a one-line ValueError saying how to fix a bad TF_CONFIG.

    tf.estimator's rules, with one difference it had only under a distribution
    strategy: a cluster without a ``chief`` (or legacy ``master``) entry is
    accepted, and ``worker`` 0 is then the chief.
    """
    if not isinstance(config, dict):
        raise ValueError(f"TF_CONFIG must be a JSON object; got {_short(config)}. Use e.g. {_EXAMPLE}.")
    cluster = config.get("cluster") or {}
    task = config.get("task")
    if not isinstance(cluster, dict):
        raise ValueError(
            f"TF_CONFIG 'cluster' must be an object mapping task types to lists of 'host:port'; "
            f"got {_short(cluster)}. Use e.g. {_EXAMPLE}.")
    if task is not None and not isinstance(task, dict):
        raise ValueError(
            f"TF_CONFIG 'task' must be an object such as {{\"type\": \"worker\", \"index\": 0}}; "
            f"got {_short(task)}.")
    task = task or {}
    if not cluster:
        kind, index = task.get("type", TaskType.WORKER), task.get("index", 0)
        if kind not in _TASK_TYPES:
            raise ValueError(_unknown_type(kind))
        if (kind, _index_or_none(index)) != (TaskType.WORKER, 0):
            raise ValueError(
                f"TF_CONFIG has no 'cluster', so this process runs alone and its task must be "
                f"worker 0; got task {_short(task)}. Add the 'cluster' of all training tasks, "
                f"or remove 'task'.")
        return
    _check_cluster(cluster)
    if not task:
        raise ValueError(
            "TF_CONFIG has a 'cluster' but no 'task'; add \"task\": {\"type\": ..., \"index\": ...} "
            f"naming this process's entry in the cluster (task types: {', '.join(_TASK_TYPES)}).")
    kind = task.get("type")
    if not kind:
        raise ValueError(
            f"TF_CONFIG 'task' has no 'type'; got {_short(task)}. Set it to one of "
            f"{', '.join(_TASK_TYPES)}.")
    if kind not in _TASK_TYPES:
        raise ValueError(_unknown_type(kind))
    if "index" not in task:
        raise ValueError(
            f"TF_CONFIG 'task' has no 'index'; got {_short(task)}. Set \"index\" to this "
            f"process's position in cluster[{kind!r}] (0 for the chief and the evaluator).")
    index = _index_or_none(task["index"])
    if index is None or index < 0:
        raise ValueError(
            f"TF_CONFIG task index must be an int >= 0; got {_short(task)}.")
    if kind == TaskType.EVALUATOR:
        if index != 0:
            raise ValueError(
                f"TF_CONFIG task evaluator:{index}: only one evaluator task (index 0) is "
                "supported; run a single evaluator with \"index\": 0.")
        return
    addresses = cluster.get(kind) or []
    if index >= len(addresses):
        have = (f"cluster[{kind!r}] has {len(addresses)} address(es), indices 0..{len(addresses) - 1}"
                if addresses else f"the cluster has no {kind!r} entry (it has {sorted(cluster)})")
        raise ValueError(
            f"TF_CONFIG task {kind}:{index} is not in the cluster: {have}. Set the task index "
            "below the number of addresses of its type, or add its address to 'cluster'.")


def _check_cluster(cluster: dict) -> None:
    for kind, addresses in cluster.items():
        if kind == TaskType.EVALUATOR:
            raise ValueError(
                "TF_CONFIG lists 'evaluator' in 'cluster', but the evaluator is not part of the "
                "training cluster (as in tf.estimator): remove it from 'cluster' and give the "
                "evaluator process the training cluster with \"task\": {\"type\": \"evaluator\", "
                "\"index\": 0}.")
        if kind not in _CLUSTER_TYPES:
            raise ValueError(
                f"TF_CONFIG 'cluster' has an unknown task type {kind!r}; use only "
                f"{', '.join(_CLUSTER_TYPES)} (the evaluator is not listed in 'cluster').")
        if not isinstance(addresses, list):
            raise ValueError(
                f"TF_CONFIG cluster[{kind!r}] must be a list of 'host:port' strings; got "
                f"{_short(addresses)}.")
    seen = {}
    for kind, addresses in cluster.items():
        for i, address in enumerate(addresses):
            where = f"cluster[{kind!r}][{i}]"
            if not isinstance(address, str):
                raise ValueError(
                    f"TF_CONFIG {where} must be a 'host:port' string; got {_short(address)}.")
            host, sep, port = address.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(
                    f"TF_CONFIG {where} = {address!r} has no valid port; write it as 'host:port' "
                    "with a port in 1..65535, e.g. 'worker-0.example:2222'.")
            if address in seen:
                raise ValueError(
                    f"TF_CONFIG {where} = {address!r} is also {seen[address]}; each task needs "
                    "its own address (a different host or port).")
            seen[address] = where
    if TaskType.CHIEF in cluster and TaskType.MASTER in cluster:
        raise ValueError(
            "TF_CONFIG 'cluster' has both 'chief' and 'master'; keep only 'chief' ('master' is "
            "its legacy name).")
    for kind in (TaskType.CHIEF, TaskType.MASTER):
        if kind in cluster and len(cluster[kind]) != 1:
            raise ValueError(
                f"TF_CONFIG cluster[{kind!r}] must have exactly one address; got "
                f"{len(cluster[kind])}. Move the others to 'worker'.")
    if not (cluster.get(TaskType.CHIEF) or cluster.get(TaskType.MASTER) or cluster.get(TaskType.WORKER)):
        raise ValueError(
            f"TF_CONFIG 'cluster' has no 'chief' and no 'worker' (it has {sorted(cluster)}), so "
            "no task can be the chief; add \"chief\": [\"host:port\"] or at least one 'worker' "
            "(worker 0 is the chief when there is no 'chief').")


def _index_or_none(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _unknown_type(kind) -> str:
    return (f"TF_CONFIG task type {kind!r} is unknown; use one of {', '.join(_TASK_TYPES)} "
            "('master' is the legacy name of 'chief').")


def _short(value, limit: int = 120) -> str:
    text = json.dumps(value) if isinstance(value, (dict, list, str, int, float, bool, type(None))) else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
