"""One loaded model version and how its signatures are run.

A version directory is loaded by one of three runtimes, in this order:

1. ``model.tflite`` through the TF Lite interpreter, when the server runs with
   ``--prefer_tflite_model`` and the file is there (``serving.tflite_runtime``);
2. ``tf.saved_model.load`` (TF2 SavedModels, and most TF1 ones);
3. a TF1 session for TF1 SavedModels the TF2 loader cannot import
   (``serving.tf1_session``, the project's one use of ``tf.compat.v1``
   sessions), as TF Serving would still serve them.

Every runtime exposes the SignatureDefs that GetModelMetadata returns and a
``call(key, inputs)`` on numpy arrays; the servable adds input validation,
batching and error mapping on top, the same for all three.
"""

from __future__ import annotations

import dataclasses
import logging
import os

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2

from serving import errors
from serving.batching import BatchScheduler
from serving.signature import SignatureSpec
from serving.signature import read_meta_graph
from serving.signature import shape_matches
from serving.signature import signature_defs
from serving.signature import specs_from_defs
from serving.signature import validate_inputs

_log = logging.getLogger(__name__)
_CODES = {code.value[0]: code for code in grpc.StatusCode}


@dataclasses.dataclass(frozen=True)
class ServableOptions:
    """Per-server settings that change how a version is loaded and answered.

    Args:
        prefer_tflite_model: Serve ``model.tflite`` when a version has one
            (TF Serving's ``--prefer_tflite_model``).
        num_tflite_interpreters: TF Lite interpreters per version (requests
            run in parallel up to this many).
        enable_signature_method_name_check: Classify/Regress/MultiInference
            need signatures whose method_name says so (TF Serving's
            ``--enable_signature_method_name_check``, default off).
        serialize_as_tensor_content: Predict responses pack numeric outputs
            into ``tensor_content`` instead of the typed fields (TF Serving's
            ``--enable_serialization_as_tensor_content``).
        max_rows_per_request: Largest first dimension of a request's inputs
            (``--max_rows_per_request``); 0: no bound.
    """

    prefer_tflite_model: bool = False
    num_tflite_interpreters: int = 1
    enable_signature_method_name_check: bool = False
    serialize_as_tensor_content: bool = False
    max_rows_per_request: int = 0


class TF2Runtime:
    """``tf.saved_model.load`` and the loaded ``signatures``."""

    platform = "tensorflow"

    def __init__(self, export_dir: str):
        meta_graph = read_meta_graph(export_dir)
        self.signature_defs = signature_defs(meta_graph)
        self.metadata_signature_defs = dict(meta_graph.signature_def)
        loaded = tf.saved_model.load(export_dir)
        self._loaded = loaded  # Keeps the functions' variables alive.
        self._functions = {k: loaded.signatures[k] for k in self.signature_defs
                           if k in loaded.signatures}

    def call(self, key: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        function = self._functions.get(key)
        if function is None:
            raise errors.failed_precondition(
                f"Signature {key!r} is in saved_model.pb but tf.saved_model.load "
                "cannot call it; re-export the model with this signature."
            )
        outputs = function(**{k: tf.constant(v) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in outputs.items()}


def load_runtime(export_dir: str, options: ServableOptions):
    """The runtime for ``export_dir`` (see the module docstring for the order)."""
    from serving import tflite_runtime  # noqa: PLC0415 - only servers that serve TF Lite need it.

    tflite_path = os.path.join(export_dir, tflite_runtime.TFLITE_FILE)
    if options.prefer_tflite_model and os.path.isfile(tflite_path):
        return tflite_runtime.TFLiteRuntime(
            export_dir, num_interpreters=options.num_tflite_interpreters)
    if not any(os.path.isfile(os.path.join(export_dir, f))
               for f in ("saved_model.pb", "saved_model.pbtxt")):
        hint = (" It has model.tflite: start the server with --prefer_tflite_model=true."
                if os.path.isfile(tflite_path) else "")
        raise ValueError(f"{export_dir} holds no saved_model.pb.{hint}")
    try:
        return TF2Runtime(export_dir)
    except Exception as tf2_error:  # noqa: BLE001 - any TF2 failure tries the TF1 session.
        from serving import tf1_session  # noqa: PLC0415 - the legacy path, loaded on demand.

        try:
            runtime = tf1_session.TF1SessionRuntime(export_dir)
        except Exception as tf1_error:  # noqa: BLE001
            raise ValueError(
                f"tf.saved_model.load failed ({type(tf2_error).__name__}: {tf2_error}) and "
                f"so did the TF1 session loader ({type(tf1_error).__name__}: {tf1_error})."
            ) from tf1_error
        _log.info("Loaded %s through the TF1 session fallback; tf.saved_model.load said: %s",
                  export_dir, str(tf2_error).splitlines()[0] if str(tf2_error) else tf2_error)
        return runtime


class Servable:
    """One model version, loaded by the runtime that can serve it.

    Args:
        model_name: The served model's name.
        version: The numeric version directory it was loaded from.
        export_dir: The version directory.
        scheduler: If given, batchable signatures run through it.
        options: How to load and answer (TF Lite, method-name check...).

    Example:
        >>> s = Servable("m", 1, "/models/m/1")                  # doctest: +SKIP
        >>> s.run("serving_default", {"x": np.ones((1, 3), np.float32)})  # doctest: +SKIP
    """

    def __init__(self, model_name: str, version: int, export_dir: str, *,
                 scheduler: BatchScheduler | None = None,
                 options: ServableOptions | None = None):
        self.model_name = model_name
        self.version = version
        self.export_dir = export_dir
        self.options = options or ServableOptions()
        self.runtime = load_runtime(export_dir, self.options)
        self.signature_defs: dict[str, meta_graph_pb2.SignatureDef] = self.runtime.signature_defs
        # What GetModelMetadata returns: every SignatureDef in the file, the
        # ``__saved_model_init_op`` entry of TF2 exports included, as in TF Serving.
        self.metadata_signature_defs = getattr(
            self.runtime, "metadata_signature_defs", self.signature_defs)
        self.specs: dict[str, SignatureSpec] = specs_from_defs(
            self.signature_defs, dtypes=getattr(self.runtime, "input_dtypes", None))
        self._scheduler = scheduler

    def run(self, key: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Validates ``inputs`` and runs signature ``key``, batched if enabled.

        Names and dtypes must match the signature. A shape the SignatureDef
        does not declare (``[3]`` for a ``[-1, 1]`` input, say) is passed to
        the model, which decides, as in TF Serving; such requests are not
        batched with others.

        Raises:
            ServingError: INVALID_ARGUMENT for inputs that do not match the
                signature or that the model rejects.
        """
        spec = self.specs[key]
        validate_inputs(spec, inputs)
        self._check_rows(key, inputs)
        declared = all(shape_matches(spec.inputs[k].shape, v.shape) for k, v in inputs.items())
        if (
            self._scheduler is not None
            and declared
            and spec.batchable()
            and all(v.ndim and v.shape[0] > 0 for v in inputs.values())
        ):
            queue_key = (id(self), key, tuple(
                (k, v.shape[1:], v.dtype.str) for k, v in sorted(inputs.items())))
            return self._scheduler.schedule(
                queue_key, lambda batch: self.call(key, batch), inputs)
        return self.call(key, inputs, declared_shapes=declared)

    def _check_rows(self, key: str, inputs: dict[str, np.ndarray]) -> None:
        limit = self.options.max_rows_per_request
        if not limit:
            return
        for name, value in sorted(inputs.items()):
            if value.ndim and value.shape[0] > limit:
                raise errors.invalid_argument(
                    f"Input {name!r} of signature {key!r} sends {value.shape[0]} rows, more "
                    f"than the {limit} one request may send (--max_rows_per_request); split "
                    "it into several requests or raise the limit.")

    def call(self, key: str, inputs: dict[str, np.ndarray], *,
             declared_shapes: bool = True) -> dict[str, np.ndarray]:
        """Calls the runtime directly (no validation, no batching)."""
        try:
            return self.runtime.call(key, inputs)
        except errors.ServingError:
            raise
        except tf.errors.OpError as e:
            if not declared_shapes:
                raise self._shape_error(key, inputs, e.message) from e
            raise errors.ServingError(
                _CODES.get(e.error_code, grpc.StatusCode.INTERNAL),
                f"Model {self.model_name!r} version {self.version} signature {key!r} "
                f"failed on this request: {root_cause(e.message)}",
            ) from e
        except UnicodeDecodeError as e:
            # TensorFlow raises this instead of the op error when the op's message quotes
            # the request's bytes (a string that is not a tf.Example fed to ParseExample).
            detail = (e.object.decode("utf-8", "backslashreplace")
                      if isinstance(e.object, bytes) else str(e))
            raise errors.invalid_argument(
                f"Model {self.model_name!r} version {self.version} signature {key!r} "
                f"failed on this request: {detail[:2000]}") from e
        except (TypeError, ValueError) as e:
            if declared_shapes:
                raise
            raise self._shape_error(key, inputs, str(e)) from e

    def _shape_error(self, key: str, inputs: dict[str, np.ndarray], cause: str) -> errors.ServingError:
        spec = self.specs[key]
        odd = [(k, v) for k, v in sorted(inputs.items())
               if not shape_matches(spec.inputs[k].shape, v.shape)]
        return errors.invalid_argument(
            "; ".join(
                f"Input {k!r} of signature {key!r} expects shape "
                f"{spec.inputs[k].describe().split(' ', 1)[1]} but got {list(v.shape)}"
                for k, v in odd)
            + f", and model {self.model_name!r} version {self.version} rejected it: "
            f"{root_cause(cause)}. Send the declared shape (-1 marks a dimension of any size)."
        )


def root_cause(message: str) -> str:
    r"""The line of a TensorFlow error that says what went wrong.

    TF's graph execution errors start with "Graph execution error:" and a
    Python stack; the cause is the last line that is not part of the stack
    or the ``[[{{node ...}}]]`` trailer.

    Example:
        >>> root_cause("Graph execution error:\n\nDetected at node X defined at:\n  File a.py\n"
        ...            "Matrix size-incompatible: In[0]: [1,4]\n\t [[{{node MatMul}}]]")
        'Matrix size-incompatible: In[0]: [1,4]'
    """
    lines = [line.strip() for line in message.splitlines()]
    useful = [
        line for line in lines
        if line and not line.startswith(("[[", "File ", "Detected at node", "Graph execution error"))
        and not line.endswith("defined at (most recent call last):")
    ]
    if not useful:
        return message.strip()
    cause = useful[-1]
    return cause.split(" [[", 1)[0].split(" [Op:", 1)[0].strip()
