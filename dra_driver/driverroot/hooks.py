"""Installing ``nvidia-cdi-hook`` where the container runtime can run it.

CDI hooks run on the host, by the runtime, before the container starts; the hook binary must be a
host path. The plugin's image carries ``nvidia-cdi-hook`` (built from the NVIDIA Container
Toolkit's Go module at a pinned version); at start the plugin copies it into a host folder it
shares with the host at the same path (by default ``<plugin dir>/bin``), atomically and only when
the content differs, so a rolling update replaces it without ever leaving a half-written binary
that a starting container would run.
"""

from __future__ import annotations

import filecmp
import os
import pathlib

import structlog

from dra_driver import atomicfiles
from dra_driver.driverroot import errors

log = structlog.get_logger(__name__)

NAME = "nvidia-cdi-hook"


def install(source: pathlib.Path, target: pathlib.Path) -> bool:
    """Copy `source` to `target` (mode 0755) unless it is there already; True if copied."""
    try:
        if target.is_file() and filecmp.cmp(source, target, shallow=False):
            return False
        data = source.read_bytes()
        target.parent.mkdir(parents=True, exist_ok=True)
        atomicfiles.write_bytes(target, data, mode=0o755)
    except OSError as err:
        raise errors.IncompleteDriverRootError(
            f"cannot install {NAME} from {source} to {target}: {err.strerror or err}"
        ) from err
    log.info("driverroot.hook_installed", source=str(source), target=str(target))
    return True


def check(path: pathlib.Path) -> None:
    """Raise unless `path` is an executable file (as this process sees it)."""
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise errors.IncompleteDriverRootError(
            f"the CDI hook {path} is missing or not executable: containers of this node could not "
            "start (install it, or set --nvidia-cdi-hook-source so the plugin installs it)"
        )
