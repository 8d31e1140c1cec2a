"""InfraValidator's executor: a real ``serving.ModelServer`` on loopback, real gRPC requests.

This is the one place under components/ that imports ``serving`` (the server is the
thing being validated against); the import happens only when the executor runs.
"""

from __future__ import annotations

import glob
import os
import shutil

from components.base import ComponentError, ExecutionContext
from components.trainer.model_paths import serving_model_path

TIMEOUT_SECONDS = 60.0


def read_serialized_examples(file_pattern: str, limit: int) -> list[bytes]:
    """Up to ``limit`` serialized tf.Examples from gzip TFRecord files."""
    import tensorflow as tf

    records = []
    for path in sorted(glob.glob(file_pattern)):
        for raw in tf.data.TFRecordDataset(path, compression_type="GZIP").take(limit - len(records)):
            records.append(raw.numpy())
        if len(records) >= limit:
            break
    return records


def _example_list(serialized: list[bytes]):
    import tensorflow as tf
    from tensorflow_serving.apis import input_pb2

    return input_pb2.Input(example_list=input_pb2.ExampleList(
        examples=[tf.train.Example.FromString(s) for s in serialized]))


def _send(kind: str, stub, model_name: str, serialized: list[bytes]) -> str:
    """Sends one request; returns a short description of the answer."""
    import tensorflow as tf
    from tensorflow_serving.apis import classification_pb2, predict_pb2, regression_pb2

    if kind == "classify":
        request = classification_pb2.ClassificationRequest(input=_example_list(serialized))
        request.model_spec.name = model_name
        answer = stub.Classify(request, timeout=TIMEOUT_SECONDS)
        count = len(answer.result.classifications)
    elif kind == "regress":
        request = regression_pb2.RegressionRequest(input=_example_list(serialized))
        request.model_spec.name = model_name
        answer = stub.Regress(request, timeout=TIMEOUT_SECONDS)
        count = len(answer.result.regressions)
    else:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = model_name
        request.model_spec.signature_name = "predict"
        request.inputs["examples"].CopyFrom(tf.make_tensor_proto(serialized, dtype=tf.string))
        answer = stub.Predict(request, timeout=TIMEOUT_SECONDS)
        count = len(answer.outputs)
    if kind != "predict" and count != len(serialized):
        raise ValueError(f"{kind} answered {count} results for {len(serialized)} examples")
    return f"{kind}: {count} {'outputs' if kind == 'predict' else 'results'}"


def validate(model_dir: str, staging_dir: str, *, model_name: str, request_kinds, serialized) -> tuple[bool, str]:
    """Serves ``model_dir`` as version 1 of ``model_name``; returns (blessed, reason or summary)."""
    import grpc
    from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    from serving.flags import ServerOptions
    from serving.server import ModelServer

    base = os.path.join(staging_dir, model_name)
    shutil.copytree(model_dir, os.path.join(base, "1"))
    server = ModelServer(ServerOptions(port=0, model_name=model_name, model_base_path=base,
                                       file_system_poll_wait_seconds=0))
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            status_request = get_model_status_pb2.GetModelStatusRequest()
            status_request.model_spec.name = model_name
            status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
                status_request, timeout=TIMEOUT_SECONDS).model_version_status[0]
            if status.state != get_model_status_pb2.ModelVersionStatus.AVAILABLE:
                return False, f"the model did not load: {status.status.error_message}"
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            done = []
            for kind in request_kinds:
                try:
                    done.append(_send(kind, stub, model_name, serialized))
                except grpc.RpcError as e:
                    return False, f"{kind} request failed: {e.code().name}: {e.details()}"
                except ValueError as e:
                    return False, f"{kind} request failed: {e}"
            return True, "; ".join(done)
    finally:
        server.stop(grace=0)


def run(ctx: ExecutionContext) -> None:
    params = ctx.parameters
    examples = ctx.input("examples")
    if params.split not in examples.split_names:
        raise ComponentError(
            f"InfraValidator got examples with splits {examples.split_names}; expected split "
            f"{params.split!r}. How to fix: pass split= one of those.")
    serialized = read_serialized_examples(examples.file_pattern(params.split), params.num_examples)
    if not serialized:
        raise ComponentError(
            f"InfraValidator got no examples in {examples.file_pattern(params.split)}. How to fix: "
            "pass Examples whose split holds data.")
    ctx.report("serving the candidate model on 127.0.0.1")
    blessed, reason = validate(serving_model_path(ctx.input("model")), os.path.join(ctx.temp_dir, "infra"),
                               model_name=params.model_name, request_kinds=params.request_kinds,
                               serialized=serialized)
    ctx.outputs["blessing"].properties.update(blessed=blessed, reason=reason, requests=len(params.request_kinds),
                                              examples_per_request=len(serialized))
