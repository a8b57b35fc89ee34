"""MPS control daemons: one per GPU for its shares, one per claim for a GPU or MIG device it shares.

A daemon has a directory ``<plugin dir>/mps/<id>/`` with ``pipe/`` (mounted into the claim's
containers, which find it through ``CUDA_MPS_PIPE_DIRECTORY``), ``log/`` and ``shm/``. `Daemons`
starts one through a `Runner` (a local process here; a per-daemon Deployment in production is a
second runner behind the same interface), waits until it answers on its pipe, applies the default
active-thread percentage and pinned-memory limits, and reads them back before prepare may return:
a pipe that answers does not prove the limits are set. A daemon that is already running (the
plugin restarted) is adopted, never started twice. A daemon that does not come up fails the claim
with its log and leaves nothing running.

At start-up (`Daemons.reconcile`, once the checkpoint is known) the daemons the checkpoint names
are adopted as they run, never restarted: a plugin restart or a rolling update leaves the clients
of a daemon alone. Daemons nothing names (left by a prepare that was cut short, or by a claim
released while no plugin ran) are stopped: those with a directory, and those the runner keeps on
the node without one.

Whether a daemon runs is asked on every prepare of a share on its GPU, so that question goes to a
control client kept running per daemon (`_Session`: the client reads commands from stdin and
answers each as it comes), not to a new process each time. A session that answers oddly is ended
and the question asked through a one-off client, the truth; a control program that never answers
a session (its output buffered until its input ends) is not given sessions again.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import select
import shutil
import subprocess
import time
import weakref
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Protocol

import structlog

log = structlog.get_logger(__name__)

CONTAINER_PIPE = "/var/run/gpu-dra/mps"
"""Where a daemon's pipe directory appears inside the containers it serves."""


class MpsError(Exception):
    """A daemon did not start or did not take its settings; the claim fails with this."""


@dataclasses.dataclass(frozen=True)
class DaemonSpec:
    id: str
    devices: tuple[str, ...]
    """GPU or MIG UUIDs the daemon serves (``CUDA_VISIBLE_DEVICES``)."""
    active_thread_percentage: int | None = None
    pinned_memory: Mapping[str, int] = dataclasses.field(default_factory=dict)
    """Bytes per device UUID, set as each client's pinned device-memory limit."""


class Runner(Protocol):
    """How a daemon process is started and ended; commands go through the control client either
    way, over the pipe directory the daemon and the plugin share."""

    def start(self, daemon_id: str, control: Sequence[str], env: Mapping[str, str]) -> None: ...

    def stop(self, daemon_id: str) -> None:
        """Called after ``quit``: release whatever keeps the daemon running."""
        ...

    def kept(self) -> set[str]:
        """The daemons this runner keeps on the node (whichever plugin instance started them),
        by id; `MpsError` if it cannot tell."""
        ...


class LocalRunner:
    """Runs ``nvidia-cuda-mps-control -d`` on the node (fake GPUs, tests, single-node setups).

    The daemon detaches from the plugin, so it survives a plugin restart (and is adopted), but
    not the plugin's container: in a cluster, use a runner that gives each daemon its own pod.
    """

    def stop(self, daemon_id: str) -> None:
        pass  # ``quit`` ended it

    def kept(self) -> set[str]:
        return set()  # a local daemon is known by its directory alone

    def start(self, daemon_id: str, control: Sequence[str], env: Mapping[str, str]) -> None:
        done = subprocess.run(
            [*control, "-d"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if done.returncode != 0:
            raise MpsError(
                f"nvidia-cuda-mps-control -d exited with {done.returncode}: "
                f"{(done.stderr or done.stdout).strip()[-500:]}"
            )


def _mount_tmpfs(path: pathlib.Path) -> None:
    """A tmpfs of half the node's memory (the NVIDIA driver's choice), as MPS expects of /dev/shm."""
    if os.path.ismount(path):
        return
    pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    size = f"{pages * page_size // 2 // 1024}k"
    done = subprocess.run(
        [
            "mount",
            "-t",
            "tmpfs",
            "-o",
            f"rw,nosuid,nodev,noexec,relatime,size={size}",
            "tmpfs",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise MpsError(f"cannot mount a tmpfs on {path}: {done.stderr.strip()}")


class _Session:
    """One control client kept running, asked one-line questions (``get_...``)."""

    TIMEOUT = 2.0
    """How long an answer may take (a daemon answers in well under a millisecond)."""

    def __init__(self, control: Sequence[str], env: Mapping[str, str]) -> None:
        self.process = subprocess.Popen(
            list(control),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **env},
            bufsize=0,
        )
        self.silent = False
        """It neither answered nor ended: its output is buffered, sessions do not work."""

    def ask(self, question: str) -> str | None:
        """The answer's line, or None (the client ended or did not answer in time)."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        try:
            self.process.stdin.write(question.encode() + b"\n")
        except OSError:
            return None
        out, answer = self.process.stdout.fileno(), b""
        deadline = time.monotonic() + self.TIMEOUT
        while not answer.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([out], [], [], left)[0]:
                self.silent = True
                return None
            chunk = os.read(out, 4096)
            if not chunk:
                return None
            answer += chunk
        return answer.decode(errors="replace")

    def close(self) -> None:
        _end(self.process)


def _end(process: subprocess.Popen[bytes]) -> None:
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            stream.close()
    try:
        process.wait(timeout=2)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _end_all(sessions: dict[str, _Session]) -> None:
    for session in sessions.values():
        session.close()
    sessions.clear()


READY_TIMEOUT = 30.0
"""Seconds a new daemon has to answer on its pipe. A daemon in a pod of its own is scheduled,
created by its Deployment's ReplicaSet and started by the kubelet first: seconds on a busy node,
more if its image must be pulled. The kubelet gives a prepare 45 s in all."""


class Daemons:
    def __init__(
        self,
        root: pathlib.Path,
        *,
        control: Sequence[str],
        runner: Runner,
        ready_timeout: float = READY_TIMEOUT,
        tmpfs_shm: bool = False,
    ) -> None:
        self.root = root
        self.control = tuple(control)
        self.runner = runner
        self.ready_timeout = ready_timeout
        self.tmpfs_shm = tmpfs_shm
        """Mount a tmpfs on each daemon's ``shm`` (real GPUs: MPS shares memory through it)."""
        self._sessions: dict[str, _Session] = {}
        self._use_sessions = True
        weakref.finalize(self, _end_all, self._sessions)

    def close(self) -> None:
        """End the control clients kept for questions (the daemons keep running)."""
        _end_all(self._sessions)

    def pipe_dir(self, daemon_id: str) -> pathlib.Path:
        return self.root / daemon_id / "pipe"

    def shm_dir(self, daemon_id: str) -> pathlib.Path:
        return self.root / daemon_id / "shm"

    def ensure(self, spec: DaemonSpec) -> pathlib.Path:
        """Start (or adopt) the daemon with its settings verified; return its pipe directory."""
        if self.running(spec.id):
            log.info("mps.adopted", daemon=spec.id)
            self._configure(spec)
            return self.pipe_dir(spec.id)
        base = self.root / spec.id
        for part in ("pipe", "log", "shm"):
            (base / part).mkdir(parents=True, exist_ok=True)
        try:
            if self.tmpfs_shm:
                _mount_tmpfs(base / "shm")
            self.runner.start(spec.id, self.control, self._env(spec.id, spec.devices))
            self._wait_ready(spec.id)
            self._configure(spec)
        except (MpsError, OSError, subprocess.SubprocessError) as exc:
            tail = self._log_tail(spec.id)
            self.stop(spec.id)
            raise MpsError(f"MPS daemon {spec.id} did not start: {exc}{tail}") from exc
        log.info("mps.started", daemon=spec.id, devices=list(spec.devices))
        return self.pipe_dir(spec.id)

    def running(self, daemon_id: str) -> bool:
        if not (self.pipe_dir(daemon_id) / "control").exists():
            return False
        try:
            answer = self._ask(daemon_id, "get_default_active_thread_percentage")
        except MpsError:
            return False
        return answer.strip().replace(".", "", 1).isdigit()

    def stop(self, daemon_id: str) -> None:
        """Quit the daemon (if it runs) and remove its directories; idempotent."""
        self._end_session(daemon_id)
        if (self.pipe_dir(daemon_id) / "control").exists():
            try:
                self.command(daemon_id, "quit")
            except MpsError as exc:
                log.warning("mps.quit_failed", daemon=daemon_id, error=str(exc))
        self.runner.stop(daemon_id)
        shm = self.root / daemon_id / "shm"
        if os.path.ismount(shm):
            subprocess.run(["umount", "--lazy", str(shm)], check=False, capture_output=True)
        shutil.rmtree(self.root / daemon_id, ignore_errors=True)
        log.info("mps.stopped", daemon=daemon_id)

    def known(self) -> set[str]:
        """Daemons with a directory (running or left behind)."""
        return {p.name for p in self.root.iterdir()} if self.root.is_dir() else set()

    def reconcile(self, held: AbstractSet[str]) -> None:
        """Start-up: adopt the daemons `held` names as they are (never restarted: their clients
        keep running) and stop every other one, with a directory or kept by the runner. Errors
        are logged, never raised: the next start-up tries again."""
        try:
            kept = self.runner.kept()
        except MpsError as exc:  # the directories still tell most of them
            log.warning("mps.kept_unknown", error=str(exc))
            kept = set()
        for daemon_id in sorted(held):
            if self.running(daemon_id):
                log.info("mps.adopted", daemon=daemon_id)
            else:  # the next prepare of a share on its GPU starts it again
                log.warning("mps.not_running", daemon=daemon_id)
        for daemon_id in sorted((self.known() | kept) - held):
            log.warning("mps.orphan_stopping", daemon=daemon_id)
            try:
                self.stop(daemon_id)
            except MpsError as exc:
                log.warning("mps.orphan_not_stopped", daemon=daemon_id, error=str(exc))

    def command(self, daemon_id: str, command: str) -> str:
        try:
            done = subprocess.run(
                list(self.control),
                input=command + "\n",
                env={**os.environ, **self._env(daemon_id, ())},
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise MpsError(f"control client failed on {command!r}: {exc}") from exc
        if done.returncode != 0:
            raise MpsError(f"{command!r} failed: {(done.stderr or done.stdout).strip()[-300:]}")
        return done.stdout

    def _ask(self, daemon_id: str, question: str) -> str:
        """`command` for a question with a one-line answer, through the daemon's session."""
        if self._use_sessions:
            session = self._sessions.get(daemon_id)
            if session is None:
                try:
                    session = _Session(self.control, self._env(daemon_id, ()))
                except OSError as exc:
                    raise MpsError(f"control client failed on {question!r}: {exc}") from exc
                self._sessions[daemon_id] = session
            answer = session.ask(question)
            if answer is not None:
                return answer
            self._end_session(daemon_id)
            if session.silent:
                log.warning("mps.sessions_unsupported", control=list(self.control))
                self._use_sessions = False
        return self.command(daemon_id, question)

    def _end_session(self, daemon_id: str) -> None:
        session = self._sessions.pop(daemon_id, None)
        if session is not None:
            session.close()

    def _configure(self, spec: DaemonSpec) -> None:
        wanted: list[tuple[str, str, str]] = []
        if spec.active_thread_percentage is not None:
            value = str(spec.active_thread_percentage)
            wanted.append((f"set_default_active_thread_percentage {value}",
                           "get_default_active_thread_percentage", value))  # fmt: skip
        for device, limit in sorted(spec.pinned_memory.items()):
            value = f"{max(1, limit // (1024 * 1024))}M"
            wanted.append((f"set_default_device_pinned_mem_limit {device} {value}",
                           f"get_default_device_pinned_mem_limit {device}", value))  # fmt: skip
        for set_command, get_command, value in wanted:
            self.command(spec.id, set_command)
            got = self.command(spec.id, get_command).strip()
            if got.rstrip("0").rstrip(".") != value.rstrip("0").rstrip(".") and got != value:
                raise MpsError(f"{set_command!r} did not take: the daemon reports {got!r}")

    def _wait_ready(self, daemon_id: str) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.running(daemon_id):
                return
            time.sleep(0.05)
        raise MpsError(f"no answer on its pipe within {self.ready_timeout:g} s")

    def _env(self, daemon_id: str, devices: Sequence[str]) -> dict[str, str]:
        base = self.root / daemon_id
        env = {
            "CUDA_MPS_PIPE_DIRECTORY": str(base / "pipe"),
            "CUDA_MPS_LOG_DIRECTORY": str(base / "log"),
        }
        if devices:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
        return env

    def _log_tail(self, daemon_id: str) -> str:
        logs = sorted((self.root / daemon_id / "log").glob("*.log"))
        text = " ".join(p.read_text(errors="replace")[-300:] for p in logs).strip()
        return f" (daemon log: {text})" if text else ""
