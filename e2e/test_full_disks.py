"""A full disk under the plugin: the claim fails with a clear message and nothing is half-written.

Covers, on a node whose plugin dir and CDI dir are each a small tmpfs of their own (mounted by
the test, unmounted after): with the CDI dir full, a pod's claim fails with "No space left on
device" naming the CDI spec, and with the plugin dir full, one fails naming the checkpoint; each
time the pod's record and event carry the message, no temporary file is left behind, the claim
has neither a CDI spec nor a checkpoint entry, and the claims prepared before are untouched (the
checkpoint still reads, completed). Once space is freed, the fake kubelet's retry prepares the
claim, and deleting the pods unprepares everything.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import pathlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from dra_driver.cdi import naming as cdi_naming
from dra_driver.checkpoint import model
from e2e.conftest import Scenario, local
from e2e.harness import kube, nodeagents, objects

pytestmark = pytest.mark.e2e

GPUS = "4xL4"
SIZE = "4m"
"""Of each tmpfs: room for the node's files (checkpoint, fake GPU state, CDI specs) many times."""


def _mount_tmpfs(path: pathlib.Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE},mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")


def _unmount(path: pathlib.Path) -> None:
    if os.path.ismount(path):
        subprocess.run(["umount", "--lazy", str(path)], check=False)


@pytest.fixture
def node(
    scenario: Scenario, bin_dir: pathlib.Path, request: pytest.FixtureRequest
) -> Iterator[nodeagents.PluginNode]:
    work_dir = pathlib.Path(tempfile.mkdtemp(prefix="gdra-", dir="/tmp"))
    plugin = nodeagents.PluginNode(
        plane=local(scenario.plane),
        client=scenario.client,
        bin_dir=bin_dir,
        work_dir=work_dir,
        name=f"{scenario.namespace}-node-0",
        gpus=GPUS,
    )
    scenario.nodes.append(plugin.name)
    mounts = [plugin.plugin_dir, plugin.cdi_dir]
    try:
        for path in mounts:
            _mount_tmpfs(path)
        plugin.start()
        yield plugin
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            request.node.add_report_section("teardown", "node agents", plugin.log_tails())
        plugin.stop()
        for path in mounts:
            _unmount(path)
        shutil.rmtree(work_dir, ignore_errors=True)


@contextlib.contextmanager
def _filled(directory: pathlib.Path) -> Iterator[None]:
    """`directory`'s file system full for the block (a filler file takes every free byte)."""
    filler = directory / "filler"
    chunk = b"\0" * 65536
    with filler.open("wb") as file, contextlib.suppress(OSError):
        while os.write(file.fileno(), chunk):  # short writes near the end, then ENOSPC
            pass
    with pytest.raises(OSError, match="No space left") as full:
        (directory / "probe").write_bytes(b"x")
    assert full.value.errno == errno.ENOSPC
    (directory / "probe").unlink(missing_ok=True)
    try:
        yield
    finally:
        filler.unlink()


def _specs(node: nodeagents.PluginNode) -> set[str]:
    uids = (cdi_naming.claim_uid_of_file(path.name) for path in node.cdi_dir.glob("*.json"))
    return {uid for uid in uids if uid}


def _leftovers(node: nodeagents.PluginNode) -> list[str]:
    """Temporary files of atomic writes (``.<name>.<random>.tmp``) anywhere under the node's
    dirs: a write that failed half-way must have removed its own."""
    found = []
    for root in (node.plugin_dir, node.cdi_dir):
        found += [str(path) for path in root.rglob(".*.tmp")]
    return found


def _failed(node: nodeagents.PluginNode, ns: str, pod: str) -> str | None:
    record = node.record(ns, pod)
    error = None if record is None else record.get("error")
    return error or None


def _prepared(node: nodeagents.PluginNode, ns: str, pod: str) -> dict[str, Any] | None:
    return node.prepared_record(ns, pod)


def _uid(client: kube.Kube, ns: str, claim: str) -> str:
    path = f"/apis/resource.k8s.io/v1/namespaces/{ns}/resourceclaims/{claim}"
    uid: str = client.get(path)["metadata"]["uid"]
    return uid


@pytest.mark.parametrize(
    ("full", "names"),
    [
        pytest.param("cdi", "k8s.gpu.dra.dev-claim_", id="cdi-dir"),
        pytest.param("plugin", "checkpoint", id="plugin-dir"),
    ],
)
def test_a_full_disk_fails_the_claim_clearly_and_leaves_nothing_half_written(
    scenario: Scenario, node: nodeagents.PluginNode, full: str, names: str
) -> None:
    client, ns = scenario.client, scenario.namespace
    gpu = [objects.request("gpu", "gpu.dra.dev")]
    scenario.schedule(node.name, "before", gpu)
    kube.wait_for(functools.partial(_prepared, node, ns, "before"), what="before prepared")
    before = _uid(client, ns, "before")

    with _filled(node.cdi_dir if full == "cdi" else node.plugin_dir):
        scenario.schedule(node.name, "squeezed", gpu)
        error = kube.wait_for(
            functools.partial(_failed, node, ns, "squeezed"), what="squeezed failed", timeout=60
        )
        assert "No space left on device" in error, error
        assert names in error, error
        assert "internal error" not in error, error  # a full disk is the claim's failure
        assert _leftovers(node) == []
        assert _specs(node) == {before}
        assert node.checkpointed() == {before: model.PrepareState.COMPLETED}

    kube.wait_for(
        functools.partial(_prepared, node, ns, "squeezed"), what="squeezed prepared", timeout=60
    )
    squeezed = _uid(client, ns, "squeezed")
    assert _specs(node) == {before, squeezed}
    assert node.checkpointed() == dict.fromkeys({before, squeezed}, model.PrepareState.COMPLETED)
    for pod in ("before", "squeezed"):
        client.delete(f"/api/v1/namespaces/{ns}/pods/{pod}")
    # Unprepare removes the spec, then records the claim gone: wait for the record too.
    kube.wait_for(
        lambda: not _specs(node) and node.checkpointed() == {}, what="both unprepared", timeout=60
    )
    assert _leftovers(node) == []
