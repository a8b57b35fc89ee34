"""`FakeBackend`: GPUs that exist only in a JSON file, behaving like NVML does.

It refuses what NVML refuses: a MIG instance on a GPU whose MIG mode is off, at a placement the
profile does not allow, overlapping an existing instance, or past the profile's instance limit; a
MIG mode change while instances exist. So the driver's error paths run on CPU too. Health events
(XID, ECC, a lost GPU) are queued in the state file by any process and taken by the plugin's
health watcher (`events`).
"""

from __future__ import annotations

import pathlib
import time
from collections.abc import Hashable, Sequence

import structlog

from dra_driver import hardware
from dra_driver.backends import errors
from dra_driver.backends.fake import events, specs, state
from dra_driver.health import sources

log = structlog.get_logger(__name__)


class FakeBackend:
    """A `GpuBackend` over fake GPUs (see `specs` for the spec grammar)."""

    def __init__(
        self, devices: Sequence[hardware.GpuInfo], *, state_dir: pathlib.Path | None
    ) -> None:
        self._gpus = tuple(devices)
        self._by_uuid = {gpu.uuid: gpu for gpu in self._gpus}
        self._store = state.Store(state_dir, [gpu.uuid for gpu in self._gpus])

    @classmethod
    def from_spec(
        cls, spec: str, *, node_name: str, state_dir: pathlib.Path | None = None
    ) -> FakeBackend:
        return cls(specs.layout(specs.parse(spec), node_name=node_name), state_dir=state_dir)

    def gpus(self) -> Sequence[hardware.GpuInfo]:
        return self._gpus

    def status(self, gpu_uuid: str) -> hardware.GpuStatus:
        gpu = self._gpu(gpu_uuid)
        gpu_state = self._store.read()["gpus"][gpu_uuid]
        return hardware.GpuStatus(
            uuid=gpu_uuid,
            mig_enabled=gpu_state["migEnabled"],
            mig_instances=tuple(_instance(gpu, item) for item in gpu_state["instances"]),
            compute_mode=hardware.ComputeMode[gpu_state["computeMode"]],
            timeslice=hardware.TimesliceInterval[gpu_state["timeslice"]],
        )

    def mig_version(self) -> Hashable:
        """The state file's identity (any process's change replaces it), or a change count."""
        return self._store.version()

    def set_mig_mode(self, gpu_uuid: str, *, enabled: bool) -> None:
        gpu = self._gpu(gpu_uuid)
        if enabled and not gpu.mig_capable:
            raise errors.MigModeError(f"GPU {gpu_uuid} ({gpu.product_name}) does not support MIG")
        with self._store.transaction() as current:
            gpu_state = current["gpus"][gpu_uuid]
            if gpu_state["migEnabled"] == enabled:
                return
            if gpu_state["instances"]:
                raise errors.MigModeError(
                    f"cannot turn MIG {'on' if enabled else 'off'} on GPU {gpu_uuid}: "
                    f"{len(gpu_state['instances'])} MIG instances exist (GPU busy)"
                )
            gpu_state["migEnabled"] = enabled
        log.info("fake.mig_mode.set", gpu=gpu_uuid, enabled=enabled)

    def create_mig_instance(
        self, gpu_uuid: str, *, profile_id: int, placement: hardware.Placement
    ) -> hardware.MigInstance:
        gpu = self._gpu(gpu_uuid)
        try:
            profile = gpu.mig_profile(profile_id)
        except KeyError as exc:
            raise errors.MigError(str(exc.args[0])) from exc
        if placement not in profile.placements:
            raise errors.MigError(
                f"profile {profile.name} cannot be placed at {placement.start}:{placement.size} "
                f"on GPU {gpu_uuid}; valid placements: "
                + ", ".join(f"{p.start}:{p.size}" for p in profile.placements)
            )
        with self._store.transaction() as current:
            gpu_state = current["gpus"][gpu_uuid]
            if not gpu_state["migEnabled"]:
                raise errors.MigModeError(f"MIG mode is off on GPU {gpu_uuid}")
            existing = [_instance(gpu, item) for item in gpu_state["instances"]]
            _check_room(gpu_uuid, profile, placement, existing)
            serial = current["nextSerial"]
            current["nextSerial"] = serial + 1
            taken = {item.gpu_instance_id for item in existing}
            item: state.InstanceState = {
                "profileId": profile_id,
                "start": placement.start,
                "size": placement.size,
                "uuid": specs.mig_uuid(gpu_uuid, serial),
                "gpuInstanceId": min(set(range(1, len(taken) + 2)) - taken),
                "computeInstanceId": 0,
            }
            gpu_state["instances"].append(item)
        created = _instance(gpu, item)
        log.info("fake.mig.created", gpu=gpu_uuid, profile=profile.name, uuid=created.uuid)
        return created

    def destroy_mig_instance(self, gpu_uuid: str, *, gpu_instance_id: int) -> None:
        self._gpu(gpu_uuid)
        with self._store.transaction() as current:
            instances = current["gpus"][gpu_uuid]["instances"]
            kept = [item for item in instances if item["gpuInstanceId"] != gpu_instance_id]
            if len(kept) == len(instances):
                raise errors.InstanceNotFoundError(
                    f"GPU {gpu_uuid} has no GPU instance {gpu_instance_id}"
                )
            current["gpus"][gpu_uuid]["instances"] = kept
        log.info("fake.mig.destroyed", gpu=gpu_uuid, gpu_instance_id=gpu_instance_id)

    def set_compute_mode(self, gpu_uuid: str, mode: hardware.ComputeMode) -> None:
        self._gpu(gpu_uuid)
        with self._store.transaction() as current:
            current["gpus"][gpu_uuid]["computeMode"] = mode.name

    def set_timeslice(self, gpu_uuid: str, interval: hardware.TimesliceInterval) -> None:
        self._gpu(gpu_uuid)
        with self._store.transaction() as current:
            current["gpus"][gpu_uuid]["timeslice"] = interval.name

    def health_events(self) -> sources.EventSource:
        """The events queued by `inject_xid`, `inject_ecc` and `lose_gpu` (see `events`)."""
        return events.FakeEventSource(self._store)

    def inject_xid(self, gpu_uuid: str, xid: int, message: str = "") -> None:
        """An XID error, as NVML would report it (tests and demos). Any UUID may be named: one
        the node does not have plays an event NVML sends for a GPU the node does not publish."""
        self._queue(gpu_uuid, sources.EventKind.XID, xid=xid, message=message)
        log.warning("fake.xid", gpu=gpu_uuid, xid=xid)

    def inject_ecc(self, gpu_uuid: str, *, double_bit: bool) -> None:
        """A single-bit (corrected) or double-bit (uncorrectable) ECC error."""
        kind = sources.EventKind.DOUBLE_BIT_ECC if double_bit else sources.EventKind.SINGLE_BIT_ECC
        self._queue(gpu_uuid, kind)

    def lose_gpu(self, gpu_uuid: str) -> None:
        """The GPU falls off the bus: it stops answering until `reset_gpu`."""
        self._gpu(gpu_uuid)
        with self._store.transaction() as current:
            if gpu_uuid not in current["lost"]:
                current["lost"].append(gpu_uuid)
        self._queue(gpu_uuid, sources.EventKind.LOST)
        log.warning("fake.gpu_lost", gpu=gpu_uuid)

    def reset_gpu(self, gpu_uuid: str) -> None:
        """A GPU reset: a lost GPU answers again (what it recorded before is not undone)."""
        self._gpu(gpu_uuid)
        with self._store.transaction() as current:
            current["lost"] = [uuid for uuid in current["lost"] if uuid != gpu_uuid]
        log.info("fake.gpu_reset", gpu=gpu_uuid)

    def _queue(
        self, gpu_uuid: str, kind: sources.EventKind, *, xid: int = 0, message: str = ""
    ) -> None:
        item: state.EventState = {
            "gpu": gpu_uuid,
            "kind": kind.value,
            "xid": xid,
            "message": message,
            "time": time.time(),
        }
        with self._store.transaction() as current:
            current["events"] = [*current["events"], item][-state.MAX_EVENTS :]

    def close(self) -> None:
        pass

    def _gpu(self, gpu_uuid: str) -> hardware.GpuInfo:
        try:
            return self._by_uuid[gpu_uuid]
        except KeyError:
            raise errors.UnknownGpuError(f"no GPU with UUID {gpu_uuid} on this node") from None


def _check_room(
    gpu_uuid: str,
    profile: hardware.MigProfile,
    placement: hardware.Placement,
    existing: list[hardware.MigInstance],
) -> None:
    clash = [item for item in existing if item.placement.overlaps(placement)]
    if clash:
        raise errors.PlacementOccupiedError(
            f"placement {placement.start}:{placement.size} of {profile.name} on GPU {gpu_uuid} "
            f"overlaps MIG instance {clash[0].uuid} ({clash[0].profile_name} at "
            f"{clash[0].placement.start}:{clash[0].placement.size})"
        )
    same_profile = sum(1 for item in existing if item.profile_id == profile.profile_id)
    if same_profile >= profile.max_instances:
        raise errors.PlacementOccupiedError(
            f"GPU {gpu_uuid} already has {same_profile} instances of {profile.name} "
            f"(at most {profile.max_instances})"
        )


def _instance(gpu: hardware.GpuInfo, item: state.InstanceState) -> hardware.MigInstance:
    profile = gpu.mig_profile(item["profileId"])
    return hardware.MigInstance(
        parent_uuid=gpu.uuid,
        profile_id=profile.profile_id,
        profile_name=profile.name,
        placement=hardware.Placement(item["start"], item["size"]),
        uuid=item["uuid"],
        gpu_instance_id=item["gpuInstanceId"],
        compute_instance_id=item["computeInstanceId"],
    )
