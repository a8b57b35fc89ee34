"""Errors of the API-server edge, classified by what the caller should do.

    ApiError                 any failed request (status, reason, the server's message)
    ├── RetryableError       try again after a backoff: 409 conflict, 429, 5xx, unreachable
    │   ├── ConflictError    409: the object changed (resourceVersion or UID precondition)
    │   └── UnavailableError the server cannot be reached, or answered 5xx / 429
    ├── NotFoundError        404
    └── RejectedError        400, 403, 422: the request itself is wrong; retrying will not help

    ConfigurationError       no request can be made: no usable kubeconfig or in-cluster
                             configuration (`connecting`); the process cannot start

Foreign exceptions (`kubernetes.client.exceptions.ApiException`, urllib3 and socket errors) are
translated in `rest`, the client's configuration errors in `connecting`; both chain with ``from``.
"""

from __future__ import annotations


class ApiError(Exception):
    def __init__(self, message: str, *, status: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class RetryableError(ApiError):
    """Transient: the same request may succeed later."""


class ConflictError(RetryableError):
    """409: the object was changed by someone else; re-read and retry."""


class UnavailableError(RetryableError):
    """The API server is unreachable or overloaded."""


class NotFoundError(ApiError):
    """404."""


class RejectedError(ApiError):
    """The server refused the request as invalid or forbidden; retrying will not help."""


class ConfigurationError(Exception):
    """Where the API server is, or the credentials for it, cannot be read; no retry will help."""


def for_status(status: int, message: str, *, reason: str = "") -> ApiError:
    """The error class for an HTTP status."""
    if status == 404:
        return NotFoundError(message, status=status, reason=reason)
    if status == 409:
        return ConflictError(message, status=status, reason=reason)
    if status == 429 or status >= 500:
        return UnavailableError(message, status=status, reason=reason)
    return RejectedError(message, status=status, reason=reason)
