"""Warm-starting a new model from another model's checkpoint (tf.estimator's API)."""

from __future__ import annotations

import collections
import logging
import os
import re

import numpy as np
import tensorflow as tf

from trainer import checkpoints

__all__ = ["WarmStartSettings", "VocabInfo", "warm_start"]

log = logging.getLogger("trainer")


class VocabInfo(collections.namedtuple("VocabInfo", [
        "new_vocab", "new_vocab_size", "num_oov_buckets", "old_vocab", "old_vocab_size",
        "backup_initializer", "axis"])):
    """How to remap the rows of an embedding/weight variable between vocabularies.

    Rows of tokens found in the old vocabulary file are copied to their new
    positions; other rows (new tokens, OOV buckets) keep their fresh values,
    or ``backup_initializer``'s.
    """

    def __new__(cls, new_vocab, new_vocab_size, num_oov_buckets, old_vocab, old_vocab_size=-1,
                backup_initializer=None, axis=0):
        if axis not in (0, 1):
            raise ValueError(f"VocabInfo got axis={axis!r}; expected 0 (rows) or 1 (columns).")
        return super().__new__(cls, new_vocab, new_vocab_size, num_oov_buckets, old_vocab,
                               old_vocab_size, backup_initializer, axis)


class WarmStartSettings(collections.namedtuple("WarmStartSettings", [
        "ckpt_to_initialize_from", "vars_to_warm_start", "var_name_to_vocab_info",
        "var_name_to_prev_var_name"])):
    """Which variables to initialize from which checkpoint.

    Args:
        ckpt_to_initialize_from: a checkpoint prefix or a directory holding one.
        vars_to_warm_start: a regex matched against *trainable* variable
            names (default ``'.*'``); a list of regexes or names matched
            against all checkpointed variables; or None for none.
        var_name_to_vocab_info: ``{name: VocabInfo}`` for vocabulary remaps.
        var_name_to_prev_var_name: ``{name: name in the old checkpoint}``.

    Example:
        >>> WarmStartSettings("/tmp/old_model", vars_to_warm_start="dnn/.*").vars_to_warm_start
        'dnn/.*'
    """

    def __new__(cls, ckpt_to_initialize_from, vars_to_warm_start=".*",
                var_name_to_vocab_info=None, var_name_to_prev_var_name=None):
        if not ckpt_to_initialize_from:
            raise ValueError("WarmStartSettings needs ckpt_to_initialize_from.")
        return super().__new__(cls, os.fspath(ckpt_to_initialize_from), vars_to_warm_start,
                               dict(var_name_to_vocab_info or {}),
                               dict(var_name_to_prev_var_name or {}))


def _resolve_checkpoint(path: str) -> str:
    if tf.io.gfile.isdir(path):
        prefix = checkpoints.latest_checkpoint(path)
        if prefix is None:
            raise ValueError(
                f"WarmStartSettings: no checkpoint in directory {path!r}. Point "
                "ckpt_to_initialize_from at a model_dir or a checkpoint prefix."
            )
        return prefix
    if not tf.io.gfile.exists(path + ".index"):
        raise ValueError(f"WarmStartSettings: checkpoint {path!r} does not exist.")
    return path


def _selected(store, spec) -> dict:
    if spec is None:
        return {}
    if isinstance(spec, str):
        pattern = re.compile(spec)
        return {k: v for k, v in store.global_variables.items()
                if v.trainable and pattern.match(k)}
    if isinstance(spec, (list, tuple)):
        patterns = [re.compile(p) for p in spec]
        return {k: v for k, v in store.global_variables.items()
                if any(p.match(k) for p in patterns)}
    raise TypeError(
        f"WarmStartSettings got vars_to_warm_start={spec!r}; expected a regex string, a list "
        "of regexes/names, or None."
    )


def warm_start(store, settings: WarmStartSettings) -> list[str]:
    """Initializes the store's selected variables from the checkpoint; returns their names."""
    prefix = _resolve_checkpoint(settings.ckpt_to_initialize_from)
    chosen = _selected(store, settings.vars_to_warm_start)
    available = checkpoints.list_variables(prefix)
    plain, remapped = {}, []
    name_map = {}
    for key, var in chosen.items():
        old = settings.var_name_to_prev_var_name.get(key, key)
        if old not in available:
            raise ValueError(
                f"Warm start: variable {key!r} (looked up as {old!r}) is not in checkpoint "
                f"{prefix}. Narrow vars_to_warm_start, or map it with var_name_to_prev_var_name."
            )
        if key in settings.var_name_to_vocab_info:
            remapped.append((key, var, old))
        else:
            plain[key] = var
            name_map[key] = old
    if plain:
        checkpoints.restore(plain, prefix, name_map=name_map)
    for key, var, old in remapped:
        var.assign(_remap(var.numpy(), tf.train.load_variable(prefix, old),
                          settings.var_name_to_vocab_info[key], key))
    log.info("Warm-started %d variables from %s.", len(chosen), prefix)
    return sorted(chosen)


def _read_vocab(path, size):
    with tf.io.gfile.GFile(path) as f:
        tokens = [line.rstrip("\n") for line in f]
    return tokens if size is None or size < 0 else tokens[:size]


def _remap(fresh: np.ndarray, old: np.ndarray, info: VocabInfo, key: str) -> np.ndarray:
    new_tokens = _read_vocab(info.new_vocab, info.new_vocab_size)
    old_tokens = _read_vocab(info.old_vocab, info.old_vocab_size)
    old_index = {token: i for i, token in enumerate(old_tokens)}
    result = np.array(fresh, copy=True)
    if info.backup_initializer is not None:
        result = np.asarray(info.backup_initializer(fresh.shape, dtype=fresh.dtype))
    axis = info.axis
    if fresh.shape[axis] != len(new_tokens) + info.num_oov_buckets:
        raise ValueError(
            f"VocabInfo for {key!r}: the variable has {fresh.shape[axis]} rows along axis "
            f"{axis}, but the new vocabulary has {len(new_tokens)} tokens + "
            f"{info.num_oov_buckets} OOV buckets."
        )
    for new_row, token in enumerate(new_tokens):
        old_row = old_index.get(token)
        if old_row is None or old_row >= old.shape[axis]:
            continue
        if axis == 0:
            result[new_row] = old[old_row]
        else:
            result[:, new_row] = old[:, old_row]
    return result
