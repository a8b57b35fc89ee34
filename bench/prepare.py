"""Benchmark: NodePrepareResources / NodeUnprepareResources as the kubelet sees them.

Run ``.venv/bin/python bench/prepare.py`` from the repository root; one JSON object goes to stdout,
progress to stderr. The plugin is a separate process (this file again, ``--serve``) running the real
``kubeletplugin.__main__.main``: flags, logging (JSON to a log file), the fake GPU backend with its
state file, start-up reconciliation, the real `serving.Servers` and `draservice` on unix sockets.
Two seams are replaced there: the in-cluster API client (none) and `claimfetching.ClaimFetcher`,
which builds each claim's JSON from its name instead of GETting it (`claim_object`). The client is
a stub of the v1 protos over ``unix://``, so a latency here is gRPC + the plugin's whole prepare.

Claim names encode what was allocated: ``share-<n>`` is a share of ``gpu-<n % 6>-shared`` (with a
shareID and consumedCapacity), ``gpu-<n>`` is the whole ``gpu-6``, ``mig-<n>`` is the dynamic MIG
slice ``gpu-7-mig-1g5gb-<n % 7>`` (the fake backend creates and destroys the instance).

``--profile`` adds two more plugin runs of a shorter loop: one with timers around the prepare
phases (flock, checkpoint load/save, CDI and quota writes, fsync, fake backend state file), one
under cProfile; their results go into the JSON under ``profile``. The timed run is never
instrumented.
"""

# The script is run by path, so the repository root is put on sys.path before the project imports.
# ruff: noqa: E402

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import gc
import json
import math
import os
import pathlib
import platform
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from types import FrameType, TracebackType
from typing import Any, ParamSpec, TypeVar

REPO = pathlib.Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import grpc

from dra_driver import claims
from kubeletplugin import serving
from kubeletplugin.protos.dra.v1 import api_pb2 as v1
from kubeletplugin.protos.dra.v1 import api_pb2_grpc as v1_grpc

DRIVER = "gpu.dra.dev"
NODE = "bench-node"
POD_UID = "bench-pod"
NAMESPACE = "bench"
GPUS = "fake:8xA100-40GB"
SHARED_GPUS = 6  # gpu-0 … gpu-5 carry the shares; gpu-6 is given whole, gpu-7 is sliced (MIG)
MIG_PLACEMENTS = 7  # 1g.5gb starts at 0 … 6 on an A100-40GB
TARGETS = {"prepare_p99_ms": 20, "peak_rss_mb": 80}
RPC_TIMEOUT_S = 30.0
_UID_NAMESPACE = uuid.UUID("0b6f3a52-3f1e-4d0c-9a57-6f9f2e1d9c11")

P = ParamSpec("P")
R = TypeVar("R")


class BenchError(Exception):
    """The plugin answered something a correct plugin never would; the numbers are void."""


# -- the claims: the client and the plugin agree on this scheme -------------------------------


def claim_uid(name: str) -> str:
    return str(uuid.uuid5(_UID_NAMESPACE, name))


def allocated_device(name: str, uid: str) -> dict[str, Any]:
    """The allocation result the scheduler would have written for the claim `name`."""
    kind, _, number = name.rpartition("-")
    n = int(number)
    result: dict[str, Any] = {"request": "gpu", "driver": DRIVER, "pool": NODE}
    if kind == "share":
        result["device"] = f"gpu-{n % SHARED_GPUS}-shared"
        result["shareID"] = str(uuid.uuid5(_UID_NAMESPACE, f"share/{uid}"))
        result["consumedCapacity"] = {"memory": "1Gi", "cores": "5"}
    elif kind == "gpu":
        result["device"] = f"gpu-{SHARED_GPUS}"
    elif kind == "mig":
        result["device"] = f"gpu-{SHARED_GPUS + 1}-mig-1g5gb-{n % MIG_PLACEMENTS}"
    else:
        raise claims.ClaimError(f"the bench knows no claim {name!r}")
    return result


def claim_object(ref: claims.ClaimRef) -> dict[str, Any]:
    """A ResourceClaim as the API server would return it (the fields the plugin reads, and some)."""
    result = allocated_device(ref.name, ref.uid)
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {
            "name": ref.name,
            "namespace": ref.namespace,
            "uid": ref.uid,
            "resourceVersion": "1",
            "creationTimestamp": "2025-01-01T00:00:00Z",
        },
        "spec": {
            "devices": {
                "requests": [{"name": "gpu", "exactly": {"deviceClassName": DRIVER, "count": 1}}]
            }
        },
        "status": {
            "allocation": {
                "devices": {"results": [result], "config": []},
                "nodeSelector": {
                    "nodeSelectorTerms": [
                        {
                            "matchFields": [
                                {"key": "metadata.name", "operator": "In", "values": [NODE]}
                            ]
                        }
                    ]
                },
            },
            "reservedFor": [{"resource": "pods", "name": f"pod-{ref.name}", "uid": ref.uid}],
        },
    }


class InMemoryClaims:
    """Stands in for `claimfetching.ClaimFetcher`: no API server, claims built from their names."""

    def __init__(self, client: object, **kwargs: object) -> None:
        del client, kwargs

    def fetch(self, ref: claims.ClaimRef, *, timeout: float | None = None) -> dict[str, Any]:
        return claim_object(ref)

    def exists(self, ref: claims.ClaimRef) -> bool | None:
        return True


# -- the plugin process (--serve) ------------------------------------------------------------


class Recorder:
    """Inclusive wall time and call count per (operation, phase), for the instrumented run."""

    def __init__(self) -> None:
        self.op = "idle"
        self.totals: dict[str, dict[str, list[float]]] = {}
        self.profilers: dict[str, cProfile.Profile] = {}
        self._gc_started = 0.0

    def add(self, phase: str, seconds: float) -> None:
        entry = self.totals.setdefault(self.op, {}).setdefault(phase, [0.0, 0.0, 0.0])
        entry[0] += 1
        entry[1] += seconds
        entry[2] = max(entry[2], seconds)

    def on_gc(self, phase: str, info: dict[str, int]) -> None:
        """`gc.callbacks` hook: a collection's pause, charged to the call it interrupted."""
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.add(f"gc.gen{info['generation']}", time.perf_counter() - self._gc_started)

    def timed(self, phase: str, fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(phase, time.perf_counter() - start)

        return wrapper

    def timed_context(
        self, phase: Callable[[Sequence[object]], str], fn: Callable[..., Any]
    ) -> Callable[..., Any]:
        @contextlib.contextmanager
        def wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
            name = phase(args)
            start = time.perf_counter()
            with fn(*args, **kwargs) as value:
                self.add(f"{name}.acquire", time.perf_counter() - start)
                yield value
            self.add(f"{name}.total", time.perf_counter() - start)

        return wrapper

    def rpc(self, method: str, fn: Callable[..., Any], *, cprofile: bool) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(servicer: Any, request: Any, context: Any) -> Any:
            first = request.claims[0].name if request.claims else "none-0"
            self.op = f"{method}:{first.rpartition('-')[0]}:{len(request.claims)}"
            profiler = self.profilers.setdefault(self.op, cProfile.Profile()) if cprofile else None
            start = time.perf_counter()
            if profiler is not None:
                profiler.enable()
            try:
                return fn(servicer, request, context)
            finally:
                if profiler is not None:
                    profiler.disable()
                self.add("rpc", time.perf_counter() - start)
                self.op = "idle"

        return wrapper

    def report(self, *, top: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for op, phases in sorted(self.totals.items()):
            calls = phases["rpc"][0] if "rpc" in phases else 1.0
            out[op] = {
                "calls": int(calls),
                "per_call_count_ms_maxms": {
                    phase: [round(n / calls, 2), round(1000 * s / calls, 3), round(1000 * most, 2)]
                    for phase, (n, s, most) in sorted(phases.items(), key=lambda kv: -kv[1][1])
                },
            }
            profiler = self.profilers.get(op)
            if profiler is not None:
                out[op]["cprofile_top_tottime_ms_per_call"] = _top(profiler, calls, top=top)
        return out


def _top(profiler: cProfile.Profile, calls: float, *, top: int) -> list[list[Any]]:
    table: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    rows = sorted(table.items(), key=lambda kv: -kv[1][2])[:top]
    return [
        [
            f"{pathlib.Path(file).name}:{line}:{func}",
            round(nc / calls, 1),
            round(1000 * tt / calls, 3),
            round(1000 * ct / calls, 3),
        ]
        for (file, line, func), (_cc, nc, tt, ct, _callers) in rows
    ]


def instrument(recorder: Recorder, *, phases: bool, cprofile: bool) -> None:
    """Wrap the plugin's phases in timers (process-local monkeypatching; no source is changed)."""
    from dra_driver import atomicfiles, inventory, preparing  # noqa: PLC0415
    from dra_driver.backends.fake import state  # noqa: PLC0415
    from dra_driver.cdi import writing  # noqa: PLC0415
    from dra_driver.checkpoint import scheme, store  # noqa: PLC0415
    from dra_driver.isolation import quotas  # noqa: PLC0415
    from kubeletplugin import draservice  # noqa: PLC0415

    for method in ("NodePrepareResources", "NodeUnprepareResources"):
        original = getattr(draservice.DraService, method)
        setattr(draservice.DraService, method, recorder.rpc(method, original, cprofile=cprofile))
    if not phases:
        return
    gc.callbacks.append(recorder.on_gc)
    plain: list[tuple[object, str, str]] = [
        (os, "fsync", "os.fsync"),
        (atomicfiles, "write_bytes", "atomic.write_bytes"),
        (atomicfiles, "remove", "atomic.remove"),
        (store, "load", "checkpoint.load"),
        (store, "save", "checkpoint.save"),
        (scheme, "decode", "checkpoint.decode"),
        (scheme, "encode", "checkpoint.encode"),
        (writing, "write_claim_spec", "cdi.write"),
        (writing, "remove_claim_spec", "cdi.remove"),
        (quotas, "write", "quota.write"),
        (quotas, "remove", "quota.remove"),
        (inventory, "discover", "inventory.discover"),
        (preparing.Preparer, "_plan", "preparer.plan"),
        (preparing.Preparer, "_isolate", "preparer.isolate"),
        (preparing.Preparer, "_write_cdi", "preparer.write_cdi"),
        (preparing.Preparer, "_undo", "preparer.undo"),
        (InMemoryClaims, "fetch", "fetch (bench, no API server)"),
    ]
    for owner, attr, phase in plain:
        setattr(owner, attr, recorder.timed(phase, getattr(owner, attr)))

    def lock_name(args: Sequence[object]) -> str:
        return f"flock[{pathlib.Path(str(args[0])).name}]"

    atomicfiles.locked = recorder.timed_context(lock_name, atomicfiles.locked)
    transaction = recorder.timed_context(lambda args: "fake.state_txn", state.Store.transaction)
    state.Store.transaction = transaction  # type: ignore[method-assign]


def serve(args: argparse.Namespace) -> int:
    """The plugin process: the real entry point with the two API-server seams replaced."""
    from kubeletplugin import __main__ as plugin_main  # noqa: PLC0415
    from kubeletplugin import claimfetching  # noqa: PLC0415

    plugin_main._in_cluster_client = lambda: None
    claimfetching.ClaimFetcher = InMemoryClaims  # type: ignore[assignment,misc]
    recorder = Recorder()
    if args.phases or args.cprofile:
        instrument(recorder, phases=args.phases, cprofile=args.cprofile)
    threading.Thread(target=_exit_when_orphaned, daemon=True).start()
    work = pathlib.Path(args.workdir)
    code = plugin_main.main(
        [
            f"--driver-name={DRIVER}",
            f"--node-name={NODE}",
            f"--pod-uid={POD_UID}",
            f"--gpus={args.gpus}",
            f"--plugin-dir={work / 'plugin'}",
            f"--registry-dir={work / 'registry'}",
            f"--cdi-dir={work / 'cdi'}",
            "--sweep-interval=3600",
            "--log-format=json",
            f"--log-level={args.log_level}",
        ]
    )
    if args.profile_out:
        report = recorder.report(top=args.top)
        pathlib.Path(args.profile_out).write_text(json.dumps(report))
    return code


def _exit_when_orphaned() -> None:
    """The bench holds our stdin open; when it goes away, stop as on SIGTERM."""
    while os.read(0, 4096):  # the raw descriptor: a buffered reader would block shutdown
        pass
    os.kill(os.getpid(), signal.SIGTERM)


# -- the client ------------------------------------------------------------------------------


class Plugin:
    """A plugin process serving on unix sockets in `workdir`; always stopped on exit."""

    def __init__(self, workdir: pathlib.Path, *, gpus: str, extra: Sequence[str] = ()) -> None:
        self.workdir = workdir
        self.socket = serving.dra_socket(workdir / "plugin", driver=DRIVER, pod_uid=POD_UID)
        self.log_path = workdir / "plugin.log"
        self.argv = [
            sys.executable,
            str(pathlib.Path(__file__).resolve()),
            "--serve",
            f"--workdir={workdir}",
            f"--gpus={gpus}",
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


def _ref(name: str) -> Any:
    return v1.Claim(namespace=NAMESPACE, uid=claim_uid(name), name=name)


def prepare(stub: Any, names: Sequence[str]) -> float:
    """Prepare `names` in one call; the call's latency in ms."""
    request = v1.NodePrepareResourcesRequest(claims=[_ref(name) for name in names])
    start = time.perf_counter()
    response = stub.NodePrepareResources(request, timeout=RPC_TIMEOUT_S)
    elapsed = 1000 * (time.perf_counter() - start)
    for name in names:
        answer = response.claims[claim_uid(name)]
        if answer.error or not answer.devices:
            raise BenchError(f"prepare of {name} failed: {answer.error or 'no devices'}")
    return elapsed


def unprepare(stub: Any, names: Sequence[str]) -> float:
    request = v1.NodeUnprepareResourcesRequest(claims=[_ref(name) for name in names])
    start = time.perf_counter()
    response = stub.NodeUnprepareResources(request, timeout=RPC_TIMEOUT_S)
    elapsed = 1000 * (time.perf_counter() - start)
    for name in names:
        uid = claim_uid(name)
        if uid not in response.claims or response.claims[uid].error:
            answer = response.claims[uid].error if uid in response.claims else "no answer"
            raise BenchError(f"unprepare of {name} failed: {answer}")
    return elapsed


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)], 3)


class Names:
    """Fresh claim names per kind, so no UID is ever prepared twice."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    def take(self, kind: str, count: int = 1) -> list[str]:
        start = self._next.get(kind, 0)
        self._next[kind] = start + count
        return [f"{kind}-{n}" for n in range(start, start + count)]


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def pairs(stub: Any, names: Names, kind: str, count: int) -> tuple[list[float], list[float]]:
    """`count` times: prepare one new claim, then unprepare it; both latencies."""
    prepared, unprepared = [], []
    for name in names.take(kind, count):
        prepared.append(prepare(stub, [name]))
        unprepared.append(unprepare(stub, [name]))
    return prepared, unprepared


def measure(plugin: Plugin, args: argparse.Namespace) -> dict[str, Any]:
    stub, names = plugin.stub, Names()
    progress(f"warm-up: {args.warmup} share prepare/unprepare pairs, {args.held} claims held")
    pairs(stub, names, "share", args.warmup)
    pairs(stub, names, "mig", 3)
    held = names.take("share", args.held)
    for name in held:
        prepare(stub, [name])
    progress(f"single-claim calls: {args.calls} share pairs, {args.mig_calls} MIG, whole GPU")
    prep, unprep = pairs(stub, names, "share", args.calls)
    mig_prep, mig_unprep = pairs(stub, names, "mig", args.mig_calls)
    gpu_prep, gpu_unprep = pairs(stub, names, "gpu", args.mig_calls)
    progress(f"batches: {args.batches} x 64 claims per call")
    batch_prep, batch_unprep = [], []
    for _ in range(args.batches):
        batch = names.take("share", 64)
        batch_prep.append(prepare(stub, batch))
        batch_unprep.append(unprepare(stub, batch))
    progress(f"growth: {args.growth} claims prepared and held, then unprepared one by one")
    grown = names.take("share", args.growth)
    grow_prep = [prepare(stub, [name]) for name in grown]
    checkpoint_kb = (plugin.workdir / "plugin" / "checkpoint.json").stat().st_size / 1024
    grow_unprep = [unprepare(stub, [name]) for name in reversed(grown)]
    unprepare(stub, held)
    window = max(1, args.growth // 6)
    return {
        "prepare_p50_ms": percentile(prep, 50),
        "prepare_p99_ms": percentile(prep, 99),
        "prepare_max_ms": percentile(prep, 100),
        "unprepare_p50_ms": percentile(unprep, 50),
        "unprepare_p99_ms": percentile(unprep, 99),
        "batch64_claims_per_s": round(64 * len(batch_prep) / (sum(batch_prep) / 1000), 1),
        "batch64_prepare_call_ms_p50": percentile(batch_prep, 50),
        "unbatch64_claims_per_s": round(64 * len(batch_unprep) / (sum(batch_unprep) / 1000), 1),
        "mig_prepare_p50_ms": percentile(mig_prep, 50),
        "mig_prepare_p99_ms": percentile(mig_prep, 99),
        "mig_unprepare_p50_ms": percentile(mig_unprep, 50),
        "whole_gpu_prepare_p50_ms": percentile(gpu_prep, 50),
        "whole_gpu_unprepare_p50_ms": percentile(gpu_unprep, 50),
        "single_claim_calls": args.calls,
        "held_claims_during_single_calls": args.held,
        "growth": {
            "claims": args.growth,
            "prepare_p50_ms_first": percentile(grow_prep[:window], 50),
            "prepare_p50_ms_last": percentile(grow_prep[-window:], 50),
            "prepare_p99_ms": percentile(grow_prep, 99),
            "unprepare_p50_ms_largest": percentile(grow_unprep[:window], 50),
            "checkpoint_kb_at_peak": round(checkpoint_kb, 1),
            "claims_held_at_peak": args.growth + args.held,
        },
        "calls": (
            2 * (args.warmup + 3 + args.calls + 2 * args.mig_calls + args.batches + args.growth)
            + args.held
            + 1
        ),
    }


def profile_run(workdir: pathlib.Path, args: argparse.Namespace, flag: str) -> dict[str, Any]:
    """A shorter loop against a plugin run with `flag` (``--phases`` or ``--cprofile``)."""
    out = workdir / "profile.json"
    extra = [flag, f"--profile-out={out}", f"--top={args.top}"]
    with Plugin(workdir, gpus=args.gpus, extra=extra) as plugin:
        stub, names = plugin.stub, Names()
        pairs(stub, names, "share", 10)
        held = names.take("share", args.held)
        for name in held:
            prepare(stub, [name])
        pairs(stub, names, "share", args.profile_calls)
        pairs(stub, names, "mig", max(5, args.profile_calls // 5))
        batch = names.take("share", 64)
        prepare(stub, batch)
        unprepare(stub, batch)
        unprepare(stub, held)
    report: dict[str, Any] = json.loads(out.read_text())
    return report


def bench(args: argparse.Namespace) -> int:
    started = time.monotonic()
    root = pathlib.Path(tempfile.mkdtemp(prefix="gpu-dra-bench-", dir=args.dir))
    signal.signal(signal.SIGALRM, _out_of_time)
    signal.signal(signal.SIGTERM, _out_of_time)  # so that the finally below still cleans up
    signal.alarm(args.time_limit)
    try:
        progress(f"plugin process on {GPUS if args.gpus == GPUS else args.gpus}, work dir {root}")
        fsync_ms = _fsync_latency(root)
        with Plugin(root / "timed", gpus=args.gpus) as plugin:
            result = measure(plugin, args)
            result["peak_rss_mb"] = round(plugin.memory_mb("VmHWM"), 1)
            result["rss_after_start_mb"] = round(plugin.rss_after_start_mb, 1)
            log_lines = len(plugin.log_path.read_bytes().splitlines())
        if args.profile:
            progress("profile: phase timers")
            phases = profile_run(root / "phases", args, "--phases")
            progress("profile: cProfile")
            cprofiled = profile_run(root / "cprofile", args, "--cprofile")
            result["profile"] = {"phases": phases, "cprofile": cprofiled}
    finally:
        signal.alarm(0)
        shutil.rmtree(root, ignore_errors=True)
    result |= {
        "plugin_log_lines_per_call": round(log_lines / result["calls"], 1),
        "gpus": args.gpus,
        "python": platform.python_version(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "work_dir_fs": _fs_type(pathlib.Path(args.dir or tempfile.gettempdir())),
        "work_dir_fsync_p50_ms": fsync_ms,
        "targets": TARGETS,
        "seconds": round(time.monotonic() - started, 1),
        "notes": [
            "Latency is the client's: gRPC over a unix socket + the plugin's whole call.",
            "No API server: claims are built in the plugin from their names (no GET, no "
            "network round trip); a real prepare adds one GET per claim.",
            "Real plugin code path: kubeletplugin.__main__.main, serving.Servers, draservice, "
            "preparing with the checkpoint, CDI and quota files written with fsync "
            "(real_gpus=False), logging as JSON to a file at --log-level info.",
            "Fake GPUs: the fake backend's JSON state file stands in for NVML.",
            f"Single-call numbers are taken with {args.held} other claims prepared; "
            "'growth' shows how prepare slows as the checkpoint grows.",
            "peak_rss_mb is VmHWM of the plugin process (it imports the kubernetes client "
            "like the real one).",
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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--gpus", default=GPUS)
    add("--calls", type=int, default=300, help="single-claim prepare/unprepare pairs")
    add("--mig-calls", type=int, default=30, help="MIG (and whole GPU) pairs")
    add("--batches", type=int, default=5, help="calls of 64 claims")
    add("--growth", type=int, default=300, help="claims prepared and held in the growth phase")
    add("--held", type=int, default=32, help="claims held during the single-call loops")
    add("--warmup", type=int, default=20)
    add("--dir", help="where the temporary work dir goes (default: $TMPDIR)")
    add("--time-limit", type=int, default=300, help="seconds before the bench gives up")
    add("--profile", action="store_true", help="add phase timings and cProfile (2 more runs)")
    add("--profile-calls", type=int, default=100)
    add("--top", type=int, default=15, help="cProfile rows per operation")
    # the plugin process
    add("--serve", action="store_true", help=argparse.SUPPRESS)
    add("--workdir", help=argparse.SUPPRESS)
    add("--phases", action="store_true", help=argparse.SUPPRESS)
    add("--cprofile", action="store_true", help=argparse.SUPPRESS)
    add("--profile-out", help=argparse.SUPPRESS)
    add("--log-level", default="info", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        return serve(args)
    try:
        return bench(args)
    except BenchError as exc:
        progress(f"failed: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
