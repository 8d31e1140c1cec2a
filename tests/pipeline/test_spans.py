"""data/taxi_spans: the second span is picked up, drift is measured against the first, the analyzer
cache of the first span is reused."""

import os
import shutil

import pytest

from tests.pipeline.e2e_helpers import REPO
from pipeline import LocalRunner


@pytest.mark.slow
def test_second_span_drift_and_analyzer_cache(tmp_path):
    from pipeline.examples.taxi_pipeline import create_pipeline

    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(os.path.join(REPO, "data", "taxi_spans", "span-1.csv"), data)

    def run():
        pipeline = create_pipeline(root=str(tmp_path / "root"), data_root=str(data), file_pattern="span-{SPAN}.csv",
                                   analyze_spans=2, on_anomaly="warn")
        return LocalRunner().run(pipeline)

    first = run()
    assert first.outputs["ExampleGen"]["examples"].properties["span"] == 1
    assert first.outputs["ExampleValidator"]["anomalies"].properties["baseline_span"] is None
    span1_key = first.outputs["Transform"]["transform_graph"].properties["analyzed_datasets"]
    assert len(span1_key) == 1 and span1_key[0].startswith("span1_")

    shutil.copy(os.path.join(REPO, "data", "taxi_spans", "span-2.csv"), data)
    second = run()
    assert second.executed == ["ExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform"]
    examples = second.outputs["ExampleGen"]["examples"].properties
    assert examples["span"] == 2 and examples["rows_in"] == 5000
    anomalies = second.outputs["ExampleValidator"]["anomalies"].properties
    assert anomalies["baseline_span"] == 1
    assert {"fare", "payment_type", "company", "trip_miles"} <= set(anomalies["drift"])
    assert all(0.0 <= v <= 1.0 for v in anomalies["drift"].values())
    graph = second.outputs["Transform"]["transform_graph"].properties
    assert graph["cached_datasets"] == span1_key  # span 1 came from the analyzer cache
    assert len(graph["analyzed_datasets"]) == 1 and graph["analyzed_datasets"][0].startswith("span2_")
    cache = second.outputs["Transform"]["updated_analyzer_cache"]
    assert sorted(os.listdir(cache.uri)) == sorted(span1_key + graph["analyzed_datasets"])

    # The cached analysis equals a fresh one over both spans (the cache files are read back).
    import dataclasses

    import tensorflow_transform as tft

    pipeline = create_pipeline(root=str(tmp_path / "root"), data_root=str(data), file_pattern="span-{SPAN}.csv",
                               analyze_spans=2, on_anomaly="warn")
    transform = pipeline.component("Transform")
    transform.parameters = dataclasses.replace(transform.parameters, use_analyzer_cache=False)
    fresh = LocalRunner().run(pipeline, from_nodes=["Transform"])
    cached_graph = tft.TFTransformOutput(second.outputs["Transform"]["transform_graph"].uri)
    fresh_graph = tft.TFTransformOutput(fresh.outputs["Transform"]["transform_graph"].uri)
    assert fresh.outputs["Transform"]["transform_graph"].properties["cached_datasets"] == []
    for name in ("payment_type", "company", "trip_start_hour"):
        assert cached_graph.vocabulary_by_name(name) == fresh_graph.vocabulary_by_name(name)
