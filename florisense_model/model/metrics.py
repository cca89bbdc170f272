"""The model server's own Prometheus metrics: what it answered (labels, row errors by kind,
confidence), how much it was asked (images per request), how long it took, which version it is,
and the training run's reference for drift alerts.

MLflow's scoring server exposes no metrics (mlflow/mlflow#25263), so the pyfunc serves them
itself on a port of its own, only when the stack sets FLORISENSE_METRICS_PORT: training, tests and
`mlflow models predict` load the same model without opening a port.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.metrics_core import Metric

from florisense_model.model.preprocessing import ERROR_KINDS

PORT_ENV = "FLORISENSE_METRICS_PORT"
# Set by the stack when it serves a registered version (the model itself cannot know its number).
VERSION_ENV = "FLORISENSE_MODEL_VERSION"
# An answer at or under this confidence counts as unsure; the drift alert compares their share
# with the test split's (deploy/monitoring/prometheus/alerts.yml). One of CONFIDENCE_BUCKETS.
LOW_CONFIDENCE = 0.8
CONFIDENCE_BUCKETS = (0.5, 0.6, 0.7, LOW_CONFIDENCE, 0.9, 0.95, 0.99, 1.0)
IMAGES_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

disable_created_metrics()  # no *_created series: they double the series count for no use here
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reference:
    """The test split's answers at training time: the share of each label and of unsure ones."""

    label_share: dict[str, float] = field(default_factory=dict)
    low_confidence_share: float | None = None

    @classmethod
    def load(cls, path: str | None) -> Reference:
        if not path:
            return cls()
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        return cls(dict(data.get("label_share", {})), data.get("low_confidence_share"))


class ServingMetrics:
    """The metrics of one served model, in their own registry."""

    def __init__(self, classes: Sequence[str], version: str, run_id: str, runtime: str,
                 reference: Reference) -> None:  # fmt: skip
        self.registry = CollectorRegistry()
        metric = {"registry": self.registry}
        self.predictions = Counter(
            "florisense_predictions", "Rows answered with a label", ["label"], **metric
        )
        self.errors = Counter(
            "florisense_prediction_errors", "Rows answered with an error, by kind", ["kind"],
            **metric,
        )  # fmt: skip
        self.confidence = Histogram(
            "florisense_prediction_confidence", "Confidence of each labelled row",
            buckets=CONFIDENCE_BUCKETS, **metric,
        )  # fmt: skip
        self.images = Histogram(
            "florisense_request_images", "Images (rows) per request", buckets=IMAGES_BUCKETS,
            **metric,
        )  # fmt: skip
        self.failures = Counter(
            "florisense_failed_requests",
            "Requests the model refused or failed as a whole (no rows answered)",
            **metric,
        )
        self.seconds = Histogram(
            "florisense_inference_seconds", "Time in the model's predict, per request",
            buckets=SECONDS_BUCKETS, **metric,
        )  # fmt: skip
        Info("florisense_model", "The served model", **metric).info(
            {"version": version, "run_id": run_id, "runtime": runtime}
        )
        # Every label and kind exists at 0 from the start, so a first request is an increase.
        for label in classes:
            self.predictions.labels(label)
        for kind in ERROR_KINDS:
            self.errors.labels(kind)
        self._set_reference(classes, reference)

    def _set_reference(self, classes: Sequence[str], reference: Reference) -> None:
        if not reference.label_share:
            return  # a version trained before references were logged: no drift gauges
        share = Gauge(
            "florisense_reference_label_share", "Share of each label on the test split",
            ["label"], registry=self.registry,
        )  # fmt: skip
        for label in classes:
            share.labels(label).set(reference.label_share.get(label, 0.0))
        if reference.low_confidence_share is not None:
            Gauge(
                "florisense_reference_low_confidence_share",
                f"Share of test-split answers at or under {LOW_CONFIDENCE} confidence",
                registry=self.registry,
            ).set(reference.low_confidence_share)

    def observe(self, labels: Iterable[tuple[str, float]], error_kinds: Iterable[str],
                images: int, seconds: float) -> None:  # fmt: skip
        """One request: its (label, confidence) rows, its row errors, its size and time."""
        for label, confidence in labels:
            self.predictions.labels(label).inc()
            self.confidence.observe(confidence)
        for kind in error_kinds:
            self.errors.labels(kind).inc()
        self.images.observe(images)
        self.seconds.observe(seconds)

    def failed(self, seconds: float) -> None:
        """One request refused or failed as a whole (a param it cannot serve, no image column,
        a runtime error): MLflow answers it with an error status."""
        self.failures.inc()
        self.seconds.observe(seconds)


class _LatestModel:
    """What the metrics port shows: the metrics of the model loaded last in this process (a
    server loads one; a test may load several)."""

    metrics: ServingMetrics | None = None

    def collect(self) -> Iterable[Metric]:
        return self.metrics.registry.collect() if self.metrics else []


_latest = _LatestModel()
_port_registry = CollectorRegistry()
_port_registry.register(_latest)
_serving_port: int | None = None


def serve_from_environment(classes: Sequence[str], run_id: str, runtime: str,
                           reference: Reference) -> ServingMetrics | None:  # fmt: skip
    """Metrics served on FLORISENSE_METRICS_PORT (on FLORISENSE_METRICS_HOST, default all
    interfaces: compose scrapes them from another container), or None when it is not set. A
    busy port is logged, never raised: metrics must not stop /predict."""
    global _serving_port
    port = os.environ.get(PORT_ENV, "").strip()
    if not port:
        return None
    metrics = ServingMetrics(classes, os.environ.get(VERSION_ENV, ""), run_id, runtime, reference)
    _latest.metrics = metrics
    if _serving_port is None:
        try:
            address = os.environ.get("FLORISENSE_METRICS_HOST", "0.0.0.0")
            start_http_server(int(port), addr=address, registry=_port_registry)
            _serving_port = int(port)
        except (OSError, ValueError) as exc:  # busy, or not a port number
            _log.error("model metrics not served on port %s: %s", port, exc)
    return metrics
