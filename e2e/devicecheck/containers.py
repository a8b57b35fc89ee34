"""Running the probe as a claim's container, from the fake kubelet's record of the container's
resolved CDI edits (``e2e/cluster/FAKE-KUBELET.md``, "Files in --records-dir").

`in_namespace` is what works today: the edits applied in a private mount namespace on the
machine's own root (a fresh ``/dev`` holding only the record's device nodes, the record's mounts,
its environment), then the probe. It exercises what our CDI spec gives a container, device
isolation included, but not a container runtime: the spec's hooks (``nvidia-cdi-hook
update-ldcache``, ``create-symlinks``) do not run (update-ldcache's folders go on
``LD_LIBRARY_PATH`` instead), and the root is the host's, so the driver's libraries are found even
where a spec forgot one.

TODO(runtime harness, landed after this was written; see e2e/runtime/README.md): run the probe
as the pod's container instead. The pieces exist: ``containerd.Containerd(bin_dir=<bundle>/bin,
directory=, cdi_dir=node.cdi_dir, image=images.build(probe), log_dir=)`` as ``node.runtime``
(`containerd.for_node` would build with Go, which the GPU machine lacks), then
``workloads.create_probe_pod(..., claims=[name], args=check.probe_args)`` and
``workloads.wait_seen`` for the report, ``workloads.delete_gracefully`` to release. The bundle
then needs ``prepare --with-runtime`` (about 13 MB more: two pieces). The dry run would need the
fake libcuda inside the container, i.e. a synthetic driver root (``tests/driverroot/synthetic.py``)
passed to the plugin as ``--driver-root``.
"""

from __future__ import annotations

import os
import pathlib
import shlex
import stat
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

from e2e import probe

# What every container's /dev has, besides the claim's nodes.
_BASIC_NODES = (("null", 1, 3), ("zero", 1, 5), ("random", 1, 8), ("urandom", 1, 9))


def in_namespace(
    container: Mapping[str, Any],
    *,
    program: pathlib.Path,
    args: Sequence[str],
    scratch: pathlib.Path,
    extra_env: Mapping[str, str],
    timeout: float = 120,
) -> tuple[probe.Report | None, str]:
    """Runs `program` with the container's edits; returns its report (None if it printed none)
    and its stderr."""
    script = ["set -e", "mount --make-rprivate /"]
    script += _overlays(container["mounts"], scratch)
    script += _dev(container.get("deviceNodes") or [])
    script += _mounts(container["mounts"])
    script.append(f"exec {shlex.quote(str(program))} {' '.join(map(shlex.quote, args))}")
    env = dict(item.split("=", 1) for item in container.get("env") or [])
    env |= {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}
    folders = _ldcache_folders(container.get("hooks") or [])
    if folders:  # what update-ldcache would add to the container's cache; hooks do not run here
        env["LD_LIBRARY_PATH"] = ":".join(folders)
    env |= extra_env
    done = subprocess.run(
        ["unshare", "--mount", "sh", "-c", "\n".join(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    try:
        return probe.first_report(done.stdout), done.stderr
    except ValueError:
        return None, f"exit code {done.returncode}: {done.stderr[-2000:]}"


def _ldcache_folders(hooks: Sequence[Mapping[str, Any]]) -> list[str]:
    """The ``--folder`` arguments of the spec's ``nvidia-cdi-hook update-ldcache`` hooks."""
    folders: list[str] = []
    for hook in hooks:
        args = list(hook.get("args") or [])
        if "update-ldcache" not in args:
            continue
        folders += [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == "--folder"]
        folders += [arg.split("=", 1)[1] for arg in args if arg.startswith("--folder=")]
    return folders


def _existing_ancestor(path: pathlib.Path) -> pathlib.Path:
    while not path.exists():
        path = path.parent
    return path.resolve()


def _overlays(mounts: Sequence[Mapping[str, Any]], scratch: pathlib.Path) -> list[str]:
    """Mount points missing on the host are made inside an overlay of their nearest existing
    ancestor (upper layer in `scratch`), so nothing is created on the host. /dev is made fresh."""
    missing = [
        pathlib.Path(m["containerPath"])
        for m in mounts
        if not m["containerPath"].startswith("/dev/") and not os.path.lexists(m["containerPath"])
    ]
    lines = []
    for n, ancestor in enumerate(sorted({_existing_ancestor(path) for path in missing})):
        upper, work = scratch / f"upper{n}", scratch / f"work{n}"
        upper.mkdir(parents=True)
        work.mkdir(parents=True)
        lines.append(
            f"mount -t overlay overlay -o lowerdir={ancestor},upperdir={upper},workdir={work} "
            f"{shlex.quote(str(ancestor))}"
        )
    return lines


def _dev(nodes: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = ["mount -t tmpfs -o mode=755,nosuid tmpfs /dev"]
    lines += [f"mknod -m 666 /dev/{name} c {major} {minor}" for name, major, minor in _BASIC_NODES]
    for node in nodes:
        path = node["path"]
        kind, major, minor = node.get("type"), node.get("major"), node.get("minor")
        host = os.stat(node.get("hostPath") or path)
        if kind is None or major is None:
            kind = "b" if stat.S_ISBLK(host.st_mode) else "c"
            major, minor = os.major(host.st_rdev), os.minor(host.st_rdev)
        mode = f"{stat.S_IMODE(host.st_mode):o}"
        quoted = shlex.quote(path)
        lines.append(
            f"mkdir -p $(dirname {quoted}); mknod -m {mode} {quoted} {kind} {major} {minor}"
        )
    return lines


def _mounts(mounts: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = []
    for mount in mounts:
        host, inside = pathlib.Path(mount["hostPath"]), shlex.quote(mount["containerPath"])
        make = "mkdir -p" if host.is_dir() else "touch"
        lines.append(f"mkdir -p $(dirname {inside}); [ -e {inside} ] || {make} {inside}")
        if mount.get("type") == "tmpfs":
            lines.append(f"mount -t tmpfs tmpfs {inside}")
            continue
        lines.append(f"mount --bind {shlex.quote(str(host))} {inside}")
        if "ro" in (mount.get("options") or []):
            lines.append(f"mount -o remount,bind,ro {inside}")
    return lines
