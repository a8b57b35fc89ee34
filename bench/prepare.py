"""Benchmark: NodePrepareResources / NodeUnprepareResources as the kubelet sees them.

Run ``.venv/bin/python bench/prepare.py`` from the repository root; one JSON object goes to stdout,
progress to stderr. It starts the local control plane (``e2e.harness``: etcd and a real
kube-apiserver on 127.0.0.1, built once into a cache), creates the claims through the API
(``ResourceClaim`` objects whose allocation is written through the ``status`` subresource, as the
scheduler writes it), and runs the plugin as a separate process (``bench/pluginprocess.py``),
which runs the real ``kubeletplugin.__main__.main`` with ``--kubeconfig``: flags, logging (JSON
to a log file), the fake GPU backend with its state file, start-up reconciliation, the slice
publisher, the real `serving.Servers` and `draservice` on unix sockets, each claim GET from the
API server. The client is a stub of the v1 protos over ``unix://``, so a latency here is gRPC +
the plugin's whole prepare, the claim GET included.

Kinds of claims (fake ``8xA100-40GB``): ``gpu`` is the whole ``gpu-6``; ``mig`` the dynamic MIG
slice ``gpu-7-mig-1g5gb-<n % 7>`` (the fake backend creates and destroys the instance); ``share``
a share of ``gpu-<n % 6>-shared`` (shareID and consumedCapacity; its GPU's MPS daemon is kept
running by a share held on each GPU); ``mps`` the whole ``gpu-6`` with an MPS config (a daemon of
its own started and stopped per claim). Each kind: prepare one claim, unprepare it, ``--calls``
times (p50/p90/p99/max of both, plugin CPU per cycle); then batches of 8 and 64 shares per call;
then ``--held`` shares held while whole GPUs and shares are measured again (``*_held``).

``--profile`` adds two more plugin runs of a shorter loop: one with timers around the prepare
phases, one under cProfile; their results go into the JSON under ``profile``. The timed run is
never instrumented. ``--tiny`` runs every part with a few calls (CI runs it: no figure is checked).
"""

# The script is run by path, so the repository root is put on sys.path before the project imports.
# ruff: noqa: E402

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import pathlib
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

REPO = pathlib.Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import grpc

from kubeletplugin import serving
from kubeletplugin.protos.dra.v1 import api_pb2 as v1
from kubeletplugin.protos.dra.v1 import api_pb2_grpc as v1_grpc

if TYPE_CHECKING:
    from e2e.harness import kube

DRIVER = "gpu.dra.dev"
NODE = "bench-node"
POD_UID = "bench-pod"
NAMESPACE = "bench"
GPUS = "fake:8xA100-40GB"
SHARED_GPUS = 6  # gpu-0 … gpu-5 carry the shares; gpu-6 is given whole, gpu-7 is sliced (MIG)
MIG_PLACEMENTS = 7  # 1g.5gb starts at 0 … 6 on an A100-40GB
TARGETS = {
    "prepare_p50_ms": 3,
    "prepare_p99_ms": 7,
    "unprepare_p50_ms": 1,
    "mig_prepare_p99_ms": 10,
    "share_prepare_p99_ms": 10,
    "held_over_empty_p50": 1.25,
    "cpu_ms_per_cycle": 2.5,
    "peak_rss_mb": 80,
}
RPC_TIMEOUT_S = 30.0
CLAIMS = f"/apis/resource.k8s.io/v1/namespaces/{NAMESPACE}/resourceclaims"
MPS_CONFIG = {
    "apiVersion": "gpu.dra.dev/v1alpha1",
    "kind": "GpuConfig",
    "sharing": {"strategy": "MPS", "mpsConfig": {"defaultActiveThreadPercentage": 50}},
}
_UID_NAMESPACE = uuid.UUID("0b6f3a52-3f1e-4d0c-9a57-6f9f2e1d9c11")


class BenchError(Exception):
    """The plugin answered something a correct plugin never would; the numbers are void."""


# -- the claims, created and allocated through the API server ----------------------------------


def _kind(name: str) -> tuple[str, int]:
    kind, _, number = name.rpartition("-")
    return kind, int(number)


def claim_spec(name: str) -> dict[str, Any]:
    # The harness is imported where the bench needs it (the client side only).
    from e2e.harness import objects  # noqa: PLC0415

    kind, _ = _kind(name)
    if kind == "share":
        request = objects.request("gpu", "shared.gpu.dra.dev", capacity={"memory": "1Gi"})
    elif kind == "mig":
        request = objects.request("gpu", "mig.gpu.dra.dev")
    else:
        request = objects.request("gpu", "gpu.dra.dev")
    return {"devices": {"requests": [request]}}


def allocation(name: str) -> dict[str, Any]:
    """The allocation the scheduler would have written for the claim `name`."""
    kind, n = _kind(name)
    result: dict[str, Any] = {"request": "gpu", "driver": DRIVER, "pool": NODE}
    config: list[dict[str, Any]] = []
    if kind == "share":
        result["device"] = f"gpu-{n % SHARED_GPUS}-shared"
        result["shareID"] = str(uuid.uuid5(_UID_NAMESPACE, f"share/{name}"))
        result["consumedCapacity"] = {"memory": "1Gi", "cores": "5"}
    elif kind in ("gpu", "mps"):
        result["device"] = f"gpu-{SHARED_GPUS}"
        if kind == "mps":
            opaque = {"driver": DRIVER, "parameters": MPS_CONFIG}
            config.append({"source": "FromClaim", "requests": ["gpu"], "opaque": opaque})
    elif kind == "mig":
        result["device"] = f"gpu-{SHARED_GPUS + 1}-mig-1g5gb-{n % MIG_PLACEMENTS}"
    else:
        raise BenchError(f"the bench knows no claim {name!r}")
    selector = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [NODE]}]}
    return {
        "devices": {"results": [result], "config": config},
        "nodeSelector": {"nodeSelectorTerms": [selector]},
    }


class Claims:
    """Claims created and allocated in the API server; their UIDs by name."""

    def __init__(self, api: kube.Kube) -> None:
        self.api = api
        self.uids: dict[str, str] = {}
        self._next: dict[str, int] = {}

    def take(self, kind: str, count: int = 1) -> list[str]:
        """`count` new claims of `kind`, allocated (never one that was prepared before)."""
        start = self._next.get(kind, 0)
        self._next[kind] = start + count
        names = [f"{kind}-{n}" for n in range(start, start + count)]
        for name in names:
            body = {
                "apiVersion": "resource.k8s.io/v1",
                "kind": "ResourceClaim",
                "metadata": {"name": name},
                "spec": claim_spec(name),
            }
            created = self.api.create(CLAIMS, body)
            created["status"] = {"allocation": allocation(name)}
            self.api.request("PUT", f"{CLAIMS}/{name}/status", created)
            self.uids[name] = created["metadata"]["uid"]
        return names

    def ref(self, name: str) -> Any:
        return v1.Claim(namespace=NAMESPACE, uid=self.uids[name], name=name)


# -- the client ------------------------------------------------------------------------------


class Plugin:
    """A plugin process serving on unix sockets in `workdir`; always stopped on exit."""

    def __init__(
        self,
        workdir: pathlib.Path,
        *,
        gpus: str,
        kubeconfig: pathlib.Path,
        extra: Sequence[str] = (),
        instrument: Sequence[str] = (),
    ) -> None:
        """`extra`: more flags of the plugin; `instrument`: flags of `pluginprocess`."""
        self.workdir = workdir
        self.socket = serving.dra_socket(workdir / "plugin", driver=DRIVER, pod_uid=POD_UID)
        self.log_path = workdir / "plugin.log"
        self.argv = [
            sys.executable,
            str(pathlib.Path(__file__).resolve().parent / "pluginprocess.py"),
            *instrument,
            "--",
            f"--driver-name={DRIVER}",
            f"--node-name={NODE}",
            f"--pod-uid={POD_UID}",
            f"--gpus={gpus}",
            f"--kubeconfig={kubeconfig}",
            f"--plugin-dir={workdir / 'plugin'}",
            f"--registry-dir={workdir / 'registry'}",
            f"--cdi-dir={workdir / 'cdi'}",
            "--sweep-interval=3600",
            "--resync-interval=3600",
            "--log-format=json",
            "--log-level=info",
            *extra,
        ]
        self.process: subprocess.Popen[bytes] | None = None
        self.channel: grpc.Channel | None = None
        self.stub: Any = None
        self.rss_after_start_mb = 0.0

    def __enter__(self) -> Plugin:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log_file:
            self.process = subprocess.Popen(  # the plugin inherits the log file's descriptor
                self.argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log_file
            )
        try:
            self._connect()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _connect(self) -> None:
        deadline = time.monotonic() + 60
        while not self.socket.exists():
            assert self.process is not None
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"the plugin did not start; see its log:\n{self._log_tail()}")
            time.sleep(0.05)
        self.channel = grpc.insecure_channel(f"unix://{self.socket}")
        grpc.channel_ready_future(self.channel).result(timeout=30)
        self.stub = v1_grpc.DRAPluginStub(self.channel)
        self.rss_after_start_mb = self.memory_mb("VmRSS")

    def cpu_seconds(self) -> float:
        """User + system CPU the plugin process has used so far."""
        assert self.process is not None
        fields = pathlib.Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2]
        utime, stime = fields.split()[11:13]
        return (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")

    def memory_mb(self, field: str) -> float:
        assert self.process is not None
        status = pathlib.Path(f"/proc/{self.process.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
        raise BenchError(f"no {field} in /proc/{self.process.pid}/status")

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.channel is not None:
            self.channel.close()
        process = self.process
        if process is None:
            return
        try:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
        finally:
            if process.stdin is not None:
                process.stdin.close()

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text()[-3000:]
        except OSError:
            return "(no log)"


def prepare(stub: Any, claims: Claims, names: Sequence[str]) -> float:
    """Prepare `names` in one call; the call's latency in ms."""
    request = v1.NodePrepareResourcesRequest(claims=[claims.ref(name) for name in names])
    start = time.perf_counter()
    response = stub.NodePrepareResources(request, timeout=RPC_TIMEOUT_S)
    elapsed = 1000 * (time.perf_counter() - start)
    for name in names:
        answer = response.claims[claims.uids[name]]
        if answer.error or not answer.devices:
            raise BenchError(f"prepare of {name} failed: {answer.error or 'no devices'}")
    return elapsed


def unprepare(stub: Any, claims: Claims, names: Sequence[str]) -> float:
    request = v1.NodeUnprepareResourcesRequest(claims=[claims.ref(name) for name in names])
    start = time.perf_counter()
    response = stub.NodeUnprepareResources(request, timeout=RPC_TIMEOUT_S)
    elapsed = 1000 * (time.perf_counter() - start)
    for name in names:
        uid = claims.uids[name]
        if uid not in response.claims or response.claims[uid].error:
            answer = response.claims[uid].error if uid in response.claims else "no answer"
            raise BenchError(f"unprepare of {name} failed: {answer}")
    return elapsed


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)], 3)


def spread(values: Sequence[float]) -> dict[str, float]:
    return {f"p{p}": percentile(values, p) for p in (50, 90, 99)} | {"max": percentile(values, 100)}


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def cycles(
    plugin: Plugin, claims: Claims, kind: str, count: int, *, batch: int = 1
) -> dict[str, Any]:
    """`count` times: prepare `batch` new claims of `kind` in one call, then unprepare them."""
    groups = [claims.take(kind, batch) for _ in range(count)]  # created before the clock runs
    prepared, unprepared = [], []
    cpu = plugin.cpu_seconds()
    for names in groups:
        prepared.append(prepare(plugin.stub, claims, names))
        unprepared.append(unprepare(plugin.stub, claims, names))
    cpu = plugin.cpu_seconds() - cpu
    return {
        "calls": count,
        "claims_per_call": batch,
        "prepare_ms": spread(prepared),
        "unprepare_ms": spread(unprepared),
        "plugin_cpu_ms_per_cycle": round(1000 * cpu / count, 2),
        "claims_per_s": round(batch * count / ((sum(prepared) + sum(unprepared)) / 2000), 1),
    }


def settle() -> None:
    """Write back what the node wrote so far (holding a thousand claims writes three thousand
    files) before a measured part: the figures are of a node holding its claims, not of the
    kernel flushing the files of the last second's prepares beside it."""
    os.sync()


def hold(plugin: Plugin, claims: Claims, count: int) -> list[str]:
    """`count` new shares prepared (64 per call) and left prepared."""
    names = claims.take("share", count)
    for start in range(0, count, 64):
        prepare(plugin.stub, claims, names[start : start + 64])
    return names


def measure(plugin: Plugin, claims: Claims, args: argparse.Namespace) -> dict[str, Any]:
    progress(f"warm-up: {args.warmup} cycles of each kind; one share held on each shared GPU")
    daemons = hold(plugin, claims, SHARED_GPUS)  # each shared GPU's MPS daemon keeps running
    for kind in ("gpu", "mig", "share"):
        cycles(plugin, claims, kind, args.warmup)
    settle()
    kinds = {}
    for kind, count in (
        ("gpu", args.calls),
        ("mig", args.calls),
        ("share", args.calls),
        ("mps", args.mps_calls),
    ):
        progress(f"{kind}: {count} prepare/unprepare cycles of one claim")
        kinds[kind] = cycles(plugin, claims, kind, count)
    batches = {}
    for size in (8, 64):
        progress(f"batches: {args.batches} calls of {size} shares")
        batches[f"share_x{size}"] = cycles(plugin, claims, "share", args.batches, batch=size)
    progress(f"held: {args.held} shares prepared and held")
    held = hold(plugin, claims, args.held)
    settle()
    checkpoint_kb = _checkpoint_kb(plugin.workdir / "plugin")
    with_held = {}
    for kind in ("gpu", "share"):
        progress(f"{kind}: {args.calls} cycles with {args.held + SHARED_GPUS} claims held")
        with_held[kind] = cycles(plugin, claims, kind, args.calls)
    unprepare(plugin.stub, claims, held + daemons)
    gpu, share = kinds["gpu"], kinds["share"]
    return {
        "prepare_p50_ms": gpu["prepare_ms"]["p50"],
        "prepare_p99_ms": gpu["prepare_ms"]["p99"],
        "unprepare_p50_ms": gpu["unprepare_ms"]["p50"],
        "mig_prepare_p99_ms": kinds["mig"]["prepare_ms"]["p99"],
        "share_prepare_p50_ms": share["prepare_ms"]["p50"],
        "share_prepare_p99_ms": share["prepare_ms"]["p99"],
        "prepare_p50_ms_1000_held": with_held["gpu"]["prepare_ms"]["p50"],
        "unprepare_p50_ms_1000_held": with_held["gpu"]["unprepare_ms"]["p50"],
        "share_prepare_p50_ms_1000_held": with_held["share"]["prepare_ms"]["p50"],
        "held_claims": args.held + SHARED_GPUS,
        "plugin_cpu_ms_per_cycle": gpu["plugin_cpu_ms_per_cycle"],
        "kinds": kinds,
        "batches": batches,
        "with_held": with_held | {"checkpoint_kb": round(checkpoint_kb, 1)},
    }


def measure_layout(plugin: Plugin, claims: Claims, args: argparse.Namespace) -> dict[str, Any]:
    """Whole-GPU cycles on an empty node and with `args.held` claims held (another layout)."""
    daemons = hold(plugin, claims, SHARED_GPUS)
    cycles(plugin, claims, "gpu", args.warmup)
    settle()
    progress(f"gpu: {args.calls} cycles, checkpoint layout {args.other_layout}")
    empty = cycles(plugin, claims, "gpu", args.calls)
    held = hold(plugin, claims, args.held)
    settle()
    progress(f"gpu: {args.calls} cycles with {args.held + SHARED_GPUS} claims held")
    full = cycles(plugin, claims, "gpu", args.calls)
    checkpoint_kb = _checkpoint_kb(plugin.workdir / "plugin")
    unprepare(plugin.stub, claims, held + daemons)
    return {"empty": empty, "held": full, "checkpoint_kb": round(checkpoint_kb, 1)}


def _checkpoint_kb(plugin_dir: pathlib.Path) -> float:
    """The checkpoint's size on disk, in either layout."""
    files = [plugin_dir / "checkpoint.json", *(plugin_dir / "checkpoint.d").glob("*.json")]
    return sum(path.stat().st_size for path in files if path.exists()) / 1024


def profile_run(
    workdir: pathlib.Path, claims: Claims, args: argparse.Namespace, flag: str
) -> dict[str, Any]:
    """A shorter loop against a plugin run with `flag` (``--phases`` or ``--cprofile``)."""
    out = workdir / "profile.json"
    instrument = [flag, f"--profile-out={out}", f"--top={args.top}"]
    with Plugin(
        workdir, gpus=args.gpus, kubeconfig=args.kubeconfig, instrument=instrument
    ) as plugin:
        held = hold(plugin, claims, SHARED_GPUS)
        for kind in ("gpu", "mig", "share"):
            cycles(plugin, claims, kind, args.profile_calls)
        cycles(plugin, claims, "share", 1, batch=64)
        unprepare(plugin.stub, claims, held)
    report: dict[str, Any] = json.loads(out.read_text())
    return report


def bench(args: argparse.Namespace) -> int:
    started = time.monotonic()
    root = pathlib.Path(tempfile.mkdtemp(prefix="gpu-dra-bench-", dir=args.dir))
    signal.signal(signal.SIGALRM, _out_of_time)
    signal.signal(signal.SIGTERM, _out_of_time)  # so that the finally below still cleans up
    signal.alarm(args.time_limit)
    try:
        progress("control plane: building (cached) and starting etcd and kube-apiserver")
        from e2e.harness import binaries, controlplane, objects  # noqa: PLC0415 (see claim_spec)

        plane = controlplane.ControlPlane(bin_dir=binaries.ensure_built(), work_dir=root / "api")
        with plane:
            api = plane.client()
            args.kubeconfig = plane.kubeconfig
            objects.apply_device_classes(api)
            objects.create_namespace(api, NAMESPACE)
            objects.create_node(api, NODE)
            fsync_ms = _fsync_latency(root)
            progress(f"plugin process on {args.gpus}, work dir {root}")
            claims = Claims(plane.client())
            layout = [f"--checkpoint-layout={args.checkpoint_layout}"]
            with Plugin(
                root / "timed", gpus=args.gpus, kubeconfig=plane.kubeconfig, extra=layout
            ) as plugin:
                result = measure(plugin, claims, args)
                result["peak_rss_mb"] = round(plugin.memory_mb("VmHWM"), 1)
                result["rss_after_start_mb"] = round(plugin.rss_after_start_mb, 1)
                log_lines = len(plugin.log_path.read_bytes().splitlines())
            result["checkpoint_layout"] = args.checkpoint_layout
            other = [f"--checkpoint-layout={args.other_layout}"]
            with Plugin(
                root / "other-layout", gpus=args.gpus, kubeconfig=plane.kubeconfig, extra=other
            ) as plugin:
                compared = measure_layout(plugin, claims, args)
            suffix = args.other_layout
            result |= {
                f"prepare_p50_ms_{suffix}": compared["empty"]["prepare_ms"]["p50"],
                f"unprepare_p50_ms_{suffix}": compared["empty"]["unprepare_ms"]["p50"],
                f"prepare_p50_ms_1000_held_{suffix}": compared["held"]["prepare_ms"]["p50"],
                f"unprepare_p50_ms_1000_held_{suffix}": compared["held"]["unprepare_ms"]["p50"],
                f"checkpoint_layout_{suffix}": compared,
            }
            if args.profile:
                progress("profile: phase timers")
                phases = profile_run(root / "phases", claims, args, "--phases")
                progress("profile: cProfile")
                cprofiled = profile_run(root / "cprofile", claims, args, "--cprofile")
                result["profile"] = {"phases": phases, "cprofile": cprofiled}
    finally:
        signal.alarm(0)
        shutil.rmtree(root, ignore_errors=True)
    calls = sum(part["calls"] * 2 for part in result["kinds"].values())
    result |= {
        "plugin_log_lines_per_single_call": round(log_lines / max(1, calls), 1),
        "gpus": args.gpus,
        "python": platform.python_version(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "work_dir_fs": _fs_type(pathlib.Path(args.dir or tempfile.gettempdir())),
        "work_dir_fsync_p50_ms": fsync_ms,
        "targets": TARGETS,
        "seconds": round(time.monotonic() - started, 1),
        "notes": [
            "Latency is the client's: gRPC over a unix socket + the plugin's whole call, "
            "including the claim GET from the local kube-apiserver (same machine, TLS).",
            "Claims are real ResourceClaims, allocated through the status subresource.",
            "Real plugin code path: kubeletplugin.__main__.main with --kubeconfig, "
            "serving.Servers, draservice, preparing with the checkpoint, CDI and quota files "
            "written atomically (not fsynced: see store.NodeCheckpoint), logging as JSON to a "
            "file at --log-level info.",
            "checkpoint_layout: the layout of the main run; *_<other layout>: whole GPUs "
            "measured again, empty and with held_claims held, by a plugin writing the other.",
            "Fake GPUs: the fake backend's JSON state file stands in for NVML; the fake MPS "
            "control daemon for nvidia-cuda-mps-control.",
            "prepare_p50_ms, prepare_p99_ms, unprepare_p50_ms: whole GPU, "
            f"{SHARED_GPUS} shares held (one per shared GPU, keeping its MPS daemon running).",
            "*_1000_held: the same with held_claims claims prepared on the node.",
            "Before each measured part the bench calls sync(2): what the node wrote before "
            "(a thousand claims' files) is on disk, not being written back beside the part.",
            "plugin_cpu_ms_per_cycle: user+system CPU of the plugin process per prepare+"
            "unprepare (from /proc, clock-tick resolution).",
            "peak_rss_mb is VmHWM of the plugin process.",
        ],
    }
    print(json.dumps(result, indent=2))
    return 0


def _out_of_time(signum: int, frame: FrameType | None) -> None:
    if signum == signal.SIGALRM:
        raise BenchError("the bench ran past --time-limit")
    raise BenchError(f"stopped by {signal.Signals(signum).name}")


def _fsync_latency(directory: pathlib.Path, *, rounds: int = 50) -> float:
    """p50 of writing 4 KiB and fsyncing it in `directory`: how dear a durable write is here."""
    path, times = directory / "fsync-probe", []
    with path.open("wb") as file:
        for _ in range(rounds):
            file.write(b"x" * 4096)
            file.flush()
            start = time.perf_counter()
            os.fsync(file.fileno())
            times.append(1000 * (time.perf_counter() - start))
    path.unlink()
    return percentile(times, 50)


def _fs_type(path: pathlib.Path) -> str:
    best, kind = "", "unknown"
    with contextlib.suppress(OSError):
        for line in pathlib.Path("/proc/mounts").read_text().splitlines():
            fields = line.split()
            mount = fields[1]
            inside = str(path.resolve()).startswith(mount.rstrip("/") + "/") or mount == "/"
            if inside and len(mount) > len(best):
                best, kind = mount, f"{fields[2]} ({mount})"
    return kind


def _positive(text: str) -> int:
    """A count of at least 1 (percentiles of no calls do not exist)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: at least 1")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--gpus", default=GPUS)
    add("--calls", type=_positive, default=200, help="prepare/unprepare cycles per kind")
    add("--mps-calls", type=_positive, default=20, help="cycles of claims with their own daemon")
    add("--batches", type=_positive, default=5, help="calls of 8 and of 64 claims")
    add("--held", type=int, default=1000, help="claims held while measuring again")
    add("--warmup", type=int, default=20, help="cycles of each kind first")
    add(
        "--checkpoint-layout",
        choices=["v1", "v2"],
        default="v1",
        help="the plugin's checkpoint layout in the main run (the other is measured too)",
    )
    add("--tiny", action="store_true", help="a few calls of each part (CI)")
    add("--dir", help="where the temporary work dir goes (default: $TMPDIR)")
    add("--time-limit", type=int, default=900, help="seconds before the bench gives up")
    add("--profile", action="store_true", help="add phase timings and cProfile (2 more runs)")
    add("--profile-calls", type=int, default=100)
    add("--top", type=int, default=15, help="cProfile rows per operation")
    args = parser.parse_args(argv)
    args.other_layout = "v2" if args.checkpoint_layout == "v1" else "v1"
    if args.tiny:
        args.calls, args.mps_calls, args.batches, args.held, args.warmup = 3, 2, 1, 8, 1
        args.profile_calls = 3
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return bench(args)
    except BenchError as exc:
        progress(f"failed: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
