"""The YAML's model/training/evaluation/push sections: the graph they build, and errors naming the field."""

import os
import textwrap

import numpy as np
import pytest

from pipeline.yaml_model import METRICS
from pipeline.yaml_spec import apply_override, build_pipeline, load_spec

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TAXI_YAML = os.path.join(REPO, "pipeline", "examples", "taxi.yaml")
REGRESSION_YAML = os.path.join(REPO, "pipeline", "examples", "taxi_regression.yaml")


def test_classification_yaml_wires_trainer_to_pusher(tmp_path):
    p = build_pipeline(load_spec(TAXI_YAML), root=str(tmp_path))
    assert [c.id for c in p.components][5:] == [
        "WarmStartResolver", "Trainer", "BaselineResolver", "Evaluator", "InfraValidator", "Pusher"]
    assert p.component("Trainer").inputs["base_model"].producer.id == "WarmStartResolver"
    trainer = p.component("Trainer").parameters
    assert trainer.canned.estimator == "DNNLinearCombinedClassifier"
    assert trainer.canned.kwargs == {"dnn_hidden_units": [100, 70, 50, 25],
                                     "dnn_optimizer": {"name": "Adagrad", "learning_rate": 0.05},
                                     "linear_optimizer": {"name": "Ftrl", "learning_rate": 0.2}}
    assert (trainer.train_steps, trainer.eval_steps, trainer.label_key) == (6000, 100, "big_tipper")
    assert trainer.canned.feature_spec == p.component("Transform").parameters.feature_spec
    assert trainer.canned.feature_spec.label.dtype == "int"
    evaluator = p.component("Evaluator").parameters
    assert (evaluator.task, evaluator.prediction_key) == ("classification", "logistic")
    assert evaluator.slicing_features == (("trip_start_hour",),)
    auc, calibration = evaluator.thresholds
    assert (auc.metric, auc.lower_bound, auc.min_change, auc.higher_is_better) == ("AUC", 0.7, -0.01, True)
    assert (calibration.metric, calibration.lower_bound, calibration.upper_bound) == ("Calibration", 0.6, 1.5)
    assert p.component("InfraValidator").parameters.request_kinds == ("classify", "predict")
    pusher = p.component("Pusher").parameters
    assert (pusher.push_destination, pusher.model_name) == (os.path.join(str(tmp_path), "serving"), "taxi")
    baseline = p.component("BaselineResolver")
    assert baseline.inputs["before"].producer.id == "Trainer" and baseline.parameters.pusher == "Pusher"
    evaluator_inputs = p.component("Evaluator").inputs
    assert evaluator_inputs["baseline_model"].producer.id == "BaselineResolver"
    assert evaluator_inputs["examples"].producer.id == "ExampleGen"


def test_regression_yaml_uses_a_float_label_regression_metrics_and_regress_requests(tmp_path):
    p = build_pipeline(load_spec(REGRESSION_YAML, overrides=["push.destination=models"]), root=str(tmp_path))
    features = p.component("Transform").parameters.feature_spec
    assert features.label.name == "fare" and features.label.dtype == "float"
    assert "fare" not in features.raw_columns and "tips" not in features.raw_columns
    gen = p.component("ExampleGen").parameters
    assert gen.label == "fare" and gen.column_types["fare"] == "float" and gen.bad_rows == "quarantine"
    assert p.component("Trainer").parameters.canned.estimator == "DNNLinearCombinedRegressor"
    evaluator = p.component("Evaluator").parameters
    assert (evaluator.task, evaluator.prediction_key, evaluator.label_key) == ("regression", "predictions", "fare")
    assert evaluator.metrics == ("ExampleCount", "MeanSquaredError", "MeanAbsoluteError", "MeanLabel",
                                 "MeanPrediction", "SquaredPearsonCorrelation")
    mse = [t for t in evaluator.thresholds if t.metric == "MeanSquaredError"][0]
    assert (mse.min_change, mse.higher_is_better) == (-1.0, False)
    assert p.component("InfraValidator").parameters.request_kinds == ("regress", "predict")
    pusher = p.component("Pusher").parameters
    assert pusher.push_destination == os.path.join(REPO, "pipeline", "examples", "models")  # relative to the file
    assert pusher.model_name == "taxi_fare"


def test_push_defaults_to_root_serving_and_the_pipeline_name(tmp_path):
    spec = load_spec(_write(tmp_path, MODEL))
    p = build_pipeline(spec, root=str(tmp_path / "r"))
    pusher = p.component("Pusher").parameters
    assert (pusher.push_destination, pusher.model_name) == (str(tmp_path / "r" / "serving"), "t")
    assert p.component("Evaluator").parameters.thresholds == ()  # no evaluation: every loadable model is pushed
    assert p.component("Trainer").parameters.tflite is None  # push.tflite is off by default
    url = load_spec(_write(tmp_path, MODEL), overrides=["push.destination=gs://bucket/models"])
    assert build_pipeline(url, root=str(tmp_path / "r")).component("Pusher").parameters.push_destination == \
        "gs://bucket/models"  # a URL is not resolved against the YAML file's directory
    for value, expected in [("true", (None, False)), ("{quantize: dynamic, select_tf_ops: true}", ("dynamic", True))]:
        spec = load_spec(_write(tmp_path, MODEL), overrides=[f"push.tflite={value}"])
        tflite = build_pipeline(spec, root=str(tmp_path / "r")).component("Trainer").parameters.tflite
        assert (tflite.quantize, tflite.select_tf_ops) == expected
    with pytest.raises(ValueError, match="push.tflite"):
        load_spec(_write(tmp_path, MODEL), overrides=["push.tflite={quantize: int4}"])


def test_every_threshold_name_is_a_tfma_metric_with_that_name():
    from components.evaluator.metric_names import metric_key_name

    for name, info in METRICS.items():
        assert metric_key_name(info.tfma_class, info.tasks[0]) == name


def _write(tmp_path, text):
    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


BASE = """
name: t
data: {path: data.csv}
label: {name: y}
features: [{name: a, type: numeric}]
"""
MODEL = BASE + "model: {estimator: LinearClassifier}\ntraining: {steps: 10}\n"
REGRESSOR = BASE + "model: {estimator: LinearRegressor}\ntraining: {steps: 10}\n"


@pytest.mark.parametrize("text, message", [
    (MODEL + "evaluation: {thresholds: {rmse: {upper_bound: 1}}}\n",
     r"evaluation.thresholds.rmse: unknown metric 'rmse'; expected one of \['example_count', .*'auc'.* for "
     r"classification"),
    (REGRESSOR + "evaluation: {thresholds: {auc: {lower_bound: 0.7}}}\n",
     r"evaluation.thresholds.auc: 'auc' is a classification metric, but model.estimator='LinearRegressor' is a "
     r"regression model; expected one of \['example_count', 'mean_label', 'mean_prediction', 'mean_squared_error'"),
    (MODEL + "evaluation: {thresholds: {mean_squared_error: {upper_bound: 1}}}\n",
     r"'mean_squared_error' is a regression metric, but model.estimator='LinearClassifier'"),
    (MODEL + "evaluation: {thresholds: {auc: {}}}\n", r"evaluation.thresholds.auc: no bound; expected lower_bound"),
    (MODEL + "evaluation: {thresholds: {auc: {lower_bound: 0.9, upper_bound: 0.8}}}\n",
     r"evaluation.thresholds.auc: lower_bound=0.9 > upper_bound=0.8"),
    (MODEL + "evaluation: {thresholds: {calibration: {min_change: 0}}}\n",
     r"evaluation.thresholds.calibration.min_change: 'calibration' has no better direction"),
    (MODEL + "evaluation: {thresholds: {auc: {lower: 0.7}}}\n", r"evaluation.thresholds.auc.lower: Extra inputs"),
    (MODEL + "evaluation: {slices: [[]]}\n", r"evaluation.slices\[0\]: empty"),
    (BASE + "model: {estimator: LinearClassifier}\n", r"training: missing; model needs training"),
    (BASE + "training: {steps: 10}\n", r"training: given without model"),
    (BASE + "push: {model_name: x}\n", r"push: given without model"),
    (MODEL.replace("label: {name: y}\n", ""), r"label: missing; model needs the label"),
    (MODEL.replace("data.csv}", "data.csv, split: {ratios: {train: 1, test: 1}}}"),
     r"data.split.ratios: got splits \['train', 'test'\]; the Trainer trains on 'train'"),
    (MODEL.replace("LinearClassifier}", "LinearClassifier, args: {model_dir: /x}}"),
     r"model.args.model_dir: set by the pipeline"),
    (MODEL.replace("LinearClassifier}", "LinearClassifier, args: {n_classes: 1}}"),
     r"model.args.n_classes: got 1; expected an int >= 2"),
    (MODEL.replace("LinearClassifier}", "LinearClassifier, args: {n_classes: 3}}")
     + "evaluation: {thresholds: {auc: {lower_bound: 0.7}}}\n",
     r"evaluation.thresholds.auc: 'auc' is a classification metric, but model.estimator='LinearClassifier' is a "
     r"multiclass model; expected one of \['example_count', 'sparse_categorical_accuracy'"),
    (MODEL.replace("LinearClassifier}", "LinearClassifier, args: {n_classes: 3}}")
     + "evaluation: {metrics: [BinaryAccuracy]}\n",
     r"evaluation.metrics\[0\]: got metric='BinaryAccuracy' for a multiclass model; .* How to fix: use "
     r"'SparseCategoricalAccuracy'"),
    (MODEL + "evaluation: {metrics: [Nope]}\n", r"evaluation.metrics\[0\]: got metric='Nope'; expected a tfma"),
    (MODEL.replace("LinearClassifier}", "LinearClassifier, args: {n_classes: 3, label_vocabulary: [a, b]}}"),
     r"model.args.label_vocabulary: got 2 names but n_classes is 3"),
    (MODEL.replace("LinearClassifier}", "LinearClassifier, args: {n_classes: 3, label_vocabulary: [a, a, b]}}"),
     r"model.args.label_vocabulary: got \['a', 'a', 'b'\]; expected the distinct class names"),
    (REGRESSOR.replace("LinearRegressor}", "LinearRegressor, args: {n_classes: 3}}"),
     r"model.args.n_classes: LinearRegressor is a regressor"),
    (BASE.replace("label: {name: y}", "label: {name: y, expression: 'tips >'}"),
     r"label.expression: Value error, Derived column 'y' got expression='tips >'; it does not parse"),
    (BASE.replace("label: {name: y}", "label: {name: y, expression: 'max(tips, 1)'}"),
     r"label.expression: Value error, Derived column 'y' got expression='max\(tips, 1\)' using"),
    (BASE.replace("label: {name: y}", "label: {name: y, expression: 'y > 1'}"),
     r"label.expression: Value error, Derived column 'y' got expression='y > 1', which reads 'y' itself"),
    (REGRESSOR.replace("LinearRegressor}", "LinearRegressor, args: {label_dimension: 2}}"),
     r"model.args.label_dimension: got 2"),
    (MODEL + "push: {model_name: a/b}\n", r"push.model_name: got 'a/b'; expected a plain directory name"),
    (MODEL.replace("name: t", "name: .t"), r"name \(the default push.model_name\): got '.t'"),
    (BASE.replace("numeric}]", "numeric}, {name: x, type: crossed, keys: [a, y]}]"),
     r"label='y', which a crossed feature reads"),
])
def test_errors_name_the_field(tmp_path, text, message):
    with pytest.raises(ValueError, match=message) as info:
        load_spec(_write(tmp_path, text))
    assert str(info.value).startswith(str(tmp_path / "p.yaml") + ": ")
    assert "How to fix" in str(info.value)


def test_overrides(tmp_path):
    spec = load_spec(_write(tmp_path, MODEL), overrides=[
        "training.steps=3", "model.args.hidden_units=[4, 2]", "evaluation.thresholds.auc.lower_bound=0.5"])
    assert spec.training.steps == 3 and spec.model.args == {"hidden_units": [4, 2]}
    assert spec.evaluation.thresholds["auc"].lower_bound == 0.5
    with pytest.raises(ValueError, match=r"p.yaml: training.steps: Input should be a valid integer"):
        load_spec(_write(tmp_path, MODEL), overrides=["training.steps=many"])
    with pytest.raises(ValueError, match=r"load_spec got override 'training.steps'; expected KEY=VALUE"):
        apply_override({}, "training.steps")
    with pytest.raises(ValueError, match=r"load_spec got override 'name.x=1'; name is not a mapping"):
        apply_override({"name": "t"}, "name.x=1")
    with pytest.raises(ValueError, match=r"the value is not valid YAML"):
        apply_override({}, "a=[1")
    empty_section = {"push": None}  # "push:" with nothing under it
    apply_override(empty_section, "push.model_name=taxi")
    assert empty_section == {"push": {"model_name": "taxi"}}


def test_cli_set_on_yaml_and_py(tmp_path, capsys):
    from pipeline.cli import main

    assert main(["check", MODEL_PATH := _write(tmp_path, MODEL), "--set", "training.steps=0"]) == 2
    assert "training.steps: Input should be greater than or equal to 1" in capsys.readouterr().err
    assert main(["check", MODEL_PATH, "--set", "push.model_name=m"]) == 0
    assert "-> Pusher" in capsys.readouterr().out
    assert main(["check", os.path.join(REPO, "pipeline", "examples", "taxi_pipeline.py"), "--set", "a=1"]) == 2
    assert "create_pipeline() has no parameter 'a'" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_every_threshold_name_of_a_task_is_computed_by_the_evaluator(tmp_path, task):
    from components.evaluator import Evaluator
    from tests.components.helpers import execute
    from tests.components.test_evaluator import SOURCE, raw_examples, regression_examples, tiny_model, tiny_regressor

    names = [name for name, info in METRICS.items() if task in info.tasks]
    if task == "classification":
        label, examples, model = "big_tipper", raw_examples(tmp_path), tiny_model(tmp_path, 2.0, "m")
    else:
        label, examples, model = "fare", regression_examples(tmp_path), tiny_regressor(tmp_path, 10.0, "m")
    evaluator = Evaluator(SOURCE.outputs["examples"], SOURCE.outputs["model"], label_key=label, task=task,
                          metrics=tuple(METRICS[n].tfma_class for n in names))
    metrics = execute(evaluator, tmp_path / "run", {"examples": examples, "model": model})["evaluation"]
    computed = metrics.properties["metrics"]
    assert sorted(n for n in names if n in computed) == sorted(names), computed
    assert all(np.isfinite(computed[n]) for n in names), computed
