"""The kubelet plugin's flags, parsed once into a frozen `settings.Settings`.

Covers: the defaults from the DaemonSet's environment (``NODE_NAME``, ``POD_UID``,
``POD_NAMESPACE``); the defaults that follow from other flags (the plugin dir from the driver
name, the hook's path from the plugin dir, the driver root ``/`` with real GPUs and none with fake
ones); every flag parsed into its typed field (modes and strategies as enums, ``-1`` ports as
off); the settings cannot be changed once parsed; every bad value, and every flag that needs
another, is refused with exit code 2 and a message naming the flag.
"""

from __future__ import annotations

import dataclasses
import pathlib

import pytest

from dra_driver.checkpoint import store
from dra_driver.slices import settings as slice_settings
from kubeletplugin import settings

POD_ENV = {"NODE_NAME": "node-a", "POD_UID": "uid-1", "POD_NAMESPACE": "gpu-system"}


def test_defaults_come_from_the_pod_environment() -> None:
    parsed = settings.parse([], environ=POD_ENV)
    assert parsed.driver_name == "gpu.dra.dev"
    assert parsed.kubeconfig is None
    assert parsed.node == settings.Node(
        name="node-a",
        pod_uid="uid-1",
        gpus="nvml",
        plugin_dir=pathlib.Path("/var/lib/kubelet/plugins/gpu.dra.dev"),
        registry_dir=pathlib.Path("/var/lib/kubelet/plugins_registry"),
        cdi_dir=pathlib.Path("/var/run/cdi"),
    )
    assert parsed.publishing == settings.Publishing(
        mode=None,
        dynamic_mig=True,
        sharing_strategy=slice_settings.SharingStrategy.MPS,
        compat_shares=0,
        resync_interval=60,
    )
    assert parsed.node.checkpoint_layout is store.Layout.DIRECTORY
    assert parsed.mps == settings.Mps(
        runner=settings.MpsRunner.LOCAL,
        image="",
        namespace="gpu-system",
        pull_policy="IfNotPresent",
        pull_secrets=(),
        ready_timeout=30,
    )
    assert parsed.driver_files == settings.DriverFiles(
        root="/",
        root_ctr_path=None,
        dev_root=None,
        dev_root_ctr_path=None,
        proc_root=pathlib.Path("/proc"),
        capabilities=("compute", "utility"),
        hook=pathlib.Path("/var/lib/kubelet/plugins/gpu.dra.dev/bin/nvidia-cdi-hook"),
        hook_source=None,
        preload_library=None,
    )
    assert parsed.endpoints == settings.Endpoints(
        health_port=None, metrics_port=None, bind_address="127.0.0.1"
    )
    assert (parsed.sweep_interval, parsed.driver_check_interval) == (600, 30)
    assert (parsed.logging.format, parsed.logging.level) == ("console", "info")


def test_defaults_outside_a_pod_with_fake_gpus() -> None:
    parsed = settings.parse(["--node-name=n1", "--gpus=fake:1xL4"], environ={})
    assert parsed.node.pod_uid == ""
    assert parsed.mps.namespace == "default"
    assert parsed.driver_files.root is None  # fake GPUs: specs get no driver files
    assert not parsed.node.real_gpus


def test_paths_follow_the_driver_name_and_plugin_dir() -> None:
    parsed = settings.parse(["--driver-name=gpu.example.com"], environ=POD_ENV)
    assert parsed.node.plugin_dir == pathlib.Path("/var/lib/kubelet/plugins/gpu.example.com")
    moved = settings.parse(["--plugin-dir=/data/plugin"], environ=POD_ENV)
    assert moved.driver_files.hook == pathlib.Path("/data/plugin/bin/nvidia-cdi-hook")


def test_every_flag_parsed() -> None:
    parsed = settings.parse(
        [
            "--kubeconfig=/etc/kubeconfig",
            "--node-name=n2",
            "--pod-uid=u2",
            "--gpus=fake:2xA100-40GB,1xL4",
            "--registry-dir=/r",
            "--cdi-dir=/c",
            "--checkpoint-layout=v1",
            "--mode=compat",
            "--resync-interval=2.5",
            "--mps-runner=kubernetes",
            "--mps-image=mps:1",
            "--mps-image-pull-policy=Always",
            "--mps-ready-timeout=90",
            "--mps-image-pull-secret=regcred",
            "--mps-image-pull-secret=mirror.example-creds",
            "--namespace=ns",
            "--preload-library=/lib/libgpuquota.so",
            "--driver-root=/run/nvidia/driver",
            "--driver-root-ctr-path=/driver-root",
            "--dev-root=/",
            "--dev-root-ctr-path=/host-dev-root",
            "--proc-root=/host/proc",
            "--driver-capabilities=compute,utility,video",
            "--nvidia-cdi-hook=/opt/hook",
            "--nvidia-cdi-hook-source=/usr/local/bin/nvidia-cdi-hook",
            "--driver-check-interval=3",
            "--no-dynamic-mig",
            "--sharing-strategy=timeslicing",
            "--compat-shares=4",
            "--healthcheck-port=51515",
            "--metrics-port=-1",
            "--bind-address=0.0.0.0",
            "--sweep-interval=5",
            "--log-format=json",
            "--log-level=warning",
        ],
        environ=POD_ENV,
    )
    assert parsed.kubeconfig == "/etc/kubeconfig"
    assert (parsed.node.name, parsed.node.pod_uid) == ("n2", "u2")
    assert parsed.node.gpus == "fake:2xA100-40GB,1xL4"
    assert (parsed.node.registry_dir, parsed.node.cdi_dir) == (
        pathlib.Path("/r"),
        pathlib.Path("/c"),
    )
    assert parsed.node.checkpoint_layout is store.Layout.FILE
    assert parsed.publishing == settings.Publishing(
        mode=slice_settings.Mode.COMPAT,
        dynamic_mig=False,
        sharing_strategy=slice_settings.SharingStrategy.TIMESLICING,
        compat_shares=4,
        resync_interval=2.5,
    )
    assert parsed.mps == settings.Mps(
        runner=settings.MpsRunner.KUBERNETES,
        image="mps:1",
        namespace="ns",
        pull_policy="Always",
        pull_secrets=("regcred", "mirror.example-creds"),
        ready_timeout=90,
    )
    assert parsed.driver_files == settings.DriverFiles(
        root="/run/nvidia/driver",
        root_ctr_path="/driver-root",
        dev_root="/",
        dev_root_ctr_path="/host-dev-root",
        proc_root=pathlib.Path("/host/proc"),
        capabilities=("compute", "utility", "video"),
        hook=pathlib.Path("/opt/hook"),
        hook_source=pathlib.Path("/usr/local/bin/nvidia-cdi-hook"),
        preload_library="/lib/libgpuquota.so",
    )
    assert parsed.endpoints == settings.Endpoints(
        health_port=51515, metrics_port=None, bind_address="0.0.0.0"
    )
    assert (parsed.sweep_interval, parsed.driver_check_interval) == (5, 3)
    assert (parsed.logging.format, parsed.logging.level) == ("json", "warning")


@pytest.mark.parametrize("off", ["-1", "-5"])
def test_a_negative_port_is_off(off: str) -> None:
    parsed = settings.parse([f"--metrics-port={off}", f"--healthcheck-port={off}"], environ=POD_ENV)
    assert (parsed.endpoints.metrics_port, parsed.endpoints.health_port) == (None, None)


def test_settings_are_frozen() -> None:
    parsed = settings.parse([], environ=POD_ENV)
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.node.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--node-name="], "--node-name", id="no-node-name"),
        pytest.param(["--gpus=gpu0"], "--gpus", id="gpus-kind"),
        pytest.param(["--gpus=fake:3xFOO"], "--gpus", id="gpus-model"),
        pytest.param(["--gpus=fake:"], "--gpus", id="gpus-empty-spec"),
        pytest.param(["--mode=fast"], "--mode", id="mode"),
        pytest.param(["--checkpoint-layout=v3"], "--checkpoint-layout", id="checkpoint-layout"),
        pytest.param(["--resync-interval=0"], "--resync-interval", id="resync-zero"),
        pytest.param(["--sweep-interval=-5"], "--sweep-interval", id="sweep-negative"),
        pytest.param(["--driver-check-interval=nan"], "--driver-check-interval", id="check-nan"),
        pytest.param(["--mps-runner=docker"], "--mps-runner", id="mps-runner"),
        pytest.param(["--mps-runner=kubernetes"], "--mps-image", id="mps-image-missing"),
        pytest.param(["--namespace=Gpu_System"], "--namespace", id="namespace"),
        pytest.param(
            ["--mps-image-pull-policy=Sometimes"], "--mps-image-pull-policy", id="pull-policy"
        ),
        pytest.param(["--mps-ready-timeout=0"], "--mps-ready-timeout", id="mps-ready-timeout"),
        pytest.param(
            ["--mps-image-pull-secret=Reg_Cred"], "--mps-image-pull-secret", id="pull-secret"
        ),
        pytest.param(["--preload-library=lib.so"], "--preload-library", id="preload-relative"),
        pytest.param(["--driver-root=driver"], "--driver-root", id="driver-root-relative"),
        pytest.param(["--dev-root=dev"], "--dev-root", id="dev-root-relative"),
        pytest.param(
            ["--gpus=fake:1xL4", "--driver-root-ctr-path=/d"],
            "--driver-root-ctr-path",
            id="driver-root-ctr-path-alone",
        ),
        pytest.param(["--driver-capabilities=compute,gpu"], "--driver-capabilities", id="caps"),
        pytest.param(["--driver-capabilities="], "--driver-capabilities", id="caps-empty"),
        pytest.param(["--sharing-strategy=mig"], "--sharing-strategy", id="strategy"),
        pytest.param(["--compat-shares=-1"], "--compat-shares", id="shares-negative"),
        pytest.param(["--compat-shares=two"], "--compat-shares", id="shares-word"),
        pytest.param(["--healthcheck-port=0"], "--healthcheck-port", id="health-port-zero"),
        pytest.param(["--metrics-port=65536"], "--metrics-port", id="metrics-port-too-big"),
        pytest.param(["--metrics-port=port"], "--metrics-port", id="metrics-port-word"),
        pytest.param(
            ["--metrics-port=8080", "--healthcheck-port=8080"],
            "--healthcheck-port and --metrics-port",
            id="same-ports",
        ),
        pytest.param(["--bind-address=localhost"], "--bind-address", id="bind-not-ip"),
        pytest.param(["--driver-name=GPU_Driver"], "--driver-name", id="driver-name"),
        pytest.param(["--log-format=xml"], "--log-format", id="log-format"),
        pytest.param(["--log-level=chatty"], "--log-level", id="log-level"),
    ],
)
def test_bad_flags_are_refused_naming_the_flag(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        settings.parse(argv, environ=POD_ENV)
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("usage: gpu-dra-kubeletplugin")
    assert message in error.splitlines()[-1]
