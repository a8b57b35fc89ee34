"""The side-effect-free part of prepare: where the allocated devices are, what configs apply,
whether a device is free, what a share may use. Raises `claims.ClaimError` with the message the
user sees; the flow around it is `preparing`.
"""

from __future__ import annotations

from api import configentries, quantities, resolving
from api import errors as api_errors
from api.v1alpha1 import sharing, types
from dra_driver import claims, inventory, locating
from dra_driver.checkpoint import model
from dra_driver.slices import building, settings


def decode_configs(claim: claims.AllocatedClaim, *, driver: str) -> list[configentries.Entry]:
    try:
        return configentries.decode(claim.config, driver=driver)
    except api_errors.ConfigError as exc:
        raise claims.ClaimError(f"claim {claim.ref}: bad opaque config: {exc}") from exc


def config_for(
    entries: list[configentries.Entry],
    allocated: claims.AllocatedDevice,
    located: locating.LocatedDevice,
) -> types.Config | None:
    try:
        entry = resolving.select(entries, request=allocated.request, device_type=located.type)
    except api_errors.ConfigError as exc:
        raise claims.ClaimError(f"device {allocated.device}: {exc}") from exc
    if entry is None:
        return None
    return entry.config


def locate(
    name: str, node: inventory.Inventory, publish: settings.PublishSettings
) -> locating.LocatedDevice:
    try:
        return locating.locate(name, node, config=publish)
    except locating.DeviceNotFoundError as exc:
        raise claims.ClaimError(str(exc)) from exc


def check_free(
    allocated: claims.AllocatedDevice, ref: claims.ClaimRef, state: model.Checkpoint
) -> None:
    if allocated.admin_access:
        return
    for uid in state.holders.get((allocated.pool, allocated.device), ()):
        if uid == ref.uid:
            continue
        other = state.claims[uid]
        for held in other.devices:
            if held.device != allocated.device or held.pool != allocated.pool or held.admin_access:
                continue
            if allocated.share_id and held.share_id and allocated.share_id != held.share_id:
                continue
            raise claims.ClaimError(
                f"device {allocated.device} is already prepared for claim "
                f"{other.namespace}/{other.name} ({other.uid})"
            )


def share_limits(
    device: model.PreparedDevice, located: locating.LocatedDevice, publish: settings.PublishSettings
) -> tuple[int, int]:
    """Memory (bytes) and cores (percent) of a share: what the scheduler charged for it."""
    if located.fixed_memory is not None:
        return located.fixed_memory, building.CORES // publish.shared.compat_shares
    consumed = device.consumed_capacity
    try:
        memory = quantities.parse_bytes(consumed["memory"])
        cores = int(quantities.parse(consumed.get("cores", "0")))
    except (KeyError, api_errors.ConfigError) as exc:
        raise claims.ClaimError(
            f"share of {device.device} has no usable consumedCapacity ({dict(consumed)}): "
            "the cluster must support consumable capacity (DRAConsumableCapacity)"
        ) from exc
    return memory, cores


def pinned(config: sharing.MpsConfig, device_uuid: str) -> dict[str, int]:
    try:
        return config.pinned_memory_limits([device_uuid])
    except api_errors.ConfigError as exc:
        raise claims.ClaimError(f"MPS config: {exc}") from exc
