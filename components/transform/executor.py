"""Transform's executor: tf.Transform on Beam with an analyzer cache carried across spans.

Analysis covers ``analyze_splits`` of every Examples artifact in the input (a span
window, newest first); each (artifact, split) is one TFT dataset key, so a span
analyzed before is read from the previous execution's cache instead of the data.
The newest span's splits are transformed.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from components.base import ComponentError, ExecutionContext
from components.beam_utils import make_pipeline, runner_name
from components.transform.preprocessing import check_columns, load_user_fn, make_preprocessing_fn

TRANSFORMED_PREFIX = "transformed_examples"
SPLIT_COLUMN = "__split__"


def _split_type() -> Any:
    import pyarrow as pa

    return pa.large_list(pa.large_binary())


def _tagged_config(config: Any) -> Any:
    """The adapter config plus the passthrough split column (not a model input)."""
    import pyarrow as pa
    from tfx_bsl.public import tfxio as tfxio_lib

    schema = config.arrow_schema.append(pa.field(SPLIT_COLUMN, _split_type()))
    return tfxio_lib.TensorAdapterConfig(schema, config.tensor_representations)


def _tag(batch: Any, split: str) -> Any:
    import pyarrow as pa

    column = pa.array([[split.encode()]] * batch.num_rows, type=_split_type())
    return batch.append_column(pa.field(SPLIT_COLUMN, _split_type()), column)


class _CacheEntrySink:
    """Writes one analyzer-cache entry as one gzip TFRecord file, ``<path>-00000-of-00001.gz``
    (what ``ReadAnalysisCacheFromFS`` reads), from a single DoFn call.

    Why: a cache has one entry per analyzer per dataset, and Beam's file sink costs several
    stages per entry (~15 s of fixed time for the taxi spec on DirectRunner). Entries are
    analyzer accumulators, small next to the data, so collecting one in a worker is fine.
    """

    def __new__(cls, path: str) -> Any:
        import apache_beam as beam

        return beam.combiners.ToList() | beam.Map(_write_cache_entry, path)


def _write_cache_entry(records: list[bytes], path: str) -> None:
    import tensorflow as tf

    with tf.io.TFRecordWriter(f"{path}-00000-of-00001.gz", options="GZIP") as writer:
        for record in records:
            writer.write(record)


def _split_names_of(column: Any) -> list[str]:
    """The split name of each row of the passthrough column (list<binary>, one value per row)."""
    return [value[0].decode() if isinstance(value[0], bytes) else value[0] for value in column.to_pylist()]


def _encode_by_split(element: Any, names: list[str], encoder: Any) -> Any:
    """(record batch, unary passthrough) -> (split index, serialized tf.Example) per row.

    TransformDataset may batch rows of several splits together, so the split column is read
    per row (or once, when TFT passed it through as one value for the whole batch).
    """
    import pyarrow as pa

    batch, unary = element
    if SPLIT_COLUMN in unary:
        yield from ((names.index(_split_names_of(unary[SPLIT_COLUMN])[0]), record)
                    for record in encoder.encode(batch))
        return
    index = batch.schema.get_field_index(SPLIT_COLUMN)
    rows = _split_names_of(batch.column(index))
    body = batch.remove_column(index)
    if len(set(rows)) == 1:
        yield from ((names.index(rows[0]), record) for record in encoder.encode(body))
        return
    for split in sorted(set(rows)):
        mask = pa.array([row == split for row in rows])
        yield from ((names.index(split), record) for record in encoder.encode(body.filter(mask)))


def dataset_key_name(examples: Any, split: str) -> str:
    """The cache key of one split of one Examples artifact (new data -> new artifact -> new key)."""
    return f"span{examples.span}_examples{examples.id}_{split}"


def build_preprocessing_fn(params: Any, schema: Any):
    if params.feature_spec is not None:
        check_columns(params.feature_spec, schema)
        return make_preprocessing_fn(params.feature_spec)
    return load_user_fn(params.module_file, params.preprocessing_fn)


def run(ctx: ExecutionContext) -> None:
    import apache_beam as beam
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.beam import analyzer_cache
    from tensorflow_transform.beam.analysis_graph_builder import get_analysis_dataset_keys
    from tfx_bsl.coders import example_coder
    from tfx_bsl.public import tfxio as tfxio_lib

    from components.schema_gen.executor import load_schema

    params = ctx.parameters
    window = list(ctx.inputs["examples"])
    current = window[0]
    schema = load_schema(ctx.input("schema").schema_path)
    preprocessing_fn = build_preprocessing_fn(params, schema)
    for examples in window:
        missing = [s for s in params.analyze_splits if s not in examples.split_names]
        if missing:
            raise ComponentError(
                f"Transform got analyze_splits={params.analyze_splits!r}; Examples {examples.id} has splits "
                f"{examples.split_names}. How to fix: pick analyze_splits from those.")

    def make_tfxio(examples: Any, split: str) -> Any:
        return tfxio_lib.TFExampleRecord(file_pattern=examples.file_pattern(split), schema=schema,
                                         telemetry_descriptors=["pipeline", "Transform"])

    graph_out = ctx.outputs["transform_graph"]
    data_out = ctx.outputs["transformed_examples"]
    cache_out = ctx.outputs["updated_analyzer_cache"]
    previous = ctx.previous_output("updated_analyzer_cache") if params.use_analyzer_cache else None
    if previous is not None and os.path.isdir(previous.uri):
        shutil.copytree(previous.uri, cache_out.uri, dirs_exist_ok=True)  # WriteAnalysisCacheToFS merges

    analysis = {analyzer_cache.DatasetKey(dataset_key_name(e, s)): (e, s)
                for e in window for s in params.analyze_splits}
    first_tfxio = make_tfxio(current, params.analyze_splits[0])
    adapter_config = first_tfxio.TensorAdapterConfig()
    ctx.report(f"Beam ({runner_name(ctx.beam_pipeline_args)}): tf.Transform over {len(analysis)} dataset(s)")
    with make_pipeline(ctx.beam_pipeline_args) as p, tft_beam.Context(
            temp_dir=os.path.join(ctx.temp_dir, "tft"), force_tf_compat_v1=False,
            passthrough_keys={SPLIT_COLUMN}):
        reads: dict[tuple[int | None, str], Any] = {}

        def read(examples: Any, split: str) -> Any:
            """Each split is read once, shared by analysis and transformation."""
            key = (examples.id, split)
            if key not in reads:
                reads[key] = p | f"Read[{examples.id}-{split}]" >> make_tfxio(examples, split).BeamSource()
            return reads[key]

        if params.use_analyzer_cache:
            input_cache = p | "ReadCache" >> analyzer_cache.ReadAnalysisCacheFromFS(cache_out.uri, list(analysis))
            needed = set(analysis)
            if input_cache:  # inspecting the graph costs a trace: only when there is a cache
                specs = first_tfxio.TensorAdapter().OriginalTypeSpecs()
                needed = get_analysis_dataset_keys(preprocessing_fn, specs, list(analysis), input_cache, False)
            data = {key: read(*analysis[key]) if key in needed else None for key in analysis}
            transform_fn, output_cache = (data, input_cache, adapter_config) | tft_beam.AnalyzeDatasetWithCache(
                preprocessing_fn)
            _ = output_cache | "WriteCache" >> analyzer_cache.WriteAnalysisCacheToFS(
                p, cache_out.uri, list(analysis), sink=_CacheEntrySink)
        else:  # no cache plumbing: one flattened analysis, as plain tf.Transform would do
            needed = set(analysis)
            pcolls = [read(*value) for value in analysis.values()]
            flat = pcolls[0] if len(pcolls) == 1 else pcolls | "FlattenAnalysis" >> beam.Flatten()
            transform_fn = (flat, adapter_config) | tft_beam.AnalyzeDataset(preprocessing_fn)
        _ = transform_fn | "WriteTransformFn" >> tft_beam.WriteTransformFn(graph_out.uri)
        # All splits go through one TransformDataset (one model load per worker, not one per
        # split): each batch carries its split name in a passthrough column used to route it.
        names = list(current.split_names)
        tagged = [read(current, split) | f"Tag[{split}]" >> beam.Map(_tag, split) for split in names]
        flat = tagged[0] if len(tagged) == 1 else tagged | "FlattenSplits" >> beam.Flatten()
        # Record batches, encoded to tf.Examples a batch at a time in C++ (tfx-bsl), not one
        # Python dict per row: 'output_record_batches=True', as TFT's warning advises.
        transformed, metadata = ((flat, _tagged_config(adapter_config)), transform_fn) | \
            "TransformSplits" >> tft_beam.TransformDataset(output_record_batches=True)
        encoder = (metadata.deferred_metadata
                   | "Encoder" >> beam.Map(lambda m: example_coder.RecordBatchToExamplesEncoder(m.schema)))
        routed = (transformed
                  | "EncodeWithSplit" >> beam.FlatMap(_encode_by_split, names, beam.pvalue.AsSingleton(encoder))
                  | "RouteSplits" >> beam.Partition(lambda pair, n: pair[0], len(names)))
        for index, split in enumerate(names):
            os.makedirs(data_out.split_uri(split), exist_ok=True)
            _ = (routed[index]
                 | f"Drop[{split}]" >> beam.Map(lambda pair: pair[1])
                 | f"Write[{split}]" >> beam.io.WriteToTFRecord(
                     os.path.join(data_out.split_uri(split), TRANSFORMED_PREFIX), file_name_suffix=".gz",
                     compression_type=beam.io.filesystem.CompressionTypes.GZIP))
    analyzed = sorted(k.key for k in needed)
    cached = sorted(k.key for k in analysis if k not in needed)
    data_out.properties.update(split_names=current.split_names, span=current.span, version=current.version)
    graph_out.properties.update(span=current.span, analyzed_datasets=analyzed, cached_datasets=cached)
    cache_out.properties.update(span=current.span, datasets=sorted(k.key for k in analysis))
    ctx.report(f"analyzed {analyzed}; from cache {cached}")
