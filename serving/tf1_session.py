"""Serving TF1 SavedModels that TensorFlow 2's loader cannot import.

This module is the project's one named exception to "no ``tf.compat.v1``
sessions": serving old exports is the point of a model server, and some TF1
SavedModels cannot be loaded by ``tf.saved_model.load`` at all, for example
TF Serving's own ``saved_model_half_plus_three`` ("Shapes must be equal
rank" while re-tracing its ParseExample) or graphs with reference-typed
variables (``float_ref``). TF Serving runs them in a session, and so does
this fallback. It is used only when ``tf.saved_model.load`` fails, and
nothing outside ``serving/`` imports it.

Each signature runs through a callable made once with
``Session.make_callable``: the feeds go to the signature's tensors as they
are, without the Python client's placeholder-shape check, so the session
accepts what the graph accepts, as TF Serving does.
"""

from __future__ import annotations

import threading

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2

from serving.signature import INIT_OP_KEY
from serving.signature import SERVE_TAG


class TF1SessionRuntime:
    """Runs the signatures of a TF1 SavedModel in a ``tf.compat.v1.Session``.

    Args:
        export_dir: The version directory.
        tags: MetaGraph tags to load (``serve``).
    """

    platform = "tensorflow"

    def __init__(self, export_dir: str, *, tags: tuple[str, ...] = (SERVE_TAG,)):
        self._graph = tf.Graph()
        self._session = tf.compat.v1.Session(graph=self._graph)
        try:
            with self._graph.as_default():
                meta_graph = tf.compat.v1.saved_model.loader.load(
                    self._session, list(tags), export_dir)
        except Exception:
            self._session.close()
            raise
        self.signature_defs: dict[str, meta_graph_pb2.SignatureDef] = {
            k: v for k, v in meta_graph.signature_def.items() if k != INIT_OP_KEY}
        self._callables: dict[str, tuple] = {}
        self._lock = threading.Lock()

    def _callable(self, key: str, input_keys: tuple[str, ...]):
        cache_key = (key, input_keys)
        entry = self._callables.get(cache_key)
        if entry is None:
            with self._lock:
                sig = self.signature_defs[key]
                feeds = [self._graph.get_tensor_by_name(sig.inputs[k].name) for k in input_keys]
                output_keys = tuple(sorted(sig.outputs))
                fetches = [self._graph.get_tensor_by_name(sig.outputs[k].name)
                           for k in output_keys]
                entry = (self._session.make_callable(fetches, feed_list=feeds), output_keys)
                self._callables[cache_key] = entry
        return entry

    def call(self, key: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs signature ``key`` on numpy ``inputs``."""
        input_keys = tuple(sorted(inputs))
        run, output_keys = self._callable(key, input_keys)
        values = run(*(inputs[k] for k in input_keys))
        return {k: np.asarray(v) for k, v in zip(output_keys, values)}

    def close(self) -> None:
        """Releases the session."""
        self._session.close()
