"""Write an OCI image archive from root file system trees, with the config of a Dockerfile's last
stage: no daemon, no registry, the standard library only. ``hack/build-image.sh`` runs it.

    python3 hack/oci_image.py --dockerfile deploy/Dockerfile --ref NAME:TAG --out image.oci.tar \\
        --tree BASE_DIR --tree DIR ... --diff LOWER_DIR UPPER_DIR

Each ``--tree`` (a whole directory, paths relative to it) and ``--diff`` (what UPPER adds to or
changes in LOWER, and whiteouts for what it removed: the layer of a ``RUN``) becomes one layer, in
the order given. Entries keep their modes, owners (numeric; no names), hard links and mtimes (so
that Python's bytecode stays valid); the contents of ``dev``, ``proc``, ``sys`` and ``tmp`` are
left out (the runtime provides them). Layers are uncompressed tars
(``application/vnd.oci.image.layer.v1.tar``), which containerd imports as they are.

The image config comes from the Dockerfile's last stage, so that the two cannot drift: its
``LABEL``, ``ENV`` (``$VAR`` expanded over the Debian base's ``PATH``), ``USER``, ``WORKDIR``,
``ENTRYPOINT`` and ``CMD`` (JSON form). The archive is an OCI image layout (``oci-layout``,
``index.json``, ``blobs/sha256``) whose index names the image ``--ref`` (containerd's
``io.containerd.image.name`` annotation, the tag as ``org.opencontainers.image.ref.name``);
``ctr images import`` and ``skopeo copy oci-archive:...`` read it. The manifest digest is printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import pathlib
import re
import shlex
import stat
import tarfile
import tempfile
from collections.abc import Iterator, Sequence

# The base image's environment (debian:bookworm-slim's config), which the Dockerfile's ENV extends.
BASE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
# Provided by the runtime at run time: the directories stay, their contents do not.
_RUNTIME_DIRS = ("dev", "proc", "sys", "tmp")
_LAYER_MEDIA = "application/vnd.oci.image.layer.v1.tar"


@dataclasses.dataclass(frozen=True)
class Stage:
    """What the last stage of a Dockerfile sets in the image config."""

    labels: dict[str, str]
    env: dict[str, str]
    user: str
    workdir: str
    entrypoint: list[str] | None
    cmd: list[str] | None


@dataclasses.dataclass(frozen=True)
class Layer:
    """One layer to write: a whole tree, or what `upper` changes in `lower`."""

    upper: pathlib.Path
    lower: pathlib.Path | None = None

    @property
    def created_by(self) -> str:
        if self.lower is None:
            return f"tree {self.upper.name}"
        return f"changes of {self.upper.name} to {self.lower.name}"


# --- the Dockerfile ------------------------------------------------------------------------------


def last_stage(dockerfile: str) -> Stage:
    """The config instructions of the Dockerfile's last stage (after its last ``FROM``)."""
    instructions = list(_instructions(dockerfile))
    starts = [i for i, (name, _) in enumerate(instructions) if name == "FROM"]
    if not starts:
        raise ValueError("the Dockerfile has no FROM")
    labels: dict[str, str] = {}
    env = dict(BASE_ENV)
    user, workdir = "", "/"
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    for name, arguments in instructions[starts[-1] + 1 :]:
        if name == "LABEL":
            labels.update(_pairs(arguments, env={}))
        elif name == "ENV":
            env.update(_pairs(arguments, env=env))
        elif name == "USER":
            user = arguments.strip()
        elif name == "WORKDIR":
            workdir = arguments.strip()
        elif name == "ENTRYPOINT":
            entrypoint = _exec_form(name, arguments)
        elif name == "CMD":
            cmd = _exec_form(name, arguments)
    return Stage(labels, env, user, workdir, entrypoint, cmd)


def _instructions(text: str) -> Iterator[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and not logical):
            continue
        if stripped.endswith("\\"):
            logical += stripped[:-1] + " "
            continue
        logical += stripped
        name, _, arguments = logical.partition(" ")
        yield name.upper(), arguments
        logical = ""


def _pairs(arguments: str, *, env: dict[str, str]) -> dict[str, str]:
    """``KEY=value`` words (shell quoting; ``$VAR`` and ``${VAR}`` expanded from `env`)."""
    pairs: dict[str, str] = {}
    for word in shlex.split(arguments):
        key, sep, value = word.partition("=")
        if not sep:
            raise ValueError(f"only the KEY=value form is supported: {arguments!r}")
        pairs[key] = re.sub(
            r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), pairs.get(m.group(1), "")), value
        )
    return pairs


def _exec_form(name: str, arguments: str) -> list[str]:
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{name} must be in the JSON (exec) form: {arguments!r}")
    return value


# --- layers --------------------------------------------------------------------------------------


def _walk(root: pathlib.Path) -> Iterator[str]:
    """Relative paths below `root`, sorted, parents first; runtime dirs kept empty."""
    for directory, dirs, files in os.walk(root):
        rel_dir = os.path.relpath(directory, root)
        if rel_dir in _RUNTIME_DIRS:
            dirs.clear()
            continue
        # Symlinks to directories are listed in dirs; os.walk does not follow them.
        names = sorted([*dirs, *files])
        dirs.sort()
        for name in names:
            yield name if rel_dir == "." else f"{rel_dir}/{name}"


def _same(lower: pathlib.Path, upper: pathlib.Path) -> bool:
    a, b = lower.lstat(), upper.lstat()
    if (a.st_mode, a.st_uid, a.st_gid) != (b.st_mode, b.st_uid, b.st_gid):
        return False
    if stat.S_ISLNK(a.st_mode):
        return os.readlink(lower) == os.readlink(upper)
    if stat.S_ISREG(a.st_mode):
        return a.st_size == b.st_size and lower.read_bytes() == upper.read_bytes()
    return True


def _entries(layer: Layer) -> Iterator[tuple[str, pathlib.Path | None]]:
    """(path in the layer, source) pairs; a source of None is a whiteout of that path."""
    if layer.lower is None:
        for rel in _walk(layer.upper):
            yield rel, layer.upper / rel
        return
    lower, upper = layer.lower, layer.upper
    for rel in _walk(upper):
        if not os.path.lexists(lower / rel) or not _same(lower / rel, upper / rel):
            yield rel, upper / rel
    removed: list[str] = []
    for rel in _walk(lower):
        if any(rel.startswith(f"{gone}/") for gone in removed):
            continue
        if not os.path.lexists(upper / rel):
            removed.append(rel)
            yield rel, None


def _write_layer(layer: Layer, out: pathlib.Path) -> None:
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for rel, source in _entries(layer):
            if source is None:
                parent, _, name = rel.rpartition("/")
                info = tarfile.TarInfo(f"{parent}/.wh.{name}" if parent else f".wh.{name}")
                tar.addfile(info)
                continue
            info = tar.gettarinfo(str(source), arcname=rel)
            if not (info.isreg() or info.isdir() or info.issym() or info.islnk()):
                continue  # sockets, fifos, device nodes: nothing an image carries
            info.uname = info.gname = ""
            if info.isreg():
                with source.open("rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)


def _digest(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


# --- the archive ---------------------------------------------------------------------------------


def _json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _config(stage: Stage, diff_ids: Sequence[str], history: Sequence[str]) -> dict[str, object]:
    config: dict[str, object] = {
        "Env": [f"{key}={value}" for key, value in stage.env.items()],
        "Labels": stage.labels,
        "WorkingDir": stage.workdir,
    }
    if stage.user:
        config["User"] = stage.user
    if stage.entrypoint is not None:
        config["Entrypoint"] = stage.entrypoint
    if stage.cmd is not None:
        config["Cmd"] = stage.cmd
    return {
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": [{"created_by": line, "comment": "hack/build-image.sh"} for line in history],
    }


def write(*, stage: Stage, layers: Sequence[Layer], ref: str, out: pathlib.Path) -> str:
    """Write the archive to `out` (atomically); return the manifest's digest."""
    tag = ref.rpartition(":")[2]
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".oci-") as tmp:
        blobs: dict[str, pathlib.Path] = {}
        layer_descriptors: list[dict[str, object]] = []
        diff_ids: list[str] = []
        for number, layer in enumerate(layers):
            path = pathlib.Path(tmp) / f"layer-{number}.tar"
            _write_layer(layer, path)
            digest = _digest(path)
            blobs[digest] = path
            diff_ids.append(digest)
            size = path.stat().st_size
            layer_descriptors.append({"mediaType": _LAYER_MEDIA, "digest": digest, "size": size})
        config = _json(_config(stage, diff_ids, [layer.created_by for layer in layers]))
        config_digest = _store(blobs, tmp, config)
        manifest = _json(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config_digest,
                    "size": len(config),
                },
                "layers": layer_descriptors,
            }
        )
        manifest_digest = _store(blobs, tmp, manifest)
        index: dict[str, object] = {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": manifest_digest,
                    "size": len(manifest),
                    "platform": {"architecture": "amd64", "os": "linux"},
                    "annotations": {
                        "io.containerd.image.name": ref,
                        "org.opencontainers.image.ref.name": tag,
                    },
                }
            ],
        }
        archive = pathlib.Path(tmp) / "image.oci.tar"
        with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
            for name, data in (
                ("oci-layout", _json({"imageLayoutVersion": "1.0.0"})),
                ("index.json", _json(index)),
            ):
                (pathlib.Path(tmp) / name).write_bytes(data)
                tar.add(pathlib.Path(tmp) / name, arcname=name, filter=_plain)
            for digest, path in blobs.items():
                tar.add(path, arcname=f"blobs/sha256/{digest.split(':')[1]}", filter=_plain)
        os.chmod(archive, 0o644)
        os.replace(archive, out)
    return manifest_digest


def _store(blobs: dict[str, pathlib.Path], tmp: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = pathlib.Path(tmp) / digest.split(":")[1]
    path.write_bytes(data)
    blobs[digest] = path
    return digest


def _plain(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    info.mode = 0o644
    return info


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dockerfile", type=pathlib.Path, required=True)
    parser.add_argument("--ref", required=True, help="the image's name, NAME:TAG")
    parser.add_argument("--out", type=pathlib.Path, required=True)
    parser.add_argument("--tree", dest="layers", action="append", type=_tree, default=[])
    parser.add_argument("--diff", dest="layers", action="append", nargs=2, type=pathlib.Path)
    args = parser.parse_args(argv)
    layers = [item if isinstance(item, Layer) else Layer(item[1], item[0]) for item in args.layers]
    for layer in layers:
        for directory in (layer.upper, layer.lower):
            if directory is not None and not directory.is_dir():
                parser.error(f"{directory} is not a directory")
    if ":" not in args.ref.rpartition("/")[2]:
        parser.error(f"--ref needs a tag: {args.ref}")
    stage = last_stage(args.dockerfile.read_text())
    print(write(stage=stage, layers=layers, ref=args.ref, out=args.out))


def _tree(value: str) -> Layer:
    return Layer(pathlib.Path(value))


if __name__ == "__main__":
    main()
