"""Finding and removing what a test containerd leaves on the host: processes, mounts, cgroups.

A containerd started by the tests owns three kinds of things that outlive it on their own:

- **processes**: ``containerd-shim-runc-v2`` daemonizes (a shim survives its containerd by
  design), and each container's processes are the shim's children. Shims are found by the
  ``-address <our socket>`` on their command line; containers as their descendants and as members
  of our cgroups; containerd itself by ``--config <our config>``.
- **mounts** under the containerd dir: snapshots (overlay), container rootfs, the sandbox's
  ``/dev/shm`` tmpfs. Found in ``/proc/self/mountinfo``.
- **cgroups**: the fake kubelet puts pods under a cgroup named `Owner.cgroup_name`, a path
  *relative* to the runtime's own cgroup (runc then nests it below the runtime's cgroup in each
  cgroup v1 hierarchy, beside it on cgroup v2), so containers stay inside the cgroups the test
  run was given. Found by that unique name under every cgroup mount.

`clean` removes all of it (SIGKILL, then lazy unmounts, deepest first, then rmdir of the
cgroups, deepest first) and `leftovers` lists what is still there, for tests to assert on.

`watch` starts a reaper: a separate process in its own session that waits for the test process to
end (EOF on a pipe only we hold) and then runs `clean`. So a test run killed by SIGKILL, or a
Ctrl-C in the middle of a fixture, still leaves nothing behind; after a normal stop there is
nothing left for it to do. Run it by hand as ``python -m e2e.harness.reaping <dir> <socket>
<cgroup-name>``: it cleans at once (stdin is a terminal) or at EOF (a pipe).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

_MNT_DETACH = 2
SHIM = "containerd-shim-runc-v2"


@dataclasses.dataclass(frozen=True)
class Owner:
    """What identifies one test containerd's belongings."""

    directory: pathlib.Path  # root, state, sockets, config: everything of it on disk
    socket: pathlib.Path  # the gRPC socket, which every shim names in -address
    cgroup_name: str  # unique, e.g. gpu-dra-e2e-1a2b3c4d

    @property
    def config(self) -> pathlib.Path:
        return self.directory / "config.toml"


def leftovers(owner: Owner, *, daemon: bool = True) -> list[str]:
    """What of `owner` is still on the host, one line each; [] when all is gone.

    ``daemon=False`` leaves out containerd itself and its cgroup root (what a running containerd
    legitimately has), so that the rest is what its pods left.
    """
    pids = _processes(owner, daemon=daemon)
    found = [f"process {pid}: {_cmdline_text(pid)}" for pid in sorted(pids)]
    found += [f"mount {path}" for path in _mounts_under(owner.directory)]
    found += [
        f"cgroup {path}"
        for path in _cgroup_dirs(owner.cgroup_name)
        if daemon or path.name != owner.cgroup_name
    ]
    return found


def clean(owner: Owner, *, timeout: float = 10.0) -> None:
    """Kill `owner`'s processes, unmount its mounts, remove its cgroups."""
    pids = _processes(owner)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    libc = ctypes.CDLL(None, use_errno=True)
    for path in reversed(_mounts_under(owner.directory)):
        libc.umount2(os.fsencode(path), _MNT_DETACH)
    while time.monotonic() < deadline:
        remaining = _cgroup_dirs(owner.cgroup_name)
        if not remaining:
            break
        for directory in remaining:
            _remove_cgroup(directory)
        time.sleep(0.05)


def watch(owner: Owner) -> subprocess.Popen[bytes]:
    """Start the reaper for `owner`; close its stdin (`stop_watching`) after a normal clean-up."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "e2e.harness.reaping",
            str(owner.directory),
            str(owner.socket),
            owner.cgroup_name,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=pathlib.Path(__file__).resolve().parents[2],
        start_new_session=True,  # a Ctrl-C to the test's process group must not stop it
        close_fds=True,
    )


def stop_watching(reaper: subprocess.Popen[bytes]) -> None:
    """Let the reaper go: it cleans (nothing is left by now) and exits."""
    if reaper.stdin is not None:
        reaper.stdin.close()
    try:
        reaper.wait(timeout=30)
    except subprocess.TimeoutExpired:
        reaper.kill()
        reaper.wait()


# --- finding -------------------------------------------------------------------------------------


def _processes(owner: Owner, *, daemon: bool = True) -> set[int]:
    roots: set[int] = set()
    daemons: set[int] = set()
    socket, config = str(owner.socket), str(owner.config)
    for pid in _pids():
        argv = _cmdline(pid)
        if not argv:
            continue
        if os.path.basename(argv[0]) == SHIM and _flag(argv, "-address") == socket:
            roots.add(pid)
        elif os.path.basename(argv[0]) == "containerd" and _flag(argv, "--config") == config:
            daemons.add(pid)
    # containerd's own children are short-lived helpers (a shim being started, unpigz): count them.
    found = roots | _descendants(roots | daemons) | (daemons if daemon else set())
    for directory in _cgroup_dirs(owner.cgroup_name):
        found |= _cgroup_pids(directory)
    found.discard(os.getpid())
    return found


def _pids() -> Iterator[int]:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            yield int(entry)


def _cmdline(pid: int) -> list[str]:
    try:
        raw = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [os.fsdecode(part) for part in raw.split(b"\0")[:-1]]


def _cmdline_text(pid: int) -> str:
    return " ".join(_cmdline(pid)) or "?"


def _flag(argv: list[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def _descendants(roots: set[int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid in _pids():
        try:
            stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    pending = list(roots)
    while pending:
        for child in children.get(pending.pop(), []):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _mountinfo() -> list[tuple[str, str]]:
    """(mount point, file system type) of every mount, in mount order."""
    mounts = []
    for line in pathlib.Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        separator = fields.index("-")
        mounts.append((_unescape(fields[4]), fields[separator + 1]))
    return mounts


def _unescape(field: str) -> str:
    return field.encode().decode("unicode_escape")


def _mounts_under(directory: pathlib.Path) -> list[str]:
    prefix = str(directory.resolve()).rstrip("/") + "/"
    return [point for point, _ in _mountinfo() if point.startswith(prefix)]


def _cgroup_dirs(name: str) -> list[pathlib.Path]:
    """Every cgroup dir called `name` or below one, deepest first."""
    found: list[pathlib.Path] = []
    for point, fstype in _mountinfo():
        if fstype not in ("cgroup", "cgroup2"):
            continue
        for parent, dirs, _ in os.walk(point):
            if name in dirs:
                top = pathlib.Path(parent) / name
                found += [pathlib.Path(p) for p, _, _ in os.walk(top)]
                dirs.remove(name)
    return sorted(set(found), key=lambda p: len(p.parts), reverse=True)


def _cgroup_pids(directory: pathlib.Path) -> set[int]:
    try:
        return {int(pid) for pid in (directory / "cgroup.procs").read_text().split()}
    except OSError:
        return set()


def _remove_cgroup(directory: pathlib.Path) -> None:
    for pid in _cgroup_pids(directory):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(FileNotFoundError, OSError):
        directory.rmdir()


def _main(argv: list[str]) -> int:
    directory, socket, cgroup_name = argv
    owner = Owner(pathlib.Path(directory), pathlib.Path(socket), cgroup_name)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if not sys.stdin.isatty():
        sys.stdin.buffer.read()  # returns at EOF: the test process is gone or done
    clean(owner)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
