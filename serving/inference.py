"""The PredictionService methods on one resolved ``Servable``, proto to proto.

Both the gRPC and the REST front ends call these functions, so the two
protocols share one code path. Signature dispatch follows TF Serving: Predict
runs any signature. Classify and Regress run a signature with one input keyed
``inputs`` (serialized tf.Examples) and ``classes``/``scores`` or ``outputs``
outputs; its ``method_name`` must say ``tensorflow/serving/classify`` /
``.../regress`` only under ``--enable_signature_method_name_check`` (off by
default, as in TF Serving, so TF2 SavedModels, whose signatures all say
``predict``, can be classified).
"""

from __future__ import annotations

import tensorflow as tf
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import inference_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import regression_pb2

from serving import errors
from serving import examples
from serving import signature
from serving import tensor_codec
from serving.servable import Servable

DEFAULT_SIGNATURE = tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY
CLASSIFY = tf.saved_model.CLASSIFY_METHOD_NAME
REGRESS = tf.saved_model.REGRESS_METHOD_NAME
SIGNATURE_DEF_FIELD = "signature_def"


def _spec(servable: Servable, key: str, *, api: str = "Predict") -> signature.SignatureSpec:
    """The signature ``key`` names (default ``serving_default``).

    An unknown key answers as TF Serving does: FAILED_PRECONDITION for
    Predict, INVALID_ARGUMENT for Classify/Regress.
    """
    key = key or DEFAULT_SIGNATURE
    spec = servable.specs.get(key)
    if spec is None and api != "Predict":
        raise errors.invalid_argument(
            f"No signature was found with the name: {key!r} in model "
            f"{servable.model_name!r} version {servable.version}; {api} can use "
            f"{sorted(servable.specs)}."
        )
    if spec is None:
        raise errors.failed_precondition(
            f'Serving signature key "{key}" not found in model '
            f"{servable.model_name!r} version {servable.version}; available "
            f"signatures: {sorted(servable.specs)}."
        )
    return spec


def _set_model_spec(target, servable: Servable, key: str | None) -> None:
    target.name = servable.model_name
    target.version.value = servable.version
    if key is not None:
        target.signature_name = key


def run_predict(servable: Servable, key: str, inputs: dict, *,
                output_filter=()) -> tuple[signature.SignatureSpec, dict]:
    """Runs signature ``key`` on numpy ``inputs``; returns (spec, outputs)."""
    spec = _spec(servable, key)
    if not inputs:
        raise errors.invalid_argument(
            f"The request has no inputs; signature {spec.key!r} expects "
            f"{sorted(spec.inputs)}."
        )
    unknown = sorted(set(output_filter) - set(spec.outputs))
    if unknown:
        raise errors.invalid_argument(
            f"output_filter names {unknown}, which signature {spec.key!r} does not "
            f"output; choose from {sorted(spec.outputs)}."
        )
    outputs = servable.run(spec.key, inputs)
    if output_filter:
        outputs = {k: outputs[k] for k in output_filter}
    return spec, outputs


def predict(servable: Servable, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
    """Runs a PredictRequest (inputs map, optional output_filter)."""
    inputs = {k: tensor_codec.to_ndarray(v, name=k) for k, v in request.inputs.items()}
    spec, outputs = run_predict(servable, request.model_spec.signature_name, inputs,
                                output_filter=tuple(request.output_filter))
    response = predict_pb2.PredictResponse()
    _set_model_spec(response.model_spec, servable, spec.key)
    packed = servable.options.serialize_as_tensor_content
    for key in sorted(outputs):
        tensor_codec.write_ndarray(response.outputs[key], outputs[key], as_tensor_content=packed)
    return response


def _example_spec(servable: Servable, key: str, method: str) -> signature.SignatureSpec:
    api = "Classify" if method == CLASSIFY else "Regress"
    spec = _spec(servable, key, api=api)
    if servable.options.enable_signature_method_name_check and spec.method_name != method:
        raise errors.invalid_argument(
            f"{api} needs a signature with method_name {method!r} "
            "(--enable_signature_method_name_check is on), but signature "
            f"{spec.key!r} has method_name {spec.method_name!r}; pick a "
            f"{method.rsplit('/', 1)[-1]} signature in model_spec.signature_name "
            "(GetModelMetadata lists them) or use Predict."
        )
    if len(spec.inputs) != 1 or tf.saved_model.CLASSIFY_INPUTS not in spec.inputs:
        raise errors.invalid_argument(
            f"{api} needs a signature with exactly one input keyed "
            f"{tf.saved_model.CLASSIFY_INPUTS!r} (serialized tf.Examples), but signature "
            f"{spec.key!r} has inputs {sorted(spec.inputs)}; use Predict for it."
        )
    if spec.inputs[tf.saved_model.CLASSIFY_INPUTS].dtype != tf.string:
        raise errors.invalid_argument(
            f"{api} feeds serialized tf.Examples (strings), but input 'inputs' of "
            f"signature {spec.key!r} is "
            f"{spec.inputs[tf.saved_model.CLASSIFY_INPUTS].describe()}; use Predict for it."
        )
    if method == CLASSIFY:
        if len(spec.outputs) not in (1, 2) or not {examples.CLASSES, examples.SCORES} & set(spec.outputs):
            raise errors.invalid_argument(
                f"Classify needs one or two outputs among 'classes' and 'scores', but "
                f"signature {spec.key!r} outputs {sorted(spec.outputs)}; use Predict for it."
            )
    elif len(spec.outputs) != 1 or examples.OUTPUTS not in spec.outputs:
        raise errors.invalid_argument(
            f"Regress needs exactly one output keyed 'outputs', but signature "
            f"{spec.key!r} outputs {sorted(spec.outputs)}; use Predict for it."
        )
    return spec


def _run_examples(servable, spec, serialized):
    input_key = next(iter(spec.inputs))
    return servable.run(spec.key, {input_key: serialized})


def classify(servable: Servable, request) -> classification_pb2.ClassificationResponse:
    """Runs a ClassificationRequest against a classify signature."""
    spec = _example_spec(servable, request.model_spec.signature_name, CLASSIFY)
    serialized = examples.serialize_input(request.input)
    outputs = _run_examples(servable, spec, serialized)
    response = classification_pb2.ClassificationResponse()
    _set_model_spec(response.model_spec, servable, spec.key)
    response.result.CopyFrom(
        examples.classification_result(outputs, len(serialized), signature=spec.key))
    return response


def regress(servable: Servable, request) -> regression_pb2.RegressionResponse:
    """Runs a RegressionRequest against a regress signature."""
    spec = _example_spec(servable, request.model_spec.signature_name, REGRESS)
    serialized = examples.serialize_input(request.input)
    outputs = _run_examples(servable, spec, serialized)
    response = regression_pb2.RegressionResponse()
    _set_model_spec(response.model_spec, servable, spec.key)
    response.result.CopyFrom(
        examples.regression_result(outputs, len(serialized), signature=spec.key))
    return response


def multi_inference(servable: Servable, request) -> inference_pb2.MultiInferenceResponse:
    """Runs several classify/regress tasks of one model on a shared input."""
    if not request.tasks:
        raise errors.invalid_argument(
            "MultiInferenceRequest has no tasks; add at least one InferenceTask.")
    seen = set()
    for task in request.tasks:
        if task.model_spec.name != servable.model_name:
            raise errors.invalid_argument(
                "All tasks of a MultiInferenceRequest must use the same model; got "
                f"{task.model_spec.name!r} and {servable.model_name!r}."
            )
        key = task.model_spec.signature_name or DEFAULT_SIGNATURE
        if key in seen:
            raise errors.invalid_argument(
                f"MultiInferenceRequest evaluates signature {key!r} twice; list each "
                "signature once."
            )
        seen.add(key)
        if task.method_name not in (CLASSIFY, REGRESS):
            raise errors.invalid_argument(
                f"InferenceTask method_name {task.method_name!r} is not supported; use "
                f"{CLASSIFY!r} or {REGRESS!r}."
            )
    serialized = examples.serialize_input(request.input)
    response = inference_pb2.MultiInferenceResponse()
    for task in request.tasks:
        spec = _example_spec(servable, task.model_spec.signature_name, task.method_name)
        outputs = _run_examples(servable, spec, serialized)
        result = response.results.add()
        _set_model_spec(result.model_spec, servable, spec.key)
        if task.method_name == CLASSIFY:
            result.classification_result.CopyFrom(
                examples.classification_result(outputs, len(serialized), signature=spec.key))
        else:
            result.regression_result.CopyFrom(
                examples.regression_result(outputs, len(serialized), signature=spec.key))
    return response


def get_model_metadata(servable: Servable, request) -> get_model_metadata_pb2.GetModelMetadataResponse:
    """Returns the SignatureDefMap read from ``saved_model.pb``."""
    fields = list(request.metadata_field)
    if not fields:
        raise errors.invalid_argument(
            f"GetModelMetadataRequest has no metadata_field; set it to "
            f"[{SIGNATURE_DEF_FIELD!r}]."
        )
    for field in fields:
        if field != SIGNATURE_DEF_FIELD:
            raise errors.invalid_argument(
                f"Metadata field {field!r} is not supported; the only field is "
                f"{SIGNATURE_DEF_FIELD!r}."
            )
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    _set_model_spec(response.model_spec, servable, None)
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for key, sig in servable.metadata_signature_defs.items():
        signature_map.signature_def[key].CopyFrom(sig)
    response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_map)
    return response
