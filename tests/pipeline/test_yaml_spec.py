import os
import textwrap

import pytest

from pipeline.yaml_spec import build_pipeline, load_spec

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TAXI_YAML = os.path.join(REPO, "pipeline", "examples", "taxi.yaml")


def test_taxi_yaml_builds_the_same_graph_as_the_dsl(tmp_path):
    from pipeline.examples.taxi_pipeline import TAXI_FEATURES, create_pipeline

    spec = load_spec(TAXI_YAML)
    assert spec.feature_spec == TAXI_FEATURES
    assert spec.training.steps == 6000 and spec.evaluation.thresholds["auc"].lower_bound == 0.7
    assert spec.push.destination is None and spec.push.model_name == "taxi"
    yaml_pipeline = build_pipeline(spec, root=str(tmp_path), beam_pipeline_args=["--direct_num_workers=1"])
    dsl_pipeline = create_pipeline(root=str(tmp_path))
    # The data part; the model part (Trainer ... Pusher) is checked in test_yaml_model.py.
    assert [c.id for c in yaml_pipeline.components][:5] == [c.id for c in dsl_pipeline.components]
    gen = yaml_pipeline.component("ExampleGen").parameters
    assert gen.input_base == os.path.join(REPO, "data", "taxi") and gen.file_pattern == "data.csv"
    assert gen.derived_columns == {"big_tipper": "tips > 0.2 * fare"} and gen.label == "big_tipper"
    assert yaml_pipeline.beam_pipeline_args == ("--direct_num_workers=1",)
    assert yaml_pipeline.component("Transform").parameters == dsl_pipeline.component("Transform").parameters


def _write(tmp_path, text):
    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


MINIMAL = """
name: t
data: {path: data.csv}
features: [{name: a, type: numeric}]
"""


@pytest.mark.parametrize("text, message", [
    (MINIMAL.replace("numeric", "numbr"), r"features\[0\].type='numbr'; expected one of"),
    (MINIMAL + "model: {estimator: Forest}\n", r"model.estimator: Value error, expected one of"),
    (MINIMAL + "training: {steps: 0}\n", r"training.steps: Input should be greater than or equal to 1"),
    (MINIMAL + "validation: {on_anomaly: ignore}\n", r"validation.on_anomaly: Input should be 'fail' or 'warn'"),
    (MINIMAL + "validation: {drift: {l_infinity: 2}}\n", r"validation.drift.l_infinity: Input should be less"),
    (MINIMAL + "colour: red\n", r"colour: Extra inputs are not permitted"),
    (MINIMAL.replace("data.csv}", "data.csv, format: xml}"), r"data.format: Input should be 'csv'"),
    ("name: [unclosed\n", r"not valid YAML"),
    ("- a\n- b\n", r"expected a mapping with name, data, features"),
])
def test_errors_name_the_file_and_field(tmp_path, text, message):
    with pytest.raises(ValueError, match=message) as info:
        load_spec(_write(tmp_path, text))
    assert str(info.value).startswith(str(tmp_path / "p.yaml"))


def test_missing_file():
    with pytest.raises(ValueError, match="load_spec got path='/no/such.yaml'; no such file"):
        load_spec("/no/such.yaml")


def test_schema_file_and_spans(tmp_path):
    text = MINIMAL.replace("data.csv", "\"span-{SPAN}.csv\"") + "schema: my/schema.pbtxt\ntransform: {analyze_spans: 2}\n"
    spec = load_spec(_write(tmp_path, text))
    p = build_pipeline(spec)
    assert [c.id for c in p.components] == [
        "ExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "Transform"]  # no model section
    assert p.component("ImportSchemaGen").parameters.schema_file == str(tmp_path / "my" / "schema.pbtxt")
    assert p.component("ExampleGen").parameters.file_pattern == "span-{SPAN}.csv"
    assert p.component("Transform").inputs["examples"].policy == "span_window"
    assert p.component("ExampleValidator").inputs["baseline_statistics"].policy == "previous_span"
    assert p.root == str(tmp_path / "runs" / "t")
