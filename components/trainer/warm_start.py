"""Warm-starting a canned model from an earlier Model whose vocabularies differ.

Transform computes its vocabularies afresh for each span, so the same id can mean
another token in the next span, and a vocabulary can grow or shrink. Every variable
whose rows are indexed by vocabulary ids must therefore be re-indexed before a new
model can start from it:

| variable | rows |
|---|---|
| ``.../linear_model/<feature>/weights`` | one per id of the feature |
| ``.../<feature>_embedding/embedding_weights`` | one per id of the feature |
| ``dnn/hiddenlayer_0/kernel`` | one per input unit: the deep columns, sorted by name, side by side |

`remap_base_checkpoint` writes a copy of the base checkpoint in which each row of a
token the new vocabulary keeps moves to that token's new id, a new token's row is
zero (learned from there), and the OOV-bucket rows stay OOV rows. The Estimator then
warm-starts from the copy. Every other variable is copied as it is.

The Trainer copies the vocabulary files it trained with into its Model
(``vocabularies/<feature>``), which is where the next warm start reads the old ones, and
records the model's `architecture` (estimator, arguments other than optimizers, FeatureSpec):
a base Model of another architecture (e.g. other hidden units) is not warm-started from, since
its variables do not fit; the Trainer cold-starts and says why (`why_not_warm_start`).

Example:
    >>> row_map(["a", "b", "c"], ["c", "a", "d"], num_oov_buckets=1, old_size=4)
    [2, 0, None, 3]
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

from components.artifacts import Model
from components.base import ComponentError
from components.feature_spec import Vocabulary
from components.trainer.canned_config import CannedEstimatorConfig, feature_columns
from components.trainer.model_paths import checkpoint_path

VOCABULARY_DIR = "vocabularies"
FIRST_DNN_KERNEL = "dnn/hiddenlayer_0/kernel"


def architecture(config: CannedEstimatorConfig) -> dict[str, Any]:
    """What fixes a canned model's variables, up to vocabulary sizes: estimator, arguments, features.

    Optimizer arguments are left out: they change no trainable variable.
    """
    kwargs = {k: v for k, v in config.kwargs.items() if "optimizer" not in k}
    described = {"estimator": config.estimator, "kwargs": kwargs, "feature_spec": config.feature_spec.to_config()}
    return json.loads(json.dumps(described, sort_keys=True, default=str))  # as stored in the metadata


def why_not_warm_start(base: Model, config: CannedEstimatorConfig) -> str | None:
    """None when a canned model of ``config`` can warm-start from ``base``, else the reason."""
    if config.estimator.startswith("BoostedTrees"):
        return f"{config.estimator} grows its ensemble from scratch (boosted trees do not warm-start)"
    recorded = base.properties.get("architecture")
    if recorded is None:
        return f"base Model {base.id} records no architecture (not trained by the canned Trainer)"
    current = architecture(config)
    if recorded != current:
        changed = sorted(k for k in current if recorded.get(k) != current[k])
        return f"base Model {base.id} has another {' and '.join(changed)}"
    return None


def save_vocabularies(config: CannedEstimatorConfig, transform_graph_path: str, model_uri: str) -> dict[str, str]:
    """Copies the vocabulary of each Vocabulary feature into the Model; returns name -> relative path."""
    import tensorflow_transform as tft

    output = tft.TFTransformOutput(transform_graph_path)
    saved = {}
    for feature in _vocabulary_features(config):
        relative = os.path.join(VOCABULARY_DIR, feature.name)
        os.makedirs(os.path.join(model_uri, VOCABULARY_DIR), exist_ok=True)
        shutil.copyfile(output.vocabulary_file_by_name(feature.name), os.path.join(model_uri, relative))
        saved[feature.name] = relative
    return saved


def row_map(old_tokens: list[str], new_tokens: list[str], *, num_oov_buckets: int,
            old_size: int) -> list[int | None]:
    """For each row of the new variable, the old row it takes (None: a new token, zero)."""
    old_index = {token: i for i, token in enumerate(old_tokens)}
    rows: list[int | None] = [old_index.get(token) for token in new_tokens]
    rows += [len(old_tokens) + j if len(old_tokens) + j < old_size else None for j in range(num_oov_buckets)]
    return rows


def remap_base_checkpoint(base: Model, config: CannedEstimatorConfig, transform_graph_path: str,
                          out_dir: str) -> tuple[str, dict[str, dict[str, int]]]:
    """Writes the base Model's checkpoint re-indexed to the current vocabularies.

    Returns:
        The new checkpoint prefix, and per vocabulary feature the count of ``kept`` tokens
        (in both vocabularies) and ``new`` ones (zero rows).

    Raises:
        ComponentError: the base Model has no checkpoint or no record of its vocabularies,
            or its first DNN layer does not match the feature spec.
    """
    import numpy as np
    import tensorflow as tf
    import tensorflow_transform as tft

    from trainer import checkpoints

    prefix = checkpoint_path(base)
    if prefix is None:
        raise ComponentError(
            f"Trainer got base_model {base.id} ({base.uri}) without a checkpoint; expected a Model "
            "written by the Trainer. How to fix: wire a Trainer's Model as base_model, or none.")
    output = tft.TFTransformOutput(transform_graph_path)
    maps, summary = {}, {}
    for feature in _vocabulary_features(config):
        relative = (base.properties.get("vocabularies") or {}).get(feature.name)
        if relative is None:
            raise ComponentError(
                f"Trainer got base_model {base.id} with no vocabulary for feature {feature.name!r}; "
                "its ids cannot be matched to this run's vocabulary. How to fix: warm-start from a "
                "Model trained by the canned Trainer on the same FeatureSpec, or cold-start.")
        old_tokens = _read_tokens(os.path.join(base.uri, relative))
        new_tokens = _read_tokens(output.vocabulary_file_by_name(feature.name))
        maps[feature.name] = (old_tokens, new_tokens, feature.num_oov_buckets)
        kept = len(set(old_tokens) & set(new_tokens))
        summary[feature.name] = {"kept": kept, "new": len(new_tokens) - kept}

    values = {name: tf.train.load_variable(prefix, name) for name, _ in tf.train.list_variables(prefix)}
    remapped = {}
    for name, value in values.items():
        feature = _row_feature(name, maps)
        if feature is not None:
            old_tokens, new_tokens, oov = maps[feature]
            if value.shape[0] != len(old_tokens) + oov:
                raise ComponentError(
                    f"Trainer got base_model {base.id} whose {name} has {value.shape[0]} rows; its "
                    f"vocabulary of {feature!r} gives {len(old_tokens)} + {oov} OOV. How to fix: "
                    "warm-start only from a model trained on the same FeatureSpec, or cold-start.")
            remapped[name] = _take_rows(value, row_map(old_tokens, new_tokens, num_oov_buckets=oov,
                                                       old_size=value.shape[0]))
    if FIRST_DNN_KERNEL in values and config.estimator.startswith("DNN"):
        remapped[FIRST_DNN_KERNEL] = _remap_first_kernel(
            values[FIRST_DNN_KERNEL], config, transform_graph_path, maps, base)
    result = {}
    for name, value in values.items():
        if any(name.startswith(r + "/") for r in remapped):
            continue  # an optimizer slot of a re-indexed variable: not warm-started anyway
        result[name] = tf.Variable(remapped.get(name, value))
    step = int(np.asarray(values.get("global_step", 0)))
    shutil.rmtree(out_dir, ignore_errors=True)
    return checkpoints.save(result, out_dir, step, keep_checkpoint_max=1), summary


def _vocabulary_features(config: CannedEstimatorConfig) -> list[Vocabulary]:
    return [f for f in config.feature_spec.features if isinstance(f, Vocabulary)]


def _read_tokens(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def _row_feature(name: str, maps: dict[str, Any]) -> str | None:
    """The vocabulary feature whose ids index this variable's rows, if any."""
    for feature in maps:
        if name.endswith(f"linear_model/{feature}/weights") or \
                name.endswith(f"/{feature}_embedding/embedding_weights"):
            return feature
    return None


def _take_rows(old: Any, rows: list[int | None]) -> Any:
    import numpy as np

    new = np.zeros((len(rows),) + old.shape[1:], dtype=old.dtype)
    for i, row in enumerate(rows):
        if row is not None:
            new[i] = old[row]
    return new


def _remap_first_kernel(kernel: Any, config: CannedEstimatorConfig, transform_graph_path: str,
                        maps: dict[str, Any], base: Model) -> Any:
    """Re-indexes the input rows of the first DNN layer, one block per deep column (sorted by name)."""
    import numpy as np

    from trainer.feature_column import IndicatorColumn

    _, deep = feature_columns(config.feature_spec, transform_graph_path)
    blocks, old_start = [], 0
    for column in sorted(deep, key=lambda c: c.name):  # the input layer's order
        feature = column.categorical_column.name if isinstance(column, IndicatorColumn) else None
        if feature in maps:  # a one-hot block: one row per id
            old_tokens, new_tokens, oov = maps[feature]
            old_width = len(old_tokens) + oov
            rows = row_map(old_tokens, new_tokens, num_oov_buckets=oov, old_size=old_width)
            blocks.append(_take_rows(kernel[old_start:old_start + old_width], rows))
        else:  # numbers, hashed/bucketized one-hots, embeddings: the same width in both models
            old_width = int(np.prod(column.variable_shape))
            blocks.append(kernel[old_start:old_start + old_width])
        old_start += old_width
    if old_start != kernel.shape[0]:
        raise ComponentError(
            f"Trainer got base_model {base.id} whose {FIRST_DNN_KERNEL} has {kernel.shape[0]} input "
            f"rows; this FeatureSpec gives {old_start} with the base's vocabularies. How to fix: "
            "warm-start only from a model trained on the same FeatureSpec, or cold-start.")
    return np.concatenate(blocks, axis=0)
