"""Serving TF1 SavedModels that TensorFlow 2's loader cannot import.

This module is the project's one named exception to "no ``tf.compat.v1``
sessions": serving old exports is the point of a model server, and some TF1
SavedModels cannot be loaded by ``tf.saved_model.load`` at all, for example
TF Serving's own ``saved_model_half_plus_three`` ("Shapes must be equal
rank" while re-tracing its ParseExample) or graphs with reference-typed
variables (``float_ref``). TF Serving runs them in a session, and so does
this fallback. It is used only when ``tf.saved_model.load`` fails, and
nothing outside ``serving/`` imports it.

TF Serving feeds a request's tensors to the graph as they are (``[3]`` to a
``[-1, 1]`` placeholder, say). The Python session checks feeds against the
placeholders' static shapes, so the graph is imported with each signature
input mapped to a new placeholder of unknown shape (``input_map``, passed
through ``loader.load`` to ``import_meta_graph``); the graph's own ops then
accept or reject the shape, as in TF Serving. Each signature runs through a
callable made once with ``Session.make_callable``.
"""

from __future__ import annotations

import threading

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2

from serving.signature import INIT_OP_KEY
from serving.signature import SERVE_TAG
from serving.signature import read_meta_graph


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
        self._feeds: dict[str, tf.Tensor] = {}
        try:
            with self._graph.as_default():
                input_map = self._unshaped_inputs(export_dir, tags)
                meta_graph = tf.compat.v1.saved_model.loader.load(
                    self._session, list(tags), export_dir, input_map=input_map)
        except Exception:
            self._session.close()
            raise
        self.signature_defs: dict[str, meta_graph_pb2.SignatureDef] = {
            k: v for k, v in meta_graph.signature_def.items() if k != INIT_OP_KEY}
        self._callables: dict[str, tuple] = {}
        self._lock = threading.Lock()

    def _unshaped_inputs(self, export_dir: str, tags: tuple[str, ...]) -> dict[str, tf.Tensor]:
        """A placeholder of unknown shape for each signature input tensor.

        The dtype comes from the graph (a Placeholder's ``dtype``, an
        Identity's ``T``); an input whose dtype the graph does not say is fed
        as it is.
        """
        meta_graph = read_meta_graph(export_dir, tags=tags)
        nodes = {node.name: node for node in meta_graph.graph_def.node}
        input_map = {}
        for key, sig in meta_graph.signature_def.items():
            if key == INIT_OP_KEY:
                continue
            for info in sig.inputs.values():
                op_name, _, index = info.name.partition(":")
                node = nodes.get(op_name)
                if node is None or index not in ("", "0") or info.name in input_map:
                    continue
                attr = "dtype" if node.op == "Placeholder" else "T" if node.op == "Identity" else ""
                if not attr or attr not in node.attr:
                    continue
                input_map[info.name] = tf.compat.v1.placeholder(
                    tf.dtypes.as_dtype(node.attr[attr].type), shape=None,
                    name="serving_feed_" + op_name.replace("/", "_"))
        self._feeds = dict(input_map)
        return input_map

    def _callable(self, key: str, input_keys: tuple[str, ...]):
        cache_key = (key, input_keys)
        entry = self._callables.get(cache_key)
        if entry is None:
            with self._lock:
                sig = self.signature_defs[key]
                feeds = [self._feeds[sig.inputs[k].name] if sig.inputs[k].name in self._feeds
                         else self._graph.get_tensor_by_name(sig.inputs[k].name)
                         for k in input_keys]
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
