"""Per-share usage as Prometheus metrics, read from each claim's quota accounting at scrape time.

The quota library (``preload/``) keeps, per claim and GPU, what the claim's live processes hold
and how many allocations it refused, in the claim's state file; `dra_driver.isolation.quotastate`
reads it without locking or mapping it. Every scrape reads the state of the shared claims this
plugin prepared (a few KiB each), so the figures are as fresh as the scrape:

| metric | meaning |
|---|---|
| ``gpu_dra_share_memory_limit_bytes`` | the claim's memory limit on the GPU |
| ``gpu_dra_share_memory_used_bytes`` | what its live processes hold there (allocations, rounded, plus each process's context reserve) |
| ``gpu_dra_share_processes`` | its live processes holding memory on the GPU |
| ``gpu_dra_share_refused_allocations_total`` | allocations refused for the limit since prepare |

Labels: ``namespace``, ``claim``, ``claim_uid``, ``device`` (the pool device names the claim got
on that GPU) and ``gpu_uuid``. A state that cannot be read is skipped (and logged once).
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Iterator

import structlog
from prometheus_client import registry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from dra_driver.checkpoint import model
from dra_driver.isolation import quotastate

log = structlog.get_logger(__name__)

LABELS = ("namespace", "claim", "claim_uid", "device", "gpu_uuid")

Source = Callable[[], list[tuple[model.PreparedClaim, pathlib.Path]]]
"""The shared claims and their state files (`preparing.Preparer.shared_claims`)."""


class ShareCollector(registry.Collector):
    def __init__(self, source: Source) -> None:
        self._source = source
        self._unreadable: set[pathlib.Path] = set()

    def collect(self) -> Iterator[Metric]:
        limit = GaugeMetricFamily(
            "gpu_dra_share_memory_limit_bytes",
            "memory limit of the claim on the GPU",
            labels=LABELS,
        )
        used = GaugeMetricFamily(
            "gpu_dra_share_memory_used_bytes",
            "device memory the claim's live processes hold on the GPU, as the quota counts it",
            labels=LABELS,
        )
        processes = GaugeMetricFamily(
            "gpu_dra_share_processes",
            "live processes of the claim holding memory on the GPU",
            labels=LABELS,
        )
        refused = CounterMetricFamily(
            "gpu_dra_share_refused_allocations",
            "allocations the quota refused for the limit since prepare",
            labels=LABELS,
        )
        for claim, path in self._source():
            try:
                state = quotastate.read(path)
            except quotastate.StateError as exc:
                if path not in self._unreadable:
                    self._unreadable.add(path)
                    log.warning("share.state_unreadable", claim=claim.uid, error=str(exc))
                continue
            self._unreadable.discard(path)
            for device in state.devices:
                names = sorted({d.device for d in claim.devices if d.gpu_uuid == device.uuid})
                labels = [claim.namespace, claim.name, claim.uid, ",".join(names), device.uuid]
                limit.add_metric(labels, device.limit_bytes)
                used.add_metric(labels, device.charged_bytes)
                processes.add_metric(labels, device.live_processes)
                refused.add_metric(labels, device.refused)
        yield from (limit, used, processes, refused)
