"""Which TF Serving call a SavedModel signature stands for, and whether tf.Examples can feed it.

The method name in ``saved_model.pb`` decides, as in TF Serving and TFX: a
``tensorflow/serving/classify`` signature gives ClassifyLogs, ``.../regress`` RegressLogs,
and any other signature taking one tensor of serialized tf.Examples PredictLogs. The
Trainer's ``serving_default`` and ``classification`` are classify (``regression`` for a
regressor), its ``predict`` is predict (`components.trainer.serving_export`).

Example:
    >>> read_signature(path, "serving_default", model_label="Model 7")  # doctest: +SKIP
    ScoringSignature(name='serving_default', method='classify', input_key='inputs', outputs=('classes', 'scores'))
"""

from __future__ import annotations

import dataclasses
from typing import Any

from components.base import ComponentError
from components.trainer.serving_export import CLASSIFY as CLASSIFY_METHOD
from components.trainer.serving_export import REGRESS as REGRESS_METHOD

CLASSIFY, REGRESS, PREDICT = "classify", "regress", "predict"
EXAMPLES_INPUT = "inputs"  # TF Serving's input key of classify/regress signatures
CLASSIFY_OUTPUTS = frozenset({"classes", "scores"})
REGRESS_OUTPUT = "outputs"
_DT_STRING = 7  # tensorflow.DataType DT_STRING


@dataclasses.dataclass(frozen=True)
class ScoringSignature:
    """A signature BulkInferrer can call with a batch of serialized tf.Examples.

    Attributes:
        name: The signature key.
        method: ``classify``, ``regress`` or ``predict``: which PredictionLog it gives.
        input_key: The signature's one input (serialized tf.Examples).
        outputs: Its output keys, sorted.
    """

    name: str
    method: str
    input_key: str
    outputs: tuple[str, ...]


def _problem(signature_def: Any) -> str | None:
    """Why this SignatureDef cannot take a batch of serialized tf.Examples (None when it can)."""
    inputs, outputs = dict(signature_def.inputs), set(signature_def.outputs)
    method = signature_def.method_name
    if method in (CLASSIFY_METHOD, REGRESS_METHOD):
        kind = "classify" if method == CLASSIFY_METHOD else "regress"
        if set(inputs) != {EXAMPLES_INPUT} or inputs[EXAMPLES_INPUT].dtype != _DT_STRING:
            return (f"its method is {method!r}, which needs exactly one string input {EXAMPLES_INPUT!r}, "
                    f"but it takes {sorted(inputs)}")
        if kind == "classify" and (not outputs or not outputs <= CLASSIFY_OUTPUTS):
            return f"a classify signature outputs 'classes' and/or 'scores', but it outputs {sorted(outputs)}"
        if kind == "regress" and outputs != {REGRESS_OUTPUT}:
            return f"a regress signature outputs 'outputs', but it outputs {sorted(outputs)}"
        return None
    strings = [k for k, info in inputs.items() if info.dtype == _DT_STRING]
    if len(inputs) != 1 or len(strings) != 1:
        return (f"it takes inputs {sorted(inputs)}, not one tensor of serialized tf.Examples "
                "(BulkInferrer feeds the Examples' records as they are stored)")
    return None


def read_signature(model_path: str, name: str, *, model_label: str) -> ScoringSignature:
    """The signature ``name`` of the SavedModel at ``model_path``, checked to take tf.Examples.

    Raises:
        ComponentError: naming the model, when there is no SavedModel there, no such
            signature, or the signature takes something other than serialized tf.Examples;
            the message lists the signatures that would work.
    """
    from trainer.export.saved_model import signature_defs

    try:
        signatures = {key: sig for key, sig in signature_defs(model_path).items()
                      if not key.startswith("__")}  # TF2's __saved_model_init_op is no signature to call
    except OSError as e:
        raise ComponentError(
            f"BulkInferrer got {model_label} whose SavedModel cannot be read ({e.strerror}: {e.filename}). "
            "How to fix: pass a Model produced by the Trainer.") from None
    usable = sorted(key for key, sig in signatures.items() if _problem(sig) is None)
    fix = (f"pass signature_name= one of {usable}" if usable else
           "export a signature that takes one tensor of serialized tf.Examples (the Trainer's "
           "serving_default and predict signatures do)")
    signature_def = signatures.get(name)
    if signature_def is None:
        raise ComponentError(
            f"BulkInferrer got signature_name={name!r}; {model_label} has no such signature (it has "
            f"{sorted(signatures)}). How to fix: {fix}.")
    problem = _problem(signature_def)
    if problem is not None:
        raise ComponentError(
            f"BulkInferrer got signature_name={name!r}; signature {name!r} of {model_label} cannot be "
            f"fed tf.Examples: {problem}. How to fix: {fix}.")
    method = {CLASSIFY_METHOD: CLASSIFY, REGRESS_METHOD: REGRESS}.get(signature_def.method_name, PREDICT)
    return ScoringSignature(name=name, method=method, input_key=next(iter(signature_def.inputs)),
                            outputs=tuple(sorted(signature_def.outputs)))
