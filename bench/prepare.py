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

``--peer`` runs the upstream DRA example driver's kubelet plugin (``bench/peer.py``, built once
by ``hack/build-example-driver.sh``) beside ours against the same kube-apiserver, on its own node,
and cycles its whole-GPU claims (created and allocated as ours are, asked for through the same v1
stub) in turns with ours: blocks of ``--peer-block`` cycles, alternating, so that the machine's
noise falls on both alike (absolute figures from this noisy machine compare only within a run).
The JSON gets the peer's p50/p99 of both calls, CPU per cycle and peak RSS under ``peer``, and
``ours_over_peer_prepare_p50``, ``ours_over_peer_unprepare_p50``, ``ours_over_peer_cpu`` and
``ours_over_peer_peak_rss``; ours (``prepare_p50_ms`` …) then come from the same interleaved run.

``--profile`` adds two more plugin runs of a shorter loop: one with timers around the prepare
phases, one under cProfile; their results go into the JSON under ``profile``. The timed run is
never instrumented. ``--tiny`` runs every part with a few calls (CI runs it with ``--profile
--peer``: no figure is checked).
"""

# The script is run by path, so the repository root is put on sys.path before the project imports.
# ruff: noqa: E402

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
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
import peer  # bench/peer.py: bench/ is sys.path[0], the script being run by path

from kubeletplugin import serving
from kubeletplugin.protos.dra.v1 import api_pb2 as v1
from kubeletplugin.protos.dra.v1 import api_pb2_grpc as v1_grpc

if TYPE_CHECKING:
    from e2e.harness import kube

DRIVER = "gpu.dra.dev"
NODE = "bench-node"
LONE_NODE = "bench-node-empty"
"""A second node of ours, holding nothing: the empty side of `held_over_empty`."""
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
_PR_SET_PDEATHSIG = 1
CLAIMS = f"/apis/resource.k8s.io/v1/namespaces/{NAMESPACE}/resourceclaims"
MPS_CONFIG = {
    "apiVersion": "gpu.dra.dev/v1alpha1",
    "kind": "GpuConfig",
    "sharing": {"strategy": "MPS", "mpsConfig": {"defaultActiveThreadPercentage": 50}},
}
PEER_NOTES = [
    "peer: the upstream DRA example driver's kubelet plugin (bench/peer.py), run beside ours "
    "against the same kube-apiserver on its own node; whole-GPU claims of both, created and "
    "allocated alike, cycled in alternating blocks of --peer-block cycles (who goes first "
    "alternates) so that the machine's noise falls on both; the same v1 gRPC client.",
    "peer: its client-side API rate limit is lifted (--kube-api-qps/--kube-api-burst; client-go's "
    "5/s would throttle the claim GETs), ours has none; it logs as its chart runs it (klog text, "
    "verbosity 0) to a file; its checkpoint is fsynced per call, ours is not.",
    "peer.peak_rss_mb: VmHWM of the peer, which only ran whole-GPU cycles (ours also held "
    "held_claims claims); ours_over_peer_*: ours over the peer's from the interleaved run "
    "(null where the peer's figure is 0).",
]
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
    if kind == "peer":
        request = objects.request("gpu", peer.DRIVER)
    elif kind == "share":
        request = objects.request("gpu", "shared.gpu.dra.dev", capacity={"memory": "1Gi"})
    elif kind == "mig":
        request = objects.request("gpu", "mig.gpu.dra.dev")
    else:
        request = objects.request("gpu", "gpu.dra.dev")
    return {"devices": {"requests": [request]}}


def allocation(name: str) -> dict[str, Any]:
    """The allocation the scheduler would have written for the claim `name`."""
    kind, n = _kind(name)
    if kind == "peer":
        return peer.allocation()
    node = LONE_NODE if kind == "lone" else NODE
    result: dict[str, Any] = {"request": "gpu", "driver": DRIVER, "pool": node}
    config: list[dict[str, Any]] = []
    if kind == "share":
        result["device"] = f"gpu-{n % SHARED_GPUS}-shared"
        result["shareID"] = str(uuid.uuid5(_UID_NAMESPACE, f"share/{name}"))
        result["consumedCapacity"] = {"memory": "1Gi", "cores": "5"}
    elif kind in ("gpu", "mps", "lone"):
        result["device"] = f"gpu-{SHARED_GPUS}"
        if kind == "mps":
            opaque = {"driver": DRIVER, "parameters": MPS_CONFIG}
            config.append({"source": "FromClaim", "requests": ["gpu"], "opaque": opaque})
    elif kind == "mig":
        result["device"] = f"gpu-{SHARED_GPUS + 1}-mig-1g5gb-{n % MIG_PLACEMENTS}"
    else:
        raise BenchError(f"the bench knows no claim {name!r}")
    selector = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
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
    """A kubelet plugin process serving the DRA API on a unix socket, its files in `workdir`;
    always stopped on exit. Ours stops when its stdin closes (``bench/pluginprocess.py``); with
    `die_with_bench` the kernel kills it when the bench dies (the peer, which reads no stdin)."""

    def __init__(
        self,
        workdir: pathlib.Path,
        argv: Sequence[str],
        *,
        socket: pathlib.Path,
        die_with_bench: bool = False,
    ) -> None:
        self.workdir = workdir
        self.argv = list(argv)
        self.socket = socket
        self.log_path = workdir / "plugin.log"
        self.die_with_bench = die_with_bench
        self.process: subprocess.Popen[bytes] | None = None
        self.channel: grpc.Channel | None = None
        self.stub: Any = None
        self.rss_after_start_mb = 0.0

    def __enter__(self) -> Plugin:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log_file:
            self.process = subprocess.Popen(  # the plugin inherits the log file's descriptor
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=log_file,
                # Only the peer, started before the bench has threads (see timed_run).
                preexec_fn=_die_with_parent if self.die_with_bench else None,  # noqa: PLW1509
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
        try:
            grpc.channel_ready_future(self.channel).result(timeout=30)
        except grpc.FutureTimeoutError:
            raise BenchError(
                f"the plugin does not answer; see its log:\n{self._log_tail()}"
            ) from None
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


def ours(
    workdir: pathlib.Path,
    *,
    gpus: str,
    kubeconfig: pathlib.Path,
    extra: Sequence[str] = (),
    instrument: Sequence[str] = (),
    node: str = NODE,
) -> Plugin:
    """Our plugin on `node`; `extra`: more flags of the plugin; `instrument`: flags of
    `pluginprocess`."""
    argv = [
        sys.executable,
        str(pathlib.Path(__file__).resolve().parent / "pluginprocess.py"),
        *instrument,
        "--",
        f"--driver-name={DRIVER}",
        f"--node-name={node}",
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
    socket = serving.dra_socket(workdir / "plugin", driver=DRIVER, pod_uid=POD_UID)
    return Plugin(workdir, argv, socket=socket)


def the_peer(workdir: pathlib.Path, *, binary: pathlib.Path, kubeconfig: pathlib.Path) -> Plugin:
    """The upstream example driver's kubelet plugin (``bench/peer.py``)."""
    argv = peer.argv(binary, workdir, kubeconfig=kubeconfig)
    (workdir / "registry").mkdir(parents=True)  # the kubelet's, which the helper expects to exist
    return Plugin(workdir, argv, socket=peer.socket(workdir), die_with_bench=True)


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the bench dies, even by SIGKILL (prctl(2))."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


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


@dataclasses.dataclass
class Timings:
    """The latencies (ms) of one plugin's prepare and unprepare calls."""

    prepared: list[float] = dataclasses.field(default_factory=list)
    unprepared: list[float] = dataclasses.field(default_factory=list)

    def run(self, plugin: Plugin, claims: Claims, groups: Sequence[Sequence[str]]) -> None:
        """Each group: prepared in one call, then unprepared in one call."""
        for names in groups:
            self.prepared.append(prepare(plugin.stub, claims, names))
            self.unprepared.append(unprepare(plugin.stub, claims, names))

    def summary(self, *, batch: int, cpu_s: float) -> dict[str, Any]:
        """With `cpu_s`, the plugin's CPU over the cycles."""
        count, busy_s = len(self.prepared), (sum(self.prepared) + sum(self.unprepared)) / 2000
        return {
            "calls": count,
            "claims_per_call": batch,
            "prepare_ms": spread(self.prepared),
            "unprepare_ms": spread(self.unprepared),
            "plugin_cpu_ms_per_cycle": round(1000 * cpu_s / count, 2),
            "claims_per_s": round(batch * count / busy_s, 1),
        }


def cycles(
    plugin: Plugin, claims: Claims, kind: str, count: int, *, batch: int = 1
) -> dict[str, Any]:
    """`count` times: prepare `batch` new claims of `kind` in one call, then unprepare them."""
    groups = [claims.take(kind, batch) for _ in range(count)]  # created before the clock runs
    timings, cpu = Timings(), plugin.cpu_seconds()
    timings.run(plugin, claims, groups)
    return timings.summary(batch=batch, cpu_s=plugin.cpu_seconds() - cpu)


def interleaved(
    sides: Sequence[tuple[str, Plugin]], claims: Claims, count: int, *, block: int
) -> list[dict[str, Any]]:
    """`count` single-claim cycles of each side (a claim kind and the plugin that prepares it),
    in alternating blocks of `block` cycles (who goes first alternates too), so that the
    machine's noise falls on all alike; a summary per side. Each one's CPU is read over the
    whole run (a plugin waiting for its turn costs next to nothing), not summed over blocks
    shorter than the clock tick."""
    groups = [[claims.take(kind) for _ in range(count)] for kind, _ in sides]
    timings = [Timings() for _ in sides]
    cpu = [plugin.cpu_seconds() for _, plugin in sides]
    order = list(range(len(sides)))
    for round_, start in enumerate(range(0, count, block)):
        for i in reversed(order) if round_ % 2 else order:
            timings[i].run(sides[i][1], claims, groups[i][start : start + block])
    return [
        timing.summary(batch=1, cpu_s=plugin.cpu_seconds() - before)
        for timing, (_, plugin), before in zip(timings, sides, cpu, strict=True)
    ]


def held_over_empty(
    root: pathlib.Path, claims: Claims, args: argparse.Namespace, layout: str
) -> dict[str, Any]:
    """Two plugins of ours writing `layout`, one holding `args.held` shares and one holding
    nothing (on its own node), their whole-GPU cycles interleaved as `--peer` does: the growth
    with the claims held, with the machine's noise falling on both sides alike."""
    flags = [f"--checkpoint-layout={layout}"]
    common = {"gpus": args.gpus, "kubeconfig": args.kubeconfig, "extra": flags}
    with (
        ours(root / f"held-{layout}", **common) as full,
        ours(root / f"lone-{layout}", node=LONE_NODE, **common) as lone,
    ):
        progress(f"held over empty ({layout}): {args.held} shares held on one of two plugins")
        held = hold(full, claims, args.held)
        cycles(full, claims, "gpu", args.warmup)
        cycles(lone, claims, "lone", args.warmup)
        settle()
        sides = [("gpu", full), ("lone", lone)]
        with_held, empty = interleaved(sides, claims, args.calls, block=args.peer_block)
        unprepare(full.stub, claims, held)
    return {
        "held": with_held,
        "empty": empty,
        "held_over_empty_prepare_p50": _ratio(
            with_held["prepare_ms"]["p50"], empty["prepare_ms"]["p50"]
        ),
        "held_over_empty_unprepare_p50": _ratio(
            with_held["unprepare_ms"]["p50"], empty["unprepare_ms"]["p50"]
        ),
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


def measure(
    plugin: Plugin, claims: Claims, args: argparse.Namespace, *, rival: Plugin | None = None
) -> dict[str, Any]:
    """The main run; with a `rival` (the peer), its whole GPUs interleaved with ours."""
    progress(f"warm-up: {args.warmup} cycles of each kind; one share held on each shared GPU")
    daemons = hold(plugin, claims, SHARED_GPUS)  # each shared GPU's MPS daemon keeps running
    for kind in ("gpu", "mig", "share"):
        cycles(plugin, claims, kind, args.warmup)
    if rival is not None:
        cycles(rival, claims, "peer", args.warmup)
    settle()
    kinds, compared = {}, {}
    if rival is None:
        progress(f"gpu: {args.calls} prepare/unprepare cycles of one claim")
        kinds["gpu"] = cycles(plugin, claims, "gpu", args.calls)
    else:
        progress(
            f"gpu: {args.calls} cycles of one claim, ours and the peer's in turns of {args.peer_block}"
        )
        kinds["gpu"], compared["peer"] = interleaved(
            [("gpu", plugin), ("peer", rival)], claims, args.calls, block=args.peer_block
        )
    for kind, count in (
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
    } | compared


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
    with ours(workdir, gpus=args.gpus, kubeconfig=args.kubeconfig, instrument=instrument) as plugin:
        held = hold(plugin, claims, SHARED_GPUS)
        for kind in ("gpu", "mig", "share"):
            cycles(plugin, claims, kind, args.profile_calls)
        cycles(plugin, claims, "share", 1, batch=64)
        unprepare(plugin.stub, claims, held)
    report: dict[str, Any] = json.loads(out.read_text())
    return report


def timed_run(
    root: pathlib.Path,
    claims: Claims,
    args: argparse.Namespace,
    *,
    peer_binary: pathlib.Path | None,
) -> tuple[dict[str, Any], int]:
    """The main run (`measure`), with the peer beside ours when `peer_binary` is given; the
    result and the number of lines our plugin logged."""
    layout = [f"--checkpoint-layout={args.checkpoint_layout}"]
    with contextlib.ExitStack() as running:
        rival = None
        if peer_binary is not None:  # started first: its fork runs before any gRPC thread
            progress(f"peer: {peer_binary}")
            started = the_peer(root / "peer", binary=peer_binary, kubeconfig=args.kubeconfig)
            rival = running.enter_context(started)
        plugin = running.enter_context(
            ours(root / "timed", gpus=args.gpus, kubeconfig=args.kubeconfig, extra=layout)
        )
        result = measure(plugin, claims, args, rival=rival)
        result["peak_rss_mb"] = round(plugin.memory_mb("VmHWM"), 1)
        result["rss_after_start_mb"] = round(plugin.rss_after_start_mb, 1)
        if rival is not None:
            result |= compare(result, rival)
        return result, len(plugin.log_path.read_bytes().splitlines())


def compare(result: dict[str, Any], rival: Plugin) -> dict[str, Any]:
    """The peer's figures (under ``peer``) and ours over the peer's, from the interleaved run."""
    gpu, theirs = result["kinds"]["gpu"], result["peer"]
    figures = {
        "driver": f"kubernetes-sigs/dra-example-driver {peer.VERSION} (dra-example-kubeletplugin)",
        "prepare_p50_ms": theirs["prepare_ms"]["p50"],
        "prepare_p99_ms": theirs["prepare_ms"]["p99"],
        "unprepare_p50_ms": theirs["unprepare_ms"]["p50"],
        "unprepare_p99_ms": theirs["unprepare_ms"]["p99"],
        "plugin_cpu_ms_per_cycle": theirs["plugin_cpu_ms_per_cycle"],
        "peak_rss_mb": round(rival.memory_mb("VmHWM"), 1),
        "rss_after_start_mb": round(rival.rss_after_start_mb, 1),
        "gpu": theirs,
    }
    return {
        "peer": figures,
        "ours_over_peer_prepare_p50": _ratio(gpu["prepare_ms"]["p50"], figures["prepare_p50_ms"]),
        "ours_over_peer_unprepare_p50": _ratio(
            gpu["unprepare_ms"]["p50"], figures["unprepare_p50_ms"]
        ),
        "ours_over_peer_cpu": _ratio(
            gpu["plugin_cpu_ms_per_cycle"], figures["plugin_cpu_ms_per_cycle"]
        ),
        "ours_over_peer_peak_rss": _ratio(result["peak_rss_mb"], figures["peak_rss_mb"]),
    }


def _ratio(ours: float, theirs: float) -> float | None:
    """None where the peer's figure is 0 (CPU below the clock tick in a tiny run)."""
    return round(ours / theirs, 2) if theirs else None


def bench(args: argparse.Namespace) -> int:
    started = time.monotonic()
    peer_binary = peer.build() if args.peer else None
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
            objects.create_node(api, LONE_NODE)
            if peer_binary is not None:
                api.create("/apis/resource.k8s.io/v1/deviceclasses", peer.device_class())
                objects.create_node(api, peer.NODE)
            fsync_ms = _fsync_latency(root)
            progress(f"plugin process on {args.gpus}, work dir {root}")
            claims = Claims(plane.client())
            result, log_lines = timed_run(root, claims, args, peer_binary=peer_binary)
            result["checkpoint_layout"] = args.checkpoint_layout
            other = [f"--checkpoint-layout={args.other_layout}"]
            with ours(
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
            for layout in ("v1", "v2"):
                grown = held_over_empty(root, claims, args, layout)
                result |= {
                    f"held_over_empty_prepare_p50_{layout}": grown["held_over_empty_prepare_p50"],
                    f"held_over_empty_unprepare_p50_{layout}": grown[
                        "held_over_empty_unprepare_p50"
                    ],
                    f"held_over_empty_{layout}": grown,
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
            "held_over_empty_prepare_p50_<layout>, held_over_empty_unprepare_p50_<layout>: two "
            "plugins of ours writing that layout, one holding --held shares, one on another node "
            "holding none, whole-GPU cycles interleaved in blocks of --peer-block: the growth with "
            "the claims held, with the machine's noise on both sides.",
            "Before each measured part the bench calls sync(2): what the node wrote before "
            "(a thousand claims' files) is on disk, not being written back beside the part.",
            "plugin_cpu_ms_per_cycle: user+system CPU of the plugin process per prepare+"
            "unprepare (from /proc, clock-tick resolution).",
            "peak_rss_mb is VmHWM of the plugin process.",
            *(PEER_NOTES if args.peer else []),
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
        default="v2",
        help="the plugin's checkpoint layout in the main run (the other is measured too)",
    )
    add("--tiny", action="store_true", help="a few calls of each part (CI)")
    add("--dir", help="where the temporary work dir goes (default: $TMPDIR)")
    add("--time-limit", type=int, default=900, help="seconds before the bench gives up")
    add("--profile", action="store_true", help="add phase timings and cProfile (2 more runs)")
    add(
        "--peer",
        action="store_true",
        help="also run the upstream example driver's plugin, whole GPUs interleaved with ours",
    )
    add("--peer-block", type=_positive, default=10, help="cycles per turn with --peer")
    add("--profile-calls", type=int, default=100)
    add("--top", type=int, default=15, help="cProfile rows per operation")
    args = parser.parse_args(argv)
    args.other_layout = "v2" if args.checkpoint_layout == "v1" else "v1"
    if args.tiny:
        args.calls, args.mps_calls, args.batches, args.held, args.warmup = 3, 2, 1, 8, 1
        args.profile_calls = 3
        args.peer_block = 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return bench(args)
    except (BenchError, peer.PeerError) as exc:
        progress(f"failed: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
