"""The DeviceClasses built in code, and how they are sent (no server).

Covers: for the default driver they equal ``deploy/deviceclasses.yaml`` (the YAML and the code
never drift); another driver name renames the classes and their CEL consistently; the extended
resource name goes on the whole-GPU class only; `apply` sends each class as a forced server-side
apply patch owned by ``gpu-dra-controller``.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from typing import Any

import yaml

from controller import deviceclasses, rest

DEPLOY = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "deviceclasses.yaml"


def test_default_driver_equals_the_deployed_yaml() -> None:
    deployed = [doc for doc in yaml.safe_load_all(DEPLOY.read_text()) if doc]
    assert deviceclasses.build("gpu.dra.dev") == deployed


def test_another_driver_name() -> None:
    classes = deviceclasses.build("gpu.example.com")
    assert [c["metadata"]["name"] for c in classes] == [
        "gpu.example.com",
        "mig.gpu.example.com",
        "shared.gpu.example.com",
    ]
    (selector,) = classes[1]["spec"]["selectors"]
    assert selector["cel"]["expression"] == (
        'device.driver == "gpu.example.com" && device.attributes["gpu.example.com"].type == "mig"'
    )


def test_extended_resource_name_on_the_whole_gpu_class_only() -> None:
    gpu, mig, shared = deviceclasses.build("gpu.dra.dev", extended_resource_name="gpu.dra.dev/gpu")
    assert gpu["spec"]["extendedResourceName"] == "gpu.dra.dev/gpu"
    assert "extendedResourceName" not in mig["spec"]
    assert "extendedResourceName" not in shared["spec"]


class RecordingRest(rest.Rest):
    """Records requests and answers with the body (as the server would store it)."""

    def __init__(self) -> None:
        super().__init__(api=None)
        self.sent: list[tuple[str, str, Any, Mapping[str, str] | None, str]] = []

    def request(
        self,
        method: str,
        path: str,
        *,
        body: object = None,
        query: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        timeout: float = 30,
    ) -> rest.Obj:
        self.sent.append((method, path, body, query, content_type))
        assert isinstance(body, dict)
        return {**body, "metadata": {**body["metadata"], "resourceVersion": "1"}}


def test_apply_is_a_forced_server_side_apply() -> None:
    client = RecordingRest()
    classes = deviceclasses.build("gpu.dra.dev")
    stored = deviceclasses.apply(client, classes)
    assert [s["metadata"]["name"] for s in stored] == [c["metadata"]["name"] for c in classes]
    for (method, path, body, query, content_type), cls in zip(client.sent, classes, strict=True):
        assert method == "PATCH"
        assert path == f"/apis/resource.k8s.io/v1/deviceclasses/{cls['metadata']['name']}"
        assert body == cls
        assert query == {"fieldManager": "gpu-dra-controller", "force": "true"}
        assert content_type == "application/apply-patch+yaml"
