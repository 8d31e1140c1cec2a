"""tf.Example inputs of Classify/Regress and their result messages."""

from __future__ import annotations

import numpy as np
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import input_pb2
from tensorflow_serving.apis import regression_pb2

from serving import errors

CLASSES = "classes"
SCORES = "scores"
OUTPUTS = "outputs"


def serialize_input(input_proto: input_pb2.Input) -> np.ndarray:
    """Serialized tf.Examples of an ``Input`` as a 1-D object array.

    ``ExampleListWithContext`` merges the context into every example (the
    example's own features win), as TF Serving does, by concatenating the
    serialized messages.

    Raises:
        ServingError: INVALID_ARGUMENT if there are no examples.
    """
    kind = input_proto.WhichOneof("kind")
    if kind == "example_list":
        examples = input_proto.example_list.examples
        serialized = [e.SerializeToString() for e in examples]
    elif kind == "example_list_with_context":
        with_context = input_proto.example_list_with_context
        context = with_context.context.SerializeToString()
        serialized = [context + e.SerializeToString() for e in with_context.examples]
    else:
        serialized = []
    if not serialized:
        raise errors.invalid_argument(
            "Input is empty: set input.example_list.examples (or "
            "input.example_list_with_context.examples) to at least one tf.Example."
        )
    array = np.empty(len(serialized), dtype=object)
    array[:] = serialized
    return array


def classification_result(outputs: dict[str, np.ndarray], n: int, *, signature: str):
    """Builds a ``ClassificationResult`` from ``classes``/``scores`` outputs."""
    classes = outputs.get(CLASSES)
    scores = outputs.get(SCORES)
    if scores is not None and scores.ndim == 1:
        scores = scores[:, None]
    if classes is not None and classes.ndim == 1:
        classes = classes[:, None]
    for name, value in ((CLASSES, classes), (SCORES, scores)):
        if value is not None and (value.ndim != 2 or value.shape[0] != n):
            raise errors.invalid_argument(
                f"Classification signature {signature!r} returned {name!r} with shape "
                f"{list(value.shape)}; expected [{n}, num_classes] for {n} examples."
            )
    if classes is not None and scores is not None and classes.shape != scores.shape:
        raise errors.invalid_argument(
            f"Classification signature {signature!r} returned classes of shape "
            f"{list(classes.shape)} and scores of shape {list(scores.shape)}; they must match."
        )
    result = classification_pb2.ClassificationResult()
    k = (classes if classes is not None else scores).shape[1]
    for i in range(n):
        classifications = result.classifications.add()
        for j in range(k):
            cls = classifications.classes.add()
            if classes is not None:
                label = classes[i, j]
                cls.label = label.decode("utf-8", "replace") if isinstance(label, bytes) else str(label)
            if scores is not None:
                cls.score = float(scores[i, j])
    return result


def regression_result(outputs: dict[str, np.ndarray], n: int, *, signature: str):
    """Builds a ``RegressionResult`` from the ``outputs`` output ([n] or [n, 1])."""
    values = outputs[OUTPUTS]
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1 or values.shape[0] != n:
        raise errors.invalid_argument(
            f"Regression signature {signature!r} returned 'outputs' with shape "
            f"{list(values.shape)}; expected [{n}] or [{n}, 1] for {n} examples."
        )
    result = regression_pb2.RegressionResult()
    for value in values:
        result.regressions.add(value=float(value))
    return result
