"""The newer estimators (KMeansClustering, GANEstimator) round-trip through the model server:
their exports, served by `python -m serving` (one process, a model config file), answer
tensorflow-serving-api's Predict stub as the estimators' own predict does."""

from __future__ import annotations

import pathlib

import numpy as np
import tensorflow as tf

import trainer
from tests.server_process import predict_through_python_m_serving
from tests.trainer import test_gan

ROOT = pathlib.Path(__file__).resolve().parents[2]
POINTS = np.concatenate([c + 0.5 * np.random.default_rng(0).standard_normal((40, 2))
                         for c in ([0.0, 0.0], [10.0, 0.0], [0.0, 10.0])]).astype(np.float32)


def _kmeans(tmp_path):
    km = trainer.KMeansClustering(3, model_dir=str(tmp_path / "kmeans"), initial_clusters="kmeans_plus_plus",
                                  use_mini_batch=False, seed=3,
                                  feature_columns=[trainer.feature_column.numeric_column("x", shape=2)])
    km.train(lambda: tf.data.Dataset.from_tensors({"x": POINTS}), steps=5)
    receiver = trainer.export.build_raw_serving_input_receiver_fn({"x": tf.TensorSpec([None, 2], tf.float32)})
    km.export_saved_model(str(tmp_path / "served" / "kmeans"), receiver)
    expected = np.array(list(km.predict_cluster_index(lambda: tf.data.Dataset.from_tensors({"x": POINTS}))))
    return {"x": POINTS}, "cluster_index", expected


def _gan(tmp_path):
    est = test_gan.make(tmp_path / "gan")
    est.train(test_gan.input_fn, steps=50)
    raw = trainer.export.build_raw_serving_input_receiver_fn({"noise": tf.TensorSpec([None, 2], tf.float32)})

    def receiver():
        received = raw()
        return trainer.export.TensorServingInputReceiver(received.features["noise"], received.receiver_tensors)

    est.export_saved_model(str(tmp_path / "served" / "gan"), receiver)
    noise = test_gan.TEST_NOISE[:64]
    expected = np.array(list(est.predict(lambda: tf.data.Dataset.from_tensor_slices(noise).batch(64))))
    return {"noise": noise}, "generated", expected


def test_kmeans_and_gan_exports_answer_through_python_m_serving(tmp_path):
    cases = {"kmeans": _kmeans(tmp_path), "gan": _gan(tmp_path)}
    answers = predict_through_python_m_serving(
        {name: tmp_path / "served" / name for name in cases},
        [(name, "serving_default", inputs, output) for name, (inputs, output, _) in cases.items()], cwd=ROOT)
    for answer, (name, (_, _, expected)) in zip(answers, cases.items()):
        # The same SavedModel graph as predict's, on the same float32 inputs.
        np.testing.assert_allclose(answer, expected, atol=1e-5, err_msg=name)
