"""ResourceClaims as the API server would serve them to the plugin, and builders for their JSON.

`ClaimBook` stands in for the API server behind `claimfetching.ClaimFetcher`: `fetch` returns the
claim's JSON or raises `claims.ClaimError` with the fetcher's own message (chained from a
`controller.errors.NotFoundError`, as the fetcher's is). Claims live in memory, or, when
the book has a directory, in ``<dir>/<namespace>_<name>.json`` files read on every fetch, so a
test can hand claims to a plugin running in another process. An outage is played by setting
`ClaimBook.outage`: ``"down"`` answers at once, ``"hung"`` after the fetch's timeout, both with
the fetcher's `claimfetching.UnreachableError`; `fetches` counts the fetches.

The builders make ``status.allocation`` the way the scheduler writes it: `gpu`, `mig` and `shared`
results of our driver on `NODE`, `foreign` results of another driver, `opaque` configs.
"""

from __future__ import annotations

import copy
import json
import pathlib
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from controller import errors
from dra_driver import atomicfiles, claims
from dra_driver.slices import naming
from kubeletplugin import claimfetching

NODE = "node-a"
DRIVER = "gpu.dra.dev"
NAMESPACE = "ns"

Json = dict[str, Any]


class ClaimBook:
    """The ResourceClaims of the cluster, by namespace and name."""

    def __init__(self, directory: pathlib.Path | None = None) -> None:
        self._directory = directory
        self._claims: dict[tuple[str, str], Json] = {}
        self._lock = threading.Lock()
        self.outage: Literal["down", "hung"] | None = None
        self.fetches = 0
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    def add(self, obj: Mapping[str, Any]) -> None:
        """Create the claim, or replace the one of the same namespace and name."""
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        if self._directory is None:
            with self._lock:
                self._claims[namespace, name] = copy.deepcopy(dict(obj))
        else:
            atomicfiles.write_bytes(self._path(namespace, name), json.dumps(obj).encode())

    def remove(self, namespace: str, name: str) -> None:
        if self._directory is None:
            with self._lock:
                self._claims.pop((namespace, name), None)
        else:
            self._path(namespace, name).unlink(missing_ok=True)

    def fetch(self, ref: claims.ClaimRef, *, timeout: float | None = None) -> Json:
        """What ``ClaimFetcher.fetch`` returns, or raises, for `ref`."""
        self.fetches += 1
        if self.outage == "hung":
            threading.Event().wait(claimfetching.TIMEOUT if timeout is None else timeout)
        if self.outage is not None:
            raise claimfetching.UnreachableError(f"the API server is unreachable: {self.outage}")
        obj = self._get(ref.namespace, ref.name)
        if obj is None:
            not_found = errors.NotFoundError(f"GET claim {ref}: Not Found", status=404)
            raise claims.ClaimError(f"claim {ref} does not exist (any more)") from not_found
        return obj

    def exists(self, ref: claims.ClaimRef) -> bool | None:
        """What ``ClaimFetcher.exists`` says: the claim is there with the same UID."""
        obj = self._get(ref.namespace, ref.name)
        return obj is not None and obj["metadata"].get("uid") == ref.uid

    def _get(self, namespace: str, name: str) -> Json | None:
        if self._directory is None:
            with self._lock:
                obj = self._claims.get((namespace, name))
            return copy.deepcopy(obj)
        try:
            loaded: Json = json.loads(self._path(namespace, name).read_text())
        except FileNotFoundError:
            return None
        return loaded

    def _path(self, namespace: str, name: str) -> pathlib.Path:
        assert self._directory is not None
        return self._directory / f"{namespace}_{name}.json"


# -- claim JSON ---------------------------------------------------------------------------------


def claim(
    uid: str,
    *results: Json,
    name: str | None = None,
    namespace: str = NAMESPACE,
    config: Sequence[Json] = (),
    allocated: bool = True,
) -> Json:
    """A ResourceClaim named ``claim-<uid>`` (unless `name`), allocated to `results` if `allocated`."""
    obj: Json = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"namespace": namespace, "name": name or f"claim-{uid}", "uid": uid},
        "spec": {"devices": {"requests": []}},
        "status": {},
    }
    if allocated:
        obj["status"]["allocation"] = {
            "devices": {"results": list(results), "config": list(config)},
            "nodeSelector": {
                "nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [NODE]}]}
                ]
            },
        }
    return obj


def ref(obj: Mapping[str, Any]) -> claims.ClaimRef:
    """The claim as the kubelet names it."""
    metadata = obj["metadata"]
    return claims.ClaimRef(
        metadata["namespace"], metadata["name"], claims.ClaimUID(metadata["uid"])
    )


def result(device: str, *, request: str = "gpu", driver: str = DRIVER, pool: str = NODE) -> Json:
    """One ``status.allocation.devices.results`` entry."""
    return {"request": request, "driver": driver, "pool": pool, "device": device}


def gpu(index: int, *, request: str = "gpu") -> Json:
    return result(naming.gpu(index), request=request)


def mig(index: int, profile: str, start: int, *, request: str = "gpu") -> Json:
    """A MIG device, e.g. ``mig(0, "3g.20gb", 4)`` is ``gpu-0-mig-3g20gb-4``."""
    return result(naming.mig(index, profile, start), request=request)


def shared(
    index: int, *, share_id: str, memory: str = "4Gi", cores: str = "30", request: str = "gpu"
) -> Json:
    """A share of a multi-allocatable device, with what the scheduler charged for it."""
    return {
        **result(naming.shared(index), request=request),
        "shareID": share_id,
        "consumedCapacity": {"memory": memory, "cores": cores},
    }


def foreign(device: str = "nvidia0", *, driver: str = "other.example.com") -> Json:
    """A result of another driver, which ours must leave alone."""
    return result(device, driver=driver, pool="other-pool")


def opaque(parameters: Json, *, requests: Sequence[str] = (), driver: str = DRIVER) -> Json:
    """A ``FromClaim`` opaque config entry."""
    return {
        "source": "FromClaim",
        "requests": list(requests),
        "opaque": {"driver": driver, "parameters": parameters},
    }


def gpu_config(sharing: Json) -> Json:
    """Our ``GpuConfig`` parameters with `sharing`."""
    return {"apiVersion": "gpu.dra.dev/v1alpha1", "kind": "GpuConfig", "sharing": sharing}
