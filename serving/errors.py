"""The one error type the server raises, with its gRPC and HTTP codes.

Every request-level failure becomes a ``ServingError`` carrying a canonical
gRPC status code and a message that says what was wrong and how to fix it.
The gRPC layer aborts the call with that code; the REST layer maps it to an
HTTP status and an ``{"error": message}`` body, as TF Serving does.
"""

from __future__ import annotations

import grpc

# Canonical code -> HTTP status (the mapping grpc-gateway and TF Serving use).
_HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}

MAX_MESSAGE_CHARS = 2000


class ServingError(Exception):
    """A request failed with a canonical status code.

    Args:
        code: The ``grpc.StatusCode`` the client receives.
        message: What was wrong and how to fix it.
        http_status: The REST status, where it differs from the code's usual
            one (back-pressure is RESOURCE_EXHAUSTED on gRPC but 503 on REST).

    Example:
        >>> import grpc
        >>> e = ServingError(grpc.StatusCode.NOT_FOUND, "no model 'x'")
        >>> e.http_status
        404
    """

    def __init__(self, code: grpc.StatusCode, message: str, *, http_status: int | None = None):
        if len(message) > MAX_MESSAGE_CHARS:
            # Messages quote what the client sent (names, values); a long one would not
            # fit gRPC's 8 KiB status metadata and the client would see RESOURCE_EXHAUSTED.
            cut = len(message) - MAX_MESSAGE_CHARS
            message = f"{message[:MAX_MESSAGE_CHARS]}... ({cut} more characters cut)"
        super().__init__(message)
        self.code = code
        self.message = message
        self._http_status = http_status

    @property
    def http_status(self) -> int:
        """The HTTP status the REST API answers with."""
        if self._http_status is not None:
            return self._http_status
        return _HTTP_STATUS.get(self.code, 500)

    @property
    def code_name(self) -> str:
        """The code's canonical name, e.g. ``"INVALID_ARGUMENT"``."""
        return self.code.name


def invalid_argument(message: str) -> ServingError:
    """Returns an INVALID_ARGUMENT error."""
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> ServingError:
    """Returns a NOT_FOUND error."""
    return ServingError(grpc.StatusCode.NOT_FOUND, message)


def failed_precondition(message: str) -> ServingError:
    """Returns a FAILED_PRECONDITION error."""
    return ServingError(grpc.StatusCode.FAILED_PRECONDITION, message)


def unavailable(message: str) -> ServingError:
    """Returns an UNAVAILABLE error."""
    return ServingError(grpc.StatusCode.UNAVAILABLE, message)
