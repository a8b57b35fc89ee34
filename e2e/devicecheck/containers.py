"""The pod of each claim the check makes: the probe in real containers, started by the fake
kubelet through containerd and runc with the claim's CDI devices (``e2e/runtime/README.md``).

Each container runs the probe (``/usr/local/bin/probe`` of the test image, `e2e.harness.images`)
with the check's arguments; the fake kubelet records the probe's JSON line as the container's
``seen`` (`e2e.harness.workloads.wait_seen`). What the container gets is only what a runtime makes
of our CDI spec: the device nodes, the driver's libraries mounted in, the ``nvidia-cdi-hook``
hooks run by runc (``create-symlinks`` makes ``libcuda.so.1``, ``update-ldcache`` the loader's
cache, so CUDA is found without ``LD_LIBRARY_PATH``), the quota library through
``/etc/ld.so.preload``, the environment. The image holds no driver file of its own.

On fake GPUs (the dry run), the driver is a synthetic one whose ``libcuda.so.<version>`` is the
project's fake libcuda (`tests.driverroot.synthetic`); it shows the GPUs named by
``FAKE_GPU_UUIDS``, which `fake_driver_env` sets in the pod spec to the claimed device's UUID, as
the real driver would show only the claimed device.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dra_driver.backends.fake import specs
from e2e.harness import images, kube, objects

FAKE_GPU_MEMORY = 80 << 30
"""The dry run's GPUs are H100-80GB: what the fake libcuda reports before a quota cuts it."""


def pod(
    name: str,
    *,
    node: str,
    image: str,
    claim: str,
    containers: Mapping[str, Sequence[str]],
    env: Mapping[str, str],
) -> kube.Obj:
    """Pod `name` on `node`: one probe container per entry of `containers` (name to probe
    arguments), each using the whole of claim `claim`, with `env`."""
    return objects.pod_body(
        name,
        node=node,
        grace=5,
        containers=[
            objects.Container(
                name=container,
                claims=[claim],
                image=image,
                command=[images.PROBE_PATH],
                args=args,
                env=env,
            )
            for container, args in containers.items()
        ],
    )


def fake_driver_env(*, node: str, gpu_index: int, mig: bool) -> dict[str, str]:
    """The fake libcuda's one GPU: the node's fake GPU `gpu_index` or, for `mig`, the first MIG
    device made on it (the fake backend numbers MIG devices from 1, one count per node)."""
    uuid = specs.gpu_uuid(node, gpu_index)
    if mig:
        uuid = specs.mig_uuid(uuid, 1)
    return {"FAKE_GPU_UUIDS": uuid, "FAKE_GPU_MEM_BYTES": str(FAKE_GPU_MEMORY)}


def pinned(*, gpu_index: int, mig: bool) -> list[str]:
    """CEL selectors that put a claim on GPU `gpu_index` (a MIG device: on a slice of it)."""
    attribute = "parentIndex" if mig else "index"
    return [f'device.attributes["gpu.dra.dev"].{attribute} == {gpu_index}']
