"""One loaded SavedModel version and how its signatures are run."""

from __future__ import annotations

import logging

import grpc
import numpy as np
import tensorflow as tf

from serving import errors
from serving.batching import BatchScheduler
from serving.signature import SignatureSpec
from serving.signature import read_meta_graph
from serving.signature import signature_specs
from serving.signature import validate_inputs

_log = logging.getLogger(__name__)
_CODES = {code.value[0]: code for code in grpc.StatusCode}


class Servable:
    """A SavedModel version loaded with ``tf.saved_model.load``.

    Args:
        model_name: The served model's name.
        version: The numeric version directory it was loaded from.
        export_dir: The version directory.
        scheduler: If given, batchable signatures run through it.

    Example:
        >>> s = Servable("m", 1, "/models/m/1")                  # doctest: +SKIP
        >>> s.run("serving_default", {"x": np.ones((1, 3), np.float32)})  # doctest: +SKIP
    """

    def __init__(self, model_name: str, version: int, export_dir: str, *,
                 scheduler: BatchScheduler | None = None):
        self.model_name = model_name
        self.version = version
        self.export_dir = export_dir
        self.meta_graph = read_meta_graph(export_dir)
        self.specs: dict[str, SignatureSpec] = signature_specs(self.meta_graph)
        self._loaded = tf.saved_model.load(export_dir)
        self._functions = {
            key: self._loaded.signatures[key]
            for key in self.specs if key in self._loaded.signatures
        }
        self._scheduler = scheduler

    def run(self, key: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Validates ``inputs`` and runs signature ``key``, batched if enabled.

        Raises:
            ServingError: INVALID_ARGUMENT for inputs that do not match the
                signature or that the model rejects.
        """
        spec = self.specs[key]
        validate_inputs(spec, inputs)
        if (
            self._scheduler is not None
            and spec.batchable()
            and all(v.ndim and v.shape[0] > 0 for v in inputs.values())
        ):
            queue_key = (id(self), key, tuple(
                (k, v.shape[1:], v.dtype.str) for k, v in sorted(inputs.items())))
            return self._scheduler.schedule(
                queue_key, lambda batch: self.call(key, batch), inputs)
        return self.call(key, inputs)

    def call(self, key: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Calls ``loaded.signatures[key]`` directly (no validation, no batching)."""
        function = self._functions.get(key)
        if function is None:
            raise errors.failed_precondition(
                f"Signature {key!r} is in saved_model.pb but tf.saved_model.load "
                "cannot call it; re-export the model with this signature."
            )
        try:
            outputs = function(**{k: tf.constant(v) for k, v in inputs.items()})
        except tf.errors.OpError as e:
            raise errors.ServingError(
                _CODES.get(e.error_code, grpc.StatusCode.INTERNAL),
                f"Model {self.model_name!r} version {self.version} signature {key!r} "
                f"failed on this request: {e.message}",
            ) from e
        return {k: v.numpy() for k, v in outputs.items()}
