"""Transform component vs raw tf.Transform on the same preprocessing, 15k and 150k taxi rows.

Both sides run the taxi FeatureSpec's generated preprocessing_fn on DirectRunner,
analyze all rows and write the transform graph plus transformed examples:

- raw: a hand-written Beam pipeline: CSV -> tfx-bsl CSV TFXIO -> AnalyzeAndTransformDataset,
  writing one instance dict per row through ExampleProtoCoder (as TFT's tutorials do).
- raw_record_batches: the same with ``output_record_batches=True`` and tfx-bsl's
  RecordBatchToExamplesEncoder (what the component does): the A/B for that choice.
- component: the Transform component run through the LocalRunner (metadata, fingerprint,
  atomic publish) on ExampleGen's output of the same CSV (ExampleGen itself is not timed),
  with the analyzer cache off (the default for a single span; the same work as raw TFT) and,
  separately, on (the default for a span window: per-dataset analysis plus writing the cache).

Each measurement runs in a fresh process, timed after imports and set-up. Prints one JSON line:
{"rows_15k": {...}, "ratio_15k": component/raw, "ratio_with_cache_15k": ...,
"record_batches_vs_instance_dicts_15k": raw_record_batches/raw, (same for 150k), "target": 1.2}.

Usage: .venv/bin/python benchmarks/transform_overhead.py [--repeats 1]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def make_csv(path: str, repeat: int) -> None:
    """The taxi CSV repeated, with the derived label column big_tipper appended."""
    with open(os.path.join(REPO, "data", "taxi", "data.csv"), newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    tips, fare = header.index("tips"), header.index("fare")
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header + ["big_tipper"])
        for _ in range(repeat):
            for row in body:
                writer.writerow(row + [str(int(float(row[tips] or 0) > 0.2 * float(row[fare] or 0)))])


def _prepare(work: str, data_dir: str, *, use_analyzer_cache: bool = False):
    """Runs ExampleGen -> StatisticsGen -> SchemaGen (untimed); returns (pipeline, schema path)."""
    from components.schema_gen import SchemaGen
    from components.statistics_gen import StatisticsGen
    from components.example_gen import ExampleGen
    from components.transform import Transform
    from pipeline import LocalRunner, Pipeline
    from pipeline.examples.taxi_pipeline import TAXI_FEATURES

    gen = ExampleGen(data_dir, file_pattern="data.csv", column_types=TAXI_FEATURES.column_types())
    stats = StatisticsGen(gen.outputs["examples"])
    schema = SchemaGen(stats.outputs["statistics"])
    transform = Transform(gen.outputs["examples"], schema.outputs["schema"], feature_spec=TAXI_FEATURES,
                          analyze_splits=("train", "eval"), use_analyzer_cache=use_analyzer_cache)
    pipeline = Pipeline("bench", os.path.join(work, "root"), [gen, stats, schema, transform], enable_cache=False)
    result = LocalRunner().run(pipeline, to_nodes=["SchemaGen"])
    return pipeline, result.outputs["SchemaGen"]["schema"].schema_path


def run_raw(work: str, data_dir: str, record_batches: bool = False) -> float:
    import apache_beam as beam
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from tfx_bsl.coders import example_coder
    from tfx_bsl.public import tfxio

    from components.schema_gen.executor import load_schema
    from components.transform.preprocessing import make_preprocessing_fn
    from pipeline.examples.taxi_pipeline import TAXI_FEATURES

    _, schema_path = _prepare(work, data_dir)
    schema = load_schema(schema_path)
    csv_path = os.path.join(data_dir, "data.csv")
    with open(csv_path) as f:
        columns = f.readline().strip().split(",")
    out = os.path.join(work, "raw")
    started = time.monotonic()
    source = tfxio.BeamRecordCsvTFXIO(physical_format="text", column_names=columns, schema=schema)
    with beam.Pipeline() as p, tft_beam.Context(temp_dir=os.path.join(work, "raw_tmp")):
        raw = (p | beam.io.ReadFromText(csv_path, skip_header_lines=1, coder=beam.coders.BytesCoder())
               | source.BeamSource())
        (transformed, metadata), transform_fn = ((raw, source.TensorAdapterConfig())
                                                 | tft_beam.AnalyzeAndTransformDataset(
                                                     make_preprocessing_fn(TAXI_FEATURES),
                                                     output_record_batches=record_batches))
        _ = transform_fn | tft_beam.WriteTransformFn(os.path.join(out, "graph"))
        if record_batches:  # (record batch, passthrough) pairs, encoded a batch at a time in C++
            encoder = (metadata.deferred_metadata
                       | beam.Map(lambda m: example_coder.RecordBatchToExamplesEncoder(m.schema)))
            examples = transformed | beam.FlatMap(lambda pair, enc: enc.encode(pair[0]),
                                                  beam.pvalue.AsSingleton(encoder))
        else:  # one Python dict per row, encoded one at a time (TFT's tutorials)
            coder = tft.coders.ExampleProtoCoder(metadata.schema)
            examples = transformed | beam.Map(coder.encode)
        _ = examples | beam.io.WriteToTFRecord(os.path.join(out, "data", "transformed"), file_name_suffix=".gz")
    return time.monotonic() - started


def run_component(work: str, data_dir: str, use_analyzer_cache: bool = False) -> float:
    from pipeline import LocalRunner

    pipeline, _ = _prepare(work, data_dir, use_analyzer_cache=use_analyzer_cache)
    started = time.monotonic()
    LocalRunner().run(pipeline, from_nodes=["Transform"])
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=1, help="measurements per (mode, size); the min is kept")
    parser.add_argument("--sizes", default="15k,150k", help="comma-separated subset of 15k,150k")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "WORK", "DATA"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, work, data = args.child
        if mode in ("raw", "raw_record_batches"):
            seconds = run_raw(work, data, record_batches=mode == "raw_record_batches")
        else:
            seconds = run_component(work, data, use_analyzer_cache=mode == "component_cache")
        print(json.dumps({"seconds": seconds}))
        sys.stdout.flush()
        os._exit(0)  # skip TF/Beam interpreter teardown
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, repeat in (("15k", 1), ("150k", 10)):
            if label not in args.sizes.split(","):
                continue
            data = os.path.join(tmp, label)
            os.makedirs(data)
            make_csv(os.path.join(data, "data.csv"), repeat)
            times = {"raw": [], "raw_record_batches": [], "component": [], "component_cache": []}
            for i in range(args.repeats):
                for mode in times:
                    work = os.path.join(tmp, f"{label}-{mode}-{i}")
                    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
                    out = subprocess.run([sys.executable, __file__, "--child", mode, work, data], env=env,
                                         capture_output=True, text=True, check=True)
                    times[mode].append(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])
            raw, batches, comp, cached = (min(times[m]) for m in times)
            result[f"rows_{label}"] = {"raw_s": round(raw, 2), "raw_record_batches_s": round(batches, 2),
                                       "component_s": round(comp, 2), "component_with_cache_s": round(cached, 2)}
            result[f"ratio_{label}"] = round(comp / raw, 3)
            result[f"ratio_with_cache_{label}"] = round(cached / raw, 3)
            result[f"record_batches_vs_instance_dicts_{label}"] = round(batches / raw, 3)
    result["target"] = 1.2
    print(json.dumps(result))


if __name__ == "__main__":
    main()
