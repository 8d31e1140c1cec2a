"""Tiny SavedModels for the serving tests, exported the way the trainer does.

TF2's ``tf.saved_model.save`` writes every signature with the method name
``tensorflow/serving/predict``. The project's trainer rewrites the method name
of classify/regress signatures in ``saved_model.pb``; ``export_tiny_model``
does the same so the server sees what a pushed model looks like.
"""

from __future__ import annotations

import os
import shutil

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_log_pb2

FEATURE_SPEC = {"x": tf.io.FixedLenFeature([3], tf.float32)}
LABELS = ("neg", "pos")


class TinyModel(tf.Module):
    """y = x . w + b with signatures for predict, classify, regress and more."""

    def __init__(self, weight: float):
        super().__init__()
        self.w = tf.Variable([[weight], [2.0 * weight], [3.0 * weight]], name="w")
        self.b = tf.Variable(0.5, name="b")

    def _logit(self, x):
        return tf.matmul(x, self.w) + self.b

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
    def predict(self, x):
        return {"y": self._logit(x), "doubled": 2.0 * x}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def classify(self, inputs):
        x = tf.io.parse_example(inputs, FEATURE_SPEC)["x"]
        p = tf.sigmoid(self._logit(x))
        n = tf.shape(x)[0]
        return {
            "classes": tf.tile(tf.constant([list(LABELS)]), [n, 1]),
            "scores": tf.concat([1.0 - p, p], axis=1),
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def regress(self, inputs):
        x = tf.io.parse_example(inputs, FEATURE_SPEC)["x"]
        return {"outputs": tf.squeeze(self._logit(x), axis=1)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="raw_bytes")])
    def echo(self, raw_bytes):
        return {"echo_bytes": raw_bytes, "length": tf.strings.length(raw_bytes)}

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.int64, name="a"),
            tf.TensorSpec([None, 2], tf.float32, name="b"),
        ]
    )
    def two_inputs(self, a, b):
        return {"total": tf.cast(a, tf.float32) + tf.reduce_sum(b, axis=1)}


METHOD_NAMES = {
    "classify": tf.saved_model.CLASSIFY_METHOD_NAME,
    "regress": tf.saved_model.REGRESS_METHOD_NAME,
}


def set_method_names(export_dir: str, method_names: dict[str, str]) -> None:
    """Rewrites signature method names in ``saved_model.pb`` like the trainer."""
    path = os.path.join(export_dir, "saved_model.pb")
    saved_model = saved_model_pb2.SavedModel()
    with open(path, "rb") as f:
        saved_model.ParseFromString(f.read())
    for meta_graph in saved_model.meta_graphs:
        for key, method in method_names.items():
            if key in meta_graph.signature_def:
                meta_graph.signature_def[key].method_name = method
    with open(path, "wb") as f:
        f.write(saved_model.SerializeToString())


def write_warmup(export_dir: str, requests: list) -> None:
    """Writes ``assets.extra/tf_serving_warmup_requests`` (PredictionLog TFRecord)."""
    extra = os.path.join(export_dir, "assets.extra")
    os.makedirs(extra, exist_ok=True)
    with tf.io.TFRecordWriter(os.path.join(extra, "tf_serving_warmup_requests")) as w:
        for request in requests:
            log = prediction_log_pb2.PredictionLog()
            if isinstance(request, predict_pb2.PredictRequest):
                log.predict_log.request.CopyFrom(request)
            else:
                raise TypeError(f"unsupported warmup request {type(request)}")
            w.write(log.SerializeToString())


def export_tiny_model(export_dir: str, *, weight: float = 1.0) -> str:
    """Exports TinyModel to ``export_dir`` with classify/regress method names."""
    model = TinyModel(weight)
    signatures = {
        "serving_default": model.predict,
        "classify": model.classify,
        "regress": model.regress,
        "echo": model.echo,
        "two_inputs": model.two_inputs,
    }
    tf.saved_model.save(model, export_dir, signatures=signatures)
    set_method_names(export_dir, METHOD_NAMES)
    return export_dir


def push_version(base_path: str, version: int, source_dir: str) -> str:
    """Copies ``source_dir`` into ``base_path/<version>`` atomically (like the Pusher)."""
    os.makedirs(base_path, exist_ok=True)
    tmp = os.path.join(base_path, f".tmp-{version}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source_dir, tmp)
    final = os.path.join(base_path, str(version))
    os.rename(tmp, final)
    return final
