"""Transform on real TFT/Beam: generated preprocessing_fn, user module, errors, Beam args."""

import os
import textwrap

import numpy as np
import pytest

from components.base import ComponentError
from components.beam_utils import make_pipeline, pipeline_options
from components.example_gen import ExampleGen
from components.feature_spec import (
    Bucketized, Crossed, Embedding, FeatureSpec, Hashed, Label, Numeric, Vocabulary,
)
from components.schema_gen import SchemaGen
from components.statistics_gen import StatisticsGen
from components.transform import Transform
from tests.components.helpers import execute, read_examples

SPEC = FeatureSpec(
    features=(Numeric("fare"), Bucketized("miles", num_buckets=4), Vocabulary("company", top_k=2, num_oov_buckets=1),
              Vocabulary("hour"), Hashed("pay", hash_bucket_size=5),
              Crossed("pay_x_hour", keys=("pay", "hour"), hash_bucket_size=7),
              Embedding("company_emb", source="company", dimension=2)),
    label=Label("big", expression="tips > 0.2 * fare"))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("transform")
    (tmp / "in").mkdir()
    rows = ["fare,miles,company,hour,pay,tips"]
    for i in range(200):
        company = "" if i % 10 == 0 else "abc"[i % 3] * (1 + i % 2)
        rows.append(f"{i % 40},{(i * 7) % 13},{company},{i % 24},{'cash' if i % 2 else 'card'},{(i % 5) * 2}")
    (tmp / "in" / "d.csv").write_text("\n".join(rows) + "\n")
    gen = ExampleGen(str(tmp / "in"), file_pattern="d.csv", column_types=SPEC.column_types(),
                     derived_columns={"big": "tips > 0.2 * fare"}, label="big")
    examples = execute(gen, tmp)["examples"]
    stats = StatisticsGen(gen.outputs["examples"])
    statistics = execute(stats, tmp, {"examples": examples})["statistics"]
    schema_node = SchemaGen(stats.outputs["statistics"])
    schema = execute(schema_node, tmp, {"statistics": statistics})["schema"]
    return tmp, gen, schema_node, examples, schema


def test_generated_preprocessing_fn(inputs, tmp_path):
    import tensorflow_transform as tft

    _, gen, schema_node, examples, schema = inputs
    node = Transform(gen.outputs["examples"], schema_node.outputs["schema"], feature_spec=SPEC,
                     use_analyzer_cache=True)
    out = execute(node, tmp_path, {"examples": examples, "schema": schema})
    graph = tft.TFTransformOutput(out["transform_graph"].uri)
    assert set(graph.transformed_feature_spec()) == {"fare", "miles", "company", "hour", "pay", "pay_x_hour", "big"}
    assert graph.vocabulary_size_by_name("company") == 2  # top_k=2
    assert out["transform_graph"].properties["analyzed_datasets"] == [f"span0_examples{examples.id}_train"]
    assert os.listdir(out["updated_analyzer_cache"].uri)
    transformed = out["transformed_examples"]
    rows = read_examples(transformed, "train") + read_examples(transformed, "eval")
    assert len(rows) == 200
    for split in ("train", "eval"):  # one TransformDataset, routed back to the right split
        assert len(read_examples(transformed, split)) == examples.properties["row_counts"][split]
    fares = np.array([r["fare"][0] for r in read_examples(transformed, "train")])
    assert abs(fares.mean()) < 0.05 and abs(fares.std() - 1) < 0.05
    assert {r["miles"][0] for r in rows} <= set(range(4)) and len({r["miles"][0] for r in rows}) >= 3
    assert {r["company"][0] for r in rows} <= {0, 1, 2}  # 2 vocabulary ids + 1 OOV bucket
    assert {r["pay"][0] for r in rows} <= set(range(5)) and {r["pay_x_hour"][0] for r in rows} <= set(range(7))
    assert {r["big"][0] for r in rows} == {0, 1}


def test_user_module_file(inputs, tmp_path):
    import tensorflow_transform as tft

    _, gen, schema_node, examples, schema = inputs
    module = tmp_path / "prep.py"
    module.write_text(textwrap.dedent("""
        import tensorflow as tf
        import tensorflow_transform as tft

        def my_fn(inputs):
            return {"fare_01": tft.scale_to_0_1(tf.cast(tf.reshape(inputs["fare"], [-1]), tf.float32))}
    """))
    # Without the analyzer cache, analysis runs on the flattened splits (plain AnalyzeDataset).
    node = Transform(gen.outputs["examples"], schema_node.outputs["schema"], module_file=str(module),
                     preprocessing_fn="my_fn", analyze_splits=("train", "eval"), use_analyzer_cache=False)
    assert "module_file" in node.fingerprint_extras()
    out = execute(node, tmp_path, {"examples": examples, "schema": schema})
    assert set(tft.TFTransformOutput(out["transform_graph"].uri).transformed_feature_spec()) == {"fare_01"}
    assert not os.listdir(out["updated_analyzer_cache"].uri)
    values = [r["fare_01"][0] for s in ("train", "eval") for r in read_examples(out["transformed_examples"], s)]
    assert min(values) == pytest.approx(0.0) and max(values) == pytest.approx(1.0)
    bad = Transform(gen.outputs["examples"], schema_node.outputs["schema"], module_file=str(module),
                    preprocessing_fn="nope")
    with pytest.raises(ComponentError, match="Transform got preprocessing_fn='nope'; .* defines no such function"):
        execute(bad, tmp_path, {"examples": examples, "schema": schema})


def test_transform_errors(inputs, tmp_path):
    _, gen, schema_node, examples, schema = inputs
    channel, schema_channel = gen.outputs["examples"], schema_node.outputs["schema"]
    # The analyzer cache defaults on only for a span window (where a later run can reuse it).
    assert not Transform(channel, schema_channel, feature_spec=SPEC).parameters.use_analyzer_cache
    assert Transform(channel.span_window(2), schema_channel, feature_spec=SPEC).parameters.use_analyzer_cache
    with pytest.raises(ValueError, match="expected exactly one of them"):
        Transform(channel, schema_channel)
    with pytest.raises(TypeError, match="Transform got feature_spec={}; expected a FeatureSpec"):
        Transform(channel, schema_channel, feature_spec={})
    with pytest.raises(ValueError, match="Transform got module_file='/no/such.py'; no such file"):
        Transform(channel, schema_channel, module_file="/no/such.py")
    unknown = Transform(channel, schema_channel, feature_spec=FeatureSpec(features=(Numeric("nope"),)))
    with pytest.raises(ComponentError, match="Transform got feature_spec column 'nope'; the schema has no such"):
        execute(unknown, tmp_path, {"examples": examples, "schema": schema})
    split = Transform(channel, schema_channel, feature_spec=SPEC, analyze_splits=("test",))
    with pytest.raises(ComponentError, match=r"Transform got analyze_splits=\('test',\)"):
        execute(split, tmp_path, {"examples": examples, "schema": schema})


def test_beam_pipeline_args_pass_through_unchanged(inputs, tmp_path):
    args = ["--runner=FlinkRunner", "--flink_master=localhost:8081", "--parallelism=4"]
    options = pipeline_options(args).get_all_options()
    assert (options["runner"], options["flink_master"], options["parallelism"]) == ("FlinkRunner", "localhost:8081", 4)
    assert type(make_pipeline(args).runner).__name__ == "FlinkRunner"
    assert type(make_pipeline(["--runner=SparkRunner"]).runner).__name__ == "SparkRunner"
    assert "DirectRunner" in type(make_pipeline([]).runner).__name__
    # An executor hands the args to Beam as given: an unknown runner is Beam's own error.
    _, gen, _, examples, _ = inputs
    with pytest.raises(ValueError, match="NoSuchRunner"):
        execute(StatisticsGen(gen.outputs["examples"]), tmp_path, {"examples": examples},
                beam_args=["--runner=NoSuchRunner"])
