"""Name-based checkpoints in TensorFlow's V2 bundle format.

Variables are saved under their store keys (``dnn/hiddenlayer_0/kernel``,
``global_step``) with the public `tf.raw_ops.SaveV2` / `RestoreV2` kernels, so
the files are the same kind tf.estimator wrote: `tf.train.list_variables`,
`tf.train.load_variable` and `tf.train.latest_checkpoint` read them, and a
checkpoint written by tf.estimator 2.x can be warm-started from.

A checkpoint only becomes visible when the ``checkpoint`` state file, which is
replaced atomically, names it: a crash in the middle of a save leaves the
previous checkpoint in charge.
"""

from __future__ import annotations

import os
import re
import time

import tensorflow as tf

__all__ = ["save", "restore", "latest_checkpoint", "checkpoint_step", "list_variables"]

_STATE_FILE = "checkpoint"


def latest_checkpoint(model_dir: str | None) -> str | None:
    """Returns the prefix of the newest checkpoint in ``model_dir``, or None."""
    if not model_dir or not tf.io.gfile.exists(os.path.join(model_dir, _STATE_FILE)):
        return None
    return tf.train.latest_checkpoint(model_dir)


def checkpoint_step(prefix: str) -> int | None:
    match = re.search(r"-(\d+)$", prefix)
    return int(match.group(1)) if match else None


def list_variables(prefix: str) -> dict[str, list[int]]:
    return dict(tf.train.list_variables(prefix))


def save(variables: dict[str, tf.Variable], model_dir: str, step: int, *,
         basename: str = "model.ckpt", keep_checkpoint_max: int | None = 5) -> str:
    """Writes ``variables`` as ``<model_dir>/<basename>-<step>`` and records it.

    Returns the checkpoint prefix. Older checkpoints beyond
    ``keep_checkpoint_max`` are deleted (None or 0 keeps all).
    """
    tf.io.gfile.makedirs(model_dir)
    prefix = os.path.join(model_dir, f"{basename}-{int(step)}")
    names = sorted(variables)
    with tf.device("/cpu:0"):
        tf.raw_ops.SaveV2(
            prefix=prefix,
            tensor_names=names,
            shape_and_slices=[""] * len(names),
            tensors=[variables[n].read_value() for n in names],
        )
    paths = [p for p in _all_checkpoints(model_dir) if p != prefix] + [prefix]
    if keep_checkpoint_max:
        for stale in paths[:-keep_checkpoint_max]:
            _delete(stale)
        paths = paths[-keep_checkpoint_max:]
    _write_state(model_dir, paths)
    return prefix


def restore(variables: dict[str, tf.Variable], prefix: str, *,
            name_map: dict[str, str] | None = None) -> None:
    """Assigns each variable its value from the checkpoint at ``prefix``.

    ``name_map`` maps a variable key to the name it has in the checkpoint.
    Raises a ValueError naming every missing variable or mismatched shape.
    """
    name_map = dict(name_map or {})
    available = list_variables(prefix)
    for key in variables:  # tf.estimator 2.x (Keras optimizer) slot names, for resuming its checkpoints
        if name_map.get(key, key) not in available and key not in name_map:
            keras_name = keras_slot_name(key)
            if keras_name in available:
                name_map[key] = keras_name
    missing = [k for k in variables if name_map.get(k, k) not in available]
    if missing:
        raise ValueError(
            f"Checkpoint {prefix} has no value for {sorted(missing)}. It holds "
            f"{sorted(available)[:20]}{' ...' if len(available) > 20 else ''}. The model_fn "
            "must create the same variables (same names) as the run that wrote the "
            "checkpoint; use WarmStartSettings(var_name_to_prev_var_name=...) to map renamed ones."
        )
    keys = sorted(variables)
    for key in keys:
        want = variables[key].shape
        have = tf.TensorShape(available[name_map.get(key, key)])
        if not want.is_compatible_with(have):
            raise ValueError(
                f"Variable {key!r} has shape {want} but checkpoint {prefix} stores "
                f"{name_map.get(key, key)!r} with shape {have}. Was the model changed "
                "(layer sizes, vocabulary size) since the checkpoint was written?"
            )
    with tf.device("/cpu:0"):
        values = tf.raw_ops.RestoreV2(
            prefix=prefix,
            tensor_names=[name_map.get(k, k) for k in keys],
            shape_and_slices=[""] * len(keys),
            dtypes=[variables[k].dtype for k in keys],
        )
    for key, value in zip(keys, values):
        variables[key].assign(value)


# TF1 slot suffix -> (Keras optimizer class, slot) as tf.estimator 2.x checkpoints name them:
# ``<var>/Ftrl_1`` was saved as ``training/Ftrl/<var>/linear``.
_KERAS_SLOTS = {"Adagrad": ("Adagrad", "accumulator"), "Ftrl": ("Ftrl", "accumulator"),
                "Ftrl_1": ("Ftrl", "linear"), "Adam": ("Adam", "m"), "Adam_1": ("Adam", "v"),
                "RMSProp": ("RMSprop", "rms"), "RMSProp_1": ("RMSprop", "momentum"),
                "Momentum": ("SGD", "momentum")}


def keras_slot_name(key: str) -> str | None:
    """The name tf.estimator 2.x gave the optimizer slot ``key`` (e.g. ``w/Adagrad``), or None.

    Example:
        >>> keras_slot_name("linear/linear_model/c/weights/Ftrl_1")
        'training/Ftrl/linear/linear_model/c/weights/linear'
    """
    variable, _, suffix = key.rpartition("/")
    if not variable or suffix not in _KERAS_SLOTS:
        return None
    optimizer, slot = _KERAS_SLOTS[suffix]
    return f"training/{optimizer}/{variable}/{slot}"


def _all_checkpoints(model_dir: str) -> list[str]:
    state = os.path.join(model_dir, _STATE_FILE)
    if not tf.io.gfile.exists(state):
        return []
    paths = []
    with tf.io.gfile.GFile(state) as f:
        for line in f:
            match = re.match(r'\s*all_model_checkpoint_paths:\s*"(.*)"', line)
            if match:
                path = match.group(1)
                paths.append(path if os.path.isabs(path) else os.path.join(model_dir, path))
    return paths


def _write_state(model_dir: str, paths: list[str]) -> None:
    def rel(p):
        return os.path.relpath(p, model_dir) if os.path.dirname(p) == model_dir.rstrip("/") else p

    lines = [f'model_checkpoint_path: "{rel(paths[-1])}"']
    lines += [f'all_model_checkpoint_paths: "{rel(p)}"' for p in paths]
    lines.append(f"last_preserved_timestamp: {time.time()}")
    tmp = os.path.join(model_dir, f".{_STATE_FILE}.tmp")
    with tf.io.gfile.GFile(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    tf.io.gfile.rename(tmp, os.path.join(model_dir, _STATE_FILE), overwrite=True)


def _delete(prefix: str) -> None:
    for path in tf.io.gfile.glob(prefix + ".*"):
        tf.io.gfile.remove(path)
