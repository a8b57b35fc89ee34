"""Which pod holds which GPU, from the real plugin process on the local control plane.

Covers: pods scheduled by the real kube-scheduler onto a fake node and prepared by our plugin
(the fake kubelet's real DRA calls) appear in the plugin's ``/metrics`` as
``gpu_dra_prepared_device_info`` with their pod, claim and GPU UUID (the pod names read from the
claims' ``status.reservedFor`` by the plugin's own claim reads); the join of docs/monitoring.md,
evaluated by promtool over that ``/metrics`` text and dcgm-exporter's exposition of the same GPUs,
gives each pod's GPU memory; deleting a pod takes its series away.
"""

from __future__ import annotations

import functools
import urllib.request

import pytest

from dra_driver.backends.fake import backend as fake
from e2e.conftest import NodeFactory, Scenario
from e2e.harness import kube, nodeagents, objects, scraping
from tests.monitoring import dcgm, docs, exposition, promtool

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]  # promtool's first build: minutes

GPUS = "1xA100-40GB,1xL4"
PORT = scraping.free_port()
DCGM = {"job": "dcgm-exporter", "instance": "10.0.0.9:9400"}


@pytest.fixture
def node(plugin_nodes: NodeFactory) -> nodeagents.PluginNode:
    return plugin_nodes(GPUS, extra_args=(f"--metrics-port={PORT}",))


def _metrics() -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/metrics", timeout=5) as answer:
        return str(answer.read().decode())


def _holders() -> dict[str, tuple[str, str, str]]:
    """Pod → (claim, UUID, GPU_I_ID), from the info metric."""
    return {
        labels["pod"]: (labels["claim"], labels["UUID"], labels["GPU_I_ID"])
        for (name, labelset), _ in scraping.samples(PORT).items()
        if name == "gpu_dra_prepared_device_info"
        for labels in [dict(labelset)]
    }


def test_the_plugin_names_the_pod_of_each_device_and_the_join_attributes_gpu_memory(
    scenario: Scenario, node: nodeagents.PluginNode
) -> None:
    ns = scenario.namespace
    on_l4 = ['device.attributes["gpu.dra.dev"].productName.contains("L4")']
    scenario.schedule(
        node.name, "trainer", [objects.request("gpu", "gpu.dra.dev", selectors=on_l4)]
    )
    mig = ['device.attributes["gpu.dra.dev"].profile == "3g.20gb"']
    scenario.schedule(
        node.name, "infer", [objects.request("mig", "mig.gpu.dra.dev", selectors=mig)]
    )
    for pod in ("trainer", "infer"):
        kube.wait_for(functools.partial(node.prepared_record, ns, pod), what=f"{pod} prepared")
    gpus = fake.FakeBackend.from_spec(GPUS, node_name=node.name, state_dir=node.plugin_dir)
    a100, l4 = sorted(gpus.gpus(), key=lambda gpu: gpu.index)
    (instance,) = gpus.status(a100.uuid).mig_instances
    gi = str(instance.gpu_instance_id)
    assert _holders() == {"trainer": ("trainer", l4.uuid, ""), "infer": ("infer", a100.uuid, gi)}

    dcgm_text = dcgm.exposition(
        [
            {"index": 0, "uuid": a100.uuid, "model": "NVIDIA A100-SXM4-40GB",
             "bus": "00000000:07:00.0", "fb_used": 9000,
             "migs": [(instance.gpu_instance_id, "3g.20gb", 4200)]},
            {"index": 1, "uuid": l4.uuid, "model": "NVIDIA L4", "bus": "00000000:0A:00.0",
             "fb_used": 15000, "migs": []},
        ]
    )  # fmt: skip
    series = exposition.series(dcgm_text, target=DCGM)
    series += exposition.series(_metrics(), target={"job": "gpu-dra", "node": node.name})
    per_pod = f"sum by (namespace, pod, claim) ({docs.join_query()})"
    promtool.run_tests(
        {"groups": []},
        [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    {
                        "expr": per_pod,
                        "eval_time": "5m",
                        "exp_samples": [
                            {"labels": f'{{namespace="{ns}",pod="trainer",claim="trainer"}}',
                             "value": 15000},
                            {"labels": f'{{namespace="{ns}",pod="infer",claim="infer"}}',
                             "value": 4200},
                        ],
                    }
                ],
            }
        ],
    )  # fmt: skip

    objects.delete_pod(scenario.client, ns, "trainer")
    kube.wait_for(lambda: "trainer" not in _holders(), what="trainer's series gone", timeout=60)
