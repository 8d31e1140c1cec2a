"""gRPC PredictionService and ModelService on the official TF Serving stubs."""

from __future__ import annotations

import logging

import grpc
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_management_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import prediction_service_pb2_grpc

from serving import config_files
from serving import dispatch
from serving import errors
from serving import inference
from serving.errors import ServingError
from serving.metrics import ServingMetrics
from serving.model_manager import ModelManager

_log = logging.getLogger(__name__)
PROTOCOL = "grpc"


def _abort(context: grpc.ServicerContext, error: ServingError):
    context.abort(error.code, error.message)


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict, Classify, Regress, MultiInference and GetModelMetadata."""

    def __init__(self, manager: ModelManager, metrics: ServingMetrics, *,
                 in_flight: dispatch.InFlightLimit | None = None):
        self._manager = manager
        self._metrics = metrics
        self._in_flight = in_flight or dispatch.InFlightLimit(0)

    def _serve(self, context, api, model_spec, handler, request):
        try:
            return dispatch.serve(
                self._manager, self._metrics, lambda s: handler(s, request),
                api=api, protocol=PROTOCOL, model_spec=model_spec, limit=self._in_flight)
        except ServingError as e:
            _abort(context, e)

    def Predict(self, request, context):  # noqa: N802 - gRPC method name.
        return self._serve(context, "predict", request.model_spec, inference.predict, request)

    def Classify(self, request, context):  # noqa: N802
        return self._serve(context, "classify", request.model_spec, inference.classify, request)

    def Regress(self, request, context):  # noqa: N802
        return self._serve(context, "regress", request.model_spec, inference.regress, request)

    def MultiInference(self, request, context):  # noqa: N802
        if not request.tasks:
            _abort(context, errors.invalid_argument(
                "MultiInferenceRequest has no tasks; add at least one InferenceTask."))
        return self._serve(context, "multi_inference", request.tasks[0].model_spec,
                           inference.multi_inference, request)

    def GetModelMetadata(self, request, context):  # noqa: N802
        return self._serve(context, "metadata", request.model_spec,
                           inference.get_model_metadata, request)


def status_response(manager: ModelManager, model_spec) -> get_model_status_pb2.GetModelStatusResponse:
    """GetModelStatus for a ModelSpec (shared with the REST front end)."""
    choice = model_spec.WhichOneof("version_choice")
    statuses = manager.status(
        model_spec.name,
        version=model_spec.version.value if choice == "version" else None,
        label=model_spec.version_label if choice == "version_label" else None,
    )
    response = get_model_status_pb2.GetModelStatusResponse()
    for status in statuses:
        entry = response.model_version_status.add(version=status.version, state=status.state)
        entry.status.error_code = grpc.StatusCode[status.error_code].value[0]
        entry.status.error_message = status.error_message
    return response


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus and HandleReloadConfigRequest."""

    def __init__(self, manager: ModelManager, *, on_reload=None, group_size: int = 1):
        self._manager = manager
        self._on_reload = on_reload or (lambda: None)
        self._group_size = group_size

    def GetModelStatus(self, request, context):  # noqa: N802
        try:
            return status_response(self._manager, request.model_spec)
        except ServingError as e:
            _abort(context, e)

    def HandleReloadConfigRequest(self, request, context):  # noqa: N802
        if self._group_size > 1:
            _abort(context, errors.failed_precondition(
                f"This server runs {self._group_size} processes (--num_server_processes) and a "
                "reload would reach only one of them; edit --model_config_file instead, with "
                "--model_config_file_poll_wait_seconds set, and every process re-reads it."))
        try:
            specs = config_files.model_specs_from_proto(request.config)
        except ValueError as e:
            _abort(context, errors.invalid_argument(f"Invalid ModelServerConfig: {e}"))
        try:
            self._manager.reload_config(specs)
        except ServingError as e:
            _abort(context, e)
        self._on_reload()
        return model_management_pb2.ReloadConfigResponse()


_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


def grpc_code_name(value: int) -> str:
    """``3`` -> ``'INVALID_ARGUMENT'``."""
    return _CODE_NAMES.get(value, "UNKNOWN")
