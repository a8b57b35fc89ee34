"""`connecting`: where each process and the operator's command find their API server.

Covers: a given kubeconfig is read (missing or malformed: `errors.ConfigurationError` naming it);
none given means the in-cluster configuration, whose absence is a `ConfigurationError` too; the
operator's command finds its configuration as kubectl does: the flag, else ``$KUBECONFIG`` (files
merged), else ``~/.kube/config``, in the context asked for or the current one. Nothing is sent.
"""

from __future__ import annotations

import pathlib

import pytest

from controller import connecting, errors


def _kubeconfig(path: pathlib.Path, *servers: str, current: str = "a") -> pathlib.Path:
    clusters = "".join(
        f"- {{name: {name}, cluster: {{server: '{server}'}}}}\n"
        for name, server in zip("abc", servers, strict=False)
    )
    contexts = "".join(
        f"- {{name: {name}, context: {{cluster: {name}, user: u}}}}\n"
        for name in "abc"[: len(servers)]
    )
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n{clusters}contexts:\n{contexts}"
        "users:\n- {name: u, user: {token: t}}\n"
        f"current-context: {current}\n"
    )
    return path


def _host(api: object) -> str:
    host: str = api.api.configuration.host  # type: ignore[attr-defined]
    return host


@pytest.fixture
def no_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> pathlib.Path:
    """No $KUBECONFIG, an empty home, not in a pod."""
    for name in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def test_a_given_kubeconfig_is_read(no_cluster: pathlib.Path) -> None:
    path = _kubeconfig(no_cluster / "kc", "https://127.0.0.1:6443")
    assert _host(connecting.connect(str(path))) == "https://127.0.0.1:6443"


@pytest.mark.parametrize("content", [None, "users: {", "[1, 2]"], ids=["missing", "yaml", "shape"])
def test_a_bad_kubeconfig_is_a_configuration_error(
    no_cluster: pathlib.Path, content: str | None
) -> None:
    path = no_cluster / "kc"
    if content is not None:
        path.write_text(content)
    with pytest.raises(errors.ConfigurationError, match=f"kubeconfig {path}"):
        connecting.connect(str(path))


def test_no_kubeconfig_and_no_pod_is_a_configuration_error(no_cluster: pathlib.Path) -> None:
    with pytest.raises(errors.ConfigurationError, match="no API server configuration"):
        connecting.connect(None)
    with pytest.raises(errors.ConfigurationError, match="no API server configuration"):
        connecting.connect_as_kubectl(None)


def test_the_command_finds_its_configuration_as_kubectl_does(
    no_cluster: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = no_cluster / "home" / ".kube"
    home.mkdir(parents=True)
    _kubeconfig(home / "config", "https://127.0.0.1:1001", "https://127.0.0.1:1002")
    assert _host(connecting.connect_as_kubectl(None)) == "https://127.0.0.1:1001"
    assert _host(connecting.connect_as_kubectl(None, context="b")) == "https://127.0.0.1:1002"

    first = _kubeconfig(no_cluster / "first", "https://127.0.0.1:2001", current="a")
    second = no_cluster / "second"
    second.write_text("apiVersion: v1\nkind: Config\ncurrent-context: a\n")
    monkeypatch.setenv("KUBECONFIG", f"{second}:{first}")  # merged, as kubectl merges them
    assert _host(connecting.connect_as_kubectl(None)) == "https://127.0.0.1:2001"

    with pytest.raises(errors.ConfigurationError, match="kubeconfig"):  # not in-cluster
        connecting.connect_as_kubectl(str(no_cluster / "missing"))
    flag = _kubeconfig(no_cluster / "flag", "https://127.0.0.1:3001")
    assert _host(connecting.connect_as_kubectl(str(flag))) == "https://127.0.0.1:3001"
    with pytest.raises(errors.ConfigurationError, match="kubeconfig"):
        connecting.connect_as_kubectl(str(flag), context="nope")
