"""What a claim with ``adminAccess`` can get: the "Known limits" of ``docs/troubleshooting.md``.

Covers, with the real kube-scheduler and a fake node's slices (one counter set per GPU, which every
device of that GPU consumes from):
- the limit (kubernetes/kubernetes#140729, open): the allocator checks counters for admin-access
  requests too, so an admin claim cannot get a device whose counters another claim consumes: the
  whole GPU while a workload holds it whole, a MIG slice of it or a share of it, nor the MIG device a
  workload holds. The admin's pod stays unschedulable with nothing allocated. Once upstream fixes
  this, these cases fail and say so: the doc must then be updated;
- a request for any MIG device of the GPU is allocated, but to a free placement (a new MIG
  instance), not to the workload's;
- what the doc offers instead works: admin access to the shared device while shares run on it (a
  multi-allocatable device's counters are charged once for all its allocations), and to a GPU that
  holds nothing; neither takes anything from the workloads that come after.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest

from e2e.conftest import Scenario
from e2e.harness import objects

pytestmark = pytest.mark.e2e

ADMIN_LABEL = "resource.kubernetes.io/admin-access"
THE_DOC = "docs/troubleshooting.md (Known limits)"
ISSUE = "kubernetes/kubernetes#140729"


def _gpu(index: int) -> list[dict[str, Any]]:
    selector = f'device.attributes["gpu.dra.dev"].index == {index}'
    return [objects.request("gpu", "gpu.dra.dev", selectors=[selector])]


def _share(index: int, memory: str = "4Gi") -> list[dict[str, Any]]:
    selector = f'device.attributes["gpu.dra.dev"].index == {index}'
    return [
        objects.request(
            "share", "shared.gpu.dra.dev", selectors=[selector], capacity={"memory": memory}
        )
    ]


def _mig_1g5gb_at_6(index: int) -> list[dict[str, Any]]:
    attribute = 'device.attributes["gpu.dra.dev"]'
    selector = (
        f'{attribute}.parentIndex == {index} && {attribute}.profile == "1g.5gb" && '
        f"{attribute}.placementStart == 6"
    )
    return [objects.request("mig", "mig.gpu.dra.dev", selectors=[selector])]


def _admin(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for request in requests:
        request["exactly"].pop("capacity", None)
        request["exactly"]["adminAccess"] = True
    return requests


@dataclasses.dataclass(frozen=True)
class Case:
    workload: list[dict[str, Any]]
    admin: list[dict[str, Any]]
    admin_gets: str | None  # the device, or None: stays unallocated (the limit)
    then: list[dict[str, Any]] | None = None  # a workload that must still fit afterwards


CASES = [
    pytest.param(Case(_gpu(0), _admin(_gpu(0)), None), id="the-gpu-a-workload-holds-whole"),
    pytest.param(Case(_mig_1g5gb_at_6(0), _admin(_gpu(0)), None), id="a-gpu-with-a-mig-slice"),
    pytest.param(Case(_share(0), _admin(_gpu(0)), None), id="a-gpu-with-a-share"),
    pytest.param(
        Case(_mig_1g5gb_at_6(0), _admin(_mig_1g5gb_at_6(0)), None),
        id="the-mig-slice-a-workload-holds",
    ),
    pytest.param(
        Case(_share(0), _admin(_share(0)), "gpu-0-shared", then=_share(0, "36Gi")),
        id="allowed:the-shared-device-while-shares-run",
    ),
    pytest.param(
        Case(_gpu(0), _admin(_gpu(1)), "gpu-1", then=_gpu(1)),
        id="allowed:a-gpu-that-holds-nothing",
    ),
]


def _outcome(scenario: Scenario, name: str, *, timeout: float = 60) -> list[str] | str:
    """The devices claim `name` got once its pod is bound, or the scheduler's reason for not
    binding it (with nothing allocated)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if objects.scheduled_node(scenario.client, scenario.namespace, name):
            return objects.allocated_devices(scenario.client, scenario.namespace, name)
        message = objects.unschedulable_message(scenario.client, scenario.namespace, name)
        if message is not None:
            assert objects.allocation(scenario.client, scenario.namespace, name) == []
            return message
        time.sleep(0.2)
    raise TimeoutError(f"pod {name} neither bound nor unschedulable after {timeout:.0f}s")


@pytest.mark.parametrize("case", CASES)
def test_what_an_admin_access_claim_gets_while_a_workload_runs(
    case: Case, scenario: Scenario
) -> None:
    scenario.client.merge_patch(
        f"/api/v1/namespaces/{scenario.namespace}", {"metadata": {"labels": {ADMIN_LABEL: "true"}}}
    )
    node = scenario.node("2xA100-40GB")
    scenario.schedule(node, "workload", case.workload)
    assert scenario.allocated("workload"), "the workload got nothing"
    scenario.schedule(node, "admin", case.admin)
    got = _outcome(scenario, "admin")
    if case.admin_gets is None:
        assert isinstance(got, str), (
            f"the admin-access claim got {got}: {ISSUE} looks fixed upstream; "
            f"update {THE_DOC} and this test"
        )
        assert "cannot allocate all claims" in got
    else:
        assert got == [case.admin_gets], f"{THE_DOC} says an admin can get this: {got}"
        (result,) = objects.allocation(scenario.client, scenario.namespace, "admin")
        assert result["adminAccess"] is True
    if case.then is not None:
        scenario.schedule(node, "then", case.then)
        then = _outcome(scenario, "then")
        assert then == [case.admin_gets], f"the admin-access claim kept a workload off: {then}"


def test_an_admin_access_request_for_any_mig_device_gets_a_free_placement(
    scenario: Scenario,
) -> None:
    scenario.client.merge_patch(
        f"/api/v1/namespaces/{scenario.namespace}", {"metadata": {"labels": {ADMIN_LABEL: "true"}}}
    )
    node = scenario.node("2xA100-40GB")
    scenario.schedule(node, "workload", _mig_1g5gb_at_6(0))
    held = scenario.device("workload")
    selector = 'device.attributes["gpu.dra.dev"].parentIndex == 0'
    scenario.schedule(
        node, "admin", _admin([objects.request("mig", "mig.gpu.dra.dev", selectors=[selector])])
    )
    got = _outcome(scenario, "admin")
    assert isinstance(got, list), f"{THE_DOC} says it is allocated: {got}"
    (device,) = got
    assert device.startswith("gpu-0-mig-")
    assert device != held
