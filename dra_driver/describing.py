"""A claim's CDI spec: the edits of each device (its GPU's or MIG device's nodes, its ``GPU_DRA_*``
variables, its MPS and quota settings) and of the claim (the driver's files, hooks and the quota
library), written as one spec file beside the claim's quota config (its claim directory).

`Describer.write` writes both for a claim whose devices are isolated; `Describer.remove` removes
them (an unknown claim has none). What the files say comes from `containeredits` and the
driver root (`driverroot`); how they are written, from `cdi.writing` and `isolation.quotas`.
"""

from __future__ import annotations

import dataclasses
import pathlib

from dra_driver import claims, containeredits, hardware, locating
from dra_driver.cdi import naming as cdi_naming
from dra_driver.cdi import spec, writing
from dra_driver.checkpoint import model
from dra_driver.driverroot import caching
from dra_driver.driverroot import errors as driverroot_errors
from dra_driver.isolation import quotas


class Describer:
    def __init__(
        self,
        *,
        driver: caching.Driver | None,
        cdi_dir: pathlib.Path,
        claims_root: pathlib.Path,
        preload: tuple[str, str] | None,
    ) -> None:
        self.driver = driver
        """The driver's files, nodes and hooks; None: specs get none (fake GPUs without a
        synthetic driver root)."""
        self.cdi_dir = cdi_dir
        self.claims_root = claims_root
        self.preload = preload
        """The quota library's host path and the ``ld.so.preload`` naming it, given to every
        claim with shares; None: the quota config is written but not enforced."""

    def write(
        self,
        ref: claims.ClaimRef,
        devices: list[model.PreparedDevice],
        located: list[locating.LocatedDevice],
        instances: list[hardware.MigInstance | None],
        common: spec.ContainerEdits,
    ) -> list[model.PreparedDevice]:
        """Write the claim's quota config (if it has shares) and its CDI spec; `devices` with
        their CDI IDs. `common`: the driver's part (`common_edits`)."""
        limits: dict[str, int] = {}
        for device in devices:
            if (quota := device.isolation.quota) is not None:
                uuid = device.gpu_uuid
                limits[uuid] = limits.get(uuid, 0) + quota.memory_bytes
        quota_dir = None
        if limits:
            products = {
                where.gpu.uuid: where.gpu.product_name
                for device, where in zip(devices, located, strict=True)
                if device.gpu_uuid in limits
            }
            quota_dir = str(quotas.write(self.claims_root, ref.uid, limits, products=products))
        cdi_devices = [
            spec.Device(
                name=cdi_naming.device_name(ref.uid, device.device, device.share_id),
                edits=self._nodes(where.gpu, instance) + containeredits.for_device(device, where),
            )
            for device, where, instance in zip(devices, located, instances, strict=True)
        ]
        preload = self.preload if quota_dir is not None else None
        common += containeredits.for_claim(ref.uid, quota_dir=quota_dir, preload=preload)
        ids = writing.write_claim_spec(self.cdi_dir, ref.uid, cdi_devices, common)
        return [
            dataclasses.replace(device, cdi_ids=(cdi_id,))
            for device, cdi_id in zip(devices, ids, strict=True)
        ]

    def common_edits(self) -> spec.ContainerEdits:
        """The driver's part of every spec (none without a driver root)."""
        if self.driver is None:
            return spec.NO_EDITS
        try:
            return self.driver.common_edits()
        except driverroot_errors.DriverRootError as exc:
            raise claims.ClaimError(f"the node's NVIDIA driver is not usable: {exc}") from exc

    def _nodes(
        self, gpu: hardware.GpuInfo, instance: hardware.MigInstance | None
    ) -> spec.ContainerEdits:
        """The device nodes of a GPU, or of a MIG device (its GPU's and its capabilities)."""
        if self.driver is None:
            return spec.NO_EDITS
        try:
            if instance is None:
                return self.driver.gpu_edits(gpu.minor)
            return self.driver.mig_edits(
                gpu.minor,
                gpu_instance=instance.gpu_instance_id,
                compute_instance=instance.compute_instance_id,
            )
        except driverroot_errors.DriverRootError as exc:
            raise claims.ClaimError(f"device nodes of GPU {gpu.uuid}: {exc}") from exc

    def remove(self, uid: str) -> None:
        """Remove the claim's CDI spec and claim directory (nothing if it has none)."""
        writing.remove_claim_spec(self.cdi_dir, uid)
        quotas.remove(self.claims_root, uid)
