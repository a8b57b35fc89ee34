"""Read the ResourceClaims the kubelet names, with the plugin's own credentials.

The allocation is not in the kubelet's request; the plugin GETs each claim (``resource.k8s.io``,
the version the API server serves) through the project's REST layer (`controller.rest`), as
plain JSON, so no client model drops a field it does not know and every failure arrives as one
of `controller.errors`. Each becomes a `claims.ClaimError` of that claim only, which the kubelet
retries:

    NotFoundError                       "claim ... does not exist (any more)"
    UnavailableError (down, 5xx, 429,   `UnreachableError`: "the API server is unreachable: ..."
      timed out, broke off)
    any other ApiError                  "reading claim ... failed: GET ...: HTTP <status>: ..."

Each GET is bounded by `timeout` (or the caller's smaller one: the time left of the kubelet's
call), so a hung server cannot hold a NodePrepareResources call past the kubelet's deadline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from controller import errors, rest
from dra_driver import claims

TIMEOUT = 10.0
"""Seconds one claim GET may take at most, connecting included."""


class UnreachableError(claims.ClaimError):
    """The claim could not be read now: the API server is down, hung or overloaded."""


class ClaimFetcher:
    def __init__(
        self,
        client: rest.Rest,
        *,
        api_version: str = "v1",
        on_read: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> None:
        self._client = client
        self.api_version = api_version
        """The allocation results read here have the same shape in v1, v1beta2 and v1beta1."""
        self._on_read = on_read
        """Shown every claim read (`reservations.Reservations.record`: pod names for metrics)."""

    def fetch(self, ref: claims.ClaimRef, *, timeout: float | None = None) -> dict[str, Any]:
        """The claim's JSON; `claims.ClaimError` (`UnreachableError` if worth retrying soon)."""
        try:
            return self._get(ref, timeout)
        except errors.NotFoundError as exc:
            raise claims.ClaimError(f"claim {ref} does not exist (any more)") from exc
        except errors.UnavailableError as exc:
            raise UnreachableError(f"the API server is unreachable: {exc}") from exc
        except errors.ApiError as exc:
            raise claims.ClaimError(
                f"reading claim {ref} from the API server failed: {exc}"
            ) from exc

    def exists(self, ref: claims.ClaimRef) -> bool | None:
        """True if the claim still exists with the same UID; None if that cannot be told now."""
        try:
            obj = self._get(ref, None)
        except errors.NotFoundError:
            return False
        except errors.ApiError:
            return None
        return bool((obj.get("metadata") or {}).get("uid") == ref.uid)

    def _get(self, ref: claims.ClaimRef, timeout: float | None) -> dict[str, Any]:
        seconds = TIMEOUT if timeout is None else max(0.1, min(timeout, TIMEOUT))
        path = (
            f"/apis/resource.k8s.io/{self.api_version}/namespaces/{ref.namespace}"
            f"/resourceclaims/{ref.name}"
        )
        claim = self._client.request("GET", path, timeout=seconds)
        if self._on_read is not None:
            self._on_read(claim)
        return claim
