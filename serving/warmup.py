"""Replaying ``assets.extra/tf_serving_warmup_requests`` before a version serves.

The file is a TFRecord of ``PredictionLog`` protos, the format TF Serving
reads. Each request runs ``num_request_iterations`` times against the freshly
loaded servable; any failure fails the load, so a version whose warmup breaks
is never served.
"""

from __future__ import annotations

import os

import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from serving import inference
from serving.servable import Servable

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_WARMUP_RECORDS = 1000

_HANDLERS = {
    "predict_log": inference.predict,
    "classify_log": inference.classify,
    "regress_log": inference.regress,
    "multi_inference_log": inference.multi_inference,
}


def run_warmup(servable: Servable, *, num_request_iterations: int = 1) -> int:
    """Replays the warmup requests of ``servable``; returns how many ran.

    Raises:
        ValueError: if the file holds an unsupported or failing request.
    """
    path = os.path.join(servable.export_dir, WARMUP_FILE)
    if not os.path.exists(path):
        return 0
    count = 0
    for record in tf.data.TFRecordDataset(path):
        if count >= MAX_WARMUP_RECORDS:
            raise ValueError(
                f"{path} holds more than {MAX_WARMUP_RECORDS} warmup records; keep at "
                f"most {MAX_WARMUP_RECORDS}."
            )
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record.numpy())
        kind = log.WhichOneof("log_type")
        handler = _HANDLERS.get(kind)
        if handler is None:
            raise ValueError(
                f"Warmup record {count} in {path} is a {kind!r} log; supported: "
                f"{sorted(_HANDLERS)}."
            )
        request = getattr(log, kind).request
        specs = ([t.model_spec for t in request.tasks] if kind == "multi_inference_log"
                 else [request.model_spec])
        for spec in specs:
            spec.name = servable.model_name
        for _ in range(num_request_iterations):
            try:
                handler(servable, request)
            except Exception as e:
                raise ValueError(f"Warmup record {count} in {path} failed: {e}") from e
        count += 1
    return count
