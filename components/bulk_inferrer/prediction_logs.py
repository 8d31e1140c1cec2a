"""TF Serving ``PredictionLog`` protos, one per example: the request TF Serving would have got
for that example, and the response it would have sent.

* classify: a ``ClassifyLog`` (a ClassificationRequest holding the tf.Example, a
  ClassificationResponse with one ``Classifications`` of (label, score) per class);
* regress: a ``RegressLog`` (the tf.Example, one ``Regression`` value);
* predict: a ``PredictLog`` (the serialized tf.Example as a string tensor of shape [1] under the
  signature's input key; each output's row for that example, shape [1, ...]).

The responses are built as the project's server builds them (`serving/examples.py`), so a log
and the server's answer to the same example compare field by field.

Example:
    >>> import numpy as np
    >>> logs = prediction_logs(ScoringSignature("serving_default", "regress", "inputs", ("outputs",)),
    ...                        [b""], {"outputs": np.array([[2.5]], np.float32)})
    >>> from tensorflow_serving.apis import prediction_log_pb2
    >>> prediction_log_pb2.PredictionLog.FromString(logs[0]).regress_log.response.result.regressions[0].value
    2.5
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from components.bulk_inferrer.signature import CLASSIFY, REGRESS, ScoringSignature
from components.bulk_inferrer.tables import as_text

_DT_STRING = 7  # tensorflow.DataType DT_STRING


def _classify_logs(name: str, serialized: Sequence[bytes], outputs: Mapping[str, np.ndarray]) -> list[bytes]:
    from tensorflow_serving.apis import prediction_log_pb2

    n = len(serialized)
    scores, classes = outputs.get("scores"), outputs.get("classes")
    scores = None if scores is None else scores.reshape(n, -1)
    classes = None if classes is None else classes.reshape(n, -1)
    width = (scores if scores is not None else classes).shape[1]
    logs = []
    for i, record in enumerate(serialized):
        log = prediction_log_pb2.PredictionLog()
        request, response = log.classify_log.request, log.classify_log.response
        request.model_spec.signature_name = response.model_spec.signature_name = name
        request.input.example_list.examples.add().ParseFromString(record)
        classifications = response.result.classifications.add()
        for j in range(width):
            entry = classifications.classes.add()
            if classes is not None:
                entry.label = as_text(classes[i, j])
            if scores is not None:
                entry.score = float(scores[i, j])
        logs.append(log.SerializeToString())
    return logs


def _regress_logs(name: str, serialized: Sequence[bytes], outputs: Mapping[str, np.ndarray]) -> list[bytes]:
    from tensorflow_serving.apis import prediction_log_pb2

    values = outputs["outputs"].reshape(len(serialized))
    logs = []
    for record, value in zip(serialized, values.tolist()):
        log = prediction_log_pb2.PredictionLog()
        request, response = log.regress_log.request, log.regress_log.response
        request.model_spec.signature_name = response.model_spec.signature_name = name
        request.input.example_list.examples.add().ParseFromString(record)
        response.result.regressions.add(value=value)
        logs.append(log.SerializeToString())
    return logs


class _Rows:
    """One output of a batch, cut into per-example TensorProto fields once (not per example)."""

    def __init__(self, array: np.ndarray, n: int):
        import tensorflow as tf

        self.shape = (1, *array.shape[1:])  # the batch dimension kept, as 1
        self.strings = array.dtype == object or array.dtype.kind in "SU"
        if self.strings:
            self.dtype = _DT_STRING
            self.values = [[v if isinstance(v, bytes) else str(v).encode() for v in row]
                           for row in array.reshape(n, -1).tolist()]
        else:
            self.dtype = tf.as_dtype(array.dtype).as_datatype_enum
            content = np.ascontiguousarray(array).tobytes()
            size = len(content) // n if n else 0
            self.values = [content[i * size:(i + 1) * size] for i in range(n)]

    def fill(self, tensor, row: int) -> None:
        tensor.dtype = self.dtype
        for size in self.shape:
            tensor.tensor_shape.dim.add(size=size)
        if self.strings:
            tensor.string_val.extend(self.values[row])
        else:
            tensor.tensor_content = self.values[row]


def _predict_logs(signature: ScoringSignature, serialized: Sequence[bytes],
                  outputs: Mapping[str, np.ndarray]) -> list[bytes]:
    from tensorflow_serving.apis import prediction_log_pb2

    rows = [(key, _Rows(outputs[key], len(serialized))) for key in sorted(outputs)]
    logs = []
    for i, record in enumerate(serialized):
        log = prediction_log_pb2.PredictionLog()
        request, response = log.predict_log.request, log.predict_log.response
        request.model_spec.signature_name = response.model_spec.signature_name = signature.name
        tensor = request.inputs[signature.input_key]
        tensor.dtype = _DT_STRING
        tensor.tensor_shape.dim.add(size=1)
        tensor.string_val.append(record)
        for key, output in rows:
            output.fill(response.outputs[key], i)
        logs.append(log.SerializeToString())
    return logs


def prediction_logs(signature: ScoringSignature, serialized: Sequence[bytes],
                    outputs: Mapping[str, np.ndarray]) -> list[bytes]:
    """One serialized PredictionLog per example of ``serialized``, from the signature's ``outputs``."""
    if signature.method == CLASSIFY:
        return _classify_logs(signature.name, serialized, outputs)
    if signature.method == REGRESS:
        return _regress_logs(signature.name, serialized, outputs)
    return _predict_logs(signature, serialized, outputs)
