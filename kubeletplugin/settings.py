"""The kubelet plugin's settings: its flags, checked and parsed once into a frozen `Settings`.

Every check happens in `parse`; a bad value is refused the argparse way (usage, the flag named,
exit code 2) before anything starts. Defaults that the DaemonSet sets come from the environment:
``NODE_NAME`` (required, if ``--node-name`` is not given), ``POD_UID`` (per-pod socket names for
rolling updates) and ``POD_NAMESPACE`` (of the MPS daemon Deployments). Defaults that follow
from other flags are resolved here too (the plugin dir from the driver name, the hook's path
from the plugin dir, the driver root from ``--gpus``), so nothing downstream decides them again.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import os
import pathlib
from collections.abc import Mapping, Sequence

from dra_driver import flags
from dra_driver.backends import errors as backend_errors
from dra_driver.backends.fake import specs
from dra_driver.checkpoint import store
from dra_driver.driverroot import discovery, hooks
from dra_driver.isolation import mps
from dra_driver.slices import settings as slice_settings
from kubeletplugin import healthwatching, serving

DEFAULT_DRIVER = "gpu.dra.dev"
KUBELET_PLUGINS = pathlib.Path("/var/lib/kubelet/plugins")


class MpsRunner(enum.Enum):
    """Where MPS control daemons run."""

    LOCAL = "local"
    """A child process of the plugin, in its container (tests, fake GPUs)."""
    KUBERNETES = "kubernetes"
    """One Deployment pinned to the node per daemon (survives plugin restarts)."""


@dataclasses.dataclass(frozen=True)
class Node:
    name: str
    pod_uid: str
    """The plugin pod's UID, in its socket names ("": fixed names)."""
    gpus: str
    """``nvml`` or ``fake:<spec>``."""
    plugin_dir: pathlib.Path
    """Checkpoint, lock, per-claim state; ``/var/lib/kubelet/plugins/<driver>`` by default."""
    registry_dir: pathlib.Path
    """Where the kubelet's plugin watcher looks for registration sockets."""
    cdi_dir: pathlib.Path
    checkpoint_layout: store.Layout = store.Layout.DIRECTORY
    """How the checkpoint is written (read in either layout): ``v2``, a file per claim (held
    back while a plugin before 0.2.0 may serve the node beside this one), or ``v1``, one file,
    which every release reads."""

    @property
    def real_gpus(self) -> bool:
        return self.gpus == "nvml"


@dataclasses.dataclass(frozen=True)
class Publishing:
    mode: slice_settings.Mode | None
    """Forced; None: full if the API server has partitionable devices and consumable capacity."""
    dynamic_mig: bool
    sharing_strategy: slice_settings.SharingStrategy
    compat_shares: int
    """Shares per GPU in the compatibility mode."""
    resync_interval: float
    """Seconds between slice resyncs."""


@dataclasses.dataclass(frozen=True)
class Mps:
    runner: MpsRunner
    image: str
    """Image of the MPS daemon pods (`MpsRunner.KUBERNETES` only)."""
    namespace: str
    """Of the MPS daemon Deployments."""
    pull_policy: str = "IfNotPresent"
    pull_secrets: tuple[str, ...] = ()
    ready_timeout: float = mps.READY_TIMEOUT
    """Seconds a new daemon has to answer (its pod to start, with the `KUBERNETES` runner)."""
    """Secrets in `namespace` for pulling `image` (the chart passes its ``imagePullSecrets``)."""


@dataclasses.dataclass(frozen=True)
class DriverFiles:
    """What containers get of the NVIDIA driver, and where the plugin finds it."""

    root: str | None
    """Host path of the driver installation; None: specs get no driver files (fake GPUs)."""
    root_ctr_path: str | None
    """Where this process sees `root` (None: the same)."""
    dev_root: str | None
    """Host path under which ``dev/nvidia*`` lie; None: the driver root if it has them, else /."""
    dev_root_ctr_path: str | None
    proc_root: pathlib.Path
    capabilities: tuple[str, ...]
    hook: pathlib.Path
    """Host path of ``nvidia-cdi-hook``, run by the container runtime."""
    hook_source: pathlib.Path | None
    """Install the hook from this file at start (None: it is there already)."""
    preload_library: str | None
    """Host path of ``libgpuquota.so`` for claims with shares; None: quotas not enforced."""


@dataclasses.dataclass(frozen=True)
class Endpoints:
    health_port: int | None
    """grpc.health.v1 on TCP; None: off."""
    metrics_port: int | None
    """Prometheus metrics; None: off."""
    bind_address: str
    """The address of both ports."""


@dataclasses.dataclass(frozen=True)
class Settings:
    driver_name: str
    kubeconfig: str | None
    """None: the in-cluster configuration."""
    node: Node
    publishing: Publishing
    mps: Mps
    driver_files: DriverFiles
    endpoints: Endpoints
    sweep_interval: float
    """Seconds between sweeps for claims deleted behind the kubelet's back."""
    driver_check_interval: float
    """Seconds between checks of the driver root."""
    logging: flags.Logging
    health: healthwatching.Settings = dataclasses.field(default_factory=healthwatching.Settings)

    @property
    def dra_socket(self) -> pathlib.Path:
        """This instance's DRA socket, named after its pod (`serving.dra_socket`)."""
        return serving.dra_socket(
            self.node.plugin_dir, driver=self.driver_name, pod_uid=self.node.pod_uid
        )

    """GPU health watching (``--no-health-watch``, ``--health-ignore-xids``)."""


def parse(
    argv: Sequence[str] | None = None, *, environ: Mapping[str, str] | None = None
) -> Settings:
    """The settings of `argv` (default: ``sys.argv[1:]``) and `environ` (default: ``os.environ``)."""
    env = os.environ if environ is None else environ
    parser = _parser(env)
    args = parser.parse_args(argv)
    if not args.node_name:
        parser.error("--node-name (or $NODE_NAME) is required")
    if args.healthcheck_port is not None and args.healthcheck_port == args.metrics_port:
        parser.error("--healthcheck-port and --metrics-port must differ")
    if args.mps_runner == MpsRunner.KUBERNETES.value and not args.mps_image:
        parser.error("--mps-runner kubernetes needs --mps-image")
    if args.driver_root_ctr_path is not None and args.driver_root is None and args.gpus != "nvml":
        parser.error("--driver-root-ctr-path needs --driver-root")
    plugin_dir = args.plugin_dir or KUBELET_PLUGINS / args.driver_name
    driver_root = args.driver_root or ("/" if args.gpus == "nvml" else None)
    return Settings(
        driver_name=args.driver_name,
        kubeconfig=args.kubeconfig,
        node=Node(
            name=args.node_name,
            pod_uid=args.pod_uid,
            gpus=args.gpus,
            plugin_dir=plugin_dir,
            registry_dir=args.registry_dir,
            cdi_dir=args.cdi_dir,
            checkpoint_layout=store.Layout(args.checkpoint_layout),
        ),
        publishing=Publishing(
            mode=None if args.mode == "auto" else slice_settings.Mode(args.mode),
            dynamic_mig=not args.no_dynamic_mig,
            sharing_strategy=slice_settings.SharingStrategy(args.sharing_strategy),
            compat_shares=args.compat_shares,
            resync_interval=args.resync_interval,
        ),
        mps=Mps(
            runner=MpsRunner(args.mps_runner),
            image=args.mps_image,
            namespace=args.namespace,
            pull_policy=args.mps_image_pull_policy,
            pull_secrets=tuple(args.mps_image_pull_secret),
            ready_timeout=args.mps_ready_timeout,
        ),
        driver_files=DriverFiles(
            root=driver_root,
            root_ctr_path=args.driver_root_ctr_path,
            dev_root=args.dev_root,
            dev_root_ctr_path=args.dev_root_ctr_path,
            proc_root=args.proc_root,
            capabilities=args.driver_capabilities,
            hook=args.nvidia_cdi_hook or plugin_dir / "bin" / hooks.NAME,
            hook_source=args.nvidia_cdi_hook_source,
            preload_library=args.preload_library,
        ),
        endpoints=Endpoints(
            health_port=args.healthcheck_port,
            metrics_port=args.metrics_port,
            bind_address=args.bind_address,
        ),
        sweep_interval=args.sweep_interval,
        driver_check_interval=args.driver_check_interval,
        logging=flags.logging_of(args),
        health=healthwatching.settings_of(args),
    )


def _gpus(text: str) -> str:
    """``nvml``, or ``fake:<spec>`` with a spec `specs.parse` accepts."""
    if text == "nvml":
        return text
    if not text.startswith("fake:"):
        raise argparse.ArgumentTypeError(
            f"must be 'nvml' or 'fake:<spec>', e.g. fake:8xA100-40GB, not {text!r}"
        )
    try:
        specs.parse(text.removeprefix("fake:"))
    except backend_errors.BackendUnavailableError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _capabilities(text: str) -> tuple[str, ...]:
    wanted = tuple(c for c in text.split(",") if c)
    unknown = sorted(set(wanted) - {*discovery.CAPABILITIES, "all"})
    if unknown or not wanted:
        raise argparse.ArgumentTypeError(
            f"must be some of {','.join(discovery.CAPABILITIES)}, or all; not {text!r}"
        )
    return wanted


def _parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpu-dra-kubeletplugin", description="The driver's kubelet plugin (one per node)."
    )
    add = parser.add_argument
    flags.add_common(parser, default_driver=DEFAULT_DRIVER)
    healthwatching.add_flags(parser)
    add("--node-name", default=env.get("NODE_NAME", ""), help="default: $NODE_NAME")
    add("--pod-uid", default=env.get("POD_UID", ""), help="for per-pod socket names ($POD_UID)")
    add("--gpus", type=_gpus, default="nvml", help="'nvml' or 'fake:<spec>', e.g. fake:8xA100-40GB")
    add("--plugin-dir", type=pathlib.Path, help="default: /var/lib/kubelet/plugins/<driver>")
    add(
        "--registry-dir",
        type=pathlib.Path,
        default=pathlib.Path("/var/lib/kubelet/plugins_registry"),
    )
    add("--cdi-dir", type=pathlib.Path, default=pathlib.Path("/var/run/cdi"))
    add(
        "--checkpoint-layout",
        choices=[layout.value for layout in store.Layout],
        default=store.Layout.DIRECTORY.value,
        help="v2: a file per claim under checkpoint.d (flat cost as claims accumulate; "
        "releases before 0.2.0 cannot read it: held back while one serves the node); "
        "v1: checkpoint.json (every release reads it)",
    )
    add(
        "--mode",
        choices=["auto", *(m.value for m in slice_settings.Mode)],
        default="auto",
        help="auto: full if the API server has partitionable devices and consumable capacity",
    )
    add("--resync-interval", type=flags.seconds, default=60.0, help="seconds between resyncs")
    add(
        "--mps-runner",
        choices=[r.value for r in MpsRunner],
        default=MpsRunner.LOCAL.value,
        help="where MPS daemons run: in the plugin's container, or one pinned Deployment each",
    )
    add("--mps-image", default="", help="image of the MPS daemon pods (--mps-runner kubernetes)")
    add(
        "--mps-ready-timeout",
        type=flags.seconds,
        default=mps.READY_TIMEOUT,
        help="seconds a new MPS daemon has to answer (its pod to start)",
    )
    add(
        "--mps-image-pull-policy",
        choices=["Always", "IfNotPresent", "Never"],
        default="IfNotPresent",
        help="of the MPS daemon pods",
    )
    add(
        "--mps-image-pull-secret",
        type=flags.subdomain,
        action="append",
        default=[],
        metavar="NAME",
        help="a Secret of --namespace for pulling --mps-image (repeat for several)",
    )
    add(
        "--namespace",
        type=flags.label,
        default=env.get("POD_NAMESPACE") or "default",
        help="of the MPS daemon pods (default: $POD_NAMESPACE, else 'default')",
    )
    add(
        "--preload-library",
        type=flags.absolute,
        help="host path of libgpuquota.so, injected into containers of claims with shares "
        "(default: none; the quota config is then written but not enforced)",
    )
    add(
        "--driver-root",
        type=flags.absolute,
        help="host path of the NVIDIA driver installation: / on most nodes, /run/nvidia/driver "
        "under the GPU operator (default: / with --gpus nvml; none with fake GPUs: their specs "
        "then get no driver files)",
    )
    add("--driver-root-ctr-path", help="where this process sees --driver-root (default: the same)")
    add(
        "--dev-root",
        type=flags.absolute,
        help="host path under which dev/nvidia* lie (default: the driver root if it has "
        "dev/nvidiactl, else /)",
    )
    add("--dev-root-ctr-path", help="where this process sees --dev-root (default: the same)")
    add("--proc-root", type=pathlib.Path, default=pathlib.Path("/proc"), help="the driver's proc")
    add(
        "--driver-capabilities",
        type=_capabilities,
        default=discovery.DEFAULT_CAPABILITIES,
        help=f"driver files containers get: some of {','.join(discovery.CAPABILITIES)}, or all",
    )
    add(
        "--nvidia-cdi-hook",
        type=pathlib.Path,
        help="host path of nvidia-cdi-hook, run by the container runtime "
        "(default: <plugin dir>/bin/nvidia-cdi-hook)",
    )
    add(
        "--nvidia-cdi-hook-source",
        type=pathlib.Path,
        help="install nvidia-cdi-hook from this file (the image's) to --nvidia-cdi-hook at start",
    )
    add("--driver-check-interval", type=flags.seconds, default=30.0, help="seconds between checks")
    add("--no-dynamic-mig", action="store_true")
    add(
        "--sharing-strategy",
        choices=[s.value for s in slice_settings.SharingStrategy],
        default=slice_settings.SharingStrategy.MPS.value,
    )
    add("--compat-shares", type=flags.count, default=0, help="shares per GPU in compat mode")
    add("--healthcheck-port", type=flags.port_or_off, default=None, help="grpc.health.v1; -1: off")
    add("--metrics-port", type=flags.port_or_off, default=None, help="Prometheus metrics; -1: off")
    add("--bind-address", type=flags.address, default="127.0.0.1", help="of the TCP ports")
    add("--sweep-interval", type=flags.seconds, default=600.0, help="seconds between sweeps")
    return parser
