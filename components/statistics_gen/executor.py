"""StatisticsGen's executor: one Beam pipeline, one branch per split."""

from __future__ import annotations

import os

from components.base import ExecutionContext
from components.beam_utils import make_pipeline, runner_name
from components.statistics_gen.combiner import StatsCombineFn, to_proto


def run(ctx: ExecutionContext) -> None:
    import apache_beam as beam
    from tensorflow_metadata.proto.v0 import statistics_pb2
    from tfx_bsl.coders import example_coder

    examples = ctx.input("examples")
    params = ctx.parameters
    out = ctx.outputs["statistics"]
    fn = StatsCombineFn(params.num_rank_histogram_buckets)

    class _Combine(beam.CombineFn):
        def create_accumulator(self):
            return fn.create_accumulator()

        def add_input(self, acc, batch):
            return fn.add_input(acc, batch)

        def merge_accumulators(self, accs):
            return fn.merge_accumulators(accs)

        def compact(self, acc):
            return fn.compact(acc)

        def extract_output(self, acc):
            return acc

    class _Decode(beam.DoFn):
        def setup(self):
            self._decoder = example_coder.ExamplesToRecordBatchDecoder()

        def process(self, batch):
            yield self._decoder.DecodeBatch(batch)

    ctx.report(f"Beam ({runner_name(ctx.beam_pipeline_args)}): statistics of {examples.split_names}")
    with make_pipeline(ctx.beam_pipeline_args) as p:
        for split in examples.split_names:
            os.makedirs(out.split_uri(split), exist_ok=True)
            path = out.stats_path(split)
            _ = (p
                 | f"Read[{split}]" >> beam.io.ReadFromTFRecord(
                     examples.file_pattern(split), compression_type=beam.io.filesystem.CompressionTypes.GZIP)
                 | f"Batch[{split}]" >> beam.BatchElements(min_batch_size=512, max_batch_size=4096)
                 | f"Decode[{split}]" >> beam.ParDo(_Decode())
                 | f"Stats[{split}]" >> beam.CombineGlobally(_Combine())
                 | f"ToProto[{split}]" >> beam.Map(
                     to_proto, split, num_top_values=params.num_top_values, num_quantiles=params.num_quantiles)
                 | f"Write[{split}]" >> beam.io.WriteToText(
                     path, shard_name_template="", append_trailing_newlines=False,
                     coder=beam.coders.ProtoCoder(statistics_pb2.DatasetFeatureStatisticsList)))
    out.properties.update(split_names=examples.split_names, span=examples.span)


def load_statistics(path: str):
    """Reads one split's DatasetFeatureStatisticsList."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    with open(path, "rb") as f:
        return statistics_pb2.DatasetFeatureStatisticsList.FromString(f.read())
