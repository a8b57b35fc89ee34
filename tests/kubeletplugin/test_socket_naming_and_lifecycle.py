"""Where the plugin's sockets live and how long they live (the kubelet plugin-watcher rules).

Covers: socket names per pod UID (``dra-<uid>.sock``, ``<driver>-<uid>-reg.sock``; the plain
names without one), two pods on one node get distinct sockets; a stale socket file (of a
previous run of the pod, or any file) is replaced at start and the new one answers; stop removes
our sockets and leaves every other socket in the directories alone; a directory too long for a
108-byte unix socket path falls back to the hashed names of the Go helper library, and a plugin
served there registers the hashed DRA socket as its endpoint; nothing fits at all → a clear error.
"""

from __future__ import annotations

import base64
import hashlib
import os
import pathlib
import socket
import stat

import pytest

from kubeletplugin import serving
from kubeletplugin.protos.pluginregistration import api_pb2 as pb
from tests.kubeletplugin import claimbook, pluginserver

UID = "4c0ffee0-0000-4000-8000-00000000000a"
DRIVER = claimbook.DRIVER


def short_hash(*parts: str) -> str:
    digest = hashlib.sha256("\0".join(parts).encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")[:16]


def is_socket(path: pathlib.Path) -> bool:
    return path.exists() and stat.S_ISSOCK(path.stat().st_mode)


def dir_of_length(base: pathlib.Path, length: int) -> pathlib.Path:
    """A path under `base` exactly `length` bytes long."""
    padding = length - len(os.fsencode(base)) - 1
    assert padding > 0
    return base / ("d" * padding)


def leave_socket_file(path: pathlib.Path) -> None:
    """What a killed process leaves: a socket file nobody listens on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(path))


@pytest.mark.parametrize(
    ("pod_uid", "dra_name", "registration_name"),
    [
        pytest.param(UID, f"dra-{UID}.sock", f"{DRIVER}-{UID}-reg.sock", id="per-pod"),
        pytest.param("", "dra.sock", f"{DRIVER}-reg.sock", id="no-pod-uid"),
    ],
)
def test_socket_names(
    layout: pluginserver.Layout,
    book: claimbook.ClaimBook,
    pod_uid: str,
    dra_name: str,
    registration_name: str,
) -> None:
    with pluginserver.PluginServer(layout, book=book, pod_uid=pod_uid) as plugin:
        assert plugin.dra_socket == layout.plugin_dir / dra_name
        assert plugin.registration_socket == layout.registry_dir / registration_name
        assert is_socket(plugin.dra_socket)
        assert is_socket(plugin.registration_socket)


def test_two_pods_on_one_node_get_distinct_sockets(
    layout: pluginserver.Layout, book: claimbook.ClaimBook
) -> None:
    old = pluginserver.PluginServer(layout, book=book, pod_uid="old-pod")
    new = pluginserver.PluginServer(layout, book=book, pod_uid="new-pod")
    with old, new:
        assert old.dra_socket != new.dra_socket
        assert old.registration_socket != new.registration_socket
        assert sorted(p.name for p in layout.registry_dir.iterdir()) == [
            f"{DRIVER}-new-pod-reg.sock",
            f"{DRIVER}-old-pod-reg.sock",
        ]


@pytest.mark.parametrize("stale", ["socket", "file"])
def test_a_stale_socket_file_is_replaced_at_start(
    layout: pluginserver.Layout, book: claimbook.ClaimBook, stale: str
) -> None:
    for path in (layout.dra_socket(UID), layout.registration_socket(UID)):
        if stale == "socket":
            leave_socket_file(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("left behind")
    with (
        pluginserver.PluginServer(layout, book=book, pod_uid=UID) as plugin,
        pluginserver.Stubs.of(plugin) as stubs,
    ):
        assert is_socket(plugin.dra_socket)
        assert stubs.registration.GetInfo(pb.InfoRequest(), timeout=1).name == DRIVER
        assert dict(stubs.v1.prepare().claims) == {}


def test_stop_removes_our_sockets_and_no_other(
    layout: pluginserver.Layout, book: claimbook.ClaimBook
) -> None:
    others = [
        layout.registry_dir / "other.example.com-reg.sock",
        layout.registry_dir / f"{DRIVER}-another-pod-reg.sock",
        layout.plugin_dir / "dra-another-pod.sock",
    ]
    for path in others:
        leave_socket_file(path)
    plugin = pluginserver.PluginServer(layout, book=book, pod_uid=UID)
    plugin.start()
    plugin.stop()
    assert not plugin.dra_socket.exists()
    assert not plugin.registration_socket.exists()
    assert all(is_socket(path) for path in others)


@pytest.mark.parametrize(
    ("length", "expected"),
    [
        pytest.param(61, f"dra-{UID}.sock", id="fits"),
        pytest.param(62, f"dra-{short_hash(DRIVER, UID)}.sock", id="hashed"),
        pytest.param(81, f"dra-{short_hash(DRIVER, UID)}.sock", id="hashed-at-limit"),
    ],
)
def test_dra_socket_name_falls_back_to_a_hash(
    short_dir: pathlib.Path, length: int, expected: str
) -> None:
    directory = dir_of_length(short_dir, length)
    path = serving.dra_socket(directory, driver=DRIVER, pod_uid=UID)
    assert path == directory / expected
    assert len(os.fsencode(path)) < serving.UNIX_PATH_MAX


@pytest.mark.parametrize(
    ("length", "expected"),
    [
        pytest.param(49, f"{DRIVER}-{UID}-reg.sock", id="fits"),
        pytest.param(50, f"{DRIVER}-{short_hash(UID)}-reg.sock", id="hashed-uid"),
        pytest.param(70, f"dra-{short_hash(DRIVER, UID)}-reg.sock", id="hashed-driver-and-uid"),
    ],
)
def test_registration_socket_name_falls_back_to_a_hash(
    short_dir: pathlib.Path, length: int, expected: str
) -> None:
    directory = dir_of_length(short_dir, length)
    path = serving.registration_socket(directory, driver=DRIVER, pod_uid=UID)
    assert path == directory / expected
    assert len(os.fsencode(path)) < serving.UNIX_PATH_MAX


@pytest.mark.parametrize("pod_uid", [UID, ""])
def test_a_directory_too_long_for_any_name_is_a_clear_error(
    short_dir: pathlib.Path, pod_uid: str
) -> None:
    directory = dir_of_length(short_dir, 100)
    with pytest.raises(ValueError, match="too long for a unix socket path"):
        serving.dra_socket(directory, driver=DRIVER, pod_uid=pod_uid)
    with pytest.raises(ValueError, match="too long for a unix socket path"):
        serving.registration_socket(directory, driver=DRIVER, pod_uid=pod_uid)


def test_a_plugin_in_a_long_directory_serves_and_registers_the_hashed_socket(
    short_dir: pathlib.Path, book: claimbook.ClaimBook
) -> None:
    # plugin dir = <root>/plugins/gpu.dra.dev: 70 bytes, too long for dra-<uid>.sock
    layout = pluginserver.Layout(dir_of_length(short_dir, 70 - len("/plugins/gpu.dra.dev")))
    with (
        pluginserver.PluginServer(layout, book=book, pod_uid=UID) as plugin,
        pluginserver.Stubs.of(plugin) as stubs,
    ):
        assert plugin.dra_socket.name == f"dra-{short_hash(DRIVER, UID)}.sock"
        info = stubs.registration.GetInfo(pb.InfoRequest(), timeout=1)
        assert info.endpoint == str(plugin.dra_socket)
        assert is_socket(plugin.dra_socket)
        assert dict(stubs.v1.prepare().claims) == {}


@pytest.mark.parametrize(
    ("root_length", "socket", "path_length"),
    [
        pytest.param(41, "dra", 107, id="dra-107-bytes"),
        pytest.param(40, "dra", 106, id="dra-106-bytes"),
        pytest.param(32, "registration", 107, id="registration-107-bytes"),
    ],
)
def test_a_socket_path_at_the_length_limit_is_served(
    short_dir: pathlib.Path,
    book: claimbook.ClaimBook,
    root_length: int,
    socket: str,
    path_length: int,
) -> None:
    # A name that `serving` accepts as fitting must also be one gRPC can bind.
    layout = pluginserver.Layout(dir_of_length(short_dir, root_length))
    with (
        pluginserver.PluginServer(layout, book=book, pod_uid=UID) as plugin,
        pluginserver.Stubs.of(plugin) as stubs,
    ):
        path = plugin.dra_socket if socket == "dra" else plugin.registration_socket
        assert len(os.fsencode(path)) == path_length
        assert UID in path.name  # the readable name, no fallback needed
        assert stubs.registration.GetInfo(pb.InfoRequest(), timeout=1).name == DRIVER
        assert dict(stubs.v1.prepare().claims) == {}


def test_others_serving_asks_the_other_dra_sockets(
    layout: pluginserver.Layout, book: claimbook.ClaimBook
) -> None:
    """Another pod's DRA socket that answers counts; ours, a dead one's, and other files not."""
    own = layout.dra_socket(UID)
    leave_socket_file(layout.plugin_dir / "dra-dead-pod.sock")
    (layout.plugin_dir / "dra-notes.sock.txt").write_text("")
    assert not serving.others_serving(layout.plugin_dir, own=own)
    with pluginserver.PluginServer(layout, book=book, pod_uid=UID):
        assert not serving.others_serving(layout.plugin_dir, own=own)  # only ours answers
        with pluginserver.PluginServer(layout, book=book, pod_uid="another-pod"):
            assert serving.others_serving(layout.plugin_dir, own=own)
        assert not serving.others_serving(layout.plugin_dir, own=own)
    assert not serving.others_serving(layout.plugin_dir / "missing", own=own)
