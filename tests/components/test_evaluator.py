"""Evaluator: TFMA on Beam through the serving signature; value and change thresholds."""

from __future__ import annotations

import dataclasses

import pytest

from components.artifacts import Examples, Model
from components.base import Component, ComponentError
from components.evaluator import Evaluator, EvaluatorParameters, MetricThreshold
from components.evaluator.eval_config import build_eval_config
from tests.components.helpers import execute


@dataclasses.dataclass(frozen=True)
class NoParams:
    pass


class Source(Component):
    OUTPUTS = {"examples": Examples, "model": Model, "baseline": Model}
    PARAMETERS = NoParams

    def __init__(self):
        super().__init__(inputs={}, parameters=NoParams())


SOURCE = Source()
AUC_AT_LEAST_07 = MetricThreshold("AUC", lower_bound=0.7, min_change=-1e-10)


def raw_examples(tmp_path, rows=60):
    """big_tipper = fare > 5 (with 6 flipped labels), over hours 0..2."""
    import tensorflow as tf

    uri = tmp_path / "examples"
    (uri / "Split-eval").mkdir(parents=True)
    with tf.io.TFRecordWriter(str(uri / "Split-eval" / "data-0.gz"), options="GZIP") as writer:
        for i in range(rows):
            fare = (i * 7 % 100) / 10.0
            label = int(fare > 5) if i % 10 else 1 - int(fare > 5)
            example = tf.train.Example(features=tf.train.Features(feature={
                "fare": tf.train.Feature(float_list=tf.train.FloatList(value=[fare])),
                "trip_start_hour": tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 3])),
                "big_tipper": tf.train.Feature(int64_list=tf.train.Int64List(value=[label]))}))
            writer.write(example.SerializeToString())
    return Examples(uri=str(uri), properties={"split_names": ["eval"]}, id=1)


def tiny_model(tmp_path, weight, name):
    """A SavedModel whose 'predict' signature gives logistic = sigmoid(weight * (fare - 5))."""
    import tensorflow as tf

    module = tf.Module()
    module.w = tf.Variable(float(weight))

    def predict(serialized):
        fare = tf.io.parse_example(serialized, {"fare": tf.io.FixedLenFeature([1], tf.float32)})["fare"]
        return {"logistic": tf.sigmoid(module.w * (fare - 5.0))}

    uri = tmp_path / name
    tf.saved_model.save(module, str(uri / "Format-Serving" / "1"), signatures={"predict": tf.function(
        predict).get_concrete_function(tf.TensorSpec([None], tf.string, name="examples"))})
    return Model(uri=str(uri), properties={"serving_model": "Format-Serving/1"}, id=int(weight * 10) + 50)


def evaluator(baseline=False, **kwargs):
    return Evaluator(SOURCE.outputs["examples"], SOURCE.outputs["model"], label_key="big_tipper",
                     baseline_model=SOURCE.outputs["baseline"] if baseline else None,
                     slicing_features=(("trip_start_hour",),), **kwargs)


@pytest.mark.slow
def test_first_model_is_judged_on_value_thresholds_only(tmp_path):
    examples = raw_examples(tmp_path)
    nothing_pushed_yet = Model(uri=str(tmp_path), properties={"found": False}, id=9)  # resolver found none
    out = execute(evaluator(baseline=True, thresholds=(AUC_AT_LEAST_07,)), tmp_path / "run",
                  {"examples": examples, "model": tiny_model(tmp_path, 2.0, "good"),
                   "baseline_model": nothing_pushed_yet})
    blessing = out["blessing"].properties
    assert blessing["blessed"] is True, blessing["reason"]
    assert blessing["reason"] == "every threshold passed (no baseline: value thresholds only)"
    metrics = out["evaluation"].properties["metrics"]
    assert metrics["example_count"] == 60.0
    assert metrics["auc"] > 0.7 and 0.0 < metrics["binary_accuracy"] <= 1.0 and "calibration" in metrics

    bad = execute(evaluator(thresholds=(AUC_AT_LEAST_07,)), tmp_path / "run",
                  {"examples": examples, "model": tiny_model(tmp_path, -2.0, "bad")})["blessing"].properties
    assert bad["blessed"] is False and bad["verdict"] == "NOT_BLESSED"
    assert bad["reason"].startswith("auc on overall = 0.")
    assert "lower_bound { value: 0.7 }" in bad["reason"]


@pytest.mark.slow
def test_change_threshold_against_the_baseline(tmp_path):
    examples = raw_examples(tmp_path)
    better, worse = tiny_model(tmp_path, 2.0, "better"), tiny_model(tmp_path, 0.5, "worse")
    # 'worse' ranks the examples like 'better' (same AUC); require a strict gain instead.
    strict = MetricThreshold("BinaryAccuracy", lower_bound=0.5, min_change=0.01)
    out = execute(evaluator(baseline=True, thresholds=(strict,)), tmp_path / "run",
                  {"examples": examples, "model": worse, "baseline_model": better})["blessing"].properties
    assert out["blessed"] is False
    assert "binary_accuracy change vs baseline on overall" in out["reason"]
    assert out["baseline_model_id"] == better.id


def test_eval_config_drops_change_thresholds_without_a_baseline():
    params = EvaluatorParameters(label_key="y", thresholds=(MetricThreshold("AUC", min_change=0.0),))
    auc = [m for m in build_eval_config(params, with_baseline=False).metrics_specs[0].metrics
           if m.class_name == "AUC"][0]
    assert not auc.per_slice_thresholds
    config = build_eval_config(params, with_baseline=True)
    assert [m.is_baseline for m in config.model_specs] == [False, True]
    auc = [m for m in config.metrics_specs[0].metrics if m.class_name == "AUC"][0]
    assert auc.per_slice_thresholds[0].threshold.HasField("change_threshold")


def regression_examples(tmp_path, rows=60):
    """fare = 10 * trip_miles + noise in [-1, 1]."""
    import tensorflow as tf

    uri = tmp_path / "regression_examples"
    (uri / "Split-eval").mkdir(parents=True)
    with tf.io.TFRecordWriter(str(uri / "Split-eval" / "data-0.gz"), options="GZIP") as writer:
        for i in range(rows):
            miles = (i * 7 % 30) / 10.0
            example = tf.train.Example(features=tf.train.Features(feature={
                "trip_miles": tf.train.Feature(float_list=tf.train.FloatList(value=[miles])),
                "fare": tf.train.Feature(float_list=tf.train.FloatList(value=[10 * miles + (i % 3) - 1]))}))
            writer.write(example.SerializeToString())
    return Examples(uri=str(uri), properties={"split_names": ["eval"]}, id=2)


def tiny_regressor(tmp_path, slope, name):
    """A SavedModel whose 'predict' signature gives predictions = slope * trip_miles, shape [batch, 1]."""
    import tensorflow as tf

    module = tf.Module()
    module.w = tf.Variable(float(slope))

    def predict(serialized):
        miles = tf.io.parse_example(serialized, {"trip_miles": tf.io.FixedLenFeature([1], tf.float32)})
        return {"predictions": module.w * miles["trip_miles"]}

    uri = tmp_path / name
    tf.saved_model.save(module, str(uri / "Format-Serving" / "1"), signatures={"predict": tf.function(
        predict).get_concrete_function(tf.TensorSpec([None], tf.string, name="examples"))})
    return Model(uri=str(uri), properties={"serving_model": "Format-Serving/1"}, id=int(slope * 10) + 100)


@pytest.mark.slow
def test_regression_metrics_and_a_lower_is_better_change_threshold(tmp_path):
    examples = regression_examples(tmp_path)
    baseline, candidate = tiny_regressor(tmp_path, 10.0, "exact"), tiny_regressor(tmp_path, 10.2, "a_bit_off")
    # The candidate's MSE is a little above the baseline's: allowed by min_change=-1.0 ("at most 1.0 worse").
    at_most_1_worse = MetricThreshold("MeanSquaredError", min_change=-1.0, higher_is_better=False)
    out = execute(Evaluator(SOURCE.outputs["examples"], SOURCE.outputs["model"], label_key="fare",
                            baseline_model=SOURCE.outputs["baseline"], task="regression",
                            thresholds=(at_most_1_worse, MetricThreshold("MeanAbsoluteError", upper_bound=1.5))),
                  tmp_path / "run", {"examples": examples, "model": candidate, "baseline_model": baseline})
    blessing = out["blessing"].properties
    assert blessing["blessed"] is True, blessing["reason"]
    metrics = blessing["metrics"]
    assert 0 < metrics["mean_squared_error_diff"] < 1.0 and metrics["mean_absolute_error"] < 1.5
    assert metrics["example_count"] == 60.0 and metrics["mean_prediction"] > metrics["mean_label"] > 10


def test_min_change_is_an_improvement_in_either_direction():
    from tensorflow_model_analysis.proto import config_pb2

    params = EvaluatorParameters(label_key="y", task="regression", thresholds=(
        MetricThreshold("MeanSquaredError", min_change=-0.5, higher_is_better=False),))
    assert params.prediction_key == "predictions" and "MeanSquaredError" in params.metrics
    mse = [m for m in build_eval_config(params, with_baseline=True).metrics_specs[0].metrics
           if m.class_name == "MeanSquaredError"][0]
    change = mse.per_slice_thresholds[0].threshold.change_threshold
    # TFMA passes LOWER_IS_BETTER when candidate - baseline <= absolute: "at most 0.5 worse" is +0.5.
    assert change.direction == config_pb2.MetricDirection.LOWER_IS_BETTER and change.absolute.value == 0.5


def test_parameter_errors():
    with pytest.raises(ValueError, match="MetricThreshold got metric='AUC' with no bound"):
        MetricThreshold("AUC")
    with pytest.raises(ValueError, match="Evaluator got label_key=''"):
        EvaluatorParameters(label_key="")
    with pytest.raises(ValueError, match="Evaluator got task='ranking'; expected one of"):
        EvaluatorParameters(label_key="y", task="ranking")
    with pytest.raises(TypeError, match="Evaluator got thresholds entry"):
        EvaluatorParameters(label_key="y", thresholds=({"AUC": 0.5},))
    with pytest.raises(ValueError, match="Evaluator got a threshold on metric='MeanSquaredError'"):
        EvaluatorParameters(label_key="y", thresholds=(MetricThreshold("MeanSquaredError", upper_bound=1.0),))
    # An unknown name fails when the pipeline is built (and in `python -m pipeline check`), not after training.
    with pytest.raises(ValueError, match="Evaluator got metric='Nope'; expected a tfma.metrics class name"):
        EvaluatorParameters(label_key="y", metrics=("Nope",), thresholds=(MetricThreshold("Nope", lower_bound=0.0),))


def test_missing_split_is_an_error(tmp_path):
    examples = Examples(uri=str(tmp_path), properties={"split_names": ["train"]}, id=1)
    with pytest.raises(ComponentError, match="Evaluator got examples with splits \\['train'\\]"):
        execute(evaluator(), tmp_path / "run", {"examples": examples, "model": Model(uri=str(tmp_path), id=2)})


def test_a_baseline_for_another_label_or_task_is_not_compared(tmp_path):
    from tensorflow.core.protobuf import saved_model_pb2

    from components.artifacts import Model
    from components.evaluator.component import EvaluatorParameters
    from components.evaluator.executor import why_not_comparable

    def model(name, label, outputs):
        directory = tmp_path / name / "Format-Serving" / "1"
        directory.mkdir(parents=True)
        proto = saved_model_pb2.SavedModel()
        signature = proto.meta_graphs.add().signature_def["predict"]
        for key in outputs:
            signature.outputs[key].name = f"{key}:0"
        (directory / "saved_model.pb").write_bytes(proto.SerializeToString())
        return Model(uri=str(tmp_path / name), properties={"serving_model": "Format-Serving/1", "label_key": label})

    params = EvaluatorParameters(label_key="big_tipper")
    candidate = model("candidate", "big_tipper", ["logistic", "probabilities"])
    assert why_not_comparable(model("same", "big_tipper", ["logistic"]), candidate, params) is None
    assert "trained for label 'fare'" in why_not_comparable(model("other_label", "fare", ["logistic"]),
                                                            candidate, params)
    regressor = model("regressor", "big_tipper", ["predictions"])
    assert "has no 'logistic' output" in why_not_comparable(regressor, candidate, params)
    gone = Model(uri=str(tmp_path / "gone"), properties={"serving_model": "Format-Serving/1"})
    assert "cannot be read" in why_not_comparable(gone, candidate, params)
