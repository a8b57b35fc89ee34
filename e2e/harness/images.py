"""The real-container tests' image, made from this host's own files: no registry, no Docker.

The rootfs holds a shell (``dash`` as ``/bin/sh``), the few coreutils the tests use, ``ldconfig``,
glibc and the loader (every library the binaries need, found with ``ldd``, plus libm, libdl,
libpthread and librt for the driver libraries that CDI mounts in), and one test program
at ``/usr/local/bin/probe`` given by the caller (the e2e probe; `PLACEHOLDER_PROBE`, a shell
script, until the caller has one). Paths keep the host's layout, symlinks included (Debian's
merged ``/usr``: ``/bin -> usr/bin``), so the loader finds the libraries where ``ldd`` did.

For the CDI hooks it also has an empty ``/etc/ld.so.cache`` (``nvidia-cdi-hook update-ldcache``
runs ``ldconfig`` in the container, which rewrites it) and ``/etc/ld.so.conf.d/``, plus the mount
points ``/dev``, ``/proc``, ``/sys`` and a sticky ``/tmp``.

`build` writes an OCI image layout archive (one uncompressed layer, config, manifest,
``index.json``, ``oci-layout``; plain tarfile/json/hashlib) into the cache
(``${GPU_DRA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpu-dra-driver}/images/``), keyed by the hash
of everything that goes in, so an unchanged rootfs is reused: a lock per key, written to a temp
file and renamed. The layer is reproducible (sorted entries, mtime 0, root-owned), so the image
digest only changes with the content. `containerd.Containerd.import_image` loads it.

The image's default command is a signal-aware sleep loop, so the same image serves as the CRI
sandbox ("pause") image.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import io
import json
import os
import pathlib
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Sequence

# The image's name. A reserved top-level domain (RFC 2606) makes it fully qualified, so CRI does
# not prefix a registry to it, and any accidental pull fails at once instead of going out.
REPOSITORY = "gpu-dra-e2e.invalid/probe"
PROBE_PATH = "/usr/local/bin/probe"
# Bump when the recipe below changes in a way the content hash does not see.
_RECIPE = "1"
TOOLS = ("dash", "cat", "ls", "sleep", "env", "sed", "ldconfig")
# The rest of glibc that libraries mounted in by CDI (the driver's libcuda) link against; the
# image's own programs need only libc.
GLIBC_EXTRAS = ("libm.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1")
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PAUSE_COMMAND = ("/bin/sh", "-c", 'trap "exit 0" TERM INT; while :; do sleep 3600 & wait $!; done')

# For callers without a probe binary (the e2e probe is e2e/probe): prints one JSON line in the
# probe's shape where they overlap ("env" as an object; plus "dev", the lines of `ls -l /dev`),
# then sleeps (PROBE_SLEEP seconds, default forever; TERM or INT ends it at once).
PLACEHOLDER_PROBE = r"""#!/bin/sh
esc() { sed -e 's/\\/\\\\/g' -e 's/"/\\"/g'; }
join() { sed -e ':a' -e 'N' -e '$!ba' -e 's/\n/,/g'; }
env_json=$(env | esc | sed -e 's/^\([^=]*\)=\(.*\)$/"\1":"\2"/' | join)
dev_json=$(ls -l /dev | esc | sed -e 's/^/"/' -e 's/$/"/' | join)
printf '{"probe":{"placeholder":true},"env":{%s},"dev":[%s]}\n' "$env_json" "$dev_json"
trap 'exit 0' TERM INT
sleep "${PROBE_SLEEP:-infinity}" & wait $!
"""


@dataclasses.dataclass(frozen=True)
class Image:
    """An image archive in the cache and the name it is imported under."""

    archive: pathlib.Path
    ref: str
    digest: str  # of the manifest, "sha256:..."


@dataclasses.dataclass(frozen=True)
class _Entry:
    """One rootfs entry: a directory, a symlink (``target``) or a file (``source`` or ``data``)."""

    path: str  # relative, no leading slash
    kind: str  # "dir" | "symlink" | "file"
    mode: int
    target: str = ""
    source: pathlib.Path | None = None
    data: bytes | None = None


def cache_root() -> pathlib.Path:
    """The project's build cache (the same rule as the build scripts)."""
    explicit = os.environ.get("GPU_DRA_CACHE")
    if explicit:
        return pathlib.Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(pathlib.Path.home() / ".cache")
    return pathlib.Path(xdg) / "gpu-dra-driver"


def build(probe: pathlib.Path | None = None, *, tools: Sequence[str] = TOOLS) -> Image:
    """The image with `probe` (a host file, any executable) and `tools`; built unless cached."""
    entries = _rootfs(probe, tools)
    key = _content_key(entries)
    ref = f"{REPOSITORY}:{key}"
    directory = cache_root() / "images"
    directory.mkdir(parents=True, exist_ok=True)
    archive = directory / f"probe-{key}.oci.tar"
    digest_file = archive.with_suffix(".digest")
    with (directory / f".probe-{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (archive.exists() and digest_file.exists()):
            digest = _write_archive(entries, archive, ref=ref, tag=key)
            _publish(digest_file, digest.encode())
    return Image(archive=archive, ref=ref, digest=digest_file.read_text())


# --- rootfs --------------------------------------------------------------------------------------


def _rootfs(probe: pathlib.Path | None, tools: Sequence[str]) -> list[_Entry]:
    entries: dict[str, _Entry] = {}
    for directory, mode in (
        ("dev", 0o755),
        ("proc", 0o555),
        ("sys", 0o555),
        ("tmp", 0o1777),
        ("etc/ld.so.conf.d", 0o755),
        ("usr/local/bin", 0o755),
        ("root", 0o700),
        ("run", 0o755),
    ):
        _add_dir(entries, directory, mode)
    for name, data in (
        ("etc/ld.so.cache", b""),
        ("etc/ld.so.conf", b"include /etc/ld.so.conf.d/*.conf\n"),
        ("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
        ("etc/group", b"root:x:0:\n"),
    ):
        entries[name] = _Entry(name, "file", 0o644, data=data)
    binaries = [_which(tool) for tool in tools]
    for binary in binaries:
        _add_host_path(entries, binary)
    libraries = _libraries([*binaries, *([probe] if probe else [])])
    for library in libraries:
        _add_host_path(entries, library)
    libc = next(lib for lib in libraries if lib.name == "libc.so.6")
    for name in GLIBC_EXTRAS:
        if (libc.parent / name).exists():
            _add_host_path(entries, libc.parent / name)
    # The host's top-level links (merged /usr), so that /bin/sh, /sbin/ldconfig and the loader's
    # /lib64 path work in the image too. dash is /bin/sh, as on Debian.
    for top in ("bin", "sbin", "lib", "lib64"):
        if pathlib.Path("/", top).is_symlink():
            _add_host_path(entries, pathlib.Path("/", top))
    if "bin" not in entries:
        _add_dir(entries, "bin")
    sh = _resolve_in_image(entries, "bin/sh")
    if sh not in entries:
        entries[sh] = _Entry(sh, "symlink", 0o777, target="dash")
    probe_path = PROBE_PATH.lstrip("/")
    if probe is None:
        entries[probe_path] = _Entry(probe_path, "file", 0o755, data=PLACEHOLDER_PROBE.encode())
    else:
        entries[probe_path] = _Entry(probe_path, "file", 0o755, source=probe)
    return sorted(entries.values(), key=lambda e: e.path)


def _add_dir(entries: dict[str, _Entry], path: str, mode: int = 0o755) -> None:
    parts = pathlib.PurePosixPath(path).parts
    for i in range(1, len(parts) + 1):
        sub = "/".join(parts[:i])
        if sub not in entries:
            entries[sub] = _Entry(sub, "dir", mode if i == len(parts) else 0o755)


def _add_host_path(entries: dict[str, _Entry], path: pathlib.Path) -> None:
    """Copy `path` as the host names it: every symlink on the way is kept as a symlink."""
    current = pathlib.PurePosixPath("/")
    pending = list(pathlib.PurePosixPath(path).parts[1:])
    hops = 0
    while pending:
        part = pending.pop(0)
        host = pathlib.Path(current / part)
        rel = str(current / part).lstrip("/")
        if host.is_symlink():
            hops += 1
            if hops > 40:
                raise OSError(f"too many symlinks resolving {path}")
            target = os.readlink(host)
            entries.setdefault(rel, _Entry(rel, "symlink", 0o777, target=target))
            resolved = pathlib.PurePosixPath(target)
            base = resolved if resolved.is_absolute() else current / resolved
            pending = [*base.parts[1:], *pending]
            current = pathlib.PurePosixPath("/")
            continue
        if pending or host.is_dir():
            _add_dir(entries, rel)
            current = current / part
            continue
        mode = host.stat().st_mode & 0o7777
        entries[rel] = _Entry(rel, "file", mode, source=host)
        return


def _resolve_in_image(entries: dict[str, _Entry], path: str) -> str:
    """`path` with the image's own directory symlinks resolved (one level is all we need)."""
    head, _, tail = path.partition("/")
    entry = entries.get(head)
    if entry is not None and entry.kind == "symlink" and not entry.target.startswith("/"):
        return f"{entry.target}/{tail}"
    return path


def _which(tool: str) -> pathlib.Path:
    found = shutil.which(tool, path=_PATH)
    if found is None:
        raise FileNotFoundError(f"{tool} is not installed on this host (needed in the test image)")
    return pathlib.Path(found)


_LDD_LINE = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x[0-9a-f]+\)")


def _libraries(binaries: Iterable[pathlib.Path]) -> list[pathlib.Path]:
    """The shared libraries (and the loader) the binaries load, as ldd names them."""
    found: set[pathlib.Path] = set()
    for binary in binaries:
        if not _is_dynamic_elf(binary):
            continue
        result = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise OSError(f"ldd {binary}: {result.stderr.strip() or result.stdout.strip()}")
        for line in result.stdout.splitlines():
            match = _LDD_LINE.search(line)
            if match:
                found.add(pathlib.Path(match.group(1)))
    return sorted(found)


def _is_dynamic_elf(path: pathlib.Path) -> bool:
    with path.open("rb") as handle:
        if handle.read(4) != b"\x7fELF":
            return False  # a script: its interpreter is in the image
    # ldd also refuses static(-pie) binaries such as Debian's ldconfig; `file` is not needed.
    result = subprocess.run(["ldd", str(path)], capture_output=True, text=True, check=False)
    return result.returncode == 0 and "statically linked" not in result.stdout


# --- archive -------------------------------------------------------------------------------------


def _content_key(entries: Sequence[_Entry]) -> str:
    digest = hashlib.sha256(f"recipe {_RECIPE}\n".encode())
    for entry in entries:
        digest.update(f"{entry.path}\0{entry.kind}\0{entry.mode:o}\0{entry.target}\0".encode())
        if entry.kind == "file":
            digest.update(hashlib.sha256(_content(entry)).digest())
    return digest.hexdigest()[:16]


def _content(entry: _Entry) -> bytes:
    if entry.data is not None:
        return entry.data
    assert entry.source is not None
    return entry.source.read_bytes()


def _layer(entries: Sequence[_Entry]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.path)
            info.mode, info.mtime, info.uid, info.gid = entry.mode, 0, 0, 0
            if entry.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif entry.kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, entry.target
                tar.addfile(info)
            else:
                data = _content(entry)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _blob(media_type: str, data: bytes) -> tuple[dict[str, object], str]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    return {"mediaType": media_type, "digest": digest, "size": len(data)}, digest


def _write_archive(entries: Sequence[_Entry], archive: pathlib.Path, *, ref: str, tag: str) -> str:
    """Write the OCI layout archive; return the manifest digest."""
    layer = _layer(entries)
    layer_desc, layer_digest = _blob("application/vnd.oci.image.layer.v1.tar", layer)
    config = _json(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": [f"PATH={_PATH}"], "Cmd": list(PAUSE_COMMAND), "WorkingDir": "/"},
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
            "history": [{"created_by": "e2e/harness/images.py", "comment": "host files"}],
        }
    )
    config_desc, _ = _blob("application/vnd.oci.image.config.v1+json", config)
    manifest = _json(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config_desc,
            "layers": [layer_desc],
        }
    )
    manifest_desc, manifest_digest = _blob("application/vnd.oci.image.manifest.v1+json", manifest)
    manifest_desc["platform"] = {"architecture": "amd64", "os": "linux"}
    manifest_desc["annotations"] = {
        "io.containerd.image.name": ref,
        "org.opencontainers.image.ref.name": tag,
    }
    index = _json({"schemaVersion": 2, "manifests": [manifest_desc]})
    files = {
        "oci-layout": _json({"imageLayoutVersion": "1.0.0"}),
        "index.json": index,
        **{
            f"blobs/sha256/{hashlib.sha256(blob).hexdigest()}": blob
            for blob in (layer, config, manifest)
        },
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    _publish(archive, buffer.getvalue())
    return manifest_digest


def _json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _publish(path: pathlib.Path, data: bytes) -> None:
    """Write atomically: temp file in the same dir, fsync, rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise
