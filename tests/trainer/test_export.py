import os

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

import trainer
from tests.trainer import models

FEATURE_SPEC = {"x": tf.io.FixedLenFeature([3], tf.float32)}


def examples(rows):
    return [tf.train.Example(features=tf.train.Features(feature={
        "x": tf.train.Feature(float_list=tf.train.FloatList(value=models.X[i].tolist()))}))
        .SerializeToString() for i in rows]


def signature_defs(path):
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    defs = proto.meta_graphs[0].signature_def
    return {k: v for k, v in defs.items() if not k.startswith("__")}  # skip TF2's init op


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    est = trainer.Estimator(models.classifier_model_fn,
                            model_dir=str(tmp_path_factory.mktemp("clf") / "model"))
    est.train(models.classifier_train_input_fn, steps=50)
    return est


def test_classify_signature_names_methods_and_keys(classifier, tmp_path):
    receiver = trainer.export.build_parsing_serving_input_receiver_fn(FEATURE_SPEC)
    path = classifier.export_saved_model(str(tmp_path / "export"), receiver).decode()
    assert os.path.basename(path).isdigit()
    assert os.listdir(tmp_path / "export") == [os.path.basename(path)]  # no temp dir left
    defs = signature_defs(path)
    assert sorted(defs) == ["predict", "serving_default"]
    assert defs["serving_default"].method_name == "tensorflow/serving/classify"
    assert list(defs["serving_default"].inputs) == ["inputs"]
    assert defs["serving_default"].inputs["inputs"].dtype == tf.string.as_datatype_enum
    assert sorted(defs["serving_default"].outputs) == ["classes", "scores"]
    assert defs["predict"].method_name == "tensorflow/serving/predict"
    assert list(defs["predict"].inputs) == ["examples"]

    loaded = tf.saved_model.load(path)
    rows = [0, 1, 2]
    served = loaded.signatures["serving_default"](inputs=tf.constant(examples(rows)))
    predicted = np.array([p["prob"] for p in classifier.predict(
        lambda: tf.data.Dataset.from_tensor_slices({"x": models.X[rows]}).batch(3))])
    np.testing.assert_allclose(served["scores"].numpy()[:, 1], predicted, rtol=1e-6)
    assert served["classes"].numpy().tolist() == [[b"0", b"1"]] * 3
    by_predict = loaded.signatures["predict"](examples=tf.constant(examples(rows)))
    np.testing.assert_allclose(by_predict["prob"].numpy(), predicted, rtol=1e-6)


def test_regress_and_raw_receiver(tmp_path, caplog):
    est = trainer.Estimator(models.linear_model_fn, model_dir=str(tmp_path / "model"))
    est.train(models.train_input_fn, steps=100)
    parsing = trainer.export.build_parsing_serving_input_receiver_fn(FEATURE_SPEC)
    path = est.export_saved_model(str(tmp_path / "export"), parsing).decode()
    defs = signature_defs(path)
    assert defs["serving_default"].method_name == "tensorflow/serving/regress"
    assert list(defs["serving_default"].outputs) == ["outputs"]
    loaded = tf.saved_model.load(path)
    out = loaded.signatures["serving_default"](inputs=tf.constant(examples([0, 1])))["outputs"]
    w = est.get_variable_value("linear/weights")[:, 0]
    b = est.get_variable_value("linear/bias")[0]
    np.testing.assert_allclose(out.numpy(), models.X[:2] @ w + b, rtol=1e-5)

    # A raw receiver cannot feed a regress signature: as in tf.estimator, it is left out with a
    # warning naming it, and the export keeps the signatures the receiver can feed ('predict').
    raw = trainer.export.build_raw_serving_input_receiver_fn({"x": tf.TensorSpec([None, 3], tf.float32)})
    with caplog.at_level("WARNING", logger="trainer"):
        raw_path = est.export_saved_model(str(tmp_path / "raw"), raw).decode()
    assert "Signature 'serving_default' is a RegressionOutput" in caplog.text
    assert "no 'serving_default' signature; it has ['predict']" in caplog.text
    assert set(signature_defs(raw_path)) == {"predict"}
    got = tf.saved_model.load(raw_path).signatures["predict"](x=tf.constant(models.X[:2]))
    np.testing.assert_allclose(next(iter(got.values())).numpy().reshape(-1), models.X[:2] @ w + b, rtol=1e-5)

    # When no signature is left, the export fails with that reason and writes nothing.
    def regress_only(features, labels, mode):
        spec = models.linear_model_fn(features, labels, mode, {})
        if mode == trainer.ModeKeys.PREDICT:
            outputs = {"serving_default": spec.export_outputs["serving_default"]}
            return trainer.EstimatorSpec(mode, predictions=spec.predictions, export_outputs=outputs)
        return spec

    only = trainer.Estimator(regress_only, model_dir=str(tmp_path / "model"))
    with pytest.raises(ValueError, match=r"Signature 'serving_default' is a RegressionOutput, which takes one tensor of serialized tf.Examples"):
        only.export_saved_model(str(tmp_path / "none"), raw)
    assert not os.path.exists(tmp_path / "none") or os.listdir(tmp_path / "none") == []


def test_raw_receiver_predict_only(tmp_path):
    def model_fn(features, labels, mode):
        spec = models.linear_model_fn(features, labels, mode, {})
        if mode == trainer.ModeKeys.PREDICT:
            return trainer.EstimatorSpec(mode, predictions=spec.predictions)
        return spec

    est = trainer.Estimator(model_fn, model_dir=str(tmp_path / "model"))
    est.train(models.train_input_fn, steps=10)
    raw = trainer.export.build_raw_serving_input_receiver_fn({"x": tf.TensorSpec([None, 3], tf.float32)})
    path = est.export_saved_model(str(tmp_path / "export"), raw, as_text=True,
                                  assets_extra={"tf_serving_warmup_requests": __file__}).decode()
    assert os.path.exists(os.path.join(path, "saved_model.pbtxt"))
    assert os.path.exists(os.path.join(path, "assets.extra", "tf_serving_warmup_requests"))
    loaded = tf.saved_model.load(path)
    out = loaded.signatures["serving_default"](x=tf.constant(models.X[:4]))
    expected = [p["y"] for p in est.predict(lambda: tf.data.Dataset.from_tensor_slices({"x": models.X[:4]}).batch(4))]
    np.testing.assert_allclose(out["y"].numpy(), expected, rtol=1e-6)


def test_custom_receiver_with_placeholder(classifier, tmp_path):
    def receiver_fn():
        serialized = trainer.export.placeholder(tf.string, [None], name="tf_example")
        features = tf.io.parse_example(serialized, FEATURE_SPEC)
        return trainer.export.ServingInputReceiver(features, {"examples": serialized})

    path = classifier.export_saved_model(str(tmp_path / "e"), receiver_fn).decode()
    loaded = tf.saved_model.load(path)
    assert loaded.signatures["serving_default"](inputs=tf.constant(examples([5])))["scores"].shape == (1, 2)


def test_export_errors(classifier, tmp_path):
    def not_a_placeholder():
        t = tf.constant(["x"])
        return trainer.export.ServingInputReceiver({"x": t}, {"examples": t})

    with pytest.raises(ValueError, match=r"receiver_tensors\['examples'\] was not made with trainer.export.placeholder"):
        classifier.export_saved_model(str(tmp_path / "e"), not_a_placeholder)
    with pytest.raises(ValueError, match="only valid inside a serving_input_receiver_fn"):
        trainer.export.placeholder(tf.string)
    untrained = trainer.Estimator(models.classifier_model_fn, model_dir=str(tmp_path / "empty"))
    receiver = trainer.export.build_parsing_serving_input_receiver_fn(FEATURE_SPEC)
    with pytest.raises(ValueError, match="could not find a trained model"):
        untrained.export_saved_model(str(tmp_path / "e"), receiver)


def test_export_output_validation():
    with pytest.raises(ValueError, match="at least one is required"):
        trainer.export.ClassificationOutput()
    with pytest.raises(ValueError, match="expected a string Tensor"):
        trainer.export.ClassificationOutput(classes=tf.constant([[1]]))
    with pytest.raises(ValueError, match="expected a float Tensor"):
        trainer.export.RegressionOutput(tf.constant([1]))
    with pytest.raises(ValueError, match="expected a Tensor or a non-empty dict"):
        trainer.export.PredictOutput({})
