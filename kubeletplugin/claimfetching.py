"""Read the ResourceClaims the kubelet names, with the plugin's own credentials.

The allocation is not in the kubelet's request; the plugin GETs each claim (``resource.k8s.io/v1``)
as plain JSON, so no client model drops a field it does not know. A claim that is gone or cannot
be read fails that claim only; the kubelet retries it.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from dra_driver import claims

GROUP, PLURAL = "resource.k8s.io", "resourceclaims"


class ClaimFetcher:
    def __init__(self, api: client.ApiClient, *, api_version: str = "v1") -> None:
        self._objects = client.CustomObjectsApi(api)
        self.api_version = api_version
        """The allocation results read here have the same shape in v1, v1beta2 and v1beta1."""

    def fetch(self, ref: claims.ClaimRef) -> dict[str, Any]:
        try:
            obj: Any = self._objects.get_namespaced_custom_object(
                GROUP, self.api_version, ref.namespace, PLURAL, ref.name, _request_timeout=10
            )
        except ApiException as exc:
            if exc.status == 404:
                raise claims.ClaimError(f"claim {ref} does not exist (any more)") from exc
            raise claims.ClaimError(
                f"reading claim {ref} from the API server failed: HTTP {exc.status} {exc.reason}"
            ) from exc
        except OSError as exc:  # urllib3 connection errors derive from OSError
            raise claims.ClaimError(f"the API server is unreachable: {exc}") from exc
        if not isinstance(obj, dict):
            raise claims.ClaimError(f"claim {ref}: the API server answered {type(obj).__name__}")
        return obj

    def exists(self, ref: claims.ClaimRef) -> bool | None:
        """True if the claim still exists with the same UID; None if that cannot be told now."""
        try:
            obj = self.fetch(ref)
        except claims.ClaimError as exc:
            cause = exc.__cause__
            return False if isinstance(cause, ApiException) and cause.status == 404 else None
        return bool((obj.get("metadata") or {}).get("uid") == ref.uid)
