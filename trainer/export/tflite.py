"""TensorFlow Lite export of a trained Estimator.

The Estimator is exported as a SavedModel with the given receiver (into a temporary
directory), and TensorFlow's `tf.lite.TFLiteConverter` turns the chosen signatures into one
``.tflite`` flatbuffer. Use a *raw-tensor* receiver
(`build_raw_serving_input_receiver_fn`): a model on a phone gets tensors, not serialized
tf.Examples. Ops that TF Lite has no builtin kernel for (the sparse lookups of categorical
columns in a linear model, for one) are kept as TensorFlow ("select") ops, which the
interpreter of the full ``tensorflow`` package runs; ``select_tf_ops=False`` refuses them
instead.

Example:
    >>> # receiver = trainer.export.build_raw_serving_input_receiver_fn(
    >>> #     {"x": tf.TensorSpec([None, 4], tf.float32)})
    >>> # path = trainer.export.export_tflite(estimator, receiver, "model.tflite", quantize="dynamic")
    >>> # runner = tf.lite.Interpreter(model_path=path).get_signature_runner("serving_default")
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile

import tensorflow as tf

__all__ = ["export_tflite", "QUANTIZATIONS"]

log = logging.getLogger(__name__)

# None: float32 as trained; "dynamic": int8 weights, float activations; "float16": float16 weights.
QUANTIZATIONS = (None, "dynamic", "float16")


def export_tflite(estimator, serving_input_receiver_fn, export_path, *, signature_keys=("serving_default",),
                  quantize=None, select_tf_ops="auto", checkpoint_path=None) -> str:
    """Writes the Estimator's model as a TF Lite flatbuffer; returns ``export_path``.

    Args:
        estimator: A trained `trainer.Estimator`.
        serving_input_receiver_fn: The receiver whose tensors the TF Lite model takes (a raw
            receiver; a parsing receiver needs ``ParseExample``, a select op).
        export_path: The ``.tflite`` file to write (replaced atomically).
        signature_keys: The SavedModel signatures to keep (the model_fn's export_outputs keys).
        quantize: None, ``"dynamic"`` (post-training dynamic-range: int8 weights) or
            ``"float16"``.
        select_tf_ops: ``"auto"`` (builtin ops, else TensorFlow ops for the rest), True (always
            allow TensorFlow ops) or False (builtin ops only; a model needing others is an error).
        checkpoint_path: A checkpoint to export (default: the newest).

    Raises:
        ValueError: a bad argument, a signature the model does not have, or a model the
            converter cannot convert (with its reason).
    """
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"export_tflite got quantize={quantize!r}; expected one of {list(QUANTIZATIONS)}.")
    if select_tf_ops not in ("auto", True, False):
        raise ValueError(f"export_tflite got select_tf_ops={select_tf_ops!r}; expected 'auto', True or False.")
    if isinstance(signature_keys, str) or not signature_keys:
        raise ValueError(f"export_tflite got signature_keys={signature_keys!r}; expected a non-empty list of "
                         "signature names, e.g. ['serving_default'].")
    export_path = os.fspath(export_path)
    staging = tempfile.mkdtemp(prefix="tflite-export-")
    try:
        saved_model = os.fsdecode(estimator.export_saved_model(staging, serving_input_receiver_fn,
                                                               checkpoint_path=checkpoint_path))
        available = set(tf.saved_model.load(saved_model).signatures)
        missing = [key for key in signature_keys if key not in available]
        if missing:
            raise ValueError(f"export_tflite got signature_keys {missing}, which the exported model does not "
                             f"have; it has {sorted(available)}.")
        attempts = [False, True] if select_tf_ops == "auto" else [bool(select_tf_ops)]
        for allow_select in attempts:
            try:
                flatbuffer = _convert(saved_model, list(signature_keys), quantize, allow_select)
                break
            except Exception as error:  # noqa: BLE001 (the converter raises several kinds)
                if allow_select != attempts[-1]:
                    log.info("TF Lite builtin ops cannot express the model (%s); using TensorFlow ops "
                             "for the rest", _first_line(error))
                    continue
                how = ("How to fix: pass select_tf_ops=True, or " if not allow_select else "How to fix: ")
                raise ValueError(
                    f"export_tflite could not convert the model: {_first_line(error)}. {how}export with a "
                    "raw-tensor receiver (trainer.export.build_raw_serving_input_receiver_fn) so that no "
                    "tf.Example parsing is in the graph.") from error
        directory = os.path.dirname(os.path.abspath(export_path))
        os.makedirs(directory, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, suffix=".tflite.tmp", delete=False) as f:
            f.write(flatbuffer)
        os.replace(f.name, export_path)
        return export_path
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _convert(saved_model: str, signature_keys: list[str], quantize, allow_select: bool) -> bytes:
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model, signature_keys=signature_keys)
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if allow_select:
        ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
    converter.target_spec.supported_ops = ops
    if quantize is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    for line in text.splitlines():
        if "error:" in line.lower() and "loc(" not in line:
            return line.strip()
    return text.splitlines()[0] if text else type(error).__name__
