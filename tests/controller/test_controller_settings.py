"""The cluster controller's flags, parsed once into a frozen `settings.Settings`.

Covers: the defaults (the Lease's namespace and the identity from ``POD_NAMESPACE`` and
``POD_NAME``, else ``default`` and the hostname; leader election on with safe timing; no webhook);
the webhook's settings when a certificate and key are given; the settings cannot be changed once
parsed; every bad value is refused with exit code 2 and a message naming its flag.
"""

from __future__ import annotations

import dataclasses
import pathlib
import socket

import pytest

from controller import leaderelection, settings


def test_defaults_come_from_the_pod_environment() -> None:
    parsed = settings.parse([], environ={"POD_NAMESPACE": "gpu-system", "POD_NAME": "ctl-abc"})
    assert parsed.driver_name == "gpu.dra.dev"
    assert parsed.kubeconfig is None
    assert parsed.election == settings.Election(
        enabled=True,
        namespace="gpu-system",
        lease_name="gpu-dra-controller",
        identity="ctl-abc",
        timing=leaderelection.Timing(15, 10, 2),
    )
    assert parsed.extended_resource_name == ""
    assert (parsed.gc_interval, parsed.classes_interval) == (300, 600)
    assert parsed.webhook is None
    assert (parsed.logging.format, parsed.logging.level) == ("console", "info")


def test_defaults_outside_a_pod() -> None:
    parsed = settings.parse([], environ={})
    assert parsed.election.namespace == "default"
    assert parsed.election.identity == socket.gethostname()


def test_every_flag_parsed() -> None:
    parsed = settings.parse(
        [
            "--driver-name=gpu.example.com",
            "--kubeconfig=/etc/kubeconfig",
            "--namespace=ns",
            "--lease-name=lease",
            "--identity=me",
            "--no-leader-elect",
            "--lease-duration=30",
            "--renew-deadline=20",
            "--retry-period=4",
            "--extended-resource-name=gpu.example.com/gpu",
            "--gc-interval=5",
            "--classes-interval=7.5",
            "--webhook-cert=/tls/crt",
            "--webhook-key=/tls/key",
            "--webhook-bind=127.0.0.1",
            "--webhook-port=8443",
            "--log-format=json",
            "--log-level=DEBUG",
        ],
        environ={},
    )
    assert parsed.driver_name == "gpu.example.com"
    assert parsed.kubeconfig == "/etc/kubeconfig"
    assert parsed.election == settings.Election(
        enabled=False,
        namespace="ns",
        lease_name="lease",
        identity="me",
        timing=leaderelection.Timing(30, 20, 4),
    )
    assert parsed.extended_resource_name == "gpu.example.com/gpu"
    assert (parsed.gc_interval, parsed.classes_interval) == (5, 7.5)
    assert parsed.webhook == settings.Webhook(
        cert=pathlib.Path("/tls/crt"), key=pathlib.Path("/tls/key"), bind="127.0.0.1", port=8443
    )
    assert (parsed.logging.format, parsed.logging.level) == ("json", "debug")


def test_an_empty_kubeconfig_means_in_cluster() -> None:
    assert settings.parse(["--kubeconfig="], environ={}).kubeconfig is None


def test_settings_are_frozen() -> None:
    parsed = settings.parse([], environ={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.gc_interval = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--webhook-cert=/c"], "--webhook-cert and --webhook-key", id="cert-alone"),
        pytest.param(["--webhook-key=/k"], "--webhook-cert and --webhook-key", id="key-alone"),
        pytest.param(["--renew-deadline=20"], "--lease-duration, --renew-deadline", id="timing"),
        pytest.param(["--retry-period=9"], "--lease-duration, --renew-deadline", id="retry"),
        pytest.param(["--lease-duration=0"], "--lease-duration", id="zero-lease"),
        pytest.param(["--renew-deadline=-1"], "--renew-deadline", id="negative-deadline"),
        pytest.param(["--retry-period=nan"], "--retry-period", id="nan-retry"),
        pytest.param(["--gc-interval=0"], "--gc-interval", id="zero-gc"),
        pytest.param(["--classes-interval=inf"], "--classes-interval", id="infinite-classes"),
        pytest.param(["--classes-interval=soon"], "--classes-interval", id="word-classes"),
        pytest.param(["--webhook-port=0"], "--webhook-port", id="port-zero"),
        pytest.param(["--webhook-port=70000"], "--webhook-port", id="port-too-big"),
        pytest.param(["--webhook-bind=everywhere"], "--webhook-bind", id="bind-not-ip"),
        pytest.param(["--driver-name=GPU_Driver"], "--driver-name", id="driver-name"),
        pytest.param(["--driver-name="], "--driver-name", id="driver-name-empty"),
        pytest.param(["--namespace=Gpu.System"], "--namespace", id="namespace"),
        pytest.param(["--lease-name=a_b"], "--lease-name", id="lease-name"),
        pytest.param(["--identity= "], "--identity", id="identity-empty"),
        pytest.param(["--extended-resource-name=gpu"], "--extended-resource-name", id="ern-bare"),
        pytest.param(
            ["--extended-resource-name=kubernetes.io/gpu"], "--extended-resource-name", id="ern-k8s"
        ),
        pytest.param(["--log-format=xml"], "--log-format", id="log-format"),
        pytest.param(["--log-level=loud"], "--log-level", id="log-level"),
        pytest.param(["--no-such-flag"], "--no-such-flag", id="unknown-flag"),
    ],
)
def test_bad_flags_are_refused_naming_the_flag(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        settings.parse(argv, environ={})
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("usage: gpu-dra-controller")
    assert message in error.splitlines()[-1]
