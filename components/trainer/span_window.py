"""Training on a rolling window of spans (TFX's RollingRange): the newest N spans.

The Transform analyzes a span window (``examples.span_window(n)``) but writes transformed
examples for the newest span only, and an earlier span's transformed examples were written
by an earlier Transform run, with that run's vocabularies and statistics: training on them
with this run's graph would mix two encodings. So the Trainer takes the raw Examples of the
window (``Trainer(..., raw_examples=gen.outputs["examples"], span_window=n)``, resolved by the
runner's ``span_window`` input policy, newest first) and passes each earlier span's train split
through this run's transform graph (`transform_split`), once: the result is kept in the
Trainer's resumable work dir. ``fn_args.train_files`` then lists the newest span's transformed
train split (from Transform) and the earlier spans' (from here), newest first; evaluation stays
on the newest span's eval split.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from typing import Any

from components.base import ComponentError

_DONE = "DONE"


def span_of(artifact: Any) -> int:
    return int(artifact.properties.get("span", 0))


def earlier_spans(current_span: int, window: Sequence[Any], size: int) -> list[Any]:
    """The raw Examples of the ``size - 1`` spans before ``current_span`` in ``window`` (newest first)."""
    earlier = sorted((a for a in window if span_of(a) < current_span), key=span_of, reverse=True)
    chosen, seen = [], set()
    for artifact in earlier:
        if span_of(artifact) not in seen:
            seen.add(span_of(artifact))
            chosen.append(artifact)
    return chosen[:size - 1]


def transform_split(raw: Any, split: str, *, transform_graph_path: str, raw_feature_spec: dict[str, Any],
                    out_dir: str, batch_size: int = 1024) -> str:
    """Writes ``raw``'s ``split`` through the transform graph as gzip tf.Examples; returns their glob.

    Reuses ``out_dir`` when an earlier (killed) execution finished it.
    """
    import numpy as np
    import tensorflow as tf
    import tensorflow_transform as tft

    pattern = os.path.join(out_dir, "*.gz")
    if os.path.exists(os.path.join(out_dir, _DONE)):
        return pattern
    if split not in raw.split_names:
        raise ComponentError(
            f"Trainer got raw Examples {raw.id} (span {span_of(raw)}) with splits {raw.split_names}; expected "
            f"split {split!r} to train on. How to fix: give every span the same splits in ExampleGen.")
    files = sorted(glob.glob(raw.file_pattern(split)))
    output = tft.TFTransformOutput(transform_graph_path)
    layer = output.transform_features_layer()
    kinds = {k: v.dtype for k, v in output.transformed_feature_spec().items()}
    os.makedirs(out_dir, exist_ok=True)
    for stale in glob.glob(pattern):
        os.remove(stale)
    data = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(batch_size)
    with tf.io.TFRecordWriter(os.path.join(out_dir, "part-00000.gz"), "GZIP") as writer:
        for serialized in data:
            transformed = layer(tf.io.parse_example(serialized, raw_feature_spec))
            rows: dict[str, list[Any]] = {}
            for name, value in transformed.items():
                if name not in kinds:
                    continue
                if isinstance(value, tf.SparseTensor):
                    value = tf.RaggedTensor.from_sparse(value)
                if isinstance(value, tf.RaggedTensor):
                    rows[name] = [np.asarray(r).reshape(-1) for r in value.to_list()]
                else:
                    array = value.numpy()
                    rows[name] = list(array.reshape(array.shape[0], -1))
            for i in range(int(serialized.shape[0])):
                example = tf.train.Example()
                for name, values in rows.items():
                    feature = example.features.feature[name]
                    row = values[i]
                    if kinds[name].is_floating:
                        feature.float_list.value.extend(np.asarray(row, np.float32).tolist())
                    elif kinds[name].is_integer or kinds[name].is_bool:
                        feature.int64_list.value.extend(np.asarray(row, np.int64).tolist())
                    else:
                        feature.bytes_list.value.extend(list(row))
                writer.write(example.SerializeToString())
    open(os.path.join(out_dir, _DONE), "w").close()
    return pattern


def window_train_files(ctx: Any, params: Any, examples: Any, *, transform_graph_path: str,
                       schema_path: str) -> tuple[tuple[str, ...], list[int]]:
    """The train file globs of the span window (newest first) and their spans."""
    from tensorflow_transform.tf_metadata import schema_utils

    from components.schema_gen.executor import load_schema

    current = span_of(examples)
    files = [examples.file_pattern(params.train_split)]
    if params.span_window <= 1:
        return tuple(files), [current]
    window = list(ctx.inputs.get("raw_examples") or [])
    if not window:
        raise ComponentError(
            f"Trainer got span_window={params.span_window} and no raw_examples. How to fix: pass "
            "raw_examples=example_gen.outputs['examples'].")
    earlier = earlier_spans(current, window, params.span_window)
    raw_spec = schema_utils.schema_as_feature_spec(load_schema(schema_path)).feature_spec
    base = os.path.join(ctx.work_dir or ctx.temp_dir, "span_window")
    for raw in earlier:
        ctx.report(f"transforming span {span_of(raw)} (Examples {raw.id}) with this run's transform graph")
        files.append(transform_split(raw, params.train_split, transform_graph_path=transform_graph_path,
                                     raw_feature_spec=raw_spec,
                                     out_dir=os.path.join(base, f"span{span_of(raw)}_examples{raw.id}")))
    spans = [current] + [span_of(a) for a in earlier]
    if len(spans) < params.span_window:
        ctx.report(f"span window: {len(spans)} of {params.span_window} spans available ({spans})")
    return tuple(files), spans
