"""What a `model_fn` exports for serving: one object per SavedModel signature.

Each output knows the TF Serving method it stands for and turns the receiver
tensors into the inputs of its signature, so the exported model answers
TF Serving's Classify, Regress and Predict APIs.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["ExportOutput", "ClassificationOutput", "RegressionOutput", "PredictOutput"]


class ExportOutput:
    """Base class of the export outputs: subclasses set `method_name`."""

    method_name: str = ""

    def signature_inputs(self, receiver_tensors: dict) -> dict:
        """Maps the receiver tensors to the signature's named inputs."""
        raise NotImplementedError

    def signature_outputs(self) -> dict:
        """The signature's named output tensors."""
        raise NotImplementedError


def _single_string_input(kind: str, receiver_tensors: dict) -> dict:
    if len(receiver_tensors) != 1:
        raise ValueError(
            f"{kind} signatures take a single input of serialized tf.Examples; the "
            f"serving_input_receiver_fn gave {sorted(receiver_tensors)}. Use "
            "build_parsing_serving_input_receiver_fn, or export a PredictOutput instead."
        )
    (tensor,) = receiver_tensors.values()
    if tensor.dtype != tf.string:
        raise ValueError(
            f"{kind} signatures take serialized tf.Examples (tf.string); the receiver "
            f"tensor has dtype {tensor.dtype.name}. Use a PredictOutput for raw tensors."
        )
    return {tf.saved_model.CLASSIFY_INPUTS: tensor}


class ClassificationOutput(ExportOutput):
    """A classify signature: ``classes`` (string) and/or ``scores`` (float).

    Args:
        scores: float tensor ``[batch, n_classes]``, or None.
        classes: string tensor ``[batch, n_classes]``, or None.

    Example:
        >>> out = ClassificationOutput(scores=tf.constant([[0.3, 0.7]]))
        >>> sorted(out.signature_outputs())
        ['scores']
    """

    method_name = tf.saved_model.CLASSIFY_METHOD_NAME

    def __init__(self, scores=None, classes=None):
        if scores is None and classes is None:
            raise ValueError(
                "ClassificationOutput got scores=None and classes=None; at least one is required."
            )
        if scores is not None and not (isinstance(scores, tf.Tensor) and scores.dtype.is_floating):
            raise ValueError(
                f"ClassificationOutput got scores={scores!r}; expected a float Tensor."
            )
        if classes is not None and not (isinstance(classes, tf.Tensor) and classes.dtype == tf.string):
            raise ValueError(
                f"ClassificationOutput got classes={classes!r}; expected a string Tensor. "
                "Convert class ids with tf.strings.as_string."
            )
        self.scores = scores
        self.classes = classes

    def signature_inputs(self, receiver_tensors):
        return _single_string_input("Classification", receiver_tensors)

    def signature_outputs(self):
        outputs = {}
        if self.classes is not None:
            outputs[tf.saved_model.CLASSIFY_OUTPUT_CLASSES] = self.classes
        if self.scores is not None:
            outputs[tf.saved_model.CLASSIFY_OUTPUT_SCORES] = self.scores
        return outputs


class RegressionOutput(ExportOutput):
    """A regress signature with one float output ``outputs``.

    Args:
        value: float tensor ``[batch]`` or ``[batch, 1]``.
    """

    method_name = tf.saved_model.REGRESS_METHOD_NAME

    def __init__(self, value):
        if not (isinstance(value, tf.Tensor) and value.dtype.is_floating):
            raise ValueError(f"RegressionOutput got value={value!r}; expected a float Tensor.")
        self.value = value

    def signature_inputs(self, receiver_tensors):
        return _single_string_input("Regression", receiver_tensors)

    def signature_outputs(self):
        return {tf.saved_model.REGRESS_OUTPUTS: self.value}


class PredictOutput(ExportOutput):
    """A predict signature: any dict of named tensors (or one tensor, named ``output``).

    Its inputs are the receiver tensors under their own names (``examples``
    for the parsing receiver).
    """

    method_name = tf.saved_model.PREDICT_METHOD_NAME

    def __init__(self, outputs):
        if isinstance(outputs, tf.Tensor):
            outputs = {"output": outputs}
        if not isinstance(outputs, dict) or not outputs:
            raise ValueError(
                f"PredictOutput got outputs={outputs!r}; expected a Tensor or a non-empty "
                "dict of string -> Tensor."
            )
        for key, value in outputs.items():
            if not isinstance(key, str):
                raise ValueError(f"PredictOutput output keys must be strings; got {key!r}.")
            if not isinstance(value, (tf.Tensor, tf.SparseTensor)):
                raise ValueError(
                    f"PredictOutput got outputs[{key!r}]={value!r}; expected a Tensor."
                )
        self.outputs = dict(outputs)

    def signature_inputs(self, receiver_tensors):
        return dict(receiver_tensors)

    def signature_outputs(self):
        return dict(self.outputs)
