"""InfraValidator: a real model server on 127.0.0.1 and real classify/predict requests."""

from __future__ import annotations

import dataclasses
import os

import pytest

from components.artifacts import Examples, Model
from components.base import Component, ComponentError
from components.infra_validator import InfraValidator, InfraValidatorParameters
from tests.components.helpers import execute


@dataclasses.dataclass(frozen=True)
class NoParams:
    pass


class Source(Component):
    OUTPUTS = {"model": Model, "examples": Examples}
    PARAMETERS = NoParams

    def __init__(self):
        super().__init__(inputs={}, parameters=NoParams())


SOURCE = Source()


def raw_examples(tmp_path, rows=5):
    import tensorflow as tf

    uri = tmp_path / "examples"
    (uri / "Split-eval").mkdir(parents=True)
    with tf.io.TFRecordWriter(str(uri / "Split-eval" / "data-0.gz"), options="GZIP") as writer:
        for i in range(rows):
            example = tf.train.Example(features=tf.train.Features(feature={
                "fare": tf.train.Feature(float_list=tf.train.FloatList(value=[float(i)])),
                "big_tipper": tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 2]))}))
            writer.write(example.SerializeToString())
    return Examples(uri=str(uri), properties={"split_names": ["eval"]}, id=1)


def tiny_model(tmp_path, feature="fare"):
    """A SavedModel with the Trainer's signatures: classify on 'inputs', predict on 'examples'."""
    import tensorflow as tf

    from components.trainer.serving_export import CLASSIFY, PREDICT
    from trainer.export.saved_model import set_method_names

    module = tf.Module()
    module.w = tf.Variable(0.5)
    spec = {feature: tf.io.FixedLenFeature([1], tf.float32)}

    def probabilities(serialized):
        p = tf.sigmoid(module.w * tf.io.parse_example(serialized, spec)[feature])
        return tf.concat([1 - p, p], axis=1)

    def classify(serialized):
        scores = probabilities(serialized)
        return {"scores": scores, "classes": tf.tile([[b"0", b"1"]], [tf.shape(scores)[0], 1])}

    def predict(serialized):
        return {"probabilities": probabilities(serialized)}

    uri = tmp_path / f"model-{feature}"
    path = str(uri / "Format-Serving" / "1")
    signatures = {
        "serving_default": tf.function(classify).get_concrete_function(tf.TensorSpec([None], tf.string, name="inputs")),
        "predict": tf.function(predict).get_concrete_function(tf.TensorSpec([None], tf.string, name="examples"))}
    tf.saved_model.save(module, path, signatures=signatures)
    set_method_names(path, {"serving_default": CLASSIFY, "predict": PREDICT})
    return Model(uri=str(uri), properties={"serving_model": "Format-Serving/1"}, id=2)


def validator(**kwargs):
    return InfraValidator(SOURCE.outputs["model"], SOURCE.outputs["examples"], **kwargs)


def test_a_servable_model_is_blessed(tmp_path):
    out = execute(validator(num_examples=3), tmp_path / "run",
                  {"model": tiny_model(tmp_path), "examples": raw_examples(tmp_path)})["blessing"]
    assert out.properties["blessed"] is True, out.properties["reason"]
    assert out.properties["reason"] == "classify: 3 results; predict: 1 outputs"
    assert out.properties["examples_per_request"] == 3


def test_a_model_that_cannot_answer_the_requests_is_not_blessed(tmp_path):
    out = execute(validator(), tmp_path / "run",
                  {"model": tiny_model(tmp_path, feature="tips"), "examples": raw_examples(tmp_path)})["blessing"]
    assert out.properties["blessed"] is False
    assert out.properties["reason"].startswith("classify request failed: INVALID_ARGUMENT")


def test_a_model_that_does_not_load_is_not_blessed(tmp_path):
    model = tiny_model(tmp_path)
    with open(os.path.join(model.uri, "Format-Serving", "1", "saved_model.pb"), "wb") as f:
        f.write(b"not a SavedModel")
    out = execute(validator(), tmp_path / "run", {"model": model, "examples": raw_examples(tmp_path)})["blessing"]
    assert out.properties["blessed"] is False
    assert out.properties["reason"].startswith("the model did not load: Loading")


def test_missing_split_and_empty_split_are_errors(tmp_path):
    model = tiny_model(tmp_path)
    with pytest.raises(ComponentError, match="expected split 'test'"):
        execute(validator(split="test"), tmp_path / "run", {"model": model, "examples": raw_examples(tmp_path)})
    empty = Examples(uri=str(tmp_path / "none"), properties={"split_names": ["eval"]}, id=3)
    with pytest.raises(ComponentError, match="InfraValidator got no examples"):
        execute(validator(), tmp_path / "run", {"model": model, "examples": empty})


def test_parameter_errors():
    with pytest.raises(ValueError, match="InfraValidator got num_examples=0; expected an int >= 1"):
        InfraValidatorParameters(num_examples=0)
    with pytest.raises(ValueError, match=r"InfraValidator got request_kinds=\('explain',\)"):
        InfraValidatorParameters(request_kinds=("explain",))
