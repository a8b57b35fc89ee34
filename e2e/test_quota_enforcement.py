"""A share's memory limit is enforced in its container, end to end.

Covers: a pod holding a ``memory: 4Gi`` share of a fake 24 GB L4 is scheduled by the real
scheduler and prepared by our plugin through the fake kubelet; then a test program (the quota
library's harness, against the fake libcuda) runs as the container would: in its own mount
namespace with the resolved CDI edits applied (the claim's quota directory and read-only config,
the library, ``/etc/ld.so.preload`` naming it) and the container's environment. It can allocate
4 GiB on the fake GPU and gets CUDA_ERROR_OUT_OF_MEMORY past it, and it sees 4 GiB as the total.
"""

from __future__ import annotations

import functools
import os
import pathlib
import shlex
import subprocess
from typing import Any

import pytest

from dra_driver.isolation import quotadefaults
from e2e.conftest import NodeFactory, Scenario
from e2e.harness import kube, nodeagents, objects
from tests.preload import building

pytestmark = pytest.mark.e2e

GIB = 1024**3
_was_there = pathlib.Path("/etc/ld.so.preload").exists()


@pytest.fixture
def quota_node(plugin_nodes: NodeFactory) -> nodeagents.PluginNode:
    library = building.build(building.Flavour.PLAIN).library
    return plugin_nodes(
        "1xL4", extra_args=(f"--preload-library={library}", "--sharing-strategy=timeslicing")
    )


def _existing_ancestor(path: pathlib.Path) -> pathlib.Path:
    while not path.exists():
        path = path.parent
    return path.resolve()


def _as_the_container(
    record: dict[str, Any], commands: str, scratch: pathlib.Path
) -> subprocess.CompletedProcess[str]:
    """Run the harness with the container's CDI edits applied in a private mount namespace.

    Mount points that do not exist on the host are made inside an overlay of their nearest
    existing ancestor (upper layer in `scratch`), so nothing is created on the host.
    """
    container = record["containers"]["main"]
    harness = building.build(building.Flavour.PLAIN)
    script = ["set -e", "mount --make-rprivate /"]
    missing = [m for m in container["mounts"] if not pathlib.Path(m["containerPath"]).exists()]
    for n, ancestor in enumerate(
        sorted({_existing_ancestor(pathlib.Path(m["containerPath"])) for m in missing})
    ):
        upper, work = scratch / f"upper{n}", scratch / f"work{n}"
        upper.mkdir()
        work.mkdir()
        script.append(
            f"mount -t overlay overlay -o lowerdir={ancestor},upperdir={upper},workdir={work} {ancestor}"
        )
    for mount in container["mounts"]:
        host, inside = pathlib.Path(mount["hostPath"]), shlex.quote(mount["containerPath"])
        make = "mkdir -p" if host.is_dir() else "touch"
        script.append(f"mkdir -p $(dirname {inside}); [ -e {inside} ] || {make} {inside}")
        script.append(f"mount --bind {shlex.quote(str(host))} {inside}")
        if "ro" in mount.get("options", []):
            script.append(f"mount -o remount,bind,ro {inside}")
    env = dict(item.split("=", 1) for item in container["env"])
    uuid = next(value for key, value in env.items() if key.endswith("_UUID"))
    env |= {
        "PATH": os.environ["PATH"],
        "LD_LIBRARY_PATH": str(harness.fakes),
        "FAKE_GPU_UUIDS": uuid,
        "FAKE_GPU_MEM_BYTES": str(22 * GIB),
    }
    script.append(f"exec {harness.program('harness_direct')} {commands}")
    return subprocess.run(
        ["unshare", "--mount", "sh", "-c", "\n".join(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_4gi_share_allocates_4gi_and_no_more(
    scenario: Scenario, quota_node: nodeagents.PluginNode, tmp_path: pathlib.Path
) -> None:
    share = [objects.request("share", "shared.gpu.dra.dev", capacity={"memory": "4Gi"})]
    scenario.schedule(quota_node.name, "four-gib", share)
    record = kube.wait_for(
        functools.partial(quota_node.prepared_record, scenario.namespace, "four-gib"),
        what="share prepared",
        timeout=60,
    )
    mounts = {m["containerPath"] for m in record["containers"]["main"]["mounts"]}
    assert "/etc/ld.so.preload" in mounts
    # The library charges each process a CUDA context's own memory at its first allocation
    # (`quotadefaults`, written into the claim's config), so 4 GiB less that are left to allocate.
    reserve = quotadefaults.for_product("NVIDIA L4").context_reserve_bytes
    rest = (GIB - reserve) // (1024 * 1024)
    done = _as_the_container(
        record, f"total 0 alloc a 3G alloc b {rest}M alloc c 1M free b alloc d {rest}M", tmp_path
    )
    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stderr
    assert f"bytes={4 * GIB}" in lines[0], lines  # cuDeviceTotalMem_v2 says the quota
    results = {line.split()[1]: line for line in lines[1:] if line.startswith("alloc")}
    assert "rc=0" in results["a"], lines
    assert "rc=0" in results["b"], lines
    assert "rc=2" in results["c"], lines  # CUDA_ERROR_OUT_OF_MEMORY
    assert "rc=0" in results["d"], lines  # freeing made room again
    assert not pathlib.Path("/etc/ld.so.preload").exists() or _was_there  # nothing on the host
