"""BulkInferrer's executor: check the blessing and the inputs, probe the model, score in Beam.

Everything that can be checked before Beam starts is checked here, so bad input fails with
one line naming the artifact, split or column: a split the Examples do not have, a key
column absent from the data, a signature the model lacks or that cannot take tf.Examples,
and the model failing on the first examples (the probe, which also tells the table's
prediction columns). A model that is not blessed is not an error: as TFX's BulkInferrer,
nothing is scored, and the empty InferenceResult says why (``inferred=False``, ``reason``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from components.artifacts import Examples
from components.base import ComponentError, DataError, ExecutionContext
from components.bulk_inferrer.signature import ScoringSignature, read_signature
from components.bulk_inferrer.tables import EXAMPLE_KINDS, FEATURE_LIST_KINDS, Column, PredictionLayout
from components.pusher.executor import why_not_blessed
from components.trainer.model_paths import serving_model_path

_LOG = logging.getLogger(__name__)
PROBE_EXAMPLES = 8
# Without ExampleGen's column_kinds, key columns are looked for in this many records per split.
KEY_SCAN_RECORDS = 1000


def _examples_label(examples: Examples) -> str:
    return f"Examples {examples.id} ({examples.uri})"


def selected_splits(examples: Examples, splits: Sequence[str]) -> tuple[str, ...]:
    """The splits to score: those asked for (checked to exist), or all of the artifact's."""
    available = examples.split_names
    if not available:
        raise ComponentError(
            f"BulkInferrer got {_examples_label(examples)} with no split_names property. How to fix: pass "
            "an Examples artifact written by ExampleGen (one Split-<name> directory per split).")
    missing = [s for s in splits if s not in available]
    if missing:
        raise ComponentError(
            f"BulkInferrer got splits={list(splits)!r}; {_examples_label(examples)} has no split "
            f"{missing[0]!r} (it has {available}). How to fix: pass splits= a subset of {available}, "
            "or leave splits empty to score them all.")
    return tuple(splits) if splits else tuple(available)


def split_files(examples: Examples, split: str) -> list[str]:
    """The split's TFRecord files; an error when the artifact says it has rows but no file is there."""
    import tensorflow as tf

    pattern = examples.file_pattern(split)
    files = sorted(tf.io.gfile.glob(pattern))
    rows = (examples.properties.get("row_counts") or {}).get(split)
    if not files and rows != 0:
        raise ComponentError(
            f"BulkInferrer got {_examples_label(examples)} whose split {split!r} has no file matching "
            f"{pattern}{f' (it should hold {rows} rows)' if rows else ''}. How to fix: rerun the component "
            "that wrote these Examples; its output is incomplete.")
    return files


def _read(files: Sequence[str], limit: int) -> list[bytes]:
    import tensorflow as tf

    if not files:
        return []
    dataset = tf.data.TFRecordDataset(list(files), compression_type="GZIP").take(limit)
    try:
        return [record.numpy() for record in dataset]
    except tf.errors.OpError as e:
        raise ComponentError(
            f"BulkInferrer could not read {files[0]} and the files after it: {e.message.splitlines()[0]}. "
            "How to fix: pass Examples stored as gzip TFRecords of tf.Examples (ExampleGen's output).") from None


def key_columns(examples: Examples, files: Mapping[str, Sequence[str]], names: Sequence[str]) -> tuple[Column, ...]:
    """The key columns, typed; an error naming the split and the column when one is not in the data.

    ExampleGen records every column's kind (``column_kinds``); for Examples without it, the
    first `KEY_SCAN_RECORDS` records of each split are read.
    """
    import tensorflow as tf

    if not names:
        return ()
    recorded = examples.properties.get("column_kinds")
    kinds_by_split: dict[str, dict[str, str]] = {}
    for split, split_files_ in files.items():
        if recorded:
            kinds_by_split[split] = {k: EXAMPLE_KINDS[v] for k, v in recorded.items() if v in EXAMPLE_KINDS}
            continue
        kinds: dict[str, str] = {}
        for record in _read(split_files_, KEY_SCAN_RECORDS):
            for key, feature in tf.train.Example.FromString(record).features.feature.items():
                kind = feature.WhichOneof("kind")
                if kind:
                    kinds.setdefault(key, FEATURE_LIST_KINDS[kind])
        kinds_by_split[split] = kinds
    columns = []
    for name in names:
        for split, kinds in kinds_by_split.items():
            if name not in kinds and (recorded or files[split]):
                raise DataError(
                    examples.split_uri(split), None, name,
                    f"BulkInferrer got key_columns={list(names)!r}; split {split!r} of {_examples_label(examples)} "
                    f"has no column {name!r} (its columns: {sorted(kinds)}).",
                    "pass key_columns= names from that list.")
        kind = next((kinds[name] for kinds in kinds_by_split.values() if name in kinds), None)
        columns.append(Column(name, kind or "string"))
    return tuple(columns)


def _first_records(files: Mapping[str, Sequence[str]]) -> tuple[str, str, list[bytes]]:
    """(split, file, its first `PROBE_EXAMPLES` records) of the first file holding any; empty records if none."""
    for split, paths in files.items():
        for path in paths:
            records = _read([path], PROBE_EXAMPLES)
            if records:
                return split, path, records
    return "", "", []


def probe(model_path: str, signature: ScoringSignature, examples: Examples,
          files: Mapping[str, Sequence[str]], keys: Sequence[Column] = ()) -> tuple[PredictionLayout, Any]:
    """Calls the signature on the first examples of the first split.

    Returns the prediction layout, and the loaded signature: hold it while the pipeline runs,
    so that an in-process DoFn reuses it. A model that fails on the examples, or answers in a
    shape no table can hold, fails here with the split and file named, before Beam starts.
    """
    from components.bulk_inferrer.scoring import FIX, Scoring, load_signature, score_batch

    split, path, records = _first_records(files)
    if not records:
        raise ComponentError(
            f"BulkInferrer got {_examples_label(examples)} whose splits {list(files)} hold no records: nothing "
            "to score. How to fix: pass Examples with rows, or other splits=.")
    loaded = load_signature(model_path, signature.name)
    scoring = Scoring(model_path, signature, (split,), _examples_label(examples), key_columns=tuple(keys))
    outputs = score_batch(loaded.function, scoring, [(0, path, record) for record in records])
    try:
        return PredictionLayout.from_outputs(signature.method, outputs, len(records)), loaded
    except (ValueError, TypeError) as e:
        raise DataError(path, None, None,
                        f"split {split!r} of {_examples_label(examples)}: signature {signature.name!r} answered "
                        f"in a form BulkInferrer cannot tabulate: {e}", FIX + ".") from None


def _check_names(keys: Sequence[Column], layout: PredictionLayout, signature: ScoringSignature) -> None:
    clash = sorted({c.name for c in keys} & {c.name for c in layout.columns})
    if clash:
        raise ComponentError(
            f"BulkInferrer got key_columns={[c.name for c in keys]!r}; {clash} are also prediction columns of "
            f"signature {signature.name!r} (its columns: {[c.name for c in layout.columns]}). How to fix: drop "
            "them from key_columns (the predictions are in the table already).")


def run(ctx: ExecutionContext) -> None:
    from apache_beam.metrics.metric import MetricsFilter

    from components.beam_utils import make_pipeline, runner_name
    from components.bulk_inferrer import scoring as beam_scoring

    params = ctx.parameters
    out = ctx.outputs["inference_result"]
    examples, model = ctx.input("examples"), ctx.input("model")
    out.properties.update(signature_name=params.signature_name, model_id=model.id, examples_id=examples.id,
                          span=examples.span, key_columns=list(params.key_columns),
                          output_formats=list(params.output_formats))
    reason = why_not_blessed(ctx)
    if reason is not None:
        ctx.report(f"nothing scored: {reason}")
        _LOG.info("BulkInferrer scored nothing: %s", reason)
        out.properties.update(inferred=False, reason=reason, split_names=[], row_counts={})
        return
    blessing = (ctx.inputs.get("model_blessing") or [None])[0]
    splits = selected_splits(examples, params.splits)
    model_path = serving_model_path(model)
    signature = read_signature(model_path, params.signature_name, model_label=f"Model {model.id} ({model_path})")
    files = {split: split_files(examples, split) for split in splits}
    keys = key_columns(examples, files, params.key_columns)
    layout, loaded = probe(model_path, signature, examples, files, keys)  # held until the run ends
    _check_names(keys, layout, signature)
    scoring = beam_scoring.Scoring(model_path, signature, splits, _examples_label(examples),
                                   key_columns=keys, layout=layout if params.output_formats else None)
    ctx.report(f"scoring splits {list(splits)} of Examples {examples.id} with signature {signature.name!r} "
               f"({signature.method}) on {runner_name(ctx.beam_pipeline_args)}")
    pipeline = make_pipeline(ctx.beam_pipeline_args)
    beam_scoring.write_outputs(pipeline, scoring, files, {s: out.split_uri(s) for s in splits},
                               output_formats=params.output_formats, batch_size=params.batch_size)
    try:
        with beam_scoring.component_errors_surface():
            result = pipeline.run()
            result.wait_until_finish()
    except ComponentError:
        raise
    except Exception as e:  # noqa: BLE001 - one line for the user; the chain keeps the traceback
        cause = e
        while cause.__cause__ or cause.__context__:
            cause = cause.__cause__ or cause.__context__
        raise ComponentError(
            f"BulkInferrer failed scoring splits {list(splits)} of {_examples_label(examples)} with signature "
            f"{signature.name!r} on {runner_name(ctx.beam_pipeline_args)}: {type(cause).__name__}: "
            f"{(str(cause).strip().splitlines() or [''])[0]}. How to fix: check the beam_pipeline_args and "
            "the execution's traceback in the metadata store.") from e
    del loaded
    counters = result.metrics().query(MetricsFilter().with_namespace(beam_scoring.NAMESPACE))["counters"]
    counts = {c.key.metric.name: c.committed for c in counters}
    row_counts = {split: int(counts.get(f"rows_{split}", 0)) for split in splits}
    out.properties.update(
        inferred=True, split_names=list(splits), row_counts=row_counts, method=signature.method,
        columns=[c.name for c in scoring.columns] if params.output_formats else [],
        reason=(f"model_blessing {blessing.id} is blessed" if blessing is not None
                else "no model_blessing given: the model was used as exported"))
    ctx.report(f"scored {sum(row_counts.values())} examples ({row_counts}) into {out.uri}")
