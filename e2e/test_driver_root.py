"""A node whose driver root is incomplete: the plugin says so, fails prepares with the reason, and
recovers by itself once the driver is complete.

Covers, with the real plugin process on a synthetic driver root (`tests.driverroot.synthetic`, fake
GPUs): while the driver root lacks ``libcuda.so.<kernel module version>``, readiness is NOT_SERVING,
``gpu_dra_driver_root_ready`` is 0, the log says ``driverroot.incomplete`` with the reason, and a
pod's claim fails with that reason (the fake kubelet records it) with no CDI spec written; once the
library is back, the next check makes the plugin ready and the kubelet's retry prepares the pod,
whose spec then carries the driver's libraries, hooks and nodes, and the hook the plugin installed.
"""

from __future__ import annotations

import functools
import pathlib
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from e2e.conftest import NodeFactory, Scenario
from e2e.harness import kube, objects, scraping
from kubeletplugin import serving
from tests.driverroot import nvidiactk, synthetic
from tests.kubeletplugin.test_liveness_probe import NOT_SERVING, SERVING, check
from tests.preload import building

pytestmark = pytest.mark.e2e


@pytest.fixture
def root() -> Iterator[synthetic.SyntheticRoot]:
    base = pathlib.Path(tempfile.mkdtemp(prefix="gdra-root-", dir="/tmp"))
    try:
        fakes = building.build(building.Flavour.PLAIN).fakes
        yield synthetic.create(base, fakes=fakes, gpu_minors=(0,))
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_an_incomplete_driver_root_fails_claims_with_the_reason_until_it_is_complete(
    scenario: Scenario, plugin_nodes: NodeFactory, root: synthetic.SyntheticRoot
) -> None:
    libcuda = root.library_dir / f"libcuda.so.{root.driver_version}"
    hidden = libcuda.with_name("hidden")
    libcuda.rename(hidden)
    health, metrics = scraping.free_port(), scraping.free_port()
    node = plugin_nodes(
        "1xL4",
        extra_args=(
            *nvidiactk.plugin_flags(root),
            "--driver-check-interval=0.5",
            f"--healthcheck-port={health}",
            f"--metrics-port={metrics}",
        ),
    )
    client, ns = scenario.client, scenario.namespace
    assert check(health, serving.READINESS) == NOT_SERVING
    assert scraping.value(metrics, "gpu_dra_driver_root_ready") == 0.0
    objects.create_claimed_pod(
        client, ns, "gpu", node=node.name, requests=[objects.request("gpu", "gpu.dra.dev")]
    )
    record = kube.wait_for(
        lambda: (r := node.record(ns, "gpu")) and r.get("error") and r, what="prepare failed"
    )
    assert "the node's NVIDIA driver is not usable" in record["error"]
    assert f"no libcuda.so.{root.driver_version}" in record["error"]
    assert list(node.cdi_dir.glob("k8s.gpu.dra.dev-claim_*")) == []
    assert "driverroot.incomplete" in node.log_tails()

    hidden.rename(libcuda)

    kube.wait_for(lambda: check(health, serving.READINESS) == SERVING, what="ready once complete")
    assert scraping.value(metrics, "gpu_dra_driver_root_ready") == 1.0
    prepared = kube.wait_for(
        functools.partial(node.prepared_record, ns, "gpu"), what="prepared on retry"
    )
    container = prepared["containers"]["main"]
    assert "NVIDIA_VISIBLE_DEVICES=void" in container["env"]
    mounted = {m["containerPath"] for m in container["mounts"]}
    assert f"/usr/lib/x86_64-linux-gnu/libcuda.so.{root.driver_version}" in mounted
    assert {"/dev/nvidia0", "/dev/nvidiactl"} <= {n["path"] for n in container["deviceNodes"]}
    installed = node.plugin_dir / "bin" / "nvidia-cdi-hook"
    assert {h["path"] for h in container["hooks"]} == {str(installed)}
    assert installed.read_bytes() == (nvidiactk.build() / "nvidia-cdi-hook").read_bytes()
