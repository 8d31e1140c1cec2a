"""Trainer: ExampleGen -> ... -> Transform -> Trainer through the LocalRunner on a slice of the taxi
data, then the exported model serves raw tf.Examples with the same predictions as the Estimator on
the transformed features (no training/serving skew)."""

from __future__ import annotations

import csv
import os

import pytest

from components.feature_spec import FeatureSpec, Label, Numeric
from components.trainer import CannedEstimatorConfig, Trainer, TrainerParameters, serving_model_path
from components.trainer.executor import _check_result, load_trainer_fn

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC = FeatureSpec(features=(Numeric("fare"),), label=Label("big_tipper"))
ROWS = 300


def taxi_slice(directory, rows=ROWS):
    """The first ``rows`` rows of data/taxi/data.csv in ``directory``/data.csv."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(REPO, "data", "taxi", "data.csv"), encoding="utf-8") as f:
        lines = [next(f) for _ in range(rows + 1)]
    with open(os.path.join(directory, "data.csv"), "w", encoding="utf-8") as f:
        f.writelines(lines)
    return str(directory)


def run_taxi_with_trainer(root, data, *, train_steps=30):
    from pipeline import LocalRunner, Pipeline
    from pipeline.examples.taxi_pipeline import TAXI_FEATURES, create_pipeline

    base = create_pipeline(root=str(root), data_root=data, on_anomaly="warn")
    by_id = {c.id: c for c in base.components}
    transform = by_id["Transform"]
    trainer = Trainer(transform.outputs["transformed_examples"], transform.outputs["transform_graph"],
                      by_id["SchemaGen"].outputs["schema"], train_steps=train_steps,
                      canned=CannedEstimatorConfig("DNNLinearCombinedClassifier", feature_spec=TAXI_FEATURES,
                                                   kwargs={"dnn_hidden_units": [8]}, batch_size=32))
    p = Pipeline("taxi", str(root), [*base.components, trainer], beam_pipeline_args=base.beam_pipeline_args)
    return LocalRunner().run(p), TAXI_FEATURES


def raw_examples(data_dir, schema_path, label, limit=40):
    """Serialized raw tf.Examples (no label) from complete CSV rows, typed by the Schema."""
    import tensorflow as tf
    from tensorflow_metadata.proto.v0 import schema_pb2

    from components.schema_gen.executor import load_schema

    types = {f.name: f.type for f in load_schema(schema_path).feature if f.name != label}
    serialized = []
    with open(os.path.join(data_dir, "data.csv"), encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if any(row.get(name, "") == "" for name in types):
                continue
            feature = {}
            for name, kind in types.items():
                if kind == schema_pb2.INT:
                    feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(row[name])]))
                elif kind == schema_pb2.FLOAT:
                    feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(row[name])]))
                else:
                    feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[row[name].encode()]))
            serialized.append(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
            if len(serialized) == limit:
                break
    return serialized


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("trainer")
    data = taxi_slice(root / "data")
    result, spec = run_taxi_with_trainer(root / "pipeline", data)
    return result, spec, data


@pytest.mark.slow
def test_served_model_matches_estimator_on_transformed_rows(trained):
    import numpy as np
    import tensorflow as tf
    import tensorflow_transform as tft

    from components.trainer.canned_config import build_estimator

    result, spec, data = trained
    model, run = result.outputs["Trainer"]["model"], result.outputs["Trainer"]["model_run"]
    graph = result.outputs["Transform"]["transform_graph"].uri
    schema_path = result.outputs["SchemaGen"]["schema"].schema_path
    serialized = raw_examples(data, schema_path, "big_tipper")
    assert len(serialized) >= 10

    loaded = tf.saved_model.load(serving_model_path(model))
    served = loaded.signatures["serving_default"](inputs=tf.constant(serialized))
    scores = served["scores"].numpy()
    assert scores.shape == (len(serialized), 2)
    assert served["classes"].numpy()[0].tolist() == [b"0", b"1"]

    # The Estimator, on features transformed by the same graph outside the served model.
    from tensorflow_transform.tf_metadata import schema_utils

    from components.schema_gen.executor import load_schema

    raw_spec = schema_utils.schema_as_feature_spec(load_schema(schema_path)).feature_spec
    raw_spec.pop("big_tipper")
    output = tft.TFTransformOutput(graph)
    transformed = output.transform_raw_features(tf.io.parse_example(tf.constant(serialized), raw_spec))
    features = {k: v.numpy() for k, v in transformed.items()}
    estimator = build_estimator(CannedEstimatorConfig("DNNLinearCombinedClassifier", feature_spec=spec,
                                                      kwargs={"dnn_hidden_units": [8]}), graph,
                                model_dir=run.uri)
    predictions = list(estimator.predict(
        lambda: tf.data.Dataset.from_tensor_slices(features).batch(8), predict_keys=["probabilities"]))
    expected = np.stack([p["probabilities"] for p in predictions])
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)

    predict = loaded.signatures["predict"](examples=tf.constant(serialized))
    np.testing.assert_allclose(predict["probabilities"].numpy(), expected, rtol=1e-5, atol=1e-6)

    # A real request carries no label source (`tips` feeds only the derived label) and no column
    # the model does not use; the served model answers it the same.
    assert "tips" in tf.train.Example.FromString(serialized[0]).features.feature
    bare = []
    for record in serialized:
        example = tf.train.Example.FromString(record)
        for unused in ("tips", "pickup_census_tract", "dropoff_census_tract", "trip_start_timestamp"):
            if unused in example.features.feature:
                del example.features.feature[unused]
        bare.append(example.SerializeToString())
    served_bare = loaded.signatures["serving_default"](inputs=tf.constant(bare))["scores"].numpy()
    np.testing.assert_allclose(served_bare, expected, rtol=1e-5, atol=1e-6)
    without_fare = []
    for record in bare[:1]:
        example = tf.train.Example.FromString(record)
        del example.features.feature["fare"]
        without_fare.append(example.SerializeToString())
    with pytest.raises(tf.errors.InvalidArgumentError, match="fare"):
        loaded.signatures["serving_default"](inputs=tf.constant(without_fare))


@pytest.mark.slow
def test_outputs_hold_vocabularies_checkpoint_and_logs(trained):
    result = trained[0]
    model, run = result.outputs["Trainer"]["model"], result.outputs["Trainer"]["model_run"]
    assets = os.listdir(os.path.join(serving_model_path(model), "assets"))
    assert "company" in assets and "payment_type" in assets
    assert os.listdir(os.path.join(model.uri, "checkpoint"))
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(run.uri))
    assert 0.0 <= model.properties["metrics"]["auc"] <= 1.0
    assert model.properties["metrics"]["global_step"] == 30.0


def test_parameters_need_exactly_one_of_module_and_canned():
    with pytest.raises(ValueError, match="expected exactly one of them"):
        TrainerParameters(train_steps=1)
    canned = CannedEstimatorConfig("LinearClassifier", feature_spec=SPEC)
    with pytest.raises(ValueError, match="expected exactly one of them"):
        TrainerParameters(module_file="m.py", canned=canned)


def test_parameter_errors():
    with pytest.raises(TypeError, match="Trainer got canned="):
        TrainerParameters(canned={"estimator": "LinearClassifier"})
    canned = CannedEstimatorConfig("LinearClassifier", feature_spec=SPEC)
    with pytest.raises(ValueError, match="Trainer got train_steps=0"):
        TrainerParameters(canned=canned, train_steps=0)
    with pytest.raises(ValueError, match="Trainer got eval_steps=-1"):
        TrainerParameters(canned=canned, eval_steps=-1)
    with pytest.raises(ValueError, match="Trainer got label_key=None"):
        TrainerParameters(module_file="m.py")
    assert TrainerParameters(canned=canned).label_key == "big_tipper"


def test_tflite_option_errors():
    from components.trainer import TFLiteOptions
    from components.trainer.serving_export import TFLITE_QUANTIZATIONS
    from trainer.export.tflite import QUANTIZATIONS

    assert TFLITE_QUANTIZATIONS == QUANTIZATIONS  # one list, kept free of a TensorFlow import
    canned = CannedEstimatorConfig("LinearClassifier", feature_spec=SPEC)
    with pytest.raises(ValueError, match="TFLiteOptions got quantize='int4'"):
        TFLiteOptions(quantize="int4")
    with pytest.raises(TypeError, match="Trainer got tflite=True; expected a TFLiteOptions"):
        TrainerParameters(canned=canned, tflite=True)
    with pytest.raises(NotImplementedError, match=r"Trainer\(tflite=..., run_fn=...\) is not supported"):
        TrainerParameters(module_file="m.py", run_fn="run_fn", label_key="y", tflite=TFLiteOptions())


def test_canned_config_errors():
    with pytest.raises(ValueError, match="CannedEstimatorConfig got estimator='Forest'"):
        CannedEstimatorConfig("Forest", feature_spec=SPEC)
    with pytest.raises(ValueError, match="expected a FeatureSpec with a label"):
        CannedEstimatorConfig("LinearClassifier", feature_spec=FeatureSpec(features=(Numeric("fare"),)))
    with pytest.raises(ValueError, match="CannedEstimatorConfig got batch_size=0"):
        CannedEstimatorConfig("LinearClassifier", feature_spec=SPEC, batch_size=0)
    with pytest.raises(ValueError, match="CannedEstimatorConfig got save_checkpoints_steps=0"):
        CannedEstimatorConfig("LinearClassifier", feature_spec=SPEC, save_checkpoints_steps=0)


def test_missing_module_file(tmp_path):
    from components.artifacts import Examples, Schema, TransformGraph
    from components.base import Component

    class Source(Component):
        OUTPUTS = {"examples": Examples, "graph": TransformGraph, "schema": Schema}
        PARAMETERS = type(None)

        def __init__(self):
            super().__init__(inputs={}, parameters=None)

    src = Source()
    with pytest.raises(ValueError, match="Trainer got module_file=.*no such file"):
        Trainer(src.outputs["examples"], src.outputs["graph"], src.outputs["schema"],
                module_file=str(tmp_path / "missing.py"), label_key="y")


def test_trainer_fn_must_exist_and_return_the_required_keys(tmp_path):
    from components.base import ComponentError

    module = tmp_path / "user.py"
    module.write_text("def trainer_fn(fn_args):\n    return {'estimator': None}\n")
    with pytest.raises(ComponentError, match="Trainer got trainer_fn='other'"):
        load_trainer_fn(str(module), "other")
    result = load_trainer_fn(str(module), "trainer_fn")(None)
    with pytest.raises(ComponentError, match="expected a dict with keys"):
        _check_result(result)


USER_MODULE = '''
import trainer
from trainer import feature_column as fc
from components.trainer import transformed_input_fn


def trainer_fn(fn_args):
    columns = [fc.numeric_column("fare"), fc.numeric_column("trip_miles")]
    optimizer = trainer.optimizers.SGD(fn_args.custom_config.get("learning_rate", 0.05))
    estimator = trainer.LinearClassifier(feature_columns=columns, model_dir=fn_args.model_run_dir,
                                         optimizer=optimizer, warm_start_from=fn_args.base_model)
    train = transformed_input_fn(fn_args.train_files, fn_args.transform_graph_path,
                                 label_key=fn_args.label_key, batch_size=16)
    evaluation = transformed_input_fn(fn_args.eval_files, fn_args.transform_graph_path,
                                      label_key=fn_args.label_key, num_epochs=1, shuffle=False)
    return {"estimator": estimator,
            "train_spec": trainer.TrainSpec(train, max_steps=fn_args.train_steps),
            "eval_spec": trainer.EvalSpec(evaluation, steps=fn_args.eval_steps, throttle_secs=0)}
'''


@pytest.mark.slow
def test_user_module_trainer_fn_and_warm_start_from_a_base_model(trained, tmp_path):
    import tensorflow as tf

    from tests.components.helpers import execute

    result, _, data = trained
    module = tmp_path / "user_trainer.py"
    module.write_text(USER_MODULE)
    transform, schema = result.outputs["Transform"], result.outputs["SchemaGen"]["schema"]
    inputs = {"examples": transform["transformed_examples"], "transform_graph": transform["transform_graph"],
              "schema": schema}
    source = _source()
    component = Trainer(source.outputs["examples"], source.outputs["graph"], source.outputs["schema"],
                        module_file=str(module), label_key="big_tipper", train_steps=5, eval_steps=2,
                        custom_config={"note": "kept", "learning_rate": 0.5})
    out = execute(component, tmp_path / "run", inputs)
    model = out["model"]
    assert model.properties["metrics"]["global_step"] == 5.0
    loaded = tf.saved_model.load(serving_model_path(model))
    scores = loaded.signatures["serving_default"](
        inputs=tf.constant(raw_examples(data, schema.schema_path, "big_tipper", limit=3)))["scores"]
    assert scores.shape == (3, 2)

    # A second run warm-starts from the first Model's checkpoint; with a learning rate of 1e-9
    # its weights stay the first run's (a cold start would leave them at zero).
    from components.trainer.model_paths import checkpoint_path

    first = checkpoint_path(model)
    names = [n for n, _ in tf.train.list_variables(first) if n.endswith("fare/weights")]
    assert names, tf.train.list_variables(first)
    source = _source_with_base()
    again = Trainer(source.outputs["examples"], source.outputs["graph"], source.outputs["schema"],
                    base_model=source.outputs["base"], module_file=str(module), label_key="big_tipper",
                    train_steps=1, eval_steps=1, custom_config={"learning_rate": 1e-9})
    second = execute(again, tmp_path / "run2", {**inputs, "base_model": model})["model"]
    before = tf.train.load_variable(first, names[0])
    after = tf.train.load_variable(checkpoint_path(second), names[0])
    # Five SGD steps at rate 0.5 move the weight well away from the zero a cold start has.
    assert abs(float(before.ravel()[0])) > 1e-4
    assert float(after.ravel()[0]) == pytest.approx(float(before.ravel()[0]), abs=1e-7)


KERAS_MODULE = '''
import tensorflow as tf

import trainer
from components.trainer import transformed_input_fn


def model_fn(features, labels, mode):
    x = tf.stack([features["fare"], features["trip_miles"]], axis=1)
    logits = tf.keras.layers.Dense(1, name="logits")(tf.keras.layers.Dense(4, activation="relu")(x))
    head = trainer.heads.BinaryClassHead()
    return head.create_estimator_spec(features, mode, logits, labels, optimizer=trainer.optimizers.SGD(0.1))


def trainer_fn(fn_args):
    estimator = trainer.Estimator(model_fn, model_dir=fn_args.model_run_dir)
    train = transformed_input_fn(fn_args.train_files, fn_args.transform_graph_path,
                                 label_key=fn_args.label_key, batch_size=16)
    evaluation = transformed_input_fn(fn_args.eval_files, fn_args.transform_graph_path,
                                      label_key=fn_args.label_key, num_epochs=1, shuffle=False)
    return {"estimator": estimator, "train_spec": trainer.TrainSpec(train, max_steps=fn_args.train_steps),
            "eval_spec": trainer.EvalSpec(evaluation, steps=fn_args.eval_steps, throttle_secs=0)}
'''


@pytest.mark.slow
def test_a_module_with_tf_keras_layers_in_its_model_fn_trains_and_serves(trained, tmp_path):
    import tensorflow as tf

    from tests.components.helpers import execute

    result, _, data = trained
    module = tmp_path / "keras_trainer.py"
    module.write_text(KERAS_MODULE)
    transform, schema = result.outputs["Transform"], result.outputs["SchemaGen"]["schema"]
    source = _source()
    component = Trainer(source.outputs["examples"], source.outputs["graph"], source.outputs["schema"],
                        module_file=str(module), label_key="big_tipper", train_steps=5, eval_steps=2)
    model = execute(component, tmp_path / "run", {
        "examples": transform["transformed_examples"], "transform_graph": transform["transform_graph"],
        "schema": schema})["model"]
    assert model.properties["metrics"]["global_step"] == 5.0
    from components.trainer.model_paths import checkpoint_path

    names = {n for n, _ in tf.train.list_variables(checkpoint_path(model))}
    assert any(n.startswith("logits/") for n in names), sorted(names)  # the Keras layers' weights were trained
    loaded = tf.saved_model.load(serving_model_path(model))
    scores = loaded.signatures["serving_default"](
        inputs=tf.constant(raw_examples(data, schema.schema_path, "big_tipper", limit=3)))["scores"]
    assert scores.shape == (3, 2)


@pytest.mark.parametrize("preset, expected", [(None, "tf_keras"), ("0", "keras")])
def test_importing_pipeline_makes_tf_keras_the_keras_of_user_modules(preset, expected):
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    if preset is not None:
        env["TF_USE_LEGACY_KERAS"] = preset  # the user's own choice is kept
    code = "import pipeline, tensorflow as tf; print(tf.keras.layers.Dense.__module__.split('.')[0])"
    out = subprocess.run([sys.executable, "-c", code], env={**env, "TF_CPP_MIN_LOG_LEVEL": "3"}, cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-1] == expected


def _source():
    from components.artifacts import Examples, Schema, TransformGraph
    from components.base import Component

    class Source(Component):
        OUTPUTS = {"examples": Examples, "graph": TransformGraph, "schema": Schema}
        PARAMETERS = type(None)

        def __init__(self):
            super().__init__(inputs={}, parameters=None)

    return Source()


def _source_with_base():
    from components.artifacts import Examples, Model, Schema, TransformGraph
    from components.base import Component

    class Source(Component):
        OUTPUTS = {"examples": Examples, "graph": TransformGraph, "schema": Schema, "base": Model}
        PARAMETERS = type(None)

        def __init__(self):
            super().__init__(inputs={}, parameters=None)

    return Source()


@pytest.mark.slow
def test_input_fn_label_must_be_a_transformed_feature(trained):
    graph = trained[0].outputs["Transform"]["transform_graph"].uri
    from components.trainer import transformed_input_fn

    with pytest.raises(ValueError, match="transformed_input_fn got label_key='tips'"):
        transformed_input_fn(["x"], graph, label_key="tips")


def test_examples_without_the_eval_split_are_an_error(tmp_path):
    from components.artifacts import Examples, Schema, TransformGraph
    from components.base import ComponentError
    from tests.components.helpers import execute

    source = _source()
    component = Trainer(source.outputs["examples"], source.outputs["graph"], source.outputs["schema"],
                        canned=CannedEstimatorConfig("LinearClassifier", feature_spec=SPEC))
    inputs = {"examples": Examples(uri=str(tmp_path), properties={"split_names": ["train"]}, id=1),
              "transform_graph": TransformGraph(uri=str(tmp_path), id=2),
              "schema": Schema(uri=str(tmp_path), id=3)}
    with pytest.raises(ComponentError, match=r"Trainer got examples with splits \['train'\]; expected split 'eval'"):
        execute(component, tmp_path / "run", inputs)


def test_sparse_transformed_features_are_rejected_by_the_export(tmp_path):
    import tensorflow as tf

    from components.trainer.serving_export import _export_transformed_model

    with pytest.raises(ValueError, match="Trainer got transformed feature 'ids' of type VarLenFeature"):
        _export_transformed_model(None, {"ids": tf.io.VarLenFeature(tf.int64)}, str(tmp_path))
