"""Running the NVIDIA Container Toolkit's ``nvidia-ctk cdi generate`` on a synthetic driver root
(`synthetic.SyntheticRoot`), with no GPU: the reference for the driver part of our CDI specs.

`build` builds ``nvidia-ctk`` and ``nvidia-cdi-hook`` once (``hack/build-nvidia-toolkit.sh``, cached
outside the clone; the first build takes a minute or two). `generate` runs::

    nvidia-ctk cdi generate --mode=nvml --format=json \\
        --driver-root=<root.driver_root> --dev-root=<root.dev_root> \\
        --nvidia-cdi-hook-path=<hook_path> [--device-id=<id> ...]

with this environment and nothing else::

    PATH=/usr/sbin:/usr/bin:/sbin:/bin
    FAKE_GPU_UUIDS, FAKE_GPU_MINORS, FAKE_GPU_PCI_BUS_IDS, FAKE_DRIVER_VERSION,
    FAKE_CUDA_DRIVER_VERSION   (root.fake_nvml_environment())

and returns the spec it prints, parsed. NVML is real as far as the toolkit can tell: it locates
``libnvidia-ml.so.1`` in the driver root and dlopens it, and that is the project's fake
(``preload/testing/fake_nvml*.c``), installed by `synthetic.create` as the driver's library.
Seen with LD_DEBUG=bindings, the nvml mode calls nvmlInit_v2, nvmlSystemGetDriverVersion,
nvmlDeviceGetCount_v2, nvmlDeviceGetHandleByIndex_v2, nvmlDeviceGetName, nvmlDeviceGetUUID,
nvmlDeviceGetHandleByUUID, nvmlDeviceGetMinorNumber, nvmlDeviceGetPciInfo_v3, nvmlDeviceGetMigMode,
nvmlDeviceGetMaxMigDeviceCount, nvmlDeviceGetMigDeviceHandleByIndex and nvmlShutdown; with
``--device-id`` also nvmlDeviceIsMigDeviceHandle and nvmlDeviceGetIndex. The management mode needs
only init, driver version, count, handles and PCI info. A missing function kills nvidia-ctk with
"symbol lookup error" (go-nvml binds lazily). ``libnvidia-sandboxutils.so.1`` is absent from the
root, so the toolkit logs that it is ignoring it and asks NVML.

What the modes gave on the same root (toolkit v1.20.2):

- ``nvml`` (what real nodes use; ``auto`` resolves to it here and gives the same spec): devices
  ``<index>``, ``<uuid>`` and ``all``, each with its ``/dev/nvidia<minor>`` and an
  ``apply-cuda-memory-limits`` createRuntime hook; common edits: the control nodes (nvidiactl,
  nvidia-uvm, nvidia-uvm-tools, nvidia-modeset), ``NVIDIA_CTK_LIBCUDA_DIR`` and
  ``NVIDIA_VISIBLE_DEVICES=void`` (with a /dev/null mount on /var/run/nvidia-container-devices/void),
  the library, binary, firmware and socket mounts, and the createContainer hooks create-symlinks
  (one for the ``gbm/nvidia-drm_gbm.so`` link of libnvidia-allocator, one for the SONAME and dev
  links), enable-cuda-compat ``--host-driver-version``, update-ldcache ``--folder``,
  disable-device-node-modification and update-application-profile.
- ``management``: the single device ``all`` holding every node (GPUs, control nodes and the MIG
  config/monitor capability nodes) and no per-GPU devices; common edits without device nodes, without
  the gbm symlink, disable-device-node-modification and update-application-profile hooks.
- ``csv`` (Tegra): fails, there are no CSV mount files ("invalid device, empty device edits").

The JSON leaves out zero values: the device node of ``/dev/nvidia0`` and ``/dev/nvidia-uvm`` has no
``minor``. Host paths are under the synthetic roots, container paths are the node's (``/usr/...``).

MIG devices are out of reach: the toolkit reads their capability minors from the host's
``/proc/driver/nvidia-caps/mig-minors`` (no proc root option), so the fake NVML reports MIG-capable
GPUs in no MIG mode. ``/tmp/nvidia-mps`` is never mounted: the toolkit looks for it with a locator
that accepts files only.
"""

from __future__ import annotations

import enum
import functools
import json
import os
import pathlib
import subprocess
from collections.abc import Sequence
from typing import Any

from tests.driverroot import synthetic

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "hack/build-nvidia-toolkit.sh"
VERSION = "v1.20.2"
"""The toolkit release the reference comes from (the build script's default, pinned here too)."""


class Mode(enum.Enum):
    NVML = "nvml"
    MANAGEMENT = "management"
    AUTO = "auto"


class GenerateError(RuntimeError):
    """nvidia-ctk failed or printed no spec; the message carries its output."""


@functools.cache
def build() -> pathlib.Path:
    """The directory holding nvidia-ctk and nvidia-cdi-hook (built on the first call, cached)."""
    environment = {**os.environ, "NVIDIA_TOOLKIT_VERSION": VERSION}
    result = subprocess.run(
        [str(BUILD_SCRIPT)], env=environment, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise GenerateError(f"{BUILD_SCRIPT.name} failed:\n{result.stderr}")
    return pathlib.Path(result.stdout.strip().splitlines()[-1])


def command(
    root: synthetic.SyntheticRoot,
    *,
    nvidia_ctk: pathlib.Path,
    hook_path: str,
    mode: Mode = Mode.NVML,
    device_ids: Sequence[str] = (),
) -> list[str]:
    """The command line `generate` runs."""
    return [
        str(nvidia_ctk),
        "cdi",
        "generate",
        f"--mode={mode.value}",
        "--format=json",
        f"--driver-root={root.driver_root}",
        f"--dev-root={root.dev_root}",
        f"--nvidia-cdi-hook-path={hook_path}",
        *(f"--device-id={device_id}" for device_id in device_ids),
    ]


def environment(root: synthetic.SyntheticRoot) -> dict[str, str]:
    """The whole environment of nvidia-ctk: a plain PATH and the fake NVML's description."""
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **root.fake_nvml_environment()}


def generate(
    root: synthetic.SyntheticRoot,
    *,
    hook_path: str,
    mode: Mode = Mode.NVML,
    device_ids: Sequence[str] = (),
) -> dict[str, Any]:
    """The CDI spec nvidia-ctk generates for ``root``, parsed from its JSON."""
    line = command(
        root,
        nvidia_ctk=build() / "nvidia-ctk",
        hook_path=hook_path,
        mode=mode,
        device_ids=device_ids,
    )
    result = subprocess.run(
        line, env=environment(root), capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0 or not result.stdout.strip():
        raise GenerateError(
            f"{' '.join(line)} exited with {result.returncode}:\n{result.stderr}{result.stdout}"
        )
    spec: dict[str, Any] = json.loads(result.stdout)
    return spec


def plugin_flags(root: synthetic.SyntheticRoot) -> tuple[str, ...]:
    """Our plugin's flags for this root, with the ``nvidia-cdi-hook`` of the same toolkit build
    installed by the plugin (so the e2e containers run the real hooks)."""
    return (
        f"--driver-root={root.driver_root}",
        f"--dev-root={root.dev_root}",
        f"--proc-root={root.proc_root}",
        f"--nvidia-cdi-hook-source={build() / 'nvidia-cdi-hook'}",
    )
