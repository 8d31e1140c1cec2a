"""TFX module files run as TFX ran them (issue 13, 5.4), the served model keeps the model_fn's own
export_outputs (5.2), and the Model records the raw features a request needs (5.8).

One small 3-class data set goes through the real ExampleGen -> StatisticsGen -> SchemaGen ->
Transform once (`small_run`); each test then runs the real Trainer executor on its output and
loads the SavedModel it wrote back."""

from __future__ import annotations

import os
import random

import pytest

from components.trainer import FnArgs, Trainer
from tests.components.test_trainer import _source

ROWS = 240
FEATURES = ("color", "x1", "x2")
_RUN: dict[str, object] = {}


def write_csv(path, rows=ROWS, seed=3):
    """x1, x2, color -> species_code in 1..3 (the label ``species`` = species_code - 1 is derived in
    ExampleGen); weight_g is a column no model reads."""
    rng = random.Random(seed)
    colors = ("red", "green", "blue")
    with open(path, "w", encoding="utf-8") as f:
        f.write("x1,x2,color,weight_g,species_code\n")
        for i in range(rows):
            species = i % 3
            x1 = species + rng.uniform(-0.4, 0.4)
            x2 = rng.uniform(0, 1)
            f.write(f"{x1:.4f},{x2:.4f},{colors[(species + (i % 2)) % 3]},{rng.randint(3000, 5000)},{species + 1}\n")


def small_run(tmp_path_factory):
    """ExampleGen .. Transform on the 3-class CSV, once per test session (both test files use it)."""
    if "result" not in _RUN:
        from components.example_gen import ExampleGen
        from components.feature_spec import FeatureSpec, Label, Numeric, Vocabulary
        from components.schema_gen import SchemaGen
        from components.statistics_gen import StatisticsGen
        from components.transform import Transform
        from pipeline import LocalRunner, Pipeline

        root = tmp_path_factory.mktemp("small_run")
        os.makedirs(root / "data")
        write_csv(root / "data" / "data.csv")
        spec = FeatureSpec(features=(Numeric("x1"), Numeric("x2"), Vocabulary("color", num_oov_buckets=1)),
                           label=Label("species", expression="species_code - 1"))
        gen = ExampleGen(str(root / "data"), file_pattern="data.csv",
                         derived_columns={"species": "species_code - 1"}, label="species")
        stats = StatisticsGen(gen.outputs["examples"])
        schema = SchemaGen(stats.outputs["statistics"])
        transform = Transform(gen.outputs["examples"], schema.outputs["schema"], feature_spec=spec)
        result = LocalRunner().run(Pipeline("small", str(root / "pipeline"), [gen, stats, schema, transform]))
        _RUN.update(result=result, root=root)
    return _RUN["result"]


def trainer_inputs(result, *, statistics=True):
    inputs = {"examples": result.outputs["Transform"]["transformed_examples"],
              "transform_graph": result.outputs["Transform"]["transform_graph"],
              "schema": result.outputs["SchemaGen"]["schema"]}
    if statistics:
        inputs["statistics"] = result.outputs["StatisticsGen"]["statistics"]
    return inputs


def make_trainer(module, **kwargs):
    from components.statistics_gen import StatisticsGen

    source = _source()
    return Trainer(source.outputs["examples"], source.outputs["graph"], source.outputs["schema"],
                   statistics=StatisticsGen(source.outputs["examples"]).outputs["statistics"],
                   module_file=str(module), label_key="species", **{"train_steps": 20, "eval_steps": 2, **kwargs})


def execute_with_log(component, tmp_path, inputs):
    """tests.components.helpers.execute, keeping what the executor reported."""
    import itertools

    from components.base import ExecutionContext

    outputs, log = {}, []
    for n, (key, artifact_type) in enumerate(component.OUTPUTS.items()):
        uri = os.path.join(str(tmp_path), component.id, key)
        os.makedirs(uri)
        outputs[key] = artifact_type(uri=uri, id=900 + n)
    ctx = ExecutionContext(component_id=component.id, execution_id=next(itertools.count(900)),
                           inputs={k: (v if isinstance(v, list) else [v]) for k, v in inputs.items()},
                           outputs=outputs, parameters=component.parameters, beam_pipeline_args=(),
                           temp_dir=os.path.join(str(tmp_path), ".temp"), report=log.append)
    os.makedirs(ctx.temp_dir, exist_ok=True)
    component.executor()(ctx)
    return outputs, log


def raw_requests(result, n=6):
    """Serialized raw tf.Examples of the eval split as ExampleGen wrote them (label included)."""
    import glob

    import tensorflow as tf

    examples = result.outputs["ExampleGen"]["examples"]
    files = sorted(glob.glob(examples.file_pattern("eval")))
    return [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP").take(n)]


# A TFX-era module: trainer_fn(fn_args, schema) with TFX's FnArgs names, a custom model_fn with its
# own export_outputs, and the eval_input_receiver_fn TFX's estimator Trainer wanted.
TFX_MODULE = '''
import tensorflow as tf
import tensorflow_transform as tft
from tensorflow_metadata.proto.v0 import schema_pb2

import trainer
from trainer.export import ClassificationOutput, PredictOutput

CLASSES = 3


def _input_fn(files, transform_output, batch_size, epochs):
    spec = tft.TFTransformOutput(transform_output).transformed_feature_spec()

    def input_fn():
        data = tf.data.TFRecordDataset(tf.data.Dataset.list_files(list(files), shuffle=False),
                                       compression_type="GZIP").repeat(epochs).batch(batch_size)
        parsed = data.map(lambda x: tf.io.parse_example(x, spec))
        return parsed.map(lambda f: ({k: v for k, v in f.items() if k != "species"}, f["species"]))
    return input_fn


def model_fn(features, labels, mode, params):
    x = tf.concat([tf.reshape(tf.cast(features[k], tf.float32), [-1, 1]) for k in ("x1", "x2", "color")], 1)
    weights = tf.Variable(lambda: tf.zeros([3, CLASSES]), name="species/weights")
    bias = tf.Variable(lambda: tf.zeros([CLASSES]), name="species/bias")
    logits = tf.matmul(x, weights) + bias
    probabilities = tf.nn.softmax(logits)
    names = tf.constant(["adelie", "chinstrap", "gentoo"])
    predictions = {"probabilities": probabilities, "class_ids": tf.argmax(logits, axis=1)}
    if mode == trainer.ModeKeys.PREDICT:
        classes = tf.tile(names[None, :], [tf.shape(logits)[0], 1])
        return trainer.EstimatorSpec(mode, predictions=predictions, export_outputs={
            "serving_default": ClassificationOutput(scores=probabilities, classes=classes),
            "species_scores": PredictOutput({"p": probabilities})})
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    if mode == trainer.ModeKeys.EVAL:
        return trainer.EstimatorSpec(mode, loss=loss)
    train_op = trainer.optimizers.SGD(0.1).minimize(loss, global_step=trainer.get_global_step())
    return trainer.EstimatorSpec(mode, loss=loss, train_op=train_op)


def trainer_fn(fn_args, schema):
    assert isinstance(schema, schema_pb2.Schema), type(schema)
    assert "species" in [f.name for f in schema.feature]
    assert fn_args.transform_output == fn_args.transform_graph_path
    assert fn_args.schema_file == fn_args.schema_path
    estimator = trainer.Estimator(model_fn=model_fn, model_dir=fn_args.model_run_dir)
    train = _input_fn(fn_args.train_files, fn_args.transform_output, 16, None)
    evaluation = _input_fn(fn_args.eval_files, fn_args.transform_output, 16, 1)
    return {"estimator": estimator,
            "train_spec": trainer.TrainSpec(train, max_steps=fn_args.train_steps),
            "eval_spec": trainer.EvalSpec(evaluation, steps=fn_args.eval_steps, throttle_secs=0),
            "eval_input_receiver_fn": lambda: None}
'''


@pytest.mark.slow
def test_tfx_trainer_fn_with_schema_and_the_model_fns_own_signatures(tmp_path_factory, tmp_path):
    """trainer_fn(fn_args, schema) runs; the served model has the model_fn's export_outputs (a
    Classify serving_default with its class names, a Predict 'species_scores') plus 'predict',
    each taking raw tf.Examples through the transform graph; the Model lists its raw inputs."""
    import numpy as np
    import tensorflow as tf

    from components.trainer import serving_model_path
    from trainer.export.saved_model import signature_defs

    result = small_run(tmp_path_factory)
    module = tmp_path / "tfx_module.py"
    module.write_text(TFX_MODULE)
    outputs, log = execute_with_log(make_trainer(module), tmp_path / "run", trainer_inputs(result))
    model = outputs["model"]
    assert any("'eval_input_receiver_fn', ignored" in line for line in log), log
    assert model.properties["serving_raw_features"] == list(FEATURES)
    path = serving_model_path(model)
    methods = {k: v.method_name for k, v in signature_defs(path).items() if not k.startswith("__")}
    assert methods == {"serving_default": "tensorflow/serving/classify",
                       "species_scores": "tensorflow/serving/predict",
                       "predict": "tensorflow/serving/predict"}
    assert model.properties["serving_signatures"] == dict(sorted(methods.items()))

    loaded = tf.saved_model.load(path)
    requests = tf.constant(raw_requests(result))
    served = loaded.signatures["serving_default"](inputs=requests)
    assert served["classes"].numpy()[0].tolist() == [b"adelie", b"chinstrap", b"gentoo"]
    scores = served["scores"].numpy()
    assert scores.shape == (len(raw_requests(result)), 3)
    # Same tensors by three routes: the Classify scores, the user's Predict output, every prediction.
    np.testing.assert_allclose(loaded.signatures["species_scores"](examples=requests)["p"].numpy(), scores,
                               rtol=1e-6)
    np.testing.assert_allclose(loaded.signatures["predict"](examples=requests)["probabilities"].numpy(),
                               scores, rtol=1e-6)
    # Twenty SGD steps moved the model off the uniform 1/3 (zero weights) on these separable rows.
    assert np.abs(scores - 1 / 3).max() > 0.01


RUN_FN_MODULE = '''
import tensorflow as tf
import tensorflow_transform as tft


def run_fn(fn_args):
    output = tft.TFTransformOutput(fn_args.transform_output)
    spec = output.transformed_feature_spec()
    data = tf.data.TFRecordDataset(tf.io.gfile.glob(fn_args.train_files[0]), compression_type="GZIP")
    batch = next(iter(data.batch(1000).map(lambda x: tf.io.parse_example(x, spec))))
    x = tf.stack([tf.reshape(tf.cast(batch[k], tf.float32), [-1]) for k in ("x1", "x2")], axis=1)
    y = tf.one_hot(tf.reshape(batch["species"], [-1]), 3)

    class Model(tf.Module):
        def __init__(self):
            self.w = tf.Variable(tf.zeros([2, 3]))
            self.tft_layer = output.transform_features_layer()

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, serialized):
            raw = tf.io.parse_example(serialized, {k: tf.io.FixedLenFeature([1], tf.float32) for k in ("x1", "x2")})
            t = self.tft_layer(raw)
            x = tf.stack([tf.reshape(t[k], [-1]) for k in ("x1", "x2")], axis=1)
            return {"probabilities": tf.nn.softmax(x @ self.w)}

    model = Model()
    for _ in range(fn_args.train_steps):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(y, x @ model.w))
        model.w.assign_sub(0.5 * tape.gradient(loss, model.w))
    tf.saved_model.save(model, fn_args.serving_model_dir, signatures={"serving_default": model.serve})
'''


@pytest.mark.slow
def test_tfx_run_fn_trains_and_saves_the_model_itself(tmp_path_factory, tmp_path):
    import numpy as np
    import tensorflow as tf

    from components.trainer import serving_model_path

    result = small_run(tmp_path_factory)
    module = tmp_path / "generic.py"
    module.write_text(RUN_FN_MODULE)
    # No trainer_fn in the module: its run_fn is found (TFX's generic Trainer).
    outputs, _ = execute_with_log(make_trainer(module), tmp_path / "run", trainer_inputs(result))
    model = outputs["model"]
    assert model.properties["run_fn"] == "run_fn"
    assert model.properties["serving_model"] == "Format-Serving"
    assert model.properties["serving_signatures"] == {"serving_default": "tensorflow/serving/predict"}
    probabilities = tf.saved_model.load(serving_model_path(model)).signatures["serving_default"](
        examples=tf.constant(raw_requests(result)))["probabilities"].numpy()
    assert probabilities.shape == (6, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_fn_args_has_tfx_names_and_no_data_accessor():
    args = FnArgs(train_files=("t/*",), eval_files=("e/*",), transform_graph_path="/tft", schema_path="/s.pbtxt",
                  train_steps=1, eval_steps=None, serving_model_dir="/m/Format-Serving", model_run_dir="/run")
    assert (args.transform_output, args.schema_file, args.working_dir) == ("/tft", "/s.pbtxt", "/run")
    with pytest.raises(AttributeError, match="FnArgs has no data_accessor .* How to fix: read fn_args.train_files"):
        args.data_accessor  # noqa: B018


# --- a rolling window of spans (5.7) ---------------------------------------------------------------

def _with_span(artifact, span):
    import dataclasses

    return dataclasses.replace(artifact, properties={**artifact.properties, "span": span})


def test_span_window_wires_the_raw_examples_through_the_span_window_policy():
    from components.base import SPAN_WINDOW
    from components.example_gen import ExampleGen

    source = _source()
    gen = ExampleGen("/unused", file_pattern="span-{SPAN}.csv")
    trainer = Trainer(source.outputs["examples"], source.outputs["graph"], source.outputs["schema"],
                      module_file=__file__, label_key="species", raw_examples=gen.outputs["examples"], span_window=3)
    channel = trainer.inputs["raw_examples"]
    assert (channel.policy, channel.window, channel.producer) == (SPAN_WINDOW, 3, gen)
    assert trainer.parameters.span_window == 3
    with pytest.raises(ValueError, match=r"Trainer got span_window=2 and raw_examples=None; .* How to fix: pass "
                                         r"raw_examples=example_gen.outputs\['examples'\]"):
        Trainer(source.outputs["examples"], source.outputs["graph"], source.outputs["schema"],
                module_file=__file__, label_key="species", span_window=2)
    with pytest.raises(ValueError, match=r"Trainer got span_window=0; expected an int >= 1"):
        Trainer(source.outputs["examples"], source.outputs["graph"], source.outputs["schema"],
                module_file=__file__, label_key="species", span_window=0)


@pytest.mark.slow
def test_span_window_trains_on_earlier_spans_transformed_with_this_runs_graph(tmp_path_factory, tmp_path):
    """Window 2 over spans 2 (newest, transformed by Transform), 1 and 0 (raw): span 1's train split
    goes through this run's transform graph and is trained on; span 0 is outside the window."""
    import glob

    import tensorflow as tf
    import tensorflow_transform as tft

    from components.example_gen import ExampleGen
    from tests.components.helpers import execute, read_examples

    result = small_run(tmp_path_factory)
    raw = []
    for span, rows in ((1, 90), (0, 60)):
        os.makedirs(tmp_path / f"span{span}")
        write_csv(tmp_path / f"span{span}" / "data.csv", rows=rows, seed=10 + span)
        gen = ExampleGen(str(tmp_path / f"span{span}"), file_pattern="data.csv",
                         derived_columns={"species": "species_code - 1"}, label="species")
        raw.append(_with_span(execute(gen, tmp_path / f"gen{span}", {})["examples"], span))
    newest = _with_span(result.outputs["ExampleGen"]["examples"], 2)
    inputs = {**trainer_inputs(result, statistics=False),
              "examples": _with_span(result.outputs["Transform"]["transformed_examples"], 2),
              "raw_examples": [newest, *raw]}
    module = tmp_path / "tfx_module.py"
    module.write_text(TFX_MODULE)
    outputs, log = execute_with_log(_windowed_trainer(module), tmp_path / "run", inputs)
    assert outputs["model"].properties["train_spans"] == [2, 1]
    assert "training on spans [2, 1]" in log
    [written] = glob.glob(str(tmp_path / "run" / ".temp" / "span_window" / f"span1_examples{raw[0].id}" / "*.gz"))
    rows = [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(written, compression_type="GZIP")]
    assert len(rows) == len(read_examples(raw[0], "train"))
    spec = tft.TFTransformOutput(inputs["transform_graph"].uri).transformed_feature_spec()
    assert sorted(rows[0].features.feature) == sorted(spec)
    labels = {r.features.feature["species"].int64_list.value[0] for r in rows}
    assert labels == {0, 1, 2}  # species_code - 1, as the Transform passes the label


def _windowed_trainer(module):
    from components.example_gen import ExampleGen

    gen = ExampleGen("/unused", file_pattern="span-{SPAN}.csv")
    return make_trainer(module, span_window=2, raw_examples=gen.outputs["examples"])


@pytest.mark.slow
def test_span_window_through_the_runner_over_two_runs(tmp_path):
    """The runner resolves raw_examples with the span_window policy, as for the Transform: the first
    run trains on span 1 alone, the second (span 2 added) on spans 2 and 1."""
    from components.example_gen import ExampleGen
    from components.feature_spec import FeatureSpec, Label, Numeric, Vocabulary
    from components.schema_gen import SchemaGen
    from components.statistics_gen import StatisticsGen
    from components.transform import Transform
    from pipeline import LocalRunner, Pipeline

    data = tmp_path / "data"
    os.makedirs(data)
    module = tmp_path / "tfx_module.py"
    module.write_text(TFX_MODULE)
    spec = FeatureSpec(features=(Numeric("x1"), Numeric("x2"), Vocabulary("color", num_oov_buckets=1)),
                       label=Label("species", expression="species_code - 1"))

    def pipeline():
        gen = ExampleGen(str(data), file_pattern="span-{SPAN}.csv", derived_columns={"species": "species_code - 1"},
                         label="species")
        schema = SchemaGen(StatisticsGen(gen.outputs["examples"]).outputs["statistics"])
        transform = Transform(gen.outputs["examples"].span_window(2), schema.outputs["schema"], feature_spec=spec)
        trainer = Trainer(transform.outputs["transformed_examples"], transform.outputs["transform_graph"],
                          schema.outputs["schema"], module_file=str(module), label_key="species", train_steps=5,
                          eval_steps=1, raw_examples=gen.outputs["examples"], span_window=2)
        nodes = [gen, schema.inputs["statistics"].producer, schema, transform, trainer]
        return Pipeline("windowed", str(tmp_path / "root"), nodes)

    write_csv(data / "span-1.csv", rows=90, seed=1)
    first = LocalRunner().run(pipeline())
    assert first.outputs["Trainer"]["model"].properties["train_spans"] == [1]
    write_csv(data / "span-2.csv", rows=90, seed=2)
    second = LocalRunner().run(pipeline())
    assert set(second.states.values()) == {"COMPLETE"}
    assert second.outputs["Trainer"]["model"].properties["train_spans"] == [2, 1]
    assert second.outputs["Trainer"]["model_run"].properties["train_spans"] == [2, 1]
