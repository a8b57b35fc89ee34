"""Prometheus metrics of the kubelet plugin (served on ``--metrics-port``).

| metric | labels | meaning |
|---|---|---|
| ``gpu_dra_requests_total`` | operation, result | gRPC calls (prepare, unprepare), ok/error |
| ``gpu_dra_request_duration_seconds`` | operation | call latency |
| ``gpu_dra_requests_inflight`` | operation | calls being served now |
| ``gpu_dra_claim_errors_total`` | operation | claims that failed inside a call |
| ``gpu_dra_prepared_devices`` | type | devices prepared on this node now |
| ``gpu_dra_slice_dropped_fields`` | | slice fields the API server dropped (a missing feature) |
| ``gpu_dra_driver_root_ready`` | | 1 when containers get the whole NVIDIA driver, else 0 (the log says why) |
| ``gpu_dra_api_errors_total`` | component | failed API-server requests (and failed passes) that were \
logged and will be retried: prepare (claim GETs), sweep, publisher, driver-check |
| ``gpu_dra_xid_errors_total`` | gpu, xid | XID errors NVML reported per GPU (UUID) and code, ignored ones too |
| ``gpu_dra_ecc_errors_total`` | gpu, type | ECC error events per GPU: single (corrected), double |
| ``gpu_dra_health_events_dropped_total`` | reason | health events for a GPU this node does not publish (unknown-gpu) or for no GPU (no-gpu) |

Computed at scrape time by collectors of their own: ``gpu_dra_share_*`` (`sharemetrics`) and
``gpu_dra_prepared_device_info`` (`devicemetrics`). All of them, with the alerts and the
dcgm-exporter join: docs/monitoring.md.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Mapping

import prometheus_client

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 45)


class Metrics:
    def __init__(self, registry: prometheus_client.CollectorRegistry | None = None) -> None:
        self.registry = registry or prometheus_client.CollectorRegistry()
        self.requests = prometheus_client.Counter(
            "gpu_dra_requests", "gRPC calls served", ["operation", "result"], registry=self.registry
        )
        self.duration = prometheus_client.Histogram(
            "gpu_dra_request_duration_seconds",
            "gRPC call latency",
            ["operation"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.inflight = prometheus_client.Gauge(
            "gpu_dra_requests_inflight",
            "gRPC calls in flight",
            ["operation"],
            registry=self.registry,
        )
        self.claim_errors = prometheus_client.Counter(
            "gpu_dra_claim_errors", "claims that failed", ["operation"], registry=self.registry
        )
        self.prepared_devices = prometheus_client.Gauge(
            "gpu_dra_prepared_devices", "devices prepared now", ["type"], registry=self.registry
        )
        self.dropped_fields = prometheus_client.Gauge(
            "gpu_dra_slice_dropped_fields",
            "ResourceSlice fields the API server did not store as sent (0 on a capable server)",
            registry=self.registry,
        )
        self.driver_root_ready = prometheus_client.Gauge(
            "gpu_dra_driver_root_ready",
            "1 when the driver root has all a container needs (libraries, device nodes, hook)",
            registry=self.registry,
        )

        self.api_errors = prometheus_client.Counter(
            "gpu_dra_api_errors",
            "API-server errors (and failed passes) a component logged and will retry",
            ["component"],
            registry=self.registry,
        )

        self.xid_errors = prometheus_client.Counter(
            "gpu_dra_xid_errors",
            "XID errors reported by NVML, per GPU and XID (application XIDs included)",
            ["gpu", "xid"],
            registry=self.registry,
        )
        self.ecc_errors = prometheus_client.Counter(
            "gpu_dra_ecc_errors",
            "ECC error events per GPU: single (corrected) or double (uncorrectable)",
            ["gpu", "type"],
            registry=self.registry,
        )
        self.health_events_dropped = prometheus_client.Counter(
            "gpu_dra_health_events_dropped",
            "health events dropped: for a GPU this node does not publish, or for no GPU",
            ["reason"],
            registry=self.registry,
        )

    def count_prepared_devices(self, counts: Callable[[], Mapping[str, int]]) -> None:
        """Take ``gpu_dra_prepared_devices`` from `counts` (devices by type) at scrape time: a
        walk of the node's claims per scrape, not one per gRPC call."""
        for kind in counts():
            child = self.prepared_devices.labels(kind)
            child.set_function(functools.partial(_count_of, counts, kind))

    def count_xid(self, gpu_uuid: str, xid: int) -> None:
        self.xid_errors.labels(gpu_uuid, str(xid)).inc()

    def count_ecc(self, gpu_uuid: str, kind: str) -> None:
        self.ecc_errors.labels(gpu_uuid, kind).inc()

    @contextlib.contextmanager
    def call(self, operation: str) -> Iterator[None]:
        self.inflight.labels(operation).inc()
        try:
            with self.duration.labels(operation).time():
                yield
        except BaseException:
            self.requests.labels(operation, "error").inc()
            raise
        else:
            self.requests.labels(operation, "ok").inc()
        finally:
            self.inflight.labels(operation).dec()

    def counting_errors(self, component: str, work: Callable[[], None]) -> Callable[[], None]:
        """`work`, each exception it raises counted in ``gpu_dra_api_errors_total`` first."""

        def counted() -> None:
            try:
                work()
            except Exception:
                self.api_errors.labels(component).inc()
                raise

        return counted

    def serve(self, port: int, *, address: str) -> None:
        prometheus_client.start_http_server(port, addr=address, registry=self.registry)


def _count_of(counts: Callable[[], Mapping[str, int]], kind: str) -> float:
    return counts().get(kind, 0)
