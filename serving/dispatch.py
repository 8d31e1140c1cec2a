"""One request through the server: resolve the servable, run, record metrics.

Both front ends call ``serve`` so that errors, metrics and the "a bad request
never takes the server down" guarantee live in one place.
"""

from __future__ import annotations

import logging
import threading
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
UNKNOWN_SIGNATURE = "_unknown"
DEFAULT_SIGNATURE = "serving_default"
# The APIs that run a model; metadata requests are cheap and never refused.
LIMITED_APIS = frozenset({"predict", "classify", "regress", "multi_inference"})


class InFlightLimit:
    """A bound on the requests running at once, across gRPC and REST.

    A request past the bound is refused at once (back-pressure, as TF
    Serving's full batching queue does) instead of queueing without limit:
    gRPC RESOURCE_EXHAUSTED, REST 503. Clients should retry with backoff.

    Args:
        limit: Requests allowed at once; 0 means no bound (they are still
            counted, for the ``serving_requests_in_flight`` gauge).

    Example:
        >>> limit = InFlightLimit(1)
        >>> with limit.slot("predict"):
        ...     limit.in_flight
        1
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.in_flight = 0
        self._lock = threading.Lock()

    def slot(self, api: str) -> "_Slot":
        """A context manager holding one place for an ``api`` request, or raising."""
        return _Slot(self, api)


class _Slot:
    __slots__ = ("_owner", "_held")

    def __init__(self, owner: InFlightLimit, api: str):
        self._owner = owner
        self._held = api in LIMITED_APIS

    def __enter__(self):
        owner = self._owner
        if not self._held:
            return self
        with owner._lock:  # noqa: SLF001 - the slot is the limit's own helper.
            if owner.limit and owner.in_flight >= owner.limit:
                self._held = False
                raise ServingError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"The server is running its limit of {owner.limit} requests at once "
                    "(--max_in_flight_requests); retry with backoff, add server replicas, "
                    "or raise the limit.",
                    http_status=503)
            owner.in_flight += 1
        return self

    def __exit__(self, *exc):
        if self._held:
            with self._owner._lock:  # noqa: SLF001
                self._owner.in_flight -= 1
        return False


_NO_LIMIT = InFlightLimit(0)


def _signature_label(servable: Servable | None, model_spec, api: str) -> str:
    """The signature as a metric label: a name the model has, else one shared label.

    Client-chosen names never become labels of their own, so a stream of
    made-up names cannot grow the metrics without bound.
    """
    name = model_spec.signature_name
    if not name:
        return "" if api == "metadata" else DEFAULT_SIGNATURE
    if servable is not None and name in servable.signature_defs:
        return name
    return UNKNOWN_SIGNATURE


def serve(manager: ModelManager, metrics: ServingMetrics, handler: Callable[[Servable], T], *,
          api: str, protocol: str, model_spec, limit: InFlightLimit = _NO_LIMIT) -> T:
    """Resolves ``model_spec``, runs ``handler`` on the servable and records it.

    Raises:
        ServingError: the request failed (RESOURCE_EXHAUSTED when ``limit``
            is reached); any unexpected exception becomes INTERNAL with its
            message.
    """
    start = time.perf_counter()
    version = ""
    status = "OK"
    servable = None
    try:
        with limit.slot(api):
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
            signature_name=_signature_label(servable, model_spec, api),
            api=api,
            protocol=protocol,
            status=status,
            seconds=time.perf_counter() - start,
        )
