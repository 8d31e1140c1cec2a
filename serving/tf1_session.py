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
``[-1, 1]`` placeholder, say), while the Python session checks each feed
against the fed tensor's static shape. So every signature input is fed
through a new placeholder of unknown shape, wired in with ``input_map``
(which ``loader.load`` passes to ``import_meta_graph``); the graph's own ops
then accept or reject the shape, as in TF Serving:

* inputs that are the graph's placeholders are remapped in the one shared
  import of the graph;
* a signature that feeds an intermediate tensor (``half_plus_three`` feeds
  ``x``, an Identity of its parsed tf.Examples) gets an import of its own
  under a name scope, because remapping that tensor in the shared import
  would cut it off from the other signatures computed through it.

Each signature then runs through a callable made once with
``Session.make_callable``.
"""

from __future__ import annotations

import threading

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2

from serving.signature import INIT_OP_KEY
from serving.signature import SERVE_TAG
from serving.signature import read_meta_graph


def _op_name(tensor_name: str) -> str:
    return tensor_name.partition(":")[0]


class TF1SessionRuntime:
    """Runs the signatures of a TF1 SavedModel in a TF1 session.

    Args:
        export_dir: The version directory.
        tags: MetaGraph tags to load (``serve``).

    Attributes:
        signature_defs: The SignatureDefs as stored (what GetModelMetadata shows).
        input_dtypes: ``{signature: {input: tf.DType}}`` as the graph is fed;
            some TF1 exports declare another dtype in their SignatureDef
            (``half_plus_three``'s regress signature says float for its
            serialized tf.Examples).
    """

    platform = "tensorflow"
    # The session is released with the runtime: an unloaded version is dropped by the
    # manager, and freed once the requests that resolved it have finished.

    def __init__(self, export_dir: str, *, tags: tuple[str, ...] = (SERVE_TAG,)):
        self._export_dir = export_dir
        self._tags = list(tags)
        meta_graph = read_meta_graph(export_dir, tags=tags)
        self.signature_defs: dict[str, meta_graph_pb2.SignatureDef] = {
            k: v for k, v in meta_graph.signature_def.items() if k != INIT_OP_KEY}
        self.metadata_signature_defs = dict(meta_graph.signature_def)
        placeholders = {n.name for n in meta_graph.graph_def.node if n.op == "Placeholder"}
        self._graph = tf.Graph()
        self._session = tf.compat.v1.Session(graph=self._graph)
        self._feeds: dict[str, dict[str, tf.Tensor]] = {}  # signature -> input -> fed tensor
        self._fetch_scope: dict[str, str] = {}  # signature -> name scope of its outputs
        self.input_dtypes: dict[str, dict[str, tf.DType]] = {}
        try:
            with self._graph.as_default():
                self._import_shared(meta_graph, placeholders)
                for i, (key, sig) in enumerate(sorted(self.signature_defs.items())):
                    if any(_op_name(t.name) not in placeholders for t in sig.inputs.values()):
                        self._import_for(key, sig, f"serving_signature_{i}")
        except Exception:
            self._session.close()
            raise
        self._callables: dict[tuple, tuple] = {}
        self._lock = threading.Lock()

    def _unshaped(self, tensor: tf.Tensor, name: str) -> tf.Tensor:
        return tf.compat.v1.placeholder(tensor.dtype, shape=None, name=name)

    def _import_shared(self, meta_graph, placeholders: set[str]) -> None:
        nodes = {n.name: n for n in meta_graph.graph_def.node}
        input_map = {}
        for sig in self.signature_defs.values():
            for info in sig.inputs.values():
                op = _op_name(info.name)
                if op in placeholders and info.name not in input_map:
                    dtype = tf.dtypes.as_dtype(nodes[op].attr["dtype"].type)
                    input_map[info.name] = tf.compat.v1.placeholder(
                        dtype, shape=None, name="serving_feed_" + op.replace("/", "_"))
        tf.compat.v1.saved_model.loader.load(
            self._session, self._tags, self._export_dir, input_map=input_map)
        for key, sig in self.signature_defs.items():
            self._fetch_scope[key] = ""
            feeds = {alias: input_map[info.name] if info.name in input_map
                     else self._graph.get_tensor_by_name(info.name)
                     for alias, info in sig.inputs.items()}
            self._feeds[key] = feeds
            self.input_dtypes[key] = {alias: t.dtype for alias, t in feeds.items()}

    def _import_for(self, key: str, sig: meta_graph_pb2.SignatureDef, scope: str) -> None:
        input_map = {}
        for info in sig.inputs.values():
            existing = self._graph.get_tensor_by_name(info.name)  # From the shared import.
            input_map[info.name] = self._unshaped(
                existing, f"{scope}_feed_{_op_name(info.name).replace('/', '_')}")
        tf.compat.v1.saved_model.loader.load(
            self._session, self._tags, self._export_dir, import_scope=scope, input_map=input_map)
        self._fetch_scope[key] = scope + "/"
        self._feeds[key] = {alias: input_map[info.name] for alias, info in sig.inputs.items()}
        self.input_dtypes[key] = {alias: t.dtype for alias, t in self._feeds[key].items()}

    def _callable(self, key: str, input_keys: tuple[str, ...]):
        cache_key = (key, input_keys)
        entry = self._callables.get(cache_key)
        if entry is None:
            with self._lock:
                sig = self.signature_defs[key]
                feeds = [self._feeds[key][k] for k in input_keys]
                output_keys = tuple(sorted(sig.outputs))
                scope = self._fetch_scope[key]
                fetches = [self._graph.get_tensor_by_name(scope + sig.outputs[k].name)
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
