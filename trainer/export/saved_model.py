"""Writes a SavedModel whose signatures TF Serving and `tf.saved_model.load` accept."""

from __future__ import annotations

import logging
import os
import shutil
import time

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2  # generated protos, not private API
from google.protobuf import text_format

from trainer.export.export_output import ClassificationOutput, RegressionOutput
from trainer.export.receivers import ServingInputReceiver, receiver_session

__all__ = ["write_saved_model", "set_method_names", "signature_defs", "fresh_timestamp_dir"]

log = logging.getLogger("trainer")


def _discover(serving_input_receiver_fn):
    """Runs the receiver fn in a scratch graph to learn its request tensors."""
    with tf.Graph().as_default(), receiver_session() as session:
        receiver = serving_input_receiver_fn()
        if not isinstance(receiver, ServingInputReceiver):
            raise TypeError(
                f"serving_input_receiver_fn returned {type(receiver).__name__}; expected a "
                "trainer.export.ServingInputReceiver."
            )
        index_of = {}
        for key, tensor in receiver.receiver_tensors.items():
            matches = [i for i, made in enumerate(session.made) if made is tensor]
            if not matches:
                raise ValueError(
                    f"serving_input_receiver_fn: receiver_tensors[{key!r}] was not made with "
                    "trainer.export.placeholder(...). Request tensors must be placeholders."
                )
            index_of[key] = matches[0]
    return session.specs, index_of


def write_saved_model(export_dir_base, serving_input_receiver_fn, model_call, store, restore, *,
                      assets_extra=None, as_text=False) -> str:
    """Exports ``model_call``'s PREDICT-mode spec; returns ``<base>/<timestamp>``.

    Args:
        model_call: ``features -> EstimatorSpec`` (PREDICT mode), using ``store``.
        store: the `VariableStore` the traces fill.
        restore: called once the variables exist, to load their trained values.
    """
    specs, index_of = _discover(serving_input_receiver_fn)
    keys = sorted(index_of)

    def receive(args_by_key):
        supply = [None] * len(specs)
        for key, tensor in args_by_key.items():
            supply[index_of[key]] = tensor
        with receiver_session(supply):
            receiver = serving_input_receiver_fn()
        features = receiver.features
        return features, receiver.receiver_tensors

    # A first trace tells which signatures the model_fn exports (and creates the variables).
    probe_holder = {}

    def probe(*args):
        features, _ = receive(dict(zip(keys, args)))
        probe_holder["spec"] = spec = model_call(features)
        return tf.nest.flatten({k: o.signature_outputs() for k, o in spec.export_outputs.items()})

    tf.function(probe).get_concrete_function(*[_named(specs[index_of[k]], k) for k in keys])
    export_outputs = probe_holder["spec"].export_outputs

    # As tf.estimator did, a classify/regress signature that the receiver cannot feed (it takes
    # one tensor of serialized tf.Examples) is left out with a warning, and the export fails only
    # when no signature is left: a raw receiver on a canned model exports its 'predict' signature.
    signatures, excluded = {}, {}
    for signature_key, output in sorted(export_outputs.items()):
        problem = _unservable(signature_key, output, keys, specs, index_of)
        if problem:
            excluded[signature_key] = problem
        else:
            signatures[signature_key] = _signature(signature_key, output, keys, specs, index_of, receive, model_call)
    if not signatures:
        raise ValueError(next(iter(excluded.values())))
    if excluded:
        log.warning("Signatures left out of the export because the serving_input_receiver_fn cannot feed them: "
                    "%s%s", " ".join(excluded.values()),
                    "" if tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY in signatures else
                    f" The export has no {tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY!r} signature; "
                    f"it has {sorted(signatures)}.")
    export_outputs = {k: o for k, o in export_outputs.items() if k in signatures}
    restore()
    root = tf.Module()
    root.model_variables = [store.variables[k] for k in sorted(store.global_variables)]

    export_dir_base = os.fspath(export_dir_base)
    tf.io.gfile.makedirs(export_dir_base)
    final = fresh_timestamp_dir(export_dir_base)
    temp = os.path.join(export_dir_base, "temp-" + os.path.basename(final))
    if tf.io.gfile.exists(temp):
        tf.io.gfile.rmtree(temp)
    try:
        tf.saved_model.save(root, temp, signatures=signatures)
        set_method_names(temp, {k: o.method_name for k, o in export_outputs.items()}, as_text)
        _copy_assets_extra(temp, assets_extra)
        tf.io.gfile.rename(temp, final)
    except BaseException:
        if tf.io.gfile.exists(temp):
            shutil.rmtree(temp, ignore_errors=True)
        raise
    log.info("SavedModel written to %s with signatures %s.", final, sorted(signatures))
    return final


def _named(spec: tf.TensorSpec, name: str) -> tf.TensorSpec:
    return tf.TensorSpec(spec.shape, spec.dtype, name=name)


def _unservable(signature_key, output, keys, specs, index_of) -> str | None:
    """Why the receiver cannot feed a classify/regress signature, or None."""
    if isinstance(output, (ClassificationOutput, RegressionOutput)):
        if len(keys) != 1 or specs[index_of[keys[0]]].dtype != tf.string:
            return (f"Signature {signature_key!r} is a {type(output).__name__}, which takes one "
                    f"tensor of serialized tf.Examples, but the serving_input_receiver_fn has request "
                    f"tensors {keys}. Use build_parsing_serving_input_receiver_fn, or export a "
                    "PredictOutput for this signature.")
    return None


def _signature(signature_key, output, keys, specs, index_of, receive, model_call):
    if isinstance(output, (ClassificationOutput, RegressionOutput)):
        input_names = {keys[0]: tf.saved_model.CLASSIFY_INPUTS}
    else:
        input_names = {k: k for k in keys}

    def serve(*args):
        features, _ = receive(dict(zip(keys, args)))
        spec = model_call(features)
        if signature_key not in spec.export_outputs:
            raise ValueError(f"model_fn stopped exporting signature {signature_key!r} between traces.")
        return spec.export_outputs[signature_key].signature_outputs()

    input_signature = [_named(specs[index_of[k]], input_names[k]) for k in keys]
    return tf.function(serve, input_signature=input_signature).get_concrete_function()


def set_method_names(export_dir, method_names, as_text=False):
    """Sets each signature's TF Serving method name in ``export_dir/saved_model.pb``.

    TF2's saver marks every signature 'predict'; TF Serving's Classify and
    Regress APIs need ``tensorflow/serving/classify`` / ``.../regress``.
    """
    path, proto = _read_saved_model(export_dir)
    for meta_graph in proto.meta_graphs:
        for key, method in method_names.items():
            if key in meta_graph.signature_def:
                meta_graph.signature_def[key].method_name = method
    if as_text:
        tf.io.gfile.remove(path)
        with tf.io.gfile.GFile(os.path.join(export_dir, "saved_model.pbtxt"), "w") as f:
            f.write(text_format.MessageToString(proto))
    else:
        with tf.io.gfile.GFile(path, "wb") as f:
            f.write(proto.SerializeToString())


def signature_defs(export_dir) -> dict:
    """The ``SignatureDef`` protos of ``export_dir/saved_model.pb``, by signature key.

    Raises FileNotFoundError naming the file when there is no SavedModel there.

    Example:
        >>> signature_defs(path)["serving_default"].method_name  # doctest: +SKIP
        'tensorflow/serving/classify'
    """
    _, proto = _read_saved_model(export_dir)
    return {key: signature for meta_graph in proto.meta_graphs
            for key, signature in meta_graph.signature_def.items()}


def _read_saved_model(export_dir):
    path = os.path.join(export_dir, "saved_model.pb")
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(2, "No SavedModel here", path)
    proto = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(path, "rb") as f:
        proto.ParseFromString(f.read())
    return path, proto


def _copy_assets_extra(export_dir, assets_extra):
    if not assets_extra:
        return
    for dest, source in assets_extra.items():
        if os.path.isabs(dest) or ".." in dest.split("/"):
            raise ValueError(
                f"assets_extra destination {dest!r} must be a relative path inside assets.extra/."
            )
        target = os.path.join(export_dir, "assets.extra", dest)
        tf.io.gfile.makedirs(os.path.dirname(target))
        tf.io.gfile.copy(source, target, overwrite=True)


def fresh_timestamp_dir(base: str) -> str:
    """``<base>/<unix time>``, bumped until neither it nor its temp sibling exists."""
    stamp = int(time.time())
    while tf.io.gfile.exists(os.path.join(base, str(stamp))) or tf.io.gfile.exists(
            os.path.join(base, f"temp-{stamp}")):
        stamp += 1
    return os.path.join(base, str(stamp))
