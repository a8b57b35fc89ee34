"""A real containerd (with runc) per test node, for the fake kubelet to start containers through CRI.

`ensure_built` builds containerd, its runc shim, ctr and runc from Go modules once
(``e2e/runtime/build.sh``, cached). `Containerd` runs one as a child process with a generated
config (version 4) that keeps every path of it under one directory of the test (root, state, the
gRPC and ttrpc sockets, the shim sockets, runc's state, the opt and CNI dirs); nothing is read
from or written to ``/etc/containerd``, ``/var/lib/containerd``, ``/run/containerd`` or ``/opt``:

- CRI with CDI on: ``cdi_spec_dirs`` is the node's CDI dir, where our plugin writes its specs;
- runc (by path) is the only runtime, with cgroupfs (no systemd here);
- host-network pods only: no CNI config is needed (containerd does not call CNI for a sandbox in
  the node's network namespace), so the CNI dirs are empty ones of ours;
- the sandbox ("pause") image is the test image (`images`), imported before any pod starts, so
  nothing is ever pulled;
- NRI, the erofs/blockfile snapshotters and the host config imports are off.

What this sandbox forced (checked on a Debian 12 VM, kernel 6.18, root, cgroup v1 hybrid):

- **Snapshotter**: overlayfs works here; `snapshotter` probes an overlay mount in the test's
  directory and falls back to ``native`` (plain copies) where the kernel refuses one.
- **Cgroups**: the host has cgroup v1 controllers (hybrid; v2 unified without controllers) and the
  test run sits in a memory cgroup of its own. Pods get a cgroup parent *relative* to the
  runtime's own cgroup (``<cgroup_name>/pod<uid>``), so runc nests containers below the cgroups the
  test run was given instead of at the hierarchy roots; the same works on cgroup v2 (runc puts a
  relative path beside its own cgroup). No controllers need delegating: pods set no limits.
- **OOM score**: the test run lacks ``CAP_SYS_RESOURCE`` (no lowering of ``oom_score_adj``), so
  the sandbox's -998 fails in runc; ``restrict_oom_score_adj`` clamps it to containerd's own.
- **Seccomp**: runc is built without libseccomp; pods run unconfined, the CRI default.
- **Shim sockets**: the shim's socket dir must be at most 42 bytes; a longer test dir gets a short
  ``/tmp/gdra-s-*`` dir for them, removed at stop.

`stop` (also on SIGTERM/SIGINT of the run and after a failed test, through the fixture's
``finally``) kills containerd, every shim and container of it, unmounts what it mounted and
removes its cgroups (`reaping`); a reaper process does the same if the test process dies without
stopping it. `leftovers` lists what is still there (tests assert it is empty).
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from types import FrameType, TracebackType

from e2e.harness import binaries, images, kube, processes, reaping

BUILD_SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "runtime" / "build.sh"
NAMES = ("containerd", "containerd-shim-runc-v2", "ctr", "runc")
NAMESPACE = "k8s.io"  # the CRI plugin's namespace
_MAX_SOCKET_DIR = 42  # containerd's limit for the shim socket dir on Linux


def ensure_built() -> pathlib.Path:
    """Build containerd and runc unless cached; return their directory (`binaries.BuildError`
    if that fails)."""
    return binaries.build(BUILD_SCRIPT, NAMES)


def snapshotter(directory: pathlib.Path) -> str:
    """``overlayfs`` where the kernel lets us mount an overlay in `directory`, else ``native``."""
    probe = pathlib.Path(tempfile.mkdtemp(prefix=".overlay-probe-", dir=directory))
    try:
        for name in ("lower", "upper", "work", "merged"):
            (probe / name).mkdir()
        options = f"lowerdir={probe}/lower,upperdir={probe}/upper,workdir={probe}/work"
        mounted = subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", options, str(probe / "merged")],
            capture_output=True,
            check=False,
        )
        if mounted.returncode != 0:
            return "native"
        subprocess.run(["umount", str(probe / "merged")], check=True)
        return "overlayfs"
    finally:
        shutil.rmtree(probe, ignore_errors=True)


class Containerd:
    """One containerd with runc, everything of it under `directory`; a context manager."""

    def __init__(
        self,
        *,
        bin_dir: pathlib.Path,
        directory: pathlib.Path,
        cdi_dir: pathlib.Path,
        image: images.Image,
        log_dir: pathlib.Path | None = None,
    ) -> None:
        self.bin_dir = bin_dir
        self.directory = directory.resolve()
        self.cdi_dir = cdi_dir
        self.image = image
        self.log_dir = log_dir or self.directory
        # Pods' cgroups go below this name (relative to the runtime's cgroup); unique per runtime.
        self.cgroup_name = f"gpu-dra-e2e-{secrets.token_hex(4)}"
        self._short_socket_dir: pathlib.Path | None = None
        self._chosen_snapshotter: str | None = None
        self._process: processes.Process | None = None
        self._reaper: subprocess.Popen[bytes] | None = None
        self._previous_sigterm: signal.Handlers | None = None

    @property
    def socket(self) -> pathlib.Path:
        return self.directory / "containerd.sock"

    @property
    def endpoint(self) -> str:
        """The CRI endpoint, as the kubelet's ``--container-runtime-endpoint`` takes it."""
        return f"unix://{self.socket}"

    @property
    def owner(self) -> reaping.Owner:
        return reaping.Owner(self.directory, self.socket, self.cgroup_name)

    @property
    def log_path(self) -> pathlib.Path:
        return self.log_dir / "containerd.log"

    def __enter__(self) -> Containerd:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Write the config, start containerd, wait for CRI, import the test image."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._handle_sigterm()
        self._reaper = reaping.watch(self.owner)
        self.owner.config.write_text(self._config())
        self._process = processes.Process(
            "containerd",
            [str(self.bin_dir / "containerd"), "--config", str(self.owner.config)],
            log_dir=self.log_dir,
            # The shim is found on PATH; runc is named by path in the config.
            env={"PATH": f"{self.bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"},
        )
        self._process.start()
        kube.wait_for(self._serving, what="containerd serving CRI", timeout=60)
        self.import_image(self.image)

    def import_image(self, image: images.Image) -> None:
        """Import an image archive into CRI's namespace and unpack it for the snapshotter."""
        self.ctr(
            "images",
            "import",
            "--snapshotter",
            self.snapshotter_name,
            "--platform",
            "linux/amd64",
            str(image.archive),
        )

    def ctr(self, *args: str) -> str:
        """Run ctr against this containerd in the CRI namespace; its stdout."""
        result = subprocess.run(
            [
                str(self.bin_dir / "ctr"),
                "--address",
                str(self.socket),
                "--namespace",
                NAMESPACE,
                *list(args),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"ctr {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def run(self, name: str, *command: str) -> None:
        """Start a detached container from the test image without CRI (ctr), everything of it
        (runc state, IO FIFOs, cgroup) kept where `stop` finds it; for tests of the harness."""
        self.ctr(
            "run",
            "--detach",
            "--snapshotter",
            self.snapshotter_name,
            "--runc-binary",
            str(self.bin_dir / "runc"),
            "--runc-root",
            str(self.directory / "runc"),
            "--fifo-dir",
            str(self.directory / "fifo"),
            "--cgroup",
            f"{self.cgroup_name}/{name}",
            self.image.ref,
            name,
            *command,
        )

    def running(self) -> bool:
        return self._process is not None and self._process.running()

    def stop(self) -> None:
        """Stop containerd and remove every trace of it (processes, mounts, cgroups, dirs)."""
        if self._process is not None:
            self._process.stop()
        reaping.clean(self.owner)
        if self._reaper is not None:
            reaping.stop_watching(self._reaper)
            self._reaper = None
        for name in ("root", "state", "runc", "fifo"):
            shutil.rmtree(self.directory / name, ignore_errors=True)
        if self._short_socket_dir is not None:
            shutil.rmtree(self._short_socket_dir, ignore_errors=True)
        self._restore_sigterm()

    def leftovers(self, *, daemon: bool = True) -> list[str]:
        """What of this containerd is still on the host; [] after a clean stop.

        With ``daemon=False``, what its pods left while it runs: shims, containers, mounts,
        cgroups below its cgroup root (containerd itself and its empty root do not count).
        """
        return reaping.leftovers(self.owner, daemon=daemon)

    def log_tail(self, lines: int = 40) -> str:
        return "" if self._process is None else self._process.log_tail(lines)

    # --- internals -------------------------------------------------------------------------------

    def _serving(self) -> bool:
        if self._process is None or not self._process.running():
            raise RuntimeError(f"containerd exited:\n{self.log_tail()}")
        if not self.socket.exists():
            return False
        try:
            table = self.ctr("plugins", "ls")
        except RuntimeError:
            return False
        # TYPE  ID  PLATFORMS  STATUS; the CRI gRPC service is "ok", or "error" if it failed.
        rows = [line.split() for line in table.splitlines()]
        cri = [row[-1] for row in rows if row[:2] == ["io.containerd.grpc.v1", "cri"]]
        if cri and cri[0] != "ok":
            raise RuntimeError(f"containerd's CRI plugin is {cri[0]}:\n{self.log_tail()}")
        return bool(cri)

    @property
    def snapshotter_name(self) -> str:
        if self._chosen_snapshotter is None:
            self._chosen_snapshotter = snapshotter(self.directory)
        return self._chosen_snapshotter

    def _socket_dir(self) -> pathlib.Path:
        wanted = self.directory / "s"
        if len(str(wanted)) <= _MAX_SOCKET_DIR:
            return wanted
        self._short_socket_dir = pathlib.Path(tempfile.mkdtemp(prefix="gdra-s-", dir="/tmp"))
        return self._short_socket_dir

    def _config(self) -> str:
        d = self.directory
        empty = d / "empty"
        empty.mkdir(exist_ok=True)
        cri_runtime = "plugins.'io.containerd.cri.v1.runtime'"
        runc = f"{cri_runtime}.containerd.runtimes.runc"
        return f"""\
# Generated by e2e/harness/containerd.py: every path of this containerd is under {d}.
version = 4
root = '{d}/root'
state = '{d}/state'
imports = []
disabled_plugins = [
  'io.containerd.nri.v1.nri',
  'io.containerd.snapshotter.v1.blockfile',
  'io.containerd.snapshotter.v1.erofs',
  'io.containerd.differ.v1.erofs',
  'io.containerd.mount-handler.v1.erofs',
]

[plugins.'io.containerd.server.v1.grpc']
  address = '{self.socket}'
[plugins.'io.containerd.server.v1.ttrpc']
  address = '{self.socket}.ttrpc'
[plugins.'io.containerd.server.v1.debug']
  address = ''
[plugins.'io.containerd.server.v1.metrics']
  address = ''
[plugins.'io.containerd.shim.v1.manager']
  socket_dir = '{self._socket_dir()}'
[plugins.'io.containerd.internal.v1.opt']
  path = '{d}/opt'
[plugins.'io.containerd.image-verifier.v1.bindir']
  bin_dir = '{empty}'

[plugins.'io.containerd.cri.v1.images']
  snapshotter = '{self.snapshotter_name}'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = '{self.image.ref}'

[{cri_runtime}]
  enable_cdi = true
  cdi_spec_dirs = ['{self.cdi_dir}']
  disable_apparmor = true
  enable_selinux = false
  restrict_oom_score_adj = true
  [{cri_runtime}.containerd]
    default_runtime_name = 'runc'
  [{runc}]
    runtime_type = 'io.containerd.runc.v2'
  [{runc}.options]
    BinaryName = '{self.bin_dir / "runc"}'
    Root = '{d}/runc'
    SystemdCgroup = false
  [{cri_runtime}.cni]
    bin_dirs = ['{empty}']
    conf_dir = '{empty}'

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = '127.0.0.1'
  stream_server_port = '0'
"""

    def _handle_sigterm(self) -> None:
        """Turn SIGTERM of the test run into KeyboardInterrupt, so fixtures' clean-up runs."""
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            self._previous_sigterm = signal.SIG_DFL
            signal.signal(signal.SIGTERM, _interrupt)

    def _restore_sigterm(self) -> None:
        if (
            self._previous_sigterm is not None
            and threading.current_thread() is threading.main_thread()
        ):
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def wait_pods_gone(runtime: Containerd, *, timeout: float = 30.0) -> list[str]:
    """Poll what pods left (`Containerd.leftovers` without the daemon) until none or `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        left = runtime.leftovers(daemon=False)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def for_node(
    work_dir: pathlib.Path, cdi_dir: pathlib.Path, *, probe: pathlib.Path | None = None
) -> Containerd:
    """A containerd for the `nodeagents.PluginNode` in `work_dir` (its ``runtime``; the node
    starts and stops it), serving the test image with `probe` in it (`images.build`)."""
    return Containerd(
        bin_dir=ensure_built(),
        directory=work_dir / "containerd",
        cdi_dir=cdi_dir,
        image=images.build(probe),
        log_dir=work_dir / "logs",
    )
