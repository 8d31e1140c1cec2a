"""Prometheus metrics: requests per model/version/signature/status, load events."""

from __future__ import annotations

import prometheus_client

_REQUEST_LABELS = ("model_name", "model_version", "signature_name", "api", "protocol", "status")
_LATENCY_LABELS = ("model_name", "model_version", "signature_name", "api", "protocol")
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                    2.5, 5.0, 10.0)


class ServingMetrics:
    """The server's metrics, in a registry of their own.

    Example:
        >>> m = ServingMetrics()
        >>> m.observe_request(model_name="m", model_version="1", signature_name="s",
        ...                   api="predict", protocol="grpc", status="OK", seconds=0.001)
        >>> b"serving_request_count_total" in m.render()
        True
    """

    def __init__(self):
        self.registry = prometheus_client.CollectorRegistry()
        self.request_count = prometheus_client.Counter(
            "serving_request_count", "Requests by model, version, signature, API and status.",
            _REQUEST_LABELS, registry=self.registry)
        self.request_latency = prometheus_client.Histogram(
            "serving_request_latency_seconds", "Request latency in the server.",
            _LATENCY_LABELS, buckets=_LATENCY_BUCKETS, registry=self.registry)
        # Label values -> (counter child, histogram child): ``labels()`` takes a
        # lock and validates its arguments on every call.
        self._children: dict[tuple[str, ...], tuple] = {}
        self.model_events = prometheus_client.Counter(
            "serving_model_load_events", "Model version load, unload and load-failure events.",
            ("model_name", "model_version", "event"), registry=self.registry)
        self.in_flight = prometheus_client.Gauge(
            "serving_requests_in_flight",
            "Model requests running now (bounded by --max_in_flight_requests).",
            registry=self.registry)

    def observe_request(self, *, model_name: str, model_version: str, signature_name: str,
                        api: str, protocol: str, status: str, seconds: float) -> None:
        """Counts one request and records its latency."""
        key = (model_name, model_version, signature_name, api, protocol, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.request_count.labels(*key), self.request_latency.labels(*key[:-1]))
        children[0].inc()
        children[1].observe(seconds)

    def model_event(self, event: str, model_name: str, version: int) -> None:
        """Counts a ``load``/``unload``/``load_error`` event."""
        self.model_events.labels(model_name, str(version), event).inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of all metrics."""
        return prometheus_client.generate_latest(self.registry)

    content_type = prometheus_client.CONTENT_TYPE_LATEST
