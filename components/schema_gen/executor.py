"""SchemaGen / ImportSchemaGen executors and schema file helpers."""

from __future__ import annotations

import os
import shutil
from typing import Any

from components.base import ComponentError, ExecutionContext


def load_schema(path: str) -> Any:
    """Parses a text-format Schema; the error names the file and the parse problem."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    if not os.path.isfile(path):
        raise ComponentError(
            f"ImportSchemaGen got schema_file={path!r}; no such file. How to fix: point it at a "
            "schema.pbtxt (e.g. one written by SchemaGen).")
    try:
        with open(path) as f:
            return text_format.Parse(f.read(), schema_pb2.Schema())
    except (text_format.ParseError, UnicodeDecodeError) as e:
        raise ComponentError(
            f"{path}: not a text-format tensorflow_metadata Schema ({e}). How to fix: correct the "
            "file; start from a schema.pbtxt written by SchemaGen.") from None


def write_schema(schema: Any, path: str) -> None:
    from google.protobuf import text_format

    with open(path, "w") as f:
        f.write(text_format.MessageToString(schema))


def import_schema(ctx: ExecutionContext) -> None:
    load_schema(ctx.parameters.schema_file)
    shutil.copyfile(ctx.parameters.schema_file, ctx.outputs["schema"].schema_path)


def infer(ctx: ExecutionContext) -> None:
    from components.statistics_gen.executor import load_statistics

    params = ctx.parameters
    statistics = ctx.input("statistics")
    splits = list(params.splits) or statistics.split_names
    for split in splits:
        if split not in statistics.split_names:
            raise ComponentError(
                f"SchemaGen got splits={tuple(splits)!r}; the statistics have splits "
                f"{statistics.split_names}. How to fix: pick from those.")
    datasets = [load_statistics(statistics.stats_path(s)).datasets[0] for s in splits]
    schema = infer_schema(datasets, infer_feature_shape=params.infer_feature_shape,
                          max_string_domain_size=params.max_string_domain_size)
    write_schema(schema, ctx.outputs["schema"].schema_path)


def infer_schema(datasets: list[Any], *, infer_feature_shape: bool = True,
                 max_string_domain_size: int = 100) -> Any:
    """A Schema from DatasetFeatureStatistics of one or more splits.

    Infers types, presence (required only if present in every example of every split),
    value counts, a fixed shape [1] for always-present single values, and string domains.
    """
    from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

    types = {statistics_pb2.FeatureNameStatistics.INT: schema_pb2.INT,
             statistics_pb2.FeatureNameStatistics.FLOAT: schema_pb2.FLOAT,
             statistics_pb2.FeatureNameStatistics.STRING: schema_pb2.BYTES,
             statistics_pb2.FeatureNameStatistics.BYTES: schema_pb2.BYTES}
    merged: dict[str, dict[str, Any]] = {}
    for dataset in datasets:
        for fs in dataset.features:
            name = fs.path.step[0] if fs.path.step else fs.name
            common = fs.string_stats.common_stats if fs.HasField("string_stats") else fs.num_stats.common_stats
            m = merged.setdefault(name, {"type": types.get(fs.type, schema_pb2.BYTES), "missing": 0,
                                         "present": 0, "min_values": 1 << 30, "max_values": 0,
                                         "values": set() if fs.HasField("string_stats") else None,
                                         "unique": 0})
            m["splits_present"] = m.get("splits_present", 0) + (1 if common.num_non_missing else 0)
            m["missing"] += common.num_missing
            m["present"] += common.num_non_missing
            if common.num_non_missing:
                m["min_values"] = min(m["min_values"], common.min_num_values)
            m["max_values"] = max(m["max_values"], common.max_num_values)
            if m["values"] is not None and fs.HasField("string_stats"):
                m["values"].update(b.label for b in fs.string_stats.rank_histogram.buckets)
                m["unique"] = max(m["unique"], fs.string_stats.unique)
    schema = schema_pb2.Schema()
    for name, m in merged.items():
        feature = schema.feature.add(name=name, type=m["type"])
        always = m["missing"] == 0 and m["present"] > 0
        feature.presence.min_fraction = 1.0 if always else 0.0
        # min_count 1 only when every split has the feature: a rare column may miss a split.
        feature.presence.min_count = 1 if m.get("splits_present", 0) == len(datasets) else 0
        single = m["max_values"] <= 1
        if infer_feature_shape and always and single and m["min_values"] == 1:
            feature.shape.dim.add(size=1)
        elif single:
            feature.value_count.min = 1
            feature.value_count.max = 1
        values = m["values"]
        if values and len(values) <= max_string_domain_size and m["unique"] <= max_string_domain_size:
            domain = schema.string_domain.add(name=name)
            domain.value.extend(sorted(values))
            feature.domain = name
    return schema
