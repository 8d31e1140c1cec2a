"""The serving SavedModel: raw serialized tf.Examples -> TFT transform graph -> model.

The Estimator is trained on transformed features. Its own export takes transformed
tensors, so it cannot serve raw requests alone. This module exports it that way
(predict signature only), then wraps it in a ``tf.Module`` that also holds
``tft.TFTransformOutput.transform_features_layer()``. Holding the layer as an
attribute makes the SavedModel track its tables and copy its assets
(vocabularies), so the served model applies exactly the transform used in
training: no training/serving skew.

Signatures of the result:
    - ``serving_default`` and ``classification`` (classifiers) or ``regression``
      (regressors): TF Serving Classify/Regress, input ``inputs`` (serialized tf.Examples).
    - ``predict``: input ``examples``, every prediction of the head.

Requests carry only the raw features the model needs (`required_raw_spec`): the
label, and raw columns that feed only the label (``tips`` behind ``big_tipper``),
are not parsed; extra features in a request are ignored.
"""

from __future__ import annotations

import inspect
import os
import shutil
from collections.abc import Iterable, Mapping
from typing import Any

CLASSIFY = "tensorflow/serving/classify"
REGRESS = "tensorflow/serving/regress"
PREDICT = "tensorflow/serving/predict"


def _predict_only(model_fn):
    """Wraps a model_fn so PREDICT mode exports one PredictOutput (named tensors in, any head)."""
    import trainer
    from trainer.export import PredictOutput

    accepted = set(inspect.signature(model_fn).parameters)

    def wrapped(features, labels, mode, params, config):
        values = {"features": features, "labels": labels, "mode": mode, "params": params,
                  "config": config}
        spec = model_fn(**{k: v for k, v in values.items() if k in accepted})
        if mode != trainer.ModeKeys.PREDICT:
            return spec
        return trainer.EstimatorSpec(mode, predictions=spec.predictions,
                                     export_outputs={"predict": PredictOutput(spec.predictions)})

    return wrapped


def _export_transformed_model(estimator, transformed_spec: Mapping[str, Any], work_dir: str) -> str:
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
    predict_only = trainer.Estimator(model_fn=_predict_only(estimator.model_fn),
                                     model_dir=estimator.model_dir, config=estimator.config,
                                     params=estimator.params)
    path = predict_only.export_saved_model(work_dir, build_raw_serving_input_receiver_fn(inputs))
    return path.decode() if isinstance(path, bytes) else path


def _input_signature(raw_spec: Mapping[str, Any]) -> dict[str, Any]:
    import tensorflow as tf

    signature = {}
    for key, feature in raw_spec.items():
        if isinstance(feature, tf.io.FixedLenFeature):
            signature[key] = tf.TensorSpec([None, *feature.shape], feature.dtype)
        elif isinstance(feature, tf.io.VarLenFeature):
            signature[key] = tf.SparseTensorSpec([None, None], feature.dtype)
        else:
            raise ValueError(
                f"Trainer got raw feature {key!r} of type {type(feature).__name__} in the Schema; expected "
                "a FixedLenFeature or VarLenFeature. How to fix: describe it as a plain feature in the schema.")
    return signature


def required_raw_spec(tft_layer: Any, raw_feature_spec: Mapping[str, Any], label_keys: Iterable[str],
                      model_inputs: Iterable[str]) -> dict[str, Any]:
    """The raw features a serving request must carry: those the model's transformed inputs need.

    Labels, and raw columns that feed only labels (such as ``tips`` behind a derived
    ``big_tipper``) or nothing at all, are left out, so a real request need not carry them
    (TFX popped the label key for the same reason). tf.Transform prunes its graph to the
    inputs it is fed; each candidate column is dropped in turn and kept out if every
    model input can still be computed (a trace, ~0.05 s per column).

    Example:
        >>> required_raw_spec(output.transform_features_layer(), raw_spec, ["big_tipper"], ["fare"])
        {'fare': FixedLenFeature(shape=[], dtype=tf.float32, default_value=None)}
    """
    import tensorflow as tf

    labels, needed = set(label_keys), set(model_inputs)

    def computable(keys: list[str]) -> set[str]:
        traced = tf.function(lambda raw: tft_layer(raw)).get_concrete_function(
            _input_signature({k: raw_feature_spec[k] for k in keys}))
        return set(traced.structured_outputs)

    kept = [k for k in raw_feature_spec if k not in labels]
    missing = needed - computable(kept)
    if missing:
        raise ValueError(
            f"Trainer got model inputs {sorted(missing)} that the transform graph cannot compute from the "
            f"raw features {sorted(kept)} (labels {sorted(labels)} excluded). How to fix: do not derive "
            "model features from the label in the preprocessing_fn.")
    for key in list(kept):
        trial = [k for k in kept if k != key]
        if needed <= computable(trial):
            kept = trial
    return {k: raw_feature_spec[k] for k in kept}


def export_serving_model(estimator, *, transform_graph_path: str, raw_feature_spec: Mapping[str, Any],
                         label_keys: Iterable[str], export_dir_base: str, work_dir: str) -> str:
    """Writes the raw-tf.Example serving SavedModel; returns ``<export_dir_base>/<timestamp>``.

    Args:
        estimator: The trained Estimator (its latest checkpoint is exported).
        transform_graph_path: The Transform output directory.
        raw_feature_spec: Parsing spec of raw tf.Examples (from the raw Schema).
        label_keys: Raw and transformed features that are labels (absent from requests).
        export_dir_base: The timestamped SavedModel goes below it.
        work_dir: Scratch directory for the intermediate export.
    """
    import tensorflow as tf
    import tensorflow_transform as tft

    labels = set(label_keys)
    output = tft.TFTransformOutput(transform_graph_path)
    transformed_spec = {k: v for k, v in output.transformed_feature_spec().items() if k not in labels}
    inner_path = _export_transformed_model(estimator, transformed_spec, work_dir)

    module = tf.Module()
    module.model = tf.saved_model.load(inner_path)
    module.tft_layer = output.transform_features_layer()
    raw_spec = required_raw_spec(module.tft_layer, raw_feature_spec, labels, transformed_spec)
    predict_fn = module.model.signatures["predict"]

    def predictions(serialized):
        raw = tf.io.parse_example(serialized, raw_spec)
        transformed = module.tft_layer(raw)
        return predict_fn(**{k: transformed[k] for k in transformed_spec})

    outputs = predict_fn.structured_outputs
    signatures = {"predict": tf.function(predictions).get_concrete_function(
        tf.TensorSpec([None], tf.string, name="examples"))}
    methods = {"predict": PREDICT}
    if "probabilities" in outputs and "all_classes" in outputs:
        def classify(serialized):
            result = predictions(serialized)
            return {"scores": result["probabilities"], "classes": result["all_classes"]}

        signatures["classification"] = tf.function(classify).get_concrete_function(
            tf.TensorSpec([None], tf.string, name="inputs"))
        methods["classification"] = CLASSIFY
    elif "predictions" in outputs:
        def regress(serialized):
            return {"outputs": tf.reshape(predictions(serialized)["predictions"], [-1, 1])}

        signatures["regression"] = tf.function(regress).get_concrete_function(
            tf.TensorSpec([None], tf.string, name="inputs"))
        methods["regression"] = REGRESS
    default = "classification" if "classification" in signatures else (
        "regression" if "regression" in signatures else "predict")
    signatures["serving_default"] = signatures[default]
    methods["serving_default"] = methods[default]

    from trainer.export.saved_model import fresh_timestamp_dir, set_method_names

    os.makedirs(export_dir_base, exist_ok=True)
    final = fresh_timestamp_dir(export_dir_base)
    temp = os.path.join(export_dir_base, ".tmp-" + os.path.basename(final))
    try:
        tf.saved_model.save(module, temp, signatures=signatures)
        set_method_names(temp, methods)
        os.rename(temp, final)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return final
