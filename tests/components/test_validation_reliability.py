"""Validation and training-data reliability (issue 14): drift without false positives, new
categories between spans, a single-class label, and metrics a single class leaves undefined."""

import os

import numpy as np
import pytest

from components.artifacts import Examples, ExampleStatistics, Schema, TransformGraph
from components.base import ComponentError
from components.example_validator import ExampleValidator, ExampleValidatorParameters
from components.example_validator.checks import drift, feature_stats_by_name, jensen_shannon, new_values
from components.schema_gen import SchemaGen
from components.statistics_gen import StatisticsGen
from components.statistics_gen.combiner import StatsCombineFn, to_proto
from tests.components.helpers import execute

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TAXI = os.path.join(ROOT, "data", "taxi", "data.csv")


def _statistics(columns, split="train"):
    """A DatasetFeatureStatisticsList from {name: list of values (None: missing)}, through the
    same combiner and proto builder StatisticsGen runs on Beam."""
    import pyarrow as pa

    arrays = {}
    for name, values in columns.items():
        strings = any(isinstance(v, str) for v in values)
        arrow_type = pa.list_(pa.binary() if strings else pa.float32())
        arrays[name] = pa.array([None if v is None else [v.encode() if strings else float(v)] for v in values],
                                arrow_type)
    fn = StatsCombineFn()
    acc = fn.add_input(fn.create_accumulator(), pa.RecordBatch.from_pydict(arrays))
    return to_proto(fn.compact(acc), split, num_top_values=20, num_quantiles=100)


def _features(columns):
    return feature_stats_by_name(_statistics(columns).datasets[0])


# --- 1. numeric drift: quantile bins, so an outlier breaks nothing --------------------------------

def _taxi_halves():
    import csv

    with open(TAXI, newline="") as f:
        rows = list(csv.DictReader(f))
    numeric = ("trip_miles", "fare", "trip_seconds", "trip_start_hour", "tips")

    def columns(part):
        return {c: [float(r[c]) if r[c] else None for r in part] for c in numeric}
    return columns(rows[::2]), columns(rows[1::2])


def test_unchanged_taxi_columns_do_not_drift_between_even_and_odd_rows():
    even, odd = _taxi_halves()
    assert max(v for v in even["trip_miles"] if v is not None) > 5 * max(v for v in odd["trip_miles"] if v)
    current, baseline = _features(even), _features(odd)
    for name in even:
        # Equal-width histograms scored trip_miles 0.68-0.78 here (one 1,710-mile outlier).
        assert jensen_shannon(current[name], baseline[name]) < 0.02, name
        assert jensen_shannon(baseline[name], current[name]) < 0.02, name
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    anomalies = anomalies_pb2.Anomalies()
    params = ExampleValidatorParameters(jensen_shannon_threshold=0.3)  # the example pipeline's
    measures = drift(_statistics(even).datasets[0], _statistics(odd).datasets[0], params, anomalies)
    assert set(measures) == set(even) and not anomalies.anomaly_info


def test_a_shifted_column_still_drifts():
    even, odd = _taxi_halves()
    shifted = {"trip_miles": [None if v is None else v * 1.3 + 0.5 for v in even["trip_miles"]]}
    js = jensen_shannon(_features(shifted)["trip_miles"], _features(odd)["trip_miles"])
    assert js > 0.15


def test_lognormal_with_one_huge_outlier():
    rng = np.random.default_rng(7)
    a, b = rng.lognormal(1.0, 0.8, 5000), rng.lognormal(1.0, 0.8, 5000)
    a[0] = 1e6  # one outlier, ~10,000 times the median
    same = jensen_shannon(_features({"x": list(a)})["x"], _features({"x": list(b)})["x"])
    assert same < 0.02
    # Tripled values (a shift of 1.4 standard deviations in log space) and a narrower spread.
    moved = jensen_shannon(_features({"x": list(b * 3)})["x"], _features({"x": list(a)})["x"])
    assert moved > 0.2
    narrower = jensen_shannon(_features({"x": list(rng.lognormal(1.0, 0.3, 5000))})["x"],
                              _features({"x": list(a)})["x"])
    assert narrower > 0.1


def test_point_masses_and_constant_columns():
    zeros = [0.0] * 600 + list(np.linspace(1, 10, 400))
    more_zeros = [0.0] * 900 + list(np.linspace(1, 10, 100))
    assert jensen_shannon(_features({"x": zeros})["x"], _features({"x": zeros[::-1]})["x"]) < 1e-6
    assert jensen_shannon(_features({"x": more_zeros})["x"], _features({"x": zeros})["x"]) > 0.05
    assert jensen_shannon(_features({"x": [3.0] * 50})["x"], _features({"x": [3.0] * 80})["x"]) == 0.0
    assert jensen_shannon(_features({"x": [4.0] * 50})["x"], _features({"x": [3.0] * 80})["x"]) == 1.0


# --- 2. new categories between spans -------------------------------------------------------------

def _split_statistics(tmp_path, name, columns, span):
    """An ExampleStatistics artifact with train and eval splits of the same data."""
    artifact = ExampleStatistics(uri=str(tmp_path / name), properties={"split_names": ["train", "eval"],
                                                                      "span": span}, id=span)
    for split in ("train", "eval"):
        os.makedirs(artifact.split_uri(split))
        with open(artifact.stats_path(split), "wb") as f:
            f.write(_statistics(columns, split).SerializeToString())
    return artifact


def _span(companies, rows=1000):
    return {"company": [companies[i % len(companies)] for i in range(rows)],
            "fare": [float(i % 37) for i in range(rows)]}


def _nodes():
    from tests.components.test_trainer import _source

    stats = StatisticsGen(_source().outputs["examples"]).outputs["statistics"]
    schema = SchemaGen(stats)
    return stats, schema


def test_new_categories_in_a_new_span_are_flagged(tmp_path):
    old = ["Flash Cab", "Taxi Affiliation Services", "Yellow Cab", "Sun Taxi"]
    span1 = _split_statistics(tmp_path, "s1", _span(old), 1)
    # Span 2: the same companies plus two new ones on 4% of the rows.
    span2_companies = old * 12 + ["Blue Ribbon Taxi", "Nova Taxi"]
    span2 = _split_statistics(tmp_path, "s2", _span(span2_companies), 2)
    stats, schema_node = _nodes()
    # The schema is re-learned from span 2, so its domain holds the new values: no domain anomaly.
    schema = execute(schema_node, tmp_path, {"statistics": span2})["schema"]
    validator = ExampleValidator(stats, schema_node.outputs["schema"], on_anomaly="warn")
    out = execute(validator, tmp_path, {"statistics": span2, "schema": schema})["anomalies"]
    assert out.properties["anomaly_counts"] == {"train": 0, "eval": 0}

    validator = ExampleValidator(stats, schema_node.outputs["schema"], baseline_statistics=stats)
    inputs = {"statistics": span2, "schema": schema, "baseline_statistics": span1}
    with pytest.raises(ComponentError, match=r"\[train\] company: The feature 'company' has 2 value\(s\) the "
                                             r"baseline span never had \(4\.00% of values > "
                                             r"max_new_value_fraction=0\.01\), e\.g\. '(Blue Ribbon|Nova) Taxi'"):
        execute(validator, tmp_path, inputs)
    relaxed = ExampleValidator(stats, schema_node.outputs["schema"], baseline_statistics=stats,
                               max_new_value_fraction=0.05)
    assert execute(relaxed, tmp_path, inputs)["anomalies"].properties["anomaly_counts"]["train"] == 0


def test_new_values_rule():
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    base = _features({"c": ["a", "b"] * 100})["c"]
    assert new_values(_features({"c": ["a"] * 199 + ["z"]})["c"], base) == ([("z", 1)], 0.005)
    # 0.5% new values pass under the 1% default; a categorical must not be an ID column.
    anomalies = anomalies_pb2.Anomalies()
    drift(_statistics({"c": ["a"] * 199 + ["z"]}).datasets[0], _statistics({"c": ["a", "b"] * 100}).datasets[0],
          ExampleValidatorParameters(), anomalies)
    assert not anomalies.anomaly_info
    ids = _features({"c": [f"id{i}" for i in range(500)]})["c"]
    assert new_values(_features({"c": [f"id{i}" for i in range(500, 900)]})["c"], ids) is None
    with pytest.raises(ValueError, match=r"ExampleValidator got max_new_value_fraction=2; expected a number"):
        stats, schema = _nodes()
        ExampleValidator(stats, schema.outputs["schema"], max_new_value_fraction=2)


# --- 3. a single-class label ---------------------------------------------------------------------

def _trainer_inputs(tmp_path, label_values, *, with_statistics=True):
    """Fake transformed Examples + a transform graph whose metadata names the label, and raw stats."""
    import tensorflow as tf

    examples = Examples(uri=str(tmp_path / "examples"), properties={"split_names": ["train", "eval"]}, id=1)
    for split in ("train", "eval"):
        os.makedirs(examples.split_uri(split))
        with tf.io.TFRecordWriter(os.path.join(examples.split_uri(split), "part.gz"), "GZIP") as w:
            for v in label_values:
                ex = tf.train.Example()
                ex.features.feature["big_tipper"].int64_list.value.append(v)
                ex.features.feature["fare"].float_list.value.append(1.0)
                w.write(ex.SerializeToString())
    graph = TransformGraph(uri=str(tmp_path / "graph"), id=2)
    os.makedirs(os.path.join(graph.uri, "transformed_metadata"))
    with open(os.path.join(graph.uri, "transformed_metadata", "schema.pbtxt"), "w") as f:
        f.write('feature { name: "big_tipper" type: INT presence { min_fraction: 1 } shape { dim { size: 1 } } }\n'
                'feature { name: "fare" type: FLOAT presence { min_fraction: 1 } shape { dim { size: 1 } } }\n')
    inputs = {"examples": examples, "transform_graph": graph, "schema": Schema(uri=str(tmp_path), id=3)}
    if with_statistics:
        inputs["statistics"] = _split_statistics(tmp_path, "raw_stats", {"big_tipper": list(label_values)}, 0)
    return inputs


def _trainer(estimator="LinearClassifier"):
    from components.feature_spec import FeatureSpec, Label, Numeric
    from components.trainer import CannedEstimatorConfig, Trainer
    from tests.components.test_trainer import _source

    source = _source()
    spec = FeatureSpec(features=(Numeric("fare"),), label=Label("big_tipper"))
    return Trainer(source.outputs["examples"], source.outputs["graph"], source.outputs["schema"],
                   statistics=StatisticsGen(source.outputs["examples"]).outputs["statistics"],
                   canned=CannedEstimatorConfig(estimator, feature_spec=spec), train_steps=1)


@pytest.mark.parametrize("with_statistics, source", [(True, "from the statistics"),
                                                     (False, "from the transformed examples")])
def test_single_class_label_is_refused_before_training(tmp_path, with_statistics, source):
    inputs = _trainer_inputs(tmp_path, [0] * 30, with_statistics=with_statistics)
    with pytest.raises(ComponentError, match=(
            rf"^Trainer got label 'big_tipper' with the single value 0 in all 30 examples of split 'train' "
            rf"\({source}\); a classifier needs at least 2 classes\. How to fix: .*regressor\.$")):
        execute(_trainer(), tmp_path / "run", inputs)


def test_label_check_passes_two_classes_and_warns_for_an_unknown_head(tmp_path):
    from components.trainer.label_check import check_label, label_values_from_examples

    inputs = _trainer_inputs(tmp_path, [0, 1] * 5000, with_statistics=False)
    found = label_values_from_examples(inputs["examples"].file_pattern("train"), inputs["transform_graph"].uri,
                                       "big_tipper")
    assert found == (4096, [0, 1])  # stopped after the first batch
    check_label(label="big_tipper", split="train", classifier=True, found=found, source="x", report=print)
    reports = []
    check_label(label="big_tipper", split="train", classifier=False, found=(3, ["yes"]), source="x",
                report=reports.append)
    assert reports and reports[0].startswith("warning: Trainer got label 'big_tipper' with the single value 'yes'")


# --- 3b. metrics a single class leaves undefined ------------------------------------------------

def test_trainer_records_auc_as_undefined_for_one_class():
    from components.trainer.label_check import undefined_metrics

    metrics = {"auc": 0.0, "auc_precision_recall": 0.0, "recall": 0.0, "accuracy": 1.0, "label/mean": 0.0}
    undefined = undefined_metrics(metrics, "eval")
    assert undefined == {name: "undefined: every label of split 'eval' is 0 (no positives)"
                         for name in ("auc", "auc_precision_recall", "recall")}
    assert set(undefined_metrics({**metrics, "label/mean": 1.0}, "eval")) == {"auc"}
    assert undefined_metrics({**metrics, "label/mean": 0.3}, "eval") == {}


def test_evaluator_records_auc_as_undefined_for_one_class():
    from components.evaluator import EvaluatorParameters, MetricThreshold
    from components.evaluator.eval_config import build_eval_config, undefined_metrics, with_undefined_reasons

    params = EvaluatorParameters(label_key="big_tipper", thresholds=(MetricThreshold("AUC", lower_bound=0.6),))
    config = build_eval_config(params, with_baseline=False)
    assert "MeanLabel" in [m.class_name for m in config.metrics_specs[0].metrics]
    metrics = {"auc": 0.0, "binary_accuracy": 1.0, "mean_label": 0.0, "example_count": 40.0}
    undefined = undefined_metrics(metrics, params)
    assert undefined == {"auc": "undefined: every label of split 'eval' is 0 (no positives)"}
    reasons = with_undefined_reasons(["auc on overall = 0, threshold value_threshold { lower_bound { value: 0.6 } }"],
                                     undefined, params)
    assert reasons == ["auc is undefined: every label of split 'eval' is 0 (no positives)"]
    assert undefined_metrics({**metrics, "mean_label": 0.4}, params) == {}
