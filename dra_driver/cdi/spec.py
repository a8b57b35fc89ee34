"""A claim's CDI spec: its content as frozen dataclasses, validated and rendered to CDI JSON.

Pure computation; `writing` puts the result on disk. The field names are those of the CDI Go
library's ``specs-go/config.go``, which loads specs with unknown fields rejected. Validation follows
the same library, so that a spec we write is never one a container runtime refuses:

- at least one device, names unique, valid (`naming`) and prefixed by the claim UID;
- every device has at least one edit (spec-level edits may be empty, and are then left out);
- an environment entry is ``NAME=value`` with a non-empty name;
- a device node has a path, a type among ``b c u p`` (or none), permissions from ``rwm`` or ``none``;
- a mount has a host path and a container path;
- a hook has a lifecycle name CDI knows (``createContainer``, ...) and a path.

`CDI_VERSION` is ``0.5.0``, the lowest version that allows what we emit: device names starting
with a digit (claim UIDs are UUIDs, so most do) and a device node's ``hostPath`` came in 0.5.0, a
mount's ``type`` in 0.4.0. Nothing newer is used: no annotations (0.6.0), ``intelRdt`` or
``additionalGids`` (0.7.0), ``netDevices`` (1.1.0). Hooks (``createContainer`` hooks running
``nvidia-cdi-hook``) have been part of CDI since its first version and need nothing newer. A loader
refuses a spec whose ``cdiVersion`` is lower than the features it uses need; any runtime with
CDI ≥ 0.5 reads ours.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import NotRequired, TypedDict

from dra_driver.cdi import errors, naming

CDI_VERSION = "0.5.0"

_DEVICE_NODE_TYPES = frozenset({"b", "c", "u", "p"})
_HOOK_NAMES = frozenset(
    {"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}
)


@dataclasses.dataclass(frozen=True)
class DeviceNode:
    """A device node to create in the container (e.g. ``/dev/nvidia0``)."""

    path: str
    """The path in the container."""
    host_path: str | None = None
    """The path on the host, if it differs from `path`."""
    type: str | None = None
    major: int | None = None
    minor: int | None = None
    permissions: str | None = None
    """cgroup permissions: some of ``rwm``, or ``none``."""


@dataclasses.dataclass(frozen=True)
class Mount:
    """A bind mount into the container (libraries, MPS pipe dirs, quota state, ...)."""

    host_path: str
    container_path: str
    options: tuple[str, ...] = ("ro", "nosuid", "nodev", "bind")
    type: str | None = None


@dataclasses.dataclass(frozen=True)
class Hook:
    """An OCI hook the runtime runs (e.g. ``nvidia-cdi-hook update-ldcache`` at createContainer)."""

    hook_name: str
    """The OCI lifecycle point: ``createContainer``, ``startContainer``, ..."""
    path: str
    """The executable on the host."""
    args: tuple[str, ...] = ()
    """``argv``, including ``argv[0]``."""
    env: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class ContainerEdits:
    """What the runtime changes in a container's OCI spec."""

    env: tuple[str, ...] = ()
    """``NAME=value`` entries."""
    device_nodes: tuple[DeviceNode, ...] = ()
    mounts: tuple[Mount, ...] = ()
    hooks: tuple[Hook, ...] = ()

    def is_empty(self) -> bool:
        return not (self.env or self.device_nodes or self.mounts or self.hooks)

    def __add__(self, other: ContainerEdits) -> ContainerEdits:
        """Both edits, `self`'s first (the order a runtime applies them in)."""
        return ContainerEdits(
            env=self.env + other.env,
            device_nodes=self.device_nodes + other.device_nodes,
            mounts=self.mounts + other.mounts,
            hooks=self.hooks + other.hooks,
        )


NO_EDITS = ContainerEdits()


@dataclasses.dataclass(frozen=True)
class Device:
    """One CDI device: a name from `naming.device_name` and its edits."""

    name: str
    edits: ContainerEdits


class DeviceNodeJSON(TypedDict):
    path: str
    hostPath: NotRequired[str]
    type: NotRequired[str]
    major: NotRequired[int]
    minor: NotRequired[int]
    permissions: NotRequired[str]


class MountJSON(TypedDict):
    hostPath: str
    containerPath: str
    options: NotRequired[list[str]]
    type: NotRequired[str]


class HookJSON(TypedDict):
    hookName: str
    path: str
    args: NotRequired[list[str]]
    env: NotRequired[list[str]]


class ContainerEditsJSON(TypedDict, total=False):
    env: list[str]
    deviceNodes: list[DeviceNodeJSON]
    mounts: list[MountJSON]
    hooks: list[HookJSON]


class DeviceJSON(TypedDict):
    name: str
    containerEdits: ContainerEditsJSON


class SpecJSON(TypedDict):
    cdiVersion: str
    kind: str
    devices: list[DeviceJSON]
    containerEdits: NotRequired[ContainerEditsJSON]


def render(
    claim_uid: str, devices: Sequence[Device], common: ContainerEdits = NO_EDITS
) -> SpecJSON:
    """The CDI spec of a claim: its `devices`, and `common` edits applied once per container."""
    validate(claim_uid, devices, common)
    spec: SpecJSON = {
        "cdiVersion": CDI_VERSION,
        "kind": naming.KIND,
        "devices": [
            {"name": device.name, "containerEdits": _render_edits(device.edits)}
            for device in devices
        ],
    }
    if not common.is_empty():
        spec["containerEdits"] = _render_edits(common)
    return spec


def validate(claim_uid: str, devices: Sequence[Device], common: ContainerEdits) -> None:
    """Raise `errors.InvalidSpecError` unless a CDI runtime would accept this spec."""
    naming.validate_claim_uid(claim_uid)
    if not devices:
        raise errors.InvalidSpecError(f"claim {claim_uid}: a CDI spec needs at least one device")
    seen: set[str] = set()
    for device in devices:
        naming.validate_device_name(device.name)
        if not device.name.startswith(f"{claim_uid}-"):
            raise errors.InvalidSpecError(
                f"CDI device {device.name!r} does not start with its claim UID {claim_uid}"
            )
        if device.name in seen:
            raise errors.InvalidSpecError(f"CDI device {device.name!r} appears twice")
        seen.add(device.name)
        if device.edits.is_empty():
            raise errors.InvalidSpecError(f"CDI device {device.name!r} has no container edits")
        _validate_edits(device.edits, where=f"CDI device {device.name!r}")
    _validate_edits(common, where=f"claim {claim_uid}'s common edits")


def _validate_edits(edits: ContainerEdits, *, where: str) -> None:
    for entry in edits.env:
        if entry.find("=") <= 0:
            raise errors.InvalidSpecError(f"{where}: invalid environment entry {entry!r}")
    for node in edits.device_nodes:
        if not node.path:
            raise errors.InvalidSpecError(f"{where}: a device node has an empty path")
        if node.type is not None and node.type not in _DEVICE_NODE_TYPES:
            raise errors.InvalidSpecError(f"{where}: device {node.path} has type {node.type!r}")
        if node.permissions is not None and not _valid_permissions(node.permissions):
            raise errors.InvalidSpecError(
                f"{where}: device {node.path} has permissions {node.permissions!r}"
            )
    for mount in edits.mounts:
        if not (mount.host_path and mount.container_path):
            raise errors.InvalidSpecError(f"{where}: a mount needs a host and a container path")
    for hook in edits.hooks:
        if hook.hook_name not in _HOOK_NAMES:
            raise errors.InvalidSpecError(f"{where}: unknown hook name {hook.hook_name!r}")
        if not hook.path:
            raise errors.InvalidSpecError(f"{where}: a {hook.hook_name} hook has an empty path")


def _valid_permissions(permissions: str) -> bool:
    return permissions == "none" or (permissions != "" and set(permissions) <= set("rwm"))


def _render_edits(edits: ContainerEdits) -> ContainerEditsJSON:
    rendered: ContainerEditsJSON = {}
    if edits.env:
        rendered["env"] = list(edits.env)
    if edits.device_nodes:
        rendered["deviceNodes"] = [_render_device_node(node) for node in edits.device_nodes]
    if edits.mounts:
        rendered["mounts"] = [_render_mount(mount) for mount in edits.mounts]
    if edits.hooks:
        rendered["hooks"] = [_render_hook(hook) for hook in edits.hooks]
    return rendered


def _render_hook(hook: Hook) -> HookJSON:
    rendered: HookJSON = {"hookName": hook.hook_name, "path": hook.path}
    if hook.args:
        rendered["args"] = list(hook.args)
    if hook.env:
        rendered["env"] = list(hook.env)
    return rendered


def _render_device_node(node: DeviceNode) -> DeviceNodeJSON:
    rendered: DeviceNodeJSON = {"path": node.path}
    if node.host_path is not None:
        rendered["hostPath"] = node.host_path
    if node.type is not None:
        rendered["type"] = node.type
    if node.major is not None:
        rendered["major"] = node.major
    if node.minor is not None:
        rendered["minor"] = node.minor
    if node.permissions is not None:
        rendered["permissions"] = node.permissions
    return rendered


def _render_mount(mount: Mount) -> MountJSON:
    rendered: MountJSON = {"hostPath": mount.host_path, "containerPath": mount.container_path}
    if mount.options:
        rendered["options"] = list(mount.options)
    if mount.type is not None:
        rendered["type"] = mount.type
    return rendered
