"""The plugin process of `bench/prepare.py`: the real plugin, instrumented if asked to.

    python bench/pluginprocess.py [--phases | --cprofile] [--profile-out FILE] [--top N] \
        -- <the plugin's flags>

runs ``kubeletplugin.__main__.main`` with the plugin's flags in a process that holds nothing a
deployed plugin would not: no bench code beyond this file, and no ``rich``, which structlog
imports when it is installed (it is in the development environment, as a dependency of
import-linter, and not in the image): the bench reports this process's memory. ``--phases``
wraps the plugin's phases in timers, ``--cprofile`` runs each gRPC call under cProfile; either
writes its report as JSON to ``--profile-out`` when the plugin stops. The process stops as on
SIGTERM when its stdin closes (the bench went away).
"""

# The script is run by path, so the repository root is put on sys.path before the project imports.
# ruff: noqa: E402

from __future__ import annotations

import sys

sys.modules["rich"] = None  # type: ignore[assignment]  # absent, as in the image (see above)

import argparse
import contextlib
import cProfile
import functools
import gc
import json
import os
import pathlib
import pstats
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ParamSpec, TypeVar

REPO = pathlib.Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

P = ParamSpec("P")
R = TypeVar("R")


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
    from dra_driver import (  # noqa: PLC0415
        atomicfiles,
        describing,
        inventory,
        isolating,
        preparing,
    )
    from dra_driver.backends.fake import state  # noqa: PLC0415
    from dra_driver.cdi import writing  # noqa: PLC0415
    from dra_driver.checkpoint import scheme, store  # noqa: PLC0415
    from dra_driver.isolation import mps, quotas  # noqa: PLC0415
    from kubeletplugin import claimfetching, draservice  # noqa: PLC0415

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
        (store.NodeCheckpoint, "load", "checkpoint.load"),
        (store.NodeCheckpoint, "save", "checkpoint.save"),
        (scheme, "decode", "checkpoint.decode"),
        (scheme.Encoder, "encode", "checkpoint.encode"),
        (writing, "write_claim_spec", "cdi.write"),
        (writing, "remove_claim_spec", "cdi.remove"),
        (quotas, "write", "quota.write"),
        (quotas, "remove", "quota.remove"),
        (inventory.Cache, "current", "inventory.current"),
        (mps.Daemons, "ensure", "mps.ensure"),
        (mps.Daemons, "command", "mps.command (one-off client)"),
        (preparing.Preparer, "_plan", "preparer.plan"),
        (isolating.Isolator, "isolate", "preparer.isolate"),
        (describing.Describer, "write", "preparer.write_cdi"),
        (preparing.Preparer, "_undo", "preparer.undo"),
        (claimfetching.ClaimFetcher, "fetch", "claim GET"),
    ]
    for owner, attr, phase in plain:
        setattr(owner, attr, recorder.timed(phase, getattr(owner, attr)))

    enter = recorder.timed("node lock (wait included)", atomicfiles.NodeLock.__enter__)
    atomicfiles.NodeLock.__enter__ = enter  # type: ignore[method-assign]
    transaction = recorder.timed_context(lambda args: "fake.state_txn", state.Store.transaction)
    state.Store.transaction = transaction  # type: ignore[method-assign]


def _exit_when_orphaned() -> None:
    """The bench holds our stdin open; when it goes away, stop as on SIGTERM."""
    while os.read(0, 4096):  # the raw descriptor: a buffered reader would block shutdown
        pass
    os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phases", action="store_true", help="timers around the phases")
    parser.add_argument("--cprofile", action="store_true", help="each gRPC call under cProfile")
    parser.add_argument("--profile-out", help="where the report goes (JSON)")
    parser.add_argument("--top", type=int, default=15, help="cProfile rows per operation")
    parser.add_argument("plugin_args", nargs="*", help="the plugin's flags (after --)")
    args = parser.parse_args(argv)
    from kubeletplugin import __main__ as plugin_main  # noqa: PLC0415 (after sys.modules above)

    recorder = Recorder()
    if args.phases or args.cprofile:
        instrument(recorder, phases=args.phases, cprofile=args.cprofile)
    threading.Thread(target=_exit_when_orphaned, daemon=True).start()
    code = plugin_main.main(args.plugin_args)
    if args.profile_out:
        pathlib.Path(args.profile_out).write_text(json.dumps(recorder.report(top=args.top)))
    return code


if __name__ == "__main__":
    sys.exit(main())
