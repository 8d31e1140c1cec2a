"""One request through the server: resolve the servable, run, record metrics.

Both front ends call ``serve`` so that errors, metrics and the "a bad request
never takes the server down" guarantee live in one place.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import grpc

from serving.errors import ServingError
from serving.metrics import ServingMetrics
from serving.model_manager import ModelManager
from serving.servable import Servable

_log = logging.getLogger(__name__)
T = TypeVar("T")
UNKNOWN_MODEL = "_unknown"
DEFAULT_SIGNATURE = "serving_default"


def serve(manager: ModelManager, metrics: ServingMetrics, handler: Callable[[Servable], T], *,
          api: str, protocol: str, model_spec) -> T:
    """Resolves ``model_spec``, runs ``handler`` on the servable and records it.

    Raises:
        ServingError: the request failed; any unexpected exception becomes
            INTERNAL with its message.
    """
    start = time.perf_counter()
    version = ""
    status = "OK"
    try:
        servable = manager.resolve_spec(model_spec)
        version = str(servable.version)
        return handler(servable)
    except ServingError as e:
        status = e.code_name
        raise
    except Exception as e:  # noqa: BLE001 - never let a request kill the server.
        status = "INTERNAL"
        _log.exception("%s request failed unexpectedly", api)
        raise ServingError(
            grpc.StatusCode.INTERNAL,
            f"Internal error while serving {api}: {type(e).__name__}: {e}",
        ) from e
    finally:
        name = model_spec.name if manager.has_model(model_spec.name) else UNKNOWN_MODEL
        metrics.observe_request(
            model_name=name,
            model_version=version,
            signature_name=model_spec.signature_name or (
                "" if api == "metadata" else DEFAULT_SIGNATURE),
            api=api,
            protocol=protocol,
            status=status,
            seconds=time.perf_counter() - start,
        )
