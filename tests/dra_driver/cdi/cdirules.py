"""An independent checker of CDI spec JSON, written from the CDI Go library v1.1.1 for the tests.

Facts copied from ``tags.cncf.io/container-device-interface@v1.1.1`` (not its code, and not ours):

- ``specs-go/config.go``: the field names; ``pkg/cdi/spec.go`` decodes with unknown fields
  rejected (``KnownFields(true)``);
- ``specs-go/version.go``: the known versions and the minimum version each feature needs
  (0.4.0 mount ``type``; 0.5.0 device node ``hostPath``, device name starting with a digit; 0.6.0
  annotations, a dot in the class; 0.7.0 ``intelRdt``, ``additionalGids``; 1.1.0 ``netDevices``);
- ``pkg/parser/parser.go``: vendor, class and device name syntax;
- ``pkg/cdi/spec.go``, ``device.go``, ``container-edits.go``: at least one device, unique names,
  no device with empty edits, ``NAME=value`` env entries, device node type and permissions,
  mount paths.

`problems` returns what a CDI runtime would object to (empty: it loads); `minimum_version` what
``cdi.MinimumRequiredVersion`` would say.
"""

from __future__ import annotations

from typing import Any

VERSIONS = (
    "0.1.0",
    "0.2.0",
    "0.3.0",
    "0.4.0",
    "0.5.0",
    "0.6.0",
    "0.7.0",
    "0.8.0",
    "1.0.0",
    "1.1.0",
)

SPEC_FIELDS = {"cdiVersion", "kind", "annotations", "devices", "containerEdits"}
DEVICE_FIELDS = {"name", "annotations", "containerEdits"}
EDITS_FIELDS = {
    "env",
    "deviceNodes",
    "netDevices",
    "hooks",
    "mounts",
    "intelRdt",
    "additionalGids",
}
DEVICE_NODE_FIELDS = {
    "path",
    "hostPath",
    "type",
    "major",
    "minor",
    "fileMode",
    "permissions",
    "uid",
    "gid",
}
MOUNT_FIELDS = {"hostPath", "containerPath", "options", "type"}

_LETTERS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_ALNUM = _LETTERS | set("0123456789")


def problems(spec: Any) -> list[str]:
    """Everything the CDI Go library would reject in `spec` (a decoded JSON object)."""
    found: list[str] = []
    if not isinstance(spec, dict):
        return ["spec is not an object"]
    found += _unknown(spec, SPEC_FIELDS, "spec")
    version = spec.get("cdiVersion", "")
    if version.removeprefix("v") not in VERSIONS:
        found.append(f"invalid version {version!r}")
    elif _index(minimum_version(spec)) > _index(version.removeprefix("v")):
        found.append(f"the spec version must be at least v{minimum_version(spec)}")
    vendor, _, class_ = str(spec.get("kind", "")).partition("/")
    if not (_vendor_or_class_ok(vendor) and _vendor_or_class_ok(class_)):
        found.append(f"invalid kind {spec.get('kind')!r}")
    found += _edits(spec.get("containerEdits", {}), "spec")
    devices = spec.get("devices")
    if not isinstance(devices, list) or not devices:
        return [*found, "invalid spec, no devices"]
    names: set[str] = set()
    for device in devices:
        name = device.get("name", "")
        found += _unknown(device, DEVICE_FIELDS, f"device {name!r}")
        if not device_name_ok(name):
            found.append(f"invalid device name {name!r}")
        if name in names:
            found.append(f"invalid spec, multiple device {name!r}")
        names.add(name)
        edits = device.get("containerEdits")
        if not edits:
            found.append(f"device {name!r}: invalid device, empty device edits")
        found += _edits(edits or {}, f"device {name!r}")
    return found


def minimum_version(spec: dict[str, Any]) -> str:
    """The lowest CDI version whose features cover everything `spec` uses."""
    devices = spec.get("devices") or []
    edits = [spec.get("containerEdits") or {}] + [d.get("containerEdits") or {} for d in devices]
    if any(e.get("netDevices") or (e.get("intelRdt") or {}).get("schemata") for e in edits):
        return "1.1.0"
    if any("intelRdt" in e or e.get("additionalGids") for e in edits):
        return "0.7.0"
    if spec.get("annotations") or any(d.get("annotations") for d in devices):
        return "0.6.0"
    if "." in str(spec.get("kind", "")).partition("/")[2]:
        return "0.6.0"
    if any(str(d.get("name", ""))[:1].isdigit() for d in devices):
        return "0.5.0"
    if any(n.get("hostPath") for e in edits for n in e.get("deviceNodes") or []):
        return "0.5.0"
    if any(m.get("type") for e in edits for m in e.get("mounts") or []):
        return "0.4.0"
    return "0.3.0"


def device_name_ok(name: str) -> bool:
    """``parser.ValidateDeviceName``: alphanumeric ends, ``_-.:`` allowed inside, ASCII only."""
    if not name or name[0] not in _ALNUM or name[-1] not in _ALNUM:
        return False
    return all(c in _ALNUM or c in "_-.:" for c in name[1:-1])


def _vendor_or_class_ok(name: str) -> bool:
    if not name or name[0] not in _LETTERS or name[-1] not in _ALNUM:
        return False
    return all(c in _ALNUM or c in "_-." for c in name[1:-1])


def _edits(edits: dict[str, Any], where: str) -> list[str]:
    found = _unknown(edits, EDITS_FIELDS, f"{where} edits")
    for entry in edits.get("env", []):
        if not isinstance(entry, str) or entry.find("=") <= 0:
            found.append(f"{where}: invalid environment variable {entry!r}")
    for node in edits.get("deviceNodes", []):
        found += _unknown(node, DEVICE_NODE_FIELDS, f"{where} device node")
        if not node.get("path"):
            found.append(f"{where}: invalid (empty) device path")
        if node.get("type", "") not in ("", "b", "c", "u", "p"):
            found.append(f"{where}: invalid type {node['type']!r}")
        permissions = node.get("permissions", "")
        if permissions not in ("", "none") and permissions.strip("rwm") != "":
            found.append(f"{where}: invalid permissions {permissions!r}")
    for mount in edits.get("mounts", []):
        found += _unknown(mount, MOUNT_FIELDS, f"{where} mount")
        if not mount.get("hostPath") or not mount.get("containerPath"):
            found.append(f"{where}: invalid mount, empty path")
    return found


def _unknown(obj: dict[str, Any], known: set[str], where: str) -> list[str]:
    return [f"{where}: unknown field {key!r}" for key in obj if key not in known]


def _index(version: str) -> int:
    return VERSIONS.index(version)
