"""StatisticsGen (real Beam), SchemaGen/ImportSchemaGen and ExampleValidator on small data."""

import os

import pytest

from components.base import ComponentError
from components.example_gen import ExampleGen
from components.example_validator import ExampleValidator, ExampleValidatorParameters
from components.example_validator.checks import drift, jensen_shannon, l_infinity, validate
from components.schema_gen import ImportSchemaGen, SchemaGen
from components.schema_gen.executor import load_schema, write_schema
from components.statistics_gen import StatisticsGen
from components.statistics_gen.executor import load_statistics
from tests.components.helpers import execute

N = 300


def _csv(path, shift=0.0, companies=("a", "b", "c")):
    lines = ["fare,company,hour,maybe"]
    for i in range(N):
        maybe = "" if i % 3 == 0 else str(i)
        lines.append(f"{(i % 50) + shift},{companies[i % len(companies)]},{i % 24},{maybe}")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stats")
    (tmp / "in").mkdir()
    _csv(tmp / "in" / "data.csv")
    gen = ExampleGen(str(tmp / "in"), file_pattern="data.csv", column_types={"fare": "float"})
    examples = execute(gen, tmp)["examples"]
    stats_component = StatisticsGen(gen.outputs["examples"])
    statistics = execute(stats_component, tmp, {"examples": examples})["statistics"]
    schema = execute(SchemaGen(stats_component.outputs["statistics"]), tmp, {"statistics": statistics})["schema"]
    return tmp, examples, statistics, schema


def _features(statistics, split):
    dataset = load_statistics(statistics.stats_path(split)).datasets[0]
    return dataset, {f.path.step[0]: f for f in dataset.features}


def test_statistics_counts_missing_numbers_top_values_unique(artifacts):
    _, examples, statistics, _ = artifacts
    assert statistics.split_names == ["train", "eval"]
    total = 0
    for split in ("train", "eval"):
        dataset, features = _features(statistics, split)
        assert dataset.num_examples == examples.properties["row_counts"][split]
        total += dataset.num_examples
        fare = features["fare"].num_stats
        assert fare.common_stats.num_non_missing == dataset.num_examples
        assert 0 <= fare.min <= fare.median <= fare.max <= 49
        assert 20 < fare.mean < 30 and 10 < fare.std_dev < 20
        assert {h.type for h in fare.histograms} == {0, 1}  # STANDARD and QUANTILES
        maybe = features["maybe"].num_stats.common_stats
        assert maybe.num_missing > 0 and maybe.num_missing + maybe.num_non_missing == dataset.num_examples
        company = features["company"].string_stats
        assert company.unique == 3 and {v.value for v in company.top_values} == {"a", "b", "c"}
        assert sum(b.sample_count for b in company.rank_histogram.buckets) == dataset.num_examples
    assert total == N


def test_schema_inference(artifacts):
    from tensorflow_metadata.proto.v0 import schema_pb2

    _, _, _, schema = artifacts
    parsed = {f.name: f for f in load_schema(schema.schema_path).feature}
    assert parsed["fare"].type == schema_pb2.FLOAT and parsed["hour"].type == schema_pb2.INT
    assert parsed["company"].type == schema_pb2.BYTES and parsed["company"].domain == "company"
    assert parsed["fare"].presence.min_fraction == 1.0 and list(parsed["fare"].shape.dim)[0].size == 1
    assert parsed["maybe"].presence.min_fraction == 0.0 and parsed["maybe"].value_count.max == 1


def test_import_schema_gen(artifacts, tmp_path):
    _, _, _, schema = artifacts
    out = execute(ImportSchemaGen(schema.schema_path), tmp_path)["schema"]
    assert load_schema(out.schema_path).feature
    bad = tmp_path / "bad.pbtxt"
    bad.write_text("feature { nme: 'x' }")
    with pytest.raises(ComponentError, match="bad.pbtxt: not a text-format tensorflow_metadata Schema"):
        execute(ImportSchemaGen(str(bad)), tmp_path)
    with pytest.raises(ComponentError, match="ImportSchemaGen got schema_file=.*no such file"):
        execute(ImportSchemaGen(str(tmp_path / "none.pbtxt")), tmp_path)


def _validate(artifacts, edit=None, params=ExampleValidatorParameters(), split="train"):
    _, _, statistics, schema = artifacts
    parsed = load_schema(schema.schema_path)
    if edit:
        edit(parsed)
    dataset, _ = _features(statistics, split)
    return validate(dataset, parsed, params)


def _feature(schema, name):
    return next(f for f in schema.feature if f.name == name)


def test_clean_data_has_no_anomalies(artifacts):
    assert not _validate(artifacts).anomaly_info


def test_schema_that_disagrees_with_the_data(artifacts):
    from tensorflow_metadata.proto.v0 import schema_pb2

    def edit(schema):
        _feature(schema, "fare").type = schema_pb2.INT            # wrong type
        _feature(schema, "maybe").presence.min_fraction = 1.0     # required but sometimes missing
        schema.feature.add(name="gone", type=schema_pb2.INT).presence.min_count = 1  # missing column
        schema.string_domain[0].value[:] = ["a"]                  # unseen categories
        _feature(schema, "hour").int_domain.max = 10              # out of range
    anomalies = _validate(artifacts, edit)
    reasons = {name: [r.type for r in info.reason] for name, info in anomalies.anomaly_info.items()}
    from tensorflow_metadata.proto.v0 import anomalies_pb2 as a
    t = a.AnomalyInfo.Type
    assert reasons == {"fare": [t.Value("UNEXPECTED_DATA_TYPE")],
                       "maybe": [t.Value("FEATURE_TYPE_LOW_FRACTION_PRESENT")],
                       "gone": [t.Value("SCHEMA_MISSING_COLUMN")],
                       "company": [t.Value("ENUM_TYPE_UNEXPECTED_STRING_VALUES")],
                       "hour": [t.Value("INT_TYPE_BIG_INT")]}
    assert "has FLOAT values; the schema says INT" in anomalies.anomaly_info["fare"].description
    assert "2 value(s) outside its domain" in anomalies.anomaly_info["company"].description
    # The unseen-value threshold: ~2/3 of values are unseen, so 0.7 tolerates them.
    relaxed = _validate(artifacts, edit, ExampleValidatorParameters(max_unseen_fraction=0.7))
    assert "company" not in relaxed.anomaly_info


def test_new_column_in_data(artifacts):
    anomalies = _validate(artifacts, lambda s: s.feature.remove(_feature(s, "hour")))
    assert anomalies.anomaly_info["hour"].short_description == "New column"


def test_drift_measures_and_thresholds(artifacts, tmp_path):
    tmp, _, statistics, schema = artifacts
    (tmp_path / "in").mkdir()
    _csv(tmp_path / "in" / "data.csv", shift=25.0, companies=("a", "a", "a", "b"))
    gen = ExampleGen(str(tmp_path / "in"), file_pattern="data.csv", column_types={"fare": "float"})
    shifted = execute(StatisticsGen(gen.outputs["examples"]), tmp_path,
                      {"examples": execute(gen, tmp_path)["examples"]})["statistics"]
    current, features = _features(shifted, "train")
    base, base_features = _features(statistics, "train")
    assert l_infinity(base_features["company"], base_features["company"]) == 0.0
    assert jensen_shannon(base_features["fare"], base_features["fare"]) == pytest.approx(0.0, abs=1e-9)
    assert 0.3 < l_infinity(features["company"], base_features["company"]) < 0.5  # 3/4 - 1/3
    js = jensen_shannon(features["fare"], base_features["fare"])
    assert 0.2 < js <= 1.0
    assert jensen_shannon(features["hour"], base_features["hour"]) < 0.05
    from tensorflow_metadata.proto.v0 import anomalies_pb2
    anomalies = anomalies_pb2.Anomalies()
    measures = drift(current, base, ExampleValidatorParameters(
        l_infinity_threshold=0.2, jensen_shannon_threshold=0.9, feature_thresholds={"fare": 0.1}), anomalies)
    assert set(measures) >= {"fare", "company", "hour"}
    assert set(anomalies.anomaly_info) == {"fare", "company"}
    assert "Jensen-Shannon divergence of 'fare'" in anomalies.anomaly_info["fare"].description
    assert len(anomalies.drift_skew_info) == len(measures)

    # The executor: fail with a readable report, or warn and record.
    stats_channel = StatisticsGen(gen.outputs["examples"]).outputs["statistics"]
    v = ExampleValidator(stats_channel, SchemaGen(stats_channel).outputs["schema"], l_infinity_threshold=0.2)
    inputs = {"statistics": shifted, "schema": schema, "baseline_statistics": statistics}
    with pytest.raises(ComponentError, match=r"(?s)ExampleValidator found \d+ anomal.*\[train\] company: The "
                                             r"L-infinity distance .* How to fix"):
        execute(v, tmp_path, inputs)
    v.parameters = ExampleValidatorParameters(on_anomaly="warn", l_infinity_threshold=0.2)
    out = execute(v, tmp_path, inputs)["anomalies"]
    assert out.properties["drift"]["company"] > 0.2 and out.properties["anomaly_counts"]["train"] >= 1
    assert os.path.isfile(os.path.join(out.split_uri("train"), "anomalies.pbtxt"))


def test_validator_argument_errors(artifacts):
    gen = ExampleGen("x")
    stats = StatisticsGen(gen.outputs["examples"]).outputs["statistics"]
    schema = SchemaGen(stats).outputs["schema"]
    with pytest.raises(ValueError, match="ExampleValidator got on_anomaly='stop'"):
        ExampleValidator(stats, schema, on_anomaly="stop")
    with pytest.raises(ValueError, match=r"ExampleValidator got feature_thresholds\['x'\]=2; expected a number"):
        ExampleValidator(stats, schema, feature_thresholds={"x": 2})


def test_schema_gen_unknown_split(artifacts, tmp_path):
    _, examples, statistics, _ = artifacts
    gen = ExampleGen("x")
    node = SchemaGen(StatisticsGen(gen.outputs["examples"]).outputs["statistics"], splits=("test",))
    with pytest.raises(ComponentError, match=r"SchemaGen got splits=\('test',\); the statistics have splits"):
        execute(node, tmp_path, {"statistics": statistics})
    write_schema(load_schema(artifacts[3].schema_path), str(tmp_path / "s.pbtxt"))
