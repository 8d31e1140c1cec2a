"""TF Lite export: DNN, linear, wide & deep and boosted trees on a numeric and an embedded categorical
feature give the SavedModel's answers through TF Lite's interpreter."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf

import trainer
from trainer import feature_column as fc

RNG = np.random.default_rng(0)
X = RNG.normal(size=(512, 3)).astype(np.float32)
C = RNG.integers(0, 5, size=(512, 1)).astype(np.int64)
Y = ((X @ np.array([1.0, -1.0, 0.5], np.float32) + (C[:, 0] == 2) - 0.2) > 0).astype(np.int64)

NUMERIC = fc.numeric_column("x", shape=3)
CATEGORY = fc.categorical_column_with_identity("c", 5)


def estimator(kind, model_dir, config=None):
    if kind == "dnn":
        return trainer.DNNClassifier([8], [NUMERIC, fc.embedding_column(CATEGORY, 2)], model_dir=model_dir,
                                     config=config)
    if kind == "linear":
        return trainer.LinearClassifier([NUMERIC, CATEGORY], model_dir=model_dir)
    if kind == "boosted_trees":  # 5 trees of depth 2: complete within the 40 training steps
        return trainer.BoostedTreesClassifier([fc.bucketized_column(NUMERIC, [-1.0, 0.0, 1.0]),
                                               fc.indicator_column(CATEGORY)], n_batches_per_layer=1,
                                              n_trees=5, max_depth=2, model_dir=model_dir)
    return trainer.DNNLinearCombinedClassifier(linear_feature_columns=[CATEGORY, NUMERIC],
                                               dnn_feature_columns=[NUMERIC, fc.embedding_column(CATEGORY, 2)],
                                               dnn_hidden_units=[8], model_dir=model_dir)


RECEIVER = trainer.export.build_raw_serving_input_receiver_fn(
    {"x": tf.TensorSpec([None, 3], tf.float32), "c": tf.TensorSpec([None, 1], tf.int64)})


def train(kind, tmp_path):
    est = estimator(kind, str(tmp_path / kind))
    est.train(lambda: tf.data.Dataset.from_tensor_slices(({"x": X, "c": C}, Y)).repeat().batch(64), steps=40)
    savedmodel = tf.saved_model.load(est.export_saved_model(str(tmp_path / f"{kind}_sm"), RECEIVER))
    expected = savedmodel.signatures["predict"](x=tf.constant(X[:32]), c=tf.constant(C[:32]))
    return est, {k: v.numpy() for k, v in expected.items()}


def tflite_predict(path):
    runner = tf.lite.Interpreter(model_path=path).get_signature_runner("predict")
    return runner(x=X[:32], c=C[:32])


@pytest.mark.parametrize("kind", ["dnn", "linear", "wide_deep", "boosted_trees"])
def test_tflite_model_answers_as_the_saved_model(tmp_path, kind):
    est, expected = train(kind, tmp_path)
    path = trainer.export.export_tflite(est, RECEIVER, str(tmp_path / f"{kind}.tflite"), signature_keys=["predict"])
    got = tflite_predict(path)
    # The same float32 kernels on the same weights; reduction order may differ: ~1e-6.
    np.testing.assert_allclose(got["probabilities"], expected["probabilities"], atol=1e-5)
    np.testing.assert_allclose(got["logits"], expected["logits"], atol=1e-4)
    np.testing.assert_array_equal(got["class_ids"], expected["class_ids"])


def test_dynamic_range_quantization_stays_close(tmp_path):
    est, expected = train("dnn", tmp_path)
    plain = trainer.export.export_tflite(est, RECEIVER, str(tmp_path / "f32.tflite"), signature_keys=["predict"])
    small = trainer.export.export_tflite(est, RECEIVER, str(tmp_path / "int8.tflite"), signature_keys=["predict"],
                                         quantize="dynamic")
    got = tflite_predict(small)
    # int8 weights (per channel, 1/254 of each row's range) on a 2-layer net with inputs ~N(0, 1):
    # a logit moves by well under 0.05; probabilities (slope <= 1/4) by under 0.0125. 0.02 is the bound.
    np.testing.assert_allclose(got["probabilities"], expected["probabilities"], atol=0.02)
    assert os.path.getsize(small) <= os.path.getsize(plain)


def test_bad_arguments_are_named(tmp_path):
    est, _ = train("linear", tmp_path)
    with pytest.raises(ValueError, match="quantize='int4'"):
        trainer.export.export_tflite(est, RECEIVER, str(tmp_path / "m.tflite"), quantize="int4")
    with pytest.raises(ValueError, match=r"signature_keys \['nope'\], which the exported model does not have"):
        trainer.export.export_tflite(est, RECEIVER, str(tmp_path / "m.tflite"), signature_keys=["nope"])


def test_tflite_exporter_in_train_and_evaluate_writes_each_evaluation_and_keeps_the_newest(tmp_path):
    est = estimator("dnn", str(tmp_path / "model"), trainer.RunConfig(save_checkpoints_steps=20))

    def train_input_fn():
        return tf.data.Dataset.from_tensor_slices(({"x": X, "c": C}, Y)).repeat().batch(64)

    def eval_input_fn():
        return tf.data.Dataset.from_tensor_slices(({"x": X, "c": C}, Y)).batch(128)

    exporter = trainer.TFLiteExporter("lite", RECEIVER, signature_keys=["predict"], exports_to_keep=2)
    trainer.train_and_evaluate(est, trainer.TrainSpec(train_input_fn, max_steps=60),
                               trainer.EvalSpec(eval_input_fn, steps=None, exporters=[exporter], throttle_secs=0))
    versions = sorted(os.listdir(tmp_path / "model" / "export" / "lite"))
    assert len(versions) == 2, versions  # 3 evaluations (steps 20, 40, 60), the newest 2 kept
    got = tflite_predict(str(tmp_path / "model" / "export" / "lite" / versions[-1] / "model.tflite"))
    expected = np.array([p["probabilities"] for p in est.predict(
        lambda: tf.data.Dataset.from_tensor_slices({"x": X[:32], "c": C[:32]}).batch(32))])
    np.testing.assert_allclose(got["probabilities"], expected, atol=1e-5)  # the final checkpoint's model
    with pytest.raises(ValueError, match="TFLiteExporter got quantize='int4'"):
        trainer.TFLiteExporter("lite", RECEIVER, quantize="int4")


def test_a_model_needing_tensorflow_ops_is_named_refused_or_kept_with_a_warning(tmp_path, caplog):
    # A string hashed into buckets needs StringToHashBucketFast, which TF Lite has no builtin
    # kernel for: builtin-only conversion is refused naming it; "auto" keeps it as a Flex op,
    # warns, and says so in the result.
    hashed = fc.categorical_column_with_hash_bucket("s", 7)
    est = trainer.LinearClassifier([NUMERIC, hashed], model_dir=str(tmp_path / "m"))
    words = np.array([["a"], ["b"]] * 32)
    est.train(lambda: tf.data.Dataset.from_tensor_slices(({"x": X[:64], "s": words}, Y[:64])).batch(32), steps=2)
    receiver = trainer.export.build_raw_serving_input_receiver_fn(
        {"x": tf.TensorSpec([None, 3], tf.float32), "s": tf.TensorSpec([None, 1], tf.string)})
    with pytest.raises(ValueError, match=r"needs TensorFlow ops \[.*'StringToHashBucketFast'.*select_tf_ops='auto'"):
        trainer.export.export_tflite(est, receiver, str(tmp_path / "no.tflite"), signature_keys=["predict"],
                                     select_tf_ops=False)
    assert not os.path.exists(tmp_path / "no.tflite")
    saved = est.export_saved_model(str(tmp_path / "sm"), receiver).decode()
    with caplog.at_level("WARNING", logger="trainer.export.tflite"):
        result = trainer.export.convert_saved_model(saved, str(tmp_path / "flex.tflite"), signature_keys=["predict"])
    assert "StringToHashBucketFast" in result.tensorflow_ops and os.path.getsize(result.path) > 0
    assert any("Flex delegate" in r.getMessage() and "StringToHashBucketFast" in r.getMessage()
               for r in caplog.records)
    plain = trainer.export.convert_saved_model(saved,
                                               str(tmp_path / "again.tflite"), signature_keys=["predict"],
                                               select_tf_ops=True)
    assert plain.tensorflow_ops == result.tensorflow_ops
