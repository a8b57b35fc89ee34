"""The one place the processes and the operator's command make their API server client.

`connect` reads the configuration only (no request is sent: the processes wait for the server
themselves, with backoff) and gives the `rest.Rest` every component then shares. Whatever the
kubernetes client raises for a missing, unreadable or malformed configuration (its own
``ConfigException``, ``OSError``, YAML errors, and type errors from a kubeconfig of the wrong
shape) becomes one `errors.ConfigurationError` saying where it looked; the entry points exit
with code 2 on it.
"""

from __future__ import annotations

import os

import yaml
from kubernetes import client, config

from controller import errors, rest

_UNREADABLE = (config.ConfigException, OSError, yaml.YAMLError, TypeError, ValueError, KeyError)


def connect(kubeconfig: str | None) -> rest.Rest:
    """A client for the server of `kubeconfig`, or of the pod's service account when None.

    Close it with ``rest.api.close()`` (or ``with rest.api:``) when the process stops.
    """
    return rest.Rest(_from_kubeconfig(kubeconfig) if kubeconfig else _in_cluster())


def connect_as_kubectl(kubeconfig: str | None, *, context: str | None = None) -> rest.Rest:
    """A client found as kubectl finds one (the operator's command): `kubeconfig`, else
    ``$KUBECONFIG`` (a list of files, merged), else ``~/.kube/config``, in `context` or the
    current one; else the pod's service account."""
    # Read $KUBECONFIG now: the client reads it once, when it is imported.
    found = kubeconfig or os.environ.get("KUBECONFIG")
    if not found and os.path.exists(_kubectl_default()):
        found = _kubectl_default()
    if found:
        try:
            api: client.ApiClient = config.new_client_from_config(
                config_file=found, context=context
            )
        except _UNREADABLE as exc:
            raise errors.ConfigurationError(f"kubeconfig {found}: {exc}") from exc
        return rest.Rest(api)
    return rest.Rest(_in_cluster())


def _kubectl_default() -> str:
    return os.path.expanduser("~/.kube/config")


def _from_kubeconfig(path: str) -> client.ApiClient:
    if not os.path.isfile(path):  # the client would say "No configuration found."
        raise errors.ConfigurationError(f"kubeconfig {path}: no such file")
    try:
        api: client.ApiClient = config.new_client_from_config(path)
    except _UNREADABLE as exc:
        raise errors.ConfigurationError(f"kubeconfig {path}: {exc}") from exc
    return api


def _in_cluster() -> client.ApiClient:
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except _UNREADABLE as exc:
        raise errors.ConfigurationError(
            f"no API server configuration: no --kubeconfig given, and the in-cluster one "
            f"(service account token, KUBERNETES_SERVICE_HOST) is missing: {exc}"
        ) from exc
    return client.ApiClient(configuration)
