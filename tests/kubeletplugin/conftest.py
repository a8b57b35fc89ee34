"""Fixtures: a plugin served in this process on unix sockets in ``tmp_path``, and the kubelet's stubs.

- ``short_dir``: a fresh directory with a short path (``tmp_path`` is too deep for a unix socket
  path of at most 108 bytes), removed after the test;
- ``layout``: the node's directories (plugin dir, registry dir, CDI dir) under ``short_dir``;
- ``book``: the in-memory ResourceClaims the plugin fetches;
- ``plugin``: the real servers with pod UID `POD_UID`, stopped (sockets removed) after the test;
- ``stubs``: gRPC stubs on the plugin's sockets (channels closed after the test);
- ``dra``: the DRA service in each version the plugin serves (v1, v1beta1).
"""

from __future__ import annotations

import pathlib
import tempfile
from collections.abc import Iterator

import pytest

from tests.kubeletplugin import claimbook, pluginserver

POD_UID = "4c0ffee0-0000-4000-8000-00000000000a"


@pytest.fixture
def short_dir() -> Iterator[pathlib.Path]:
    with tempfile.TemporaryDirectory(prefix="kp-", dir="/tmp") as directory:
        yield pathlib.Path(directory)


@pytest.fixture
def layout(short_dir: pathlib.Path) -> pluginserver.Layout:
    return pluginserver.Layout(short_dir)


@pytest.fixture
def book() -> claimbook.ClaimBook:
    return claimbook.ClaimBook()


@pytest.fixture
def plugin(
    layout: pluginserver.Layout, book: claimbook.ClaimBook
) -> Iterator[pluginserver.PluginServer]:
    with pluginserver.PluginServer(layout, book=book, pod_uid=POD_UID) as server:
        yield server


@pytest.fixture
def stubs(plugin: pluginserver.PluginServer) -> Iterator[pluginserver.Stubs]:
    with pluginserver.Stubs.of(plugin) as connected:
        yield connected


@pytest.fixture(params=["v1", "v1beta1"])
def dra(request: pytest.FixtureRequest, stubs: pluginserver.Stubs) -> pluginserver.DraClient:
    client: pluginserver.DraClient = getattr(stubs, request.param)
    return client
