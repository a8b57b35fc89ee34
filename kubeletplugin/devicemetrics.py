"""The prepared devices as an info metric: which pod holds which GPU or MIG device.

One series ``gpu_dra_prepared_device_info{...} 1`` per device of every claim prepared on this node,
built at scrape time from the checkpoint as this process last read or wrote it (no lock, no file
read) and the pod names the plugin last read from the claims (`reservations`): a scrape makes no
API request. Its labels name the device the way dcgm-exporter names GPUs, so one PromQL join
attributes dcgm-exporter's per-GPU series to the pods of DRA claims (``docs/monitoring.md``):

    DCGM_FI_DEV_FB_USED
      * on (UUID, GPU_I_ID) group_left (namespace, pod, claim)
      gpu_dra_prepared_device_info{exclusive="true"}

| label | value |
|---|---|
| ``UUID`` | the physical GPU's UUID (dcgm-exporter's label; its MIG series carry the parent's too) |
| ``GPU_I_ID``, ``GPU_I_PROFILE`` | a MIG device's GPU instance ID and profile (``1g.5gb``), else empty |
| ``gpu_uuid``, ``mig_uuid`` | the GPU's UUID again (the share metrics' label), the MIG device's UUID |
| ``namespace``, ``claim``, ``claim_uid`` | the claim |
| ``pod`` | the pods the claim is reserved for, sorted and comma-separated (empty until first read) |
| ``pool``, ``device``, ``share_id`` | the allocation result (``share_id`` only for shares) |
| ``type`` | ``gpu``, ``mig`` or ``shared`` (the published ``type`` attribute) |
| ``exclusive`` | ``true`` for a whole GPU or MIG device this claim alone holds: the only series of \
its ``UUID, GPU_I_ID``, so the join above never matches two claims; shares and admin access: ``false`` |

A claim reserved for several pods keeps one series (the pods in one label), for the same reason.
MIG instance IDs and profiles come from the GPU backend once per MIG device (a MIG UUID never
changes its instance); if the backend cannot tell, a dynamic device's recorded instance ID is used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import structlog
from prometheus_client import registry
from prometheus_client.core import GaugeMetricFamily, Metric

from api import devicetypes
from dra_driver import hardware
from dra_driver.backends import errors as backend_errors
from dra_driver.checkpoint import model
from dra_driver.slices import naming
from kubeletplugin import reservations

log = structlog.get_logger(__name__)

NAME = "gpu_dra_prepared_device_info"

LABELS = (
    "UUID",
    "GPU_I_ID",
    "GPU_I_PROFILE",
    "gpu_uuid",
    "mig_uuid",
    "namespace",
    "pod",
    "claim",
    "claim_uid",
    "pool",
    "device",
    "share_id",
    "type",
    "exclusive",
)

Source = Callable[[], Iterable[model.PreparedClaim]]
"""The completed claims as this process last saw them (`preparing.Preparer.completed_claims`)."""

MigInstances = Callable[[str], Iterable[hardware.MigInstance]]
"""GPU UUID → the MIG instances on it now (``backend.status(uuid).mig_instances``)."""

_KINDS = {
    "gpu": devicetypes.DeviceType.GPU,
    "mig": devicetypes.DeviceType.MIG,
    "shared": devicetypes.DeviceType.SHARED,
    "share": devicetypes.DeviceType.SHARED,  # compatibility mode's fixed shares
}


class DeviceInfoCollector(registry.Collector):
    def __init__(
        self,
        source: Source,
        *,
        pods: reservations.Reservations,
        mig_instances: MigInstances,
    ) -> None:
        self._source = source
        self._pods = pods
        self._mig_instances = mig_instances
        self._migs: dict[str, hardware.MigInstance] = {}
        """Known MIG instances by UUID."""
        self._unknown: set[str] = set()
        """MIG UUIDs the backend could not describe (logged once, asked again each scrape)."""

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            NAME,
            "a device prepared for a claim on this node, with the pods the claim is reserved for",
            labels=LABELS,
        )
        claims = list(self._source())
        self._pods.retain({claim.uid for claim in claims})
        live = {device.mig_uuid for claim in claims for device in claim.devices if device.mig_uuid}
        self._migs = {uuid: found for uuid, found in self._migs.items() if uuid in live}
        self._unknown &= live
        for claim in claims:
            pods = ",".join(self._pods.pods(claim.uid))
            for device in claim.devices:
                info.add_metric(self._labels(claim, device, pods), 1)
        yield info

    def _labels(
        self, claim: model.PreparedClaim, device: model.PreparedDevice, pods: str
    ) -> list[str]:
        kind = _kind(device)
        instance = self._mig(device)
        if instance is not None:
            gpu_instance, profile = str(instance.gpu_instance_id), instance.profile_name
        elif device.mig_gpu_instance_id is not None:
            gpu_instance, profile = str(device.mig_gpu_instance_id), ""
        else:
            gpu_instance, profile = "", ""
        exclusive = kind in ("gpu", "mig") and not device.admin_access
        return [
            device.gpu_uuid,
            gpu_instance,
            profile,
            device.gpu_uuid,
            device.mig_uuid or "",
            claim.namespace,
            pods,
            claim.name,
            claim.uid,
            device.pool,
            device.device,
            device.share_id or "",
            kind,
            "true" if exclusive else "false",
        ]

    def _mig(self, device: model.PreparedDevice) -> hardware.MigInstance | None:
        """The device's MIG instance, asking the backend until it could tell (then never again)."""
        uuid = device.mig_uuid
        if not uuid:
            return None
        if uuid not in self._migs:
            try:
                for instance in self._mig_instances(device.gpu_uuid):
                    self._migs[instance.uuid] = instance
                problem = None if uuid in self._migs else "not on its GPU"
            except backend_errors.BackendError as exc:
                problem = str(exc)
            if problem is not None and uuid not in self._unknown:
                log.warning("metrics.mig_unknown", mig_uuid=uuid, error=problem)
                self._unknown.add(uuid)
        return self._migs.get(uuid)


def _kind(device: model.PreparedDevice) -> str:
    """The device's published type, from its name (``unknown`` for a name we never publish)."""
    parsed = naming.parse(device.device)
    kind = _KINDS.get(parsed.kind) if parsed is not None else None
    return kind.value if kind is not None else "unknown"
