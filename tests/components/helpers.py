"""Runs a component's real executor directly (no runner), for component tests."""

from __future__ import annotations

import glob
import itertools
import os

from components.base import Component, ExecutionContext

_ids = itertools.count(1)


def execute(component: Component, tmp_path, inputs=None, *, beam_args=(), previous=None):
    """Runs the executor; returns the filled output artifacts (ids assigned)."""
    execution_id = next(_ids)
    outputs = {}
    for key, artifact_type in component.OUTPUTS.items():
        uri = os.path.join(str(tmp_path), component.id, key, str(execution_id))
        os.makedirs(uri)
        outputs[key] = artifact_type(uri=uri, id=execution_id * 100 + len(outputs))
    ctx = ExecutionContext(
        component_id=component.id, execution_id=execution_id,
        inputs={k: (v if isinstance(v, list) else [v]) for k, v in (inputs or {}).items()},
        outputs=outputs, parameters=component.parameters, beam_pipeline_args=tuple(beam_args),
        temp_dir=os.path.join(str(tmp_path), ".temp", str(execution_id)),
        previous_output=lambda key: (previous or {}).get(key))
    os.makedirs(ctx.temp_dir, exist_ok=True)
    component.executor()(ctx)
    return outputs


def read_examples(examples, split):
    """The split's tf.Examples as dicts of name -> list of python values."""
    import tensorflow as tf

    rows = []
    for path in sorted(glob.glob(examples.file_pattern(split))):
        for raw in tf.data.TFRecordDataset(path, compression_type="GZIP").as_numpy_iterator():
            ex = tf.train.Example.FromString(raw)
            rows.append({k: list(getattr(v, v.WhichOneof("kind")).value) for k, v in ex.features.feature.items()})
    return rows
