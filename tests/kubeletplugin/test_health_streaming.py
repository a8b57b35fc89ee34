"""Device health for the kubelet: NodeWatchResources in health v1 and v1alpha1.

Covers: the first message lists every device the node publishes, all HEALTHY, in our pool, with
an update time; a health change sends a new message with the full list again (the changed
device UNHEALTHY with its message, the others still HEALTHY); a message longer than the kubelet
takes is cut to 1024 characters; two watchers both see a change; closing the board ends every
stream cleanly.
"""

from __future__ import annotations

import time
import types
from collections.abc import Iterator
from typing import Any

import pytest

from kubeletplugin import health
from kubeletplugin.protos.dra_health.v1 import api_pb2 as v1
from kubeletplugin.protos.dra_health.v1alpha1 import api_pb2 as v1alpha1
from tests.kubeletplugin import pluginserver
from tests.kubeletplugin.claimbook import NODE

STREAM_TIMEOUT = 10.0


@pytest.fixture(params=["v1", "v1alpha1"])
def watch(
    request: pytest.FixtureRequest, stubs: pluginserver.Stubs
) -> Iterator[tuple[Any, types.ModuleType]]:
    """A started NodeWatchResources stream and the messages of its version."""
    stub, pb = (stubs.health_v1, v1) if request.param == "v1" else (stubs.health_v1alpha1, v1alpha1)
    stream = stub.NodeWatchResources(pb.NodeWatchResourcesRequest(), timeout=STREAM_TIMEOUT)
    yield stream, pb
    stream.cancel()


def by_device(message: Any) -> dict[str, Any]:
    assert {d.device.pool_name for d in message.devices} == {NODE}
    return {d.device.device_name: d for d in message.devices}


def test_the_first_message_lists_every_device_healthy(
    watch: tuple[Any, types.ModuleType], plugin: pluginserver.PluginServer
) -> None:
    stream, pb = watch
    devices = by_device(next(stream))
    published = [d.device for d in pluginserver.published(plugin.backend)]
    assert sorted(devices) == sorted(published)
    assert {"gpu-0", "gpu-0-mig-1g5gb-6", "gpu-1", "gpu-1-shared"} <= set(devices)
    assert {d.health for d in devices.values()} == {pb.HEALTHY}
    assert all(d.last_updated_time >= time.time() - 60 for d in devices.values())


def test_a_change_sends_the_full_list_again(
    watch: tuple[Any, types.ModuleType], plugin: pluginserver.PluginServer
) -> None:
    stream, pb = watch
    first = by_device(next(stream))
    plugin.board.update(
        health.DeviceHealth(pool=NODE, device="gpu-1", healthy=False, message="XID 79")
    )
    second = by_device(next(stream))
    assert set(second) == set(first)
    assert (second["gpu-1"].health, second["gpu-1"].message) == (pb.UNHEALTHY, "XID 79")
    assert {d.health for name, d in second.items() if name != "gpu-1"} == {pb.HEALTHY}


def test_a_long_message_is_cut_to_what_the_kubelet_takes(
    watch: tuple[Any, types.ModuleType], plugin: pluginserver.PluginServer
) -> None:
    stream, _ = watch
    next(stream)
    plugin.board.update(
        health.DeviceHealth(pool=NODE, device="gpu-0", healthy=False, message="x" * 5000)
    )
    assert len(by_device(next(stream))["gpu-0"].message) == 1024


def test_closing_the_board_ends_every_stream(
    stubs: pluginserver.Stubs, plugin: pluginserver.PluginServer
) -> None:
    streams = [
        stubs.health_v1.NodeWatchResources(v1.NodeWatchResourcesRequest(), timeout=STREAM_TIMEOUT),
        stubs.health_v1alpha1.NodeWatchResources(
            v1alpha1.NodeWatchResourcesRequest(), timeout=STREAM_TIMEOUT
        ),
    ]
    for stream in streams:
        next(stream)
    plugin.board.update(health.DeviceHealth(pool=NODE, device="gpu-0", healthy=False))
    for stream in streams:
        assert by_device(next(stream))["gpu-0"].health == v1.UNHEALTHY
    plugin.board.close()
    for stream in streams:
        assert list(stream) == []
