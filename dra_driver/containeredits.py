"""What a container gets for each prepared device: the CDI container edits.

Every device sets environment variables under a prefix unique to the device on this node
(``GPU_DRA_<DEVICE>_…``, e.g. ``GPU_DRA_GPU_0_MIG_1G5GB_6_UUID``), so a container holding several
claims sees all of them without one overwriting another: ``_UUID`` (the GPU's, or the MIG
device's), ``_TYPE``, and per type ``_PARENT_UUID``/``_PROFILE`` (MIG), ``_MEMORY_LIMIT`` (bytes),
``_CORES`` (percent) and ``_SHARE_ID`` (shares), ``_TIMESLICE`` (time-sliced GPUs). A device
served by an MPS daemon adds ``CUDA_MPS_PIPE_DIRECTORY``, the pipe mount and the daemon's shm as
``/dev/shm`` (and, for a share with ``cores``, ``CUDA_MPS_ACTIVE_THREAD_PERCENTAGE``). A claim with
shared devices also mounts its quota directory (config and accounting state) under the fixed root
where the quota library looks for every claim of the container. The driver's part (device nodes, libraries, hooks: `dra_driver.driverroot`) is added by the
caller, which knows where the driver is.
"""

from __future__ import annotations

import re

from api import devicetypes
from dra_driver import locating
from dra_driver.cdi import spec
from dra_driver.checkpoint import model
from dra_driver.isolation import mps, quotas


def env_prefix(device: str) -> str:
    return "GPU_DRA_" + re.sub(r"[^A-Z0-9]", "_", device.upper())


def for_device(
    prepared: model.PreparedDevice, located: locating.LocatedDevice
) -> spec.ContainerEdits:
    prefix = env_prefix(prepared.device)
    env = {
        "UUID": prepared.mig_uuid or prepared.gpu_uuid,
        "TYPE": located.type.value,
    }
    if located.type is devicetypes.DeviceType.MIG:
        assert located.profile is not None
        env |= {"PARENT_UUID": prepared.gpu_uuid, "PROFILE": located.profile.name}
    quota = prepared.isolation.quota
    if located.type is devicetypes.DeviceType.SHARED:
        env |= {
            "MEMORY_LIMIT": "" if quota is None else str(quota.memory_bytes),
            "CORES": "" if quota is None else str(quota.cores),
        }
        if prepared.share_id:
            env["SHARE_ID"] = prepared.share_id
    if prepared.isolation.time_slice is not None:
        env["TIMESLICE"] = prepared.isolation.time_slice.name
    lines = [f"{prefix}_{key}={value}" for key, value in env.items()]
    mounts: tuple[spec.Mount, ...] = ()
    attached = prepared.isolation.mps
    if attached is not None:
        # The MPS client finds its daemon through the pipe directory, shared with the daemon.
        inside = f"{mps.CONTAINER_PIPE}/{attached.daemon}"
        lines.append(f"CUDA_MPS_PIPE_DIRECTORY={inside}")
        if located.type is devicetypes.DeviceType.SHARED and quota is not None and quota.cores:
            lines.append(f"CUDA_MPS_ACTIVE_THREAD_PERCENTAGE={quota.cores}")
        mounts = (spec.Mount(attached.pipe_dir, inside, options=("rw", "nosuid", "nodev", "bind")),)
        if attached.shm_dir is not None:  # the daemon's /dev/shm, shared with its clients
            shm_options = ("rw", "nosuid", "nodev", "noexec", "bind")
            mounts += (spec.Mount(attached.shm_dir, "/dev/shm", options=shm_options),)
    return spec.ContainerEdits(env=tuple(lines), mounts=mounts)


def for_claim(
    claim_uid: str,
    *,
    quota_dir: str | None,
    preload: tuple[str, str] | None = None,
) -> spec.ContainerEdits:
    """Edits every container of the claim gets once, whatever devices it uses.

    `preload` is (library path, ``ld.so.preload`` path) on the host: the library is mounted at the
    same path and the list over ``/etc/ld.so.preload``, both read-only, so every process of the
    container loads the quota library and none can opt out by editing the list.
    """
    mounts: tuple[spec.Mount, ...] = ()
    if preload is not None:
        library, preload_list = preload
        mounts += (spec.Mount(library, library), spec.Mount(preload_list, "/etc/ld.so.preload"))
    if quota_dir is not None:
        inside = f"{quotas.CONTAINER_ROOT}/{claim_uid}"
        # Only the accounting state is writable, and as a file mount: a container can neither
        # raise its limit (the config), nor delete or replace the state, nor fill the node's disk
        # (the state file has a fixed size). The library finds the config under the root itself.
        mounts += (
            spec.Mount(quota_dir, inside, options=("ro", "nosuid", "nodev", "noexec", "bind")),
            spec.Mount(
                f"{quota_dir}/{quotas.STATE}",
                f"{inside}/{quotas.STATE}",
                options=("rw", "nosuid", "nodev", "noexec", "bind"),
            ),
        )
    return spec.ContainerEdits(mounts=mounts)
