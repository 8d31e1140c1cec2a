"""TensorFlow Lite export of a trained Estimator.

The Estimator is exported as a SavedModel with the given receiver (into a temporary
directory), and TensorFlow's `tf.lite.TFLiteConverter` turns the chosen signatures into one
``.tflite`` flatbuffer (`convert_saved_model` does the second half for any SavedModel). Use a
*raw-tensor* receiver (`build_raw_serving_input_receiver_fn`): a model on a phone gets
tensors, not serialized tf.Examples.

Ops that TF Lite has no builtin kernel for (``ParseExampleV2``, string hashing, ``AsString``,
``UpperBound`` for bucketizing) can be kept as TensorFlow ("select", Flex) ops. Such a model
runs only in an interpreter linked with TF Lite's Flex delegate (an app that adds the
select-TF-ops library): the ``tf.lite.Interpreter`` of the ``tensorflow`` pip package and
LiteRT's pip interpreter cannot run it, and neither can ``python -m serving
--prefer_tflite_model``. So ``select_tf_ops="auto"`` converts with builtin ops when it can and
otherwise keeps TensorFlow ops with a warning naming them; the result says which it did.

Example:
    >>> # receiver = trainer.export.build_raw_serving_input_receiver_fn(
    >>> #     {"x": tf.TensorSpec([None, 4], tf.float32)})
    >>> # path = trainer.export.export_tflite(estimator, receiver, "model.tflite", quantize="dynamic")
    >>> # runner = tf.lite.Interpreter(model_path=path).get_signature_runner("serving_default")
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import tempfile

import tensorflow as tf

__all__ = ["export_tflite", "convert_saved_model", "TFLiteConversion", "QUANTIZATIONS"]

log = logging.getLogger(__name__)

# None: float32 as trained; "dynamic": int8 weights, float activations; "float16": float16 weights.
QUANTIZATIONS = (None, "dynamic", "float16")


@dataclasses.dataclass(frozen=True)
class TFLiteConversion:
    """What `convert_saved_model` wrote.

    Attributes:
        path: The ``.tflite`` file.
        tensorflow_ops: The TensorFlow (Flex) ops the model keeps, sorted, e.g.
            ``["ParseExampleV2"]``; empty when every op is a TF Lite builtin. Non-empty means
            only an interpreter with the Flex delegate runs it (see the module docstring).
    """

    path: str
    tensorflow_ops: tuple[str, ...]


def export_tflite(estimator, serving_input_receiver_fn, export_path, *, signature_keys=("serving_default",),
                  quantize=None, select_tf_ops="auto", checkpoint_path=None) -> str:
    """Writes the Estimator's model as a TF Lite flatbuffer; returns ``export_path``.

    Args:
        estimator: A trained `trainer.Estimator`.
        serving_input_receiver_fn: The receiver whose tensors the TF Lite model takes (a raw
            receiver; a parsing receiver needs ``ParseExample``, a TensorFlow op).
        export_path: The ``.tflite`` file to write (replaced atomically).
        signature_keys: The SavedModel signatures to keep (the model_fn's export_outputs keys).
        quantize: None, ``"dynamic"`` (post-training dynamic-range: int8 weights) or
            ``"float16"``.
        select_tf_ops: ``"auto"`` (builtin ops, else TensorFlow ops for the rest, with a
            warning naming them), True (always allow TensorFlow ops) or False (builtin ops
            only; a model needing others is an error naming them).
        checkpoint_path: A checkpoint to export (default: the newest).

    Raises:
        ValueError: a bad argument, a signature the model does not have, or a model the
            converter cannot convert (with its reason).
    """
    _check_arguments(quantize, select_tf_ops, signature_keys, "export_tflite")
    staging = tempfile.mkdtemp(prefix="tflite-export-")
    try:
        saved_model = os.fsdecode(estimator.export_saved_model(staging, serving_input_receiver_fn,
                                                               checkpoint_path=checkpoint_path))
        return convert_saved_model(saved_model, export_path, signature_keys=signature_keys, quantize=quantize,
                                   select_tf_ops=select_tf_ops).path
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def convert_saved_model(saved_model_dir, export_path, *, signature_keys=("serving_default",), quantize=None,
                        select_tf_ops="auto") -> TFLiteConversion:
    """Converts signatures of a SavedModel into one ``.tflite`` file (written atomically).

    Arguments as `export_tflite`'s. Returns a `TFLiteConversion` naming the TensorFlow ops
    the model keeps.
    """
    _check_arguments(quantize, select_tf_ops, signature_keys, "convert_saved_model")
    saved_model_dir, export_path = os.fspath(saved_model_dir), os.fspath(export_path)
    available = set(tf.saved_model.load(saved_model_dir).signatures)
    missing = [key for key in signature_keys if key not in available]
    if missing:
        raise ValueError(f"export_tflite got signature_keys {missing}, which the exported model does not "
                         f"have; it has {sorted(available)}.")
    tensorflow_ops: tuple[str, ...] = ()
    try:  # builtin ops only first: the error names the TensorFlow ops the model would keep
        flatbuffer = _convert(saved_model_dir, list(signature_keys), quantize, False)
    except Exception as error:  # noqa: BLE001 (the converter raises several kinds)
        tensorflow_ops = _flex_ops(error)
        if select_tf_ops is False or not tensorflow_ops:
            reason = (f"it needs TensorFlow ops {list(tensorflow_ops)}" if tensorflow_ops else _first_line(error))
            how = ("pass select_tf_ops='auto' (an interpreter with the Flex delegate runs TensorFlow ops), or "
                   if tensorflow_ops else "")
            raise ValueError(
                f"export_tflite could not convert the model with TF Lite builtin ops: {reason}. How to fix: "
                f"{how}export with a raw-tensor receiver (trainer.export.build_raw_serving_input_receiver_fn) "
                "so that no tf.Example parsing is in the graph, and avoid string hashing.") from error
        if select_tf_ops == "auto":
            log.warning("the TF Lite model keeps TensorFlow ops %s (no TF Lite builtin kernels): only an "
                        "interpreter with TF Lite's Flex delegate runs it; tf.lite.Interpreter of the pip "
                        "package and `python -m serving --prefer_tflite_model` cannot", list(tensorflow_ops))
        flatbuffer = _convert_or_explain(saved_model_dir, signature_keys, quantize, True)
    directory = os.path.dirname(os.path.abspath(export_path))
    os.makedirs(directory, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=directory, suffix=".tflite.tmp", delete=False) as f:
        f.write(flatbuffer)
    os.replace(f.name, export_path)
    return TFLiteConversion(export_path, tensorflow_ops)


def _check_arguments(quantize, select_tf_ops, signature_keys, caller) -> None:
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"{caller} got quantize={quantize!r}; expected one of {list(QUANTIZATIONS)}.")
    if select_tf_ops not in ("auto", True, False):
        raise ValueError(f"{caller} got select_tf_ops={select_tf_ops!r}; expected 'auto', True or False.")
    if isinstance(signature_keys, str) or not signature_keys:
        raise ValueError(f"{caller} got signature_keys={signature_keys!r}; expected a non-empty list of "
                         "signature names, e.g. ['serving_default'].")


def _convert_or_explain(saved_model_dir, signature_keys, quantize, allow_select) -> bytes:
    try:
        return _convert(saved_model_dir, list(signature_keys), quantize, allow_select)
    except Exception as error:  # noqa: BLE001 (the converter raises several kinds)
        raise ValueError(f"export_tflite could not convert the model: {_first_line(error)}. How to fix: export "
                         "with a raw-tensor receiver (trainer.export.build_raw_serving_input_receiver_fn) so "
                         "that no tf.Example parsing is in the graph.") from error


def _flex_ops(error: BaseException) -> tuple[str, ...]:
    """The TensorFlow ops a builtin-only conversion error names (``'tf.X' op is neither a
    custom op nor a flex op``, or a ``Flex ops: FlexX, FlexY`` list)."""
    text = str(error)
    names = set(re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op", text))
    for listed in re.findall(r"Flex ops: ([^\n]*)", text):
        names.update(n.strip().removeprefix("Flex") for n in listed.split(",") if n.strip())
    return tuple(sorted(names))


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
