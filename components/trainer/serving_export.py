"""The serving SavedModel: raw serialized tf.Examples -> TFT transform graph -> model.

The Estimator is trained on transformed features. Its own export takes transformed
tensors, so it cannot serve raw requests alone. This module exports it that way
(PredictOutputs only), then wraps it in a ``tf.Module`` that also holds
``tft.TFTransformOutput.transform_features_layer()``. Holding the layer as an
attribute makes the SavedModel track its tables and copy its assets
(vocabularies), so the served model applies exactly the transform used in
training: no training/serving skew.

Signatures of the result (the contract, see docs/trainer_modules.md):

- When the model_fn gives its own ``EstimatorSpec.export_outputs`` in PREDICT mode and
  ``use_model_export_outputs`` is set (a module_file Trainer): one signature per key,
  with the method of its class: a ``ClassificationOutput`` is Classify and a
  ``RegressionOutput`` Regress (input ``inputs``), a ``PredictOutput`` is Predict (input
  ``examples``), each taking serialized raw tf.Examples; ``serving_default`` is the one the
  model_fn named so (or its only output). A ``predict`` signature with every prediction is
  added when the model_fn has none of that name (the Evaluator and InfraValidator use it).
- Otherwise (a canned config, or a model_fn that gave no export_outputs, which
  EstimatorSpec fills with one PredictOutput of its predictions):
  ``serving_default`` and ``classification`` (predictions with ``probabilities`` and
  ``all_classes``) or ``regression`` (predictions with ``predictions``): TF Serving
  Classify/Regress, input ``inputs``; ``predict``: input ``examples``, every prediction
  of the head; ``serving_default`` is ``predict`` when neither applies.

Requests carry only the raw features the model needs (`required_raw_spec`): the
label, and raw columns that feed only the label (``tips`` behind ``big_tipper``),
are not parsed; extra features in a request are ignored.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import shutil
from collections.abc import Iterable, Mapping
from typing import Any

CLASSIFY = "tensorflow/serving/classify"
REGRESS = "tensorflow/serving/regress"
PREDICT = "tensorflow/serving/predict"


INNER_PREDICTIONS = "serving_default"  # the inner export's signature of every prediction
_INNER_PREFIX = "model_output_"


def model_export_outputs(spec: Any) -> dict[str, Any] | None:
    """The model_fn's own PREDICT-mode export_outputs, or None when it gave none.

    EstimatorSpec fills a missing ``export_outputs`` with ``{"serving_default":
    PredictOutput(predictions)}``; that default (the same tensors as the predictions) counts
    as none.
    """
    from trainer.export import PredictOutput

    outputs = dict(spec.export_outputs or {})
    if set(outputs) == {"serving_default"} and isinstance(outputs["serving_default"], PredictOutput):
        predictions = spec.predictions if isinstance(spec.predictions, dict) else {"output": spec.predictions}
        given = outputs["serving_default"].outputs
        if set(given) == set(predictions) and all(given[k] is predictions[k] for k in predictions):
            return None
    return outputs or None


def _predict_only(model_fn, found: dict[str, Any] | None = None):
    """Wraps a model_fn so PREDICT mode exports only PredictOutputs (named tensors in, any head).

    ``INNER_PREDICTIONS`` holds every prediction. With ``found`` (a dict to fill), each of
    the model_fn's own export_outputs (`model_export_outputs`) is also exported as a
    PredictOutput of its signature outputs; ``found`` gets ``methods`` (key -> TF Serving
    method) and ``inner`` (key -> inner signature name; one per distinct output object).
    """
    import trainer
    from trainer.export import PredictOutput

    accepted = set(inspect.signature(model_fn).parameters)

    def wrapped(features, labels, mode, params, config):
        values = {"features": features, "labels": labels, "mode": mode, "params": params,
                  "config": config}
        spec = model_fn(**{k: v for k, v in values.items() if k in accepted})
        if mode != trainer.ModeKeys.PREDICT:
            return spec
        outputs = {INNER_PREDICTIONS: PredictOutput(spec.predictions)}
        own = model_export_outputs(spec) if found is not None else None
        if own:
            methods, inner, seen = {}, {}, {}
            for key, output in sorted(own.items()):
                methods[key] = output.method_name
                if id(output) not in seen:
                    seen[id(output)] = _INNER_PREFIX + str(len(seen))
                    outputs[seen[id(output)]] = PredictOutput(output.signature_outputs())
                inner[key] = seen[id(output)]
            found.update(methods=methods, inner=inner)
        return trainer.EstimatorSpec(mode, predictions=spec.predictions, export_outputs=outputs)

    return wrapped


def _export_transformed_model(estimator, transformed_spec: Mapping[str, Any], work_dir: str,
                              found: dict[str, Any] | None = None) -> str:
    import tensorflow as tf

    import trainer
    from trainer.export import build_raw_serving_input_receiver_fn

    inputs = {}
    for key, feature in transformed_spec.items():
        if not isinstance(feature, tf.io.FixedLenFeature):
            raise ValueError(
                f"Trainer got transformed feature {key!r} of type {type(feature).__name__}; expected a "
                "FixedLenFeature. How to fix: make the preprocessing_fn output dense tensors "
                "(e.g. tf.sparse.to_dense) for every model input.")
        inputs[key] = tf.TensorSpec([None, *feature.shape], feature.dtype)
    predict_only = trainer.Estimator(model_fn=_predict_only(estimator.model_fn, found),
                                     model_dir=estimator.model_dir, config=estimator.config,
                                     params=estimator.params)
    path = predict_only.export_saved_model(work_dir, build_raw_serving_input_receiver_fn(inputs))
    return path.decode() if isinstance(path, bytes) else path


def _transform_function(transform_output: Any) -> Any:
    """The concrete ``transform_fn`` of a TF2 transform SavedModel (as Transform writes)."""
    import tensorflow as tf

    path = transform_output.transform_savedmodel_dir
    fn = getattr(tf.saved_model.load(path), "transform_fn", None)
    if fn is None:
        raise ValueError(
            f"Trainer got a transform graph at {path} without a TF2 transform_fn (a TF1-compat "
            "export); expected one written by this project's Transform. How to fix: rerun Transform.")
    return fn.concrete_functions[0] if hasattr(fn, "concrete_functions") else fn


def raw_inputs_by_output(transform_output: Any) -> dict[str, set[str]]:
    """Transformed feature -> the raw input features its value depends on.

    One walk of the transform graph from the outputs back to its input placeholders, over
    data edges (control dependencies and captured constants, such as analyzer results, are
    not raw inputs): linear in the graph's size. tf.Transform decides which outputs it can
    compute from a subset of the raw inputs by the same walk, so the answers agree.
    """
    import tensorflow as tf

    fn = _transform_function(transform_output)
    graph = fn.graph
    args, kwargs = fn.structured_input_signature
    specs = args[0] if args else kwargs
    placeholder_key: dict[str, str] = {}
    position = 0
    for key in sorted(specs):  # tf.nest flattens a dict in sorted key order
        count = len(tf.nest.flatten(specs[key], expand_composites=True))
        for tensor in graph.inputs[position:position + count]:
            placeholder_key[tensor.op.name] = key
        position += count
    memo: dict[str, frozenset[str]] = {}

    def sources(op: Any) -> frozenset[str]:
        stack = [op]  # iterative: a deep transform graph must not overflow Python's recursion
        while stack:
            current = stack[-1]
            if current.name in memo:
                stack.pop()
                continue
            if current.name in placeholder_key:
                memo[current.name] = frozenset([placeholder_key[current.name]])
                stack.pop()
                continue
            pending = [t.op for t in current.inputs if t.op.name not in memo]
            if pending:
                stack.extend(pending)
                continue
            memo[current.name] = frozenset().union(*(memo[t.op.name] for t in current.inputs))
            stack.pop()
        return memo[op.name]

    outputs = tf.nest.pack_sequence_as(graph.structured_outputs, graph.outputs, expand_composites=True)
    return {name: set().union(*(sources(t.op) for t in tf.nest.flatten(value, expand_composites=True)))
            for name, value in outputs.items()}


def required_raw_spec(transform_output: Any, raw_feature_spec: Mapping[str, Any], label_keys: Iterable[str],
                      model_inputs: Iterable[str]) -> dict[str, Any]:
    """The raw features a serving request must carry: those the model's transformed inputs need.

    Labels, and raw columns that feed only labels (such as ``tips`` behind a derived
    ``big_tipper``) or nothing at all, are left out, so a real request need not carry them
    (TFX popped the label key for the same reason). The raw inputs of each transformed
    feature come from one walk of the transform graph (`raw_inputs_by_output`), so a
    dataset with thousands of unused columns costs one graph load, not a trace per column.

    Args:
        transform_output: A ``tft.TFTransformOutput``.
        raw_feature_spec: Parsing spec of raw tf.Examples.
        label_keys: Raw and transformed labels (never requested).
        model_inputs: The transformed features the model reads.

    Example:
        >>> required_raw_spec(tft.TFTransformOutput(path), raw_spec, ["big_tipper"], ["fare"])
        {'fare': FixedLenFeature(shape=[], dtype=tf.float32, default_value=None)}
    """
    labels, needed = set(label_keys), set(model_inputs)
    by_output = raw_inputs_by_output(transform_output)
    unknown = sorted(needed - set(by_output))
    if unknown:
        raise ValueError(
            f"Trainer got model inputs {unknown} that the transform graph does not output (it outputs "
            f"{sorted(by_output)}). How to fix: train on features the preprocessing_fn returns.")
    required = set().union(*(by_output[k] for k in needed))
    from_labels = {k: sorted(by_output[k] & labels) for k in sorted(needed) if by_output[k] & labels}
    if from_labels:
        raise ValueError(
            f"Trainer got model inputs computed from labels {from_labels}; a serving request carries no "
            "label. How to fix: do not derive model features from the label in the preprocessing_fn.")
    unparsed = sorted(required - set(raw_feature_spec))
    if unparsed:
        raise ValueError(
            f"Trainer got a transform graph that reads raw features {unparsed} missing from the raw "
            "Schema. How to fix: pass the Schema the Transform was run with.")
    return {k: raw_feature_spec[k] for k in raw_feature_spec if k in required}


@dataclasses.dataclass(frozen=True)
class ServingExport:
    """What `export_serving_model` wrote.

    Attributes:
        path: ``<export_dir_base>/<timestamp>``, the SavedModel.
        raw_features: The raw features a request must carry (`required_raw_spec`), sorted.
        signatures: Signature name -> TF Serving method name.
        from_model_fn: True when the signatures are the model_fn's own export_outputs.
        tflite_tensorflow_ops: With a TF Lite model (``<path>/model.tflite``), the TensorFlow
            (Flex) ops it keeps (empty: builtin ops only); None without one.
    """

    path: str
    raw_features: tuple[str, ...]
    signatures: dict[str, str]
    from_model_fn: bool
    tflite_tensorflow_ops: tuple[str, ...] | None = None


def export_serving_model(estimator, *, transform_graph_path: str, raw_feature_spec: Mapping[str, Any],
                         label_keys: Iterable[str], export_dir_base: str, work_dir: str,
                         use_model_export_outputs: bool = False, tflite: TFLiteOptions | None = None,
                         ) -> ServingExport:
    """Writes the raw-tf.Example serving SavedModel under ``<export_dir_base>/<timestamp>``.

    Args:
        estimator: The trained Estimator (its latest checkpoint is exported).
        transform_graph_path: The Transform output directory.
        raw_feature_spec: Parsing spec of raw tf.Examples (from the raw Schema).
        label_keys: Raw and transformed features that are labels (absent from requests).
        export_dir_base: The timestamped SavedModel goes below it.
        work_dir: Scratch directory for the intermediate export.
        use_model_export_outputs: Serve the model_fn's own export_outputs when it gives some
            (see the module docstring); else the default signatures.
        tflite: Also write ``model.tflite`` into the SavedModel's directory (`TFLiteOptions`).
    """
    import tensorflow as tf
    import tensorflow_transform as tft

    labels = set(label_keys)
    output = tft.TFTransformOutput(transform_graph_path)
    transformed_spec = {k: v for k, v in output.transformed_feature_spec().items() if k not in labels}
    found: dict[str, Any] | None = {} if use_model_export_outputs else None
    inner_path = _export_transformed_model(estimator, transformed_spec, work_dir, found)

    module = tf.Module()
    module.model = tf.saved_model.load(inner_path)
    module.tft_layer = output.transform_features_layer()
    raw_spec = required_raw_spec(output, raw_feature_spec, labels, transformed_spec)

    def serving(inner_fn):
        def serve(serialized):
            raw = tf.io.parse_example(serialized, raw_spec)
            transformed = module.tft_layer(raw)
            return inner_fn(**{k: transformed[k] for k in transformed_spec})
        return serve

    predict_fn = module.model.signatures[INNER_PREDICTIONS]
    predictions = serving(predict_fn)

    def examples_signature(fn, name):
        return tf.function(fn).get_concrete_function(tf.TensorSpec([None], tf.string, name=name))

    signatures, methods = {}, {}
    own = (found or {}).get("methods")
    if own:
        for key, method in own.items():
            fn = serving(module.model.signatures[found["inner"][key]])
            signatures[key] = examples_signature(fn, "inputs" if method in (CLASSIFY, REGRESS) else "examples")
            methods[key] = method
        if "predict" not in signatures:
            signatures["predict"], methods["predict"] = examples_signature(predictions, "examples"), PREDICT
    else:
        _default_signatures(predictions, predict_fn.structured_outputs, examples_signature, signatures, methods)

    from trainer.export.saved_model import fresh_timestamp_dir, set_method_names

    os.makedirs(export_dir_base, exist_ok=True)
    final = fresh_timestamp_dir(export_dir_base)
    temp = os.path.join(export_dir_base, ".tmp-" + os.path.basename(final))
    tflite_ops = None
    try:
        tf.saved_model.save(module, temp, signatures=signatures)
        set_method_names(temp, methods)
        if tflite is not None:
            tflite_ops = _write_tflite(module, raw_spec, transformed_spec, predict_fn, tflite,
                                       os.path.join(temp, TFLITE_FILE), os.path.join(work_dir, "tflite_source"))
        os.rename(temp, final)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return ServingExport(final, tuple(sorted(raw_spec)), dict(sorted(methods.items())), bool(own), tflite_ops)


TFLITE_FILE = "model.tflite"  # where the model server's --prefer_tflite_model looks
TFLITE_QUANTIZATIONS = (None, "dynamic", "float16")


@dataclasses.dataclass(frozen=True)
class TFLiteOptions:
    """The Trainer's TF Lite model, ``model.tflite`` beside the serving SavedModel (so the
    Pusher pushes both, and ``python -m serving --prefer_tflite_model`` serves it).

    Its one signature, ``serving_default``, takes raw feature *tensors* (a phone has no
    tf.Examples): one input per raw feature a request carries, ``[batch, *shape]`` for a
    fixed-length feature and ``[batch, 1]`` (one value per example) for a variable-length one,
    and applies the transform graph, then the model: its outputs are every prediction, as
    the SavedModel's ``predict`` signature gives.

    Attributes:
        quantize: None (float32), ``"dynamic"`` (int8 weights) or ``"float16"``.
        select_tf_ops: Allow TensorFlow (Flex) ops that TF Lite has no builtin kernel for
            (string hashing, ``tft.bucketize``'s ``UpperBound``, ``AsString``...). Default
            False: such a model is an error naming the ops, since only an interpreter with
            the Flex delegate runs it (not ``tf.lite.Interpreter`` of the pip package, nor
            the model server's TF Lite runtime).
    """

    quantize: str | None = None
    select_tf_ops: bool = False

    def __post_init__(self) -> None:
        if self.quantize not in TFLITE_QUANTIZATIONS:  # trainer.export.tflite's, without importing TensorFlow
            raise ValueError(f"TFLiteOptions got quantize={self.quantize!r}; expected one of "
                             f"{list(TFLITE_QUANTIZATIONS)}.")
        if not isinstance(self.select_tf_ops, bool):
            raise ValueError(f"TFLiteOptions got select_tf_ops={self.select_tf_ops!r}; expected True or False.")


def _write_tflite(module, raw_spec, transformed_spec, predict_fn, options: TFLiteOptions, path: str,
                  source_dir: str) -> tuple[str, ...]:
    """Converts raw tensors -> transform graph -> model into ``path``; returns its TensorFlow ops."""
    import tensorflow as tf

    from trainer.export.tflite import convert_saved_model

    specs = {}
    for key, feature in sorted(raw_spec.items()):
        if isinstance(feature, tf.io.FixedLenFeature):
            specs[key] = tf.TensorSpec([None, *feature.shape], feature.dtype, name=key)
        elif isinstance(feature, tf.io.VarLenFeature):
            specs[key] = tf.TensorSpec([None, 1], feature.dtype, name=key)
        else:
            raise ValueError(
                f"Trainer(tflite=...) got raw feature {key!r} of type {type(feature).__name__}; a TF Lite "
                "model takes dense tensors, so only fixed- and variable-length features can be inputs. How "
                "to fix: leave tflite unset, or give the feature a fixed or variable length in the Schema.")

    def serve(**tensors):
        raw = {}
        for key, feature in raw_spec.items():
            value = tensors[key]
            if isinstance(feature, tf.io.VarLenFeature):  # one value per example, as parse_example gives it
                n = tf.shape(value, out_type=tf.int64)[0]
                indices = tf.stack([tf.range(n), tf.zeros([n], tf.int64)], axis=1)
                value = tf.SparseTensor(indices, tf.reshape(value, [-1]), tf.stack([n, tf.constant(1, tf.int64)]))
            raw[key] = value
        transformed = module.tft_layer(raw)
        return predict_fn(**{k: transformed[k] for k in transformed_spec})

    source = tf.Module()
    source.model, source.tft_layer = module.model, module.tft_layer
    shutil.rmtree(source_dir, ignore_errors=True)
    tf.saved_model.save(source, source_dir,
                        signatures={"serving_default": tf.function(serve).get_concrete_function(**specs)})
    try:
        return convert_saved_model(source_dir, path, signature_keys=["serving_default"], quantize=options.quantize,
                                   select_tf_ops="auto" if options.select_tf_ops else False).tensorflow_ops
    except ValueError as error:
        raise ValueError(f"Trainer(tflite=...): {error} Or pass TFLiteOptions(select_tf_ops=True) for an "
                         "interpreter with the Flex delegate.") from error
    finally:
        shutil.rmtree(source_dir, ignore_errors=True)


def _default_signatures(predictions, outputs, examples_signature, signatures, methods) -> None:
    """The signatures when the model_fn gives no export_outputs of its own (see the module doc)."""
    import tensorflow as tf

    signatures["predict"], methods["predict"] = examples_signature(predictions, "examples"), PREDICT
    if "probabilities" in outputs and "all_classes" in outputs:
        def classify(serialized):
            result = predictions(serialized)
            return {"scores": result["probabilities"], "classes": result["all_classes"]}

        signatures["classification"] = examples_signature(classify, "inputs")
        methods["classification"] = CLASSIFY
    elif "predictions" in outputs:
        def regress(serialized):
            return {"outputs": tf.reshape(predictions(serialized)["predictions"], [-1, 1])}

        signatures["regression"] = examples_signature(regress, "inputs")
        methods["regression"] = REGRESS
    default = "classification" if "classification" in signatures else (
        "regression" if "regression" in signatures else "predict")
    signatures["serving_default"] = signatures[default]
    methods["serving_default"] = methods[default]
