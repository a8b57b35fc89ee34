"""The PromQL join of docs/monitoring.md attributes dcgm-exporter's GPU series to the pods of claims.

Evaluated by Prometheus' own engine (``promtool test rules``) over exposition text of both sides:
a real plugin's ``/metrics`` (served over HTTP by its registry, after a whole GPU and a MIG slice
were prepared through its gRPC service and the claims read with their pods), scraped twice as two
plugin pods of one node export it during a rolling update, and dcgm-exporter's exposition of the
same GPUs in its own format (its template's labels and their order: ``gpu``, ``UUID``,
``pci_bus_id``, ``device``, ``modelName``, then ``GPU_I_PROFILE`` and ``GPU_I_ID`` for a MIG
device, ``Hostname``).

Covers: the whole GPU's series and the MIG slice's get the namespace, pods and claim of the claim
holding each; the MIG-enabled GPU's own GPU-wide series and a MIG instance no claim holds drop
out; the query is the one docs/monitoring.md shows, character for character.
"""

from __future__ import annotations

import pathlib
import tempfile
import urllib.request
from collections.abc import Iterator
from typing import Any

import prometheus_client
import pytest

from kubeletplugin import devicemetrics, reservations
from tests.kubeletplugin import claimbook, pluginserver
from tests.monitoring import dcgm, docs, exposition, promtool

pytestmark = pytest.mark.timeout(900)  # the first run builds promtool (minutes)

DCGM = {"job": "dcgm-exporter", "instance": "10.0.0.9:9400"}
PLUGIN_PODS = [
    {"job": "gpu-dra", "instance": f"10.0.0.{n}:8080", "node": claimbook.NODE} for n in (1, 2)
]


@pytest.fixture
def book() -> claimbook.ClaimBook:
    return claimbook.ClaimBook()


@pytest.fixture
def plugin(book: claimbook.ClaimBook) -> Iterator[pluginserver.PluginServer]:
    """The real plugin servers (fake 1xA100-40GB,1xL4) on sockets in a short temporary dir."""
    with tempfile.TemporaryDirectory(prefix="mon-", dir="/tmp") as directory:
        layout = pluginserver.Layout(pathlib.Path(directory))
        with pluginserver.PluginServer(layout, book=book) as server:
            yield server


def _scrape(registry: prometheus_client.CollectorRegistry) -> str:
    """The registry's /metrics, served over HTTP as the plugin serves it."""
    server, thread = prometheus_client.start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as answer:
            return str(answer.read().decode())
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_join_names_the_pods_of_whole_gpus_and_mig_slices(
    plugin: pluginserver.PluginServer, book: claimbook.ClaimBook
) -> None:
    pods = reservations.Reservations()
    plugin.stats.registry.register(
        devicemetrics.DeviceInfoCollector(
            plugin.preparer.completed_claims,
            pods=pods,
            mig_instances=lambda gpu: plugin.backend.status(gpu).mig_instances,
        )
    )
    whole = claimbook.claim("u-whole", claimbook.gpu(1))
    sliced = claimbook.claim("u-mig", claimbook.mig(0, "3g.20gb", 4))
    whole["status"]["reservedFor"] = [{"resource": "pods", "name": "trainer", "uid": "p1"}]
    sliced["status"]["reservedFor"] = [
        {"resource": "pods", "name": name, "uid": name} for name in ("infer-1", "infer-0")
    ]
    for obj in (whole, sliced):
        book.add(obj)
        pods.record(obj)
    with pluginserver.Stubs.of(plugin) as stubs:
        answer = stubs.v1.prepare(claimbook.ref(whole), claimbook.ref(sliced))
    assert [answer.claims[uid].error for uid in ("u-whole", "u-mig")] == ["", ""]
    plugin_text = _scrape(plugin.stats.registry)
    a100, l4 = sorted(plugin.backend.gpus(), key=lambda gpu: gpu.index)
    (held,) = plugin.backend.status(a100.uuid).mig_instances
    unheld = held.gpu_instance_id + 1
    dcgm_text = dcgm.exposition(
        [
            {"index": 0, "uuid": a100.uuid, "model": "NVIDIA A100-SXM4-40GB",
             "bus": "00000000:07:00.0", "fb_used": 9000,
             "migs": [(held.gpu_instance_id, "3g.20gb", 4200), (unheld, "1g.5gb", 700)]},
            {"index": 1, "uuid": l4.uuid, "model": "NVIDIA L4", "bus": "00000000:0A:00.0",
             "fb_used": 15000, "migs": []},
        ]
    )  # fmt: skip

    series = exposition.series(dcgm_text, target=DCGM)
    for target in PLUGIN_PODS:
        series += exposition.series(plugin_text, target=target)

    def expected(gpu: Any, value: int, mig: dict[str, str], claim: str, pod: str) -> dict[str, Any]:
        labels = {
            **DCGM,
            "gpu": str(gpu.index),
            "UUID": gpu.uuid,
            "pci_bus_id": "00000000:07:00.0" if gpu is a100 else "00000000:0A:00.0",
            "device": f"nvidia{gpu.index}",
            "modelName": "NVIDIA A100-SXM4-40GB" if gpu is a100 else "NVIDIA L4",
            "Hostname": "node-a",
            **mig,
            "namespace": claimbook.NAMESPACE,
            "claim": claim,
            "pod": pod,
        }
        return {"labels": exposition.selector("", labels), "value": value}

    mig_labels = {"GPU_I_PROFILE": "3g.20gb", "GPU_I_ID": str(held.gpu_instance_id)}
    promtool.run_tests(
        {"groups": []},
        [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    {
                        "expr": docs.join_query(),
                        "eval_time": "5m",
                        "exp_samples": [
                            expected(l4, 15000, {}, "claim-u-whole", "trainer"),
                            expected(a100, 4200, mig_labels, "claim-u-mig", "infer-0,infer-1"),
                        ],
                    }
                ],
            }
        ],
    )
