"""The driver's DeviceClasses, built in code for a driver name and kept in place by server-side apply.

One class per device type, so a capacity request can never land on an exclusive whole GPU:
``<driver>`` (whole GPUs), ``mig.<driver>`` (MIG devices) and ``shared.<driver>`` (shared
fractions), each selecting its type with CEL. For the default driver they equal
``deploy/deviceclasses.yaml`` (a unit test keeps the two in step). The whole-GPU class may carry
``spec.extendedResourceName`` (e.g. ``gpu.dra.dev/gpu``): a pod asking for that resource in
``resources.limits``, without any claim, then gets a GPU of ours through an implicit claim the
scheduler makes.

`apply` sends each class as a server-side apply patch owned by the field manager
``gpu-dra-controller`` with ``force=true``: the controller takes back the fields it sets (the
selectors, the extended resource name) from anyone who changed them, leaves fields it does not
set (an admin's labels, annotations) alone, and removes a field it set before and no longer
sends (the extended resource name after the flag is cleared). ``spec.selectors`` and
``spec.config`` are atomic lists, so an admin's extra selector is replaced along with ours.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import structlog

from api import devicetypes
from controller import rest

log = structlog.get_logger(__name__)

PATH = "/apis/resource.k8s.io/v1/deviceclasses"
FIELD_MANAGER = "gpu-dra-controller"
APPLY_PATCH = "application/apply-patch+yaml"

_PREFIXES = {
    devicetypes.DeviceType.GPU: "",
    devicetypes.DeviceType.MIG: "mig.",
    devicetypes.DeviceType.SHARED: "shared.",
}


def class_name(driver: str, device_type: devicetypes.DeviceType) -> str:
    """``gpu.dra.dev``, ``mig.gpu.dra.dev``, ``shared.gpu.dra.dev`` for driver ``gpu.dra.dev``."""
    return f"{_PREFIXES[device_type]}{driver}"


def build(driver: str, *, extended_resource_name: str = "") -> list[rest.Obj]:
    """The three classes of `driver`, in the order of ``deploy/deviceclasses.yaml``."""
    classes = []
    for device_type in _PREFIXES:
        quoted = json.dumps(driver)  # a DNS subdomain needs no escaping; quote it the CEL way
        expression = (
            f"device.driver == {quoted} && "
            f"device.attributes[{quoted}].type == {json.dumps(device_type.value)}"
        )
        spec: rest.Obj = {"selectors": [{"cel": {"expression": expression}}]}
        if device_type is devicetypes.DeviceType.GPU and extended_resource_name:
            spec["extendedResourceName"] = extended_resource_name
        classes.append(
            {
                "apiVersion": "resource.k8s.io/v1",
                "kind": "DeviceClass",
                "metadata": {"name": class_name(driver, device_type)},
                "spec": spec,
            }
        )
    return classes


def apply(client: rest.Rest, classes: Sequence[rest.Obj]) -> list[rest.Obj]:
    """Server-side apply each class (forcing our fields); the classes as stored."""
    stored = []
    for body in classes:
        name = body["metadata"]["name"]
        result = client.request(
            "PATCH",
            f"{PATH}/{name}",
            body=body,
            query={"fieldManager": FIELD_MANAGER, "force": "true"},
            content_type=APPLY_PATCH,
        )
        log.debug("deviceclasses.applied", name=name, version=result["metadata"]["resourceVersion"])
        stored.append(result)
    return stored
