"""The driver's own image (``hack/build-image.sh``, deploy/Dockerfile's stages), and the plugin run
from it in a test node's containerd as the chart's DaemonSet runs it.

`build` runs the cached build script and returns the archive as an `images.Image`. `unpack` lays
its layers out in a directory (whiteouts applied), for tests that look inside. `PluginContainer`
starts the plugin with ``ctr run`` (no CRI: the fake kubelet starts only pods with claims): host
network, privileged, user 0, the node's plugin dir (shared propagation, the chart's
``Bidirectional``), registry dir and CDI dir mounted at the same paths, and the control plane's
kubeconfig and certificates read-only. `install_quota_library` first runs the chart's init
container (the image's shell copying the library into the plugin dir on the host).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import pathlib
import sys
import tarfile

from e2e.harness import binaries, containerd, controlplane, images, nodeagents

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "hack" / "build-image.sh"
QUOTA_LIBRARY = "/usr/local/lib/gpu-dra-driver/libgpuquota.so"
HOOK = "/usr/local/bin/nvidia-cdi-hook"
# The chart's init container (deploy/helm/.../kubeletplugin.yaml), word for word.
INSTALL_QUOTA_LIBRARY = f"""set -e
mkdir -p "$0"
cp {QUOTA_LIBRARY} "$0/.libgpuquota.so.new"
mv -f "$0/.libgpuquota.so.new" "$0/libgpuquota.so"
"""


def build() -> images.Image:
    """Build the image unless cached (`binaries.BuildError` if that fails)."""
    directory = binaries.build(BUILD_SCRIPT, ("image.oci.tar", "ref", "digest"))
    return images.Image(
        archive=directory / "image.oci.tar",
        ref=(directory / "ref").read_text().strip(),
        digest=(directory / "digest").read_text().strip(),
    )


def dockerfile_stage() -> dict[str, object]:
    """What deploy/Dockerfile's last stage sets in the image config, as hack/oci_image.py reads it
    (the build script's own reading, so that a test compares the image with the Dockerfile)."""
    name = "gpu_dra_oci_image"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, REPO / "hack" / "oci_image.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    stage = module.last_stage((REPO / "deploy" / "Dockerfile").read_text())
    fields: dict[str, object] = dataclasses.asdict(stage)
    return fields


def _blob(archive: tarfile.TarFile, digest: str) -> tarfile.TarFile:
    member = archive.extractfile(f"blobs/sha256/{digest.split(':')[1]}")
    assert member is not None
    return tarfile.open(fileobj=member)


def manifest_and_config(image: images.Image) -> tuple[dict[str, object], dict[str, object]]:
    """The image's manifest and config (JSON)."""
    with tarfile.open(image.archive) as archive:
        manifest = _json(archive, image.digest)
        config_digest = manifest["config"]["digest"]  # type: ignore[index]
        return manifest, _json(archive, str(config_digest))


def _json(archive: tarfile.TarFile, digest: str) -> dict[str, object]:
    member = archive.extractfile(f"blobs/sha256/{digest.split(':')[1]}")
    assert member is not None
    value: dict[str, object] = json.loads(member.read())
    return value


def unpack(image: images.Image, destination: pathlib.Path) -> pathlib.Path:
    """The image's root file system, its layers applied in order into `destination`."""
    manifest, _ = manifest_and_config(image)
    layers = manifest["layers"]
    assert isinstance(layers, list)
    with tarfile.open(image.archive) as archive:
        for layer in layers:
            with _blob(archive, layer["digest"]) as tar:
                members = []
                for member in tar.getmembers():
                    parent, _, name = member.name.rpartition("/")
                    if name.startswith(".wh."):
                        gone = destination / parent / name.removeprefix(".wh.")
                        if gone.is_dir() and not gone.is_symlink():
                            for path in sorted(gone.rglob("*"), reverse=True):
                                path.unlink() if not path.is_dir() else path.rmdir()
                            gone.rmdir()
                        else:
                            gone.unlink(missing_ok=True)
                        continue
                    target = destination / member.name
                    if target.is_symlink() or (target.exists() and not target.is_dir()):
                        target.unlink()
                    members.append(member)
                tar.extractall(destination, members=members, filter="tar")
    return destination


@dataclasses.dataclass
class PluginContainer:
    """The plugin of `node` running from `image` in `runtime` (started by `start`)."""

    runtime: containerd.Containerd
    image: images.Image
    node: nodeagents.PluginNode
    plane: controlplane.ControlPlane
    name: str = "gpu-dra-plugin"

    @property
    def log_path(self) -> pathlib.Path:
        return self.node.work_dir / "logs" / f"{self.name}.log"

    def _run(self, name: str, *command: str, detach: bool) -> None:
        runtime, node = self.runtime, self.node
        shared = [node.plugin_dir, node.registry_dir, node.cdi_dir]
        mounts = [f"type=bind,src={path},dst={path},options=rbind:rshared:rw" for path in shared]
        mounts.append(
            f"type=bind,src={self.plane.work_dir},dst={self.plane.work_dir},options=rbind:ro"
        )
        runtime.ctr(
            "run",
            *(["--detach", f"--log-uri=file://{self.log_path}"] if detach else ["--rm"]),
            "--net-host",
            "--privileged",
            "--user=0:0",
            f"--snapshotter={runtime.snapshotter_name}",
            f"--runc-binary={runtime.bin_dir / 'runc'}",
            f"--runc-root={runtime.directory / 'runc'}",
            f"--fifo-dir={runtime.directory / 'fifo'}",
            f"--cgroup={runtime.cgroup_name}/{name}",
            *[f"--mount={mount}" for mount in mounts],
            f"--env=NODE_NAME={node.name}",
            f"--env=POD_UID={node.pod_uid}",
            self.image.ref,
            name,
            *command,
        )

    def install_quota_library(self) -> pathlib.Path:
        """Run the chart's init container; the library's path on the host."""
        lib_dir = self.node.plugin_dir / "lib"
        self._run(
            f"{self.name}-init", "/bin/sh", "-c", INSTALL_QUOTA_LIBRARY, str(lib_dir), detach=False
        )
        return lib_dir / "libgpuquota.so"

    def start(self, *args: str) -> None:
        """Start the plugin (``gpu-dra-kubeletplugin`` and `args`) detached."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._run(self.name, "gpu-dra-kubeletplugin", *args, detach=True)

    def running(self) -> bool:
        tasks = self.runtime.ctr("tasks", "ls")
        return any(
            line.split()[:1] == [self.name] and "RUNNING" in line for line in tasks.splitlines()
        )

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def registered(self) -> bool:
        """Whether the fake kubelet has the plugin registered (its ``plugins.json``)."""
        if not self.running():
            raise RuntimeError(f"the plugin container exited:\n{self.log_tail()}")
        try:
            status = json.loads((self.node.records_dir / "plugins.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return False
        endpoint = f"dra-{self.node.pod_uid}.sock"
        return any(
            p["registered"] and p["endpoint"].endswith(endpoint)
            for p in status.get("plugins") or []
        )
