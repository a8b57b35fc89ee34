"""The driver edits of this node, discovered once and rediscovered when the driver changes.

`Driver` is what the prepare flow asks for the driver part of a claim's spec. Discovery walks the
driver root once; each later call only compares `discovery.fingerprint` (a dozen ``stat`` calls and
one small read), so a driver upgrade under a running plugin is noticed at the next prepare. Device
nodes and the hook binary are checked on every call: they are what appears last on a booting node,
and a failed check is never cached, so the next prepare looks again. `problem` says what is wrong
for readiness, logs and metrics.
"""

from __future__ import annotations

import dataclasses
import pathlib
import threading

import structlog

from dra_driver.cdi import spec
from dra_driver.driverroot import devicenodes, discovery, editing, errors, hooks, roots

log = structlog.get_logger(__name__)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Where the driver is and what containers get of it."""

    roots: roots.Roots
    capabilities: tuple[str, ...] = discovery.DEFAULT_CAPABILITIES
    hook: pathlib.Path = pathlib.Path("/usr/local/bin") / hooks.NAME
    """``nvidia-cdi-hook`` on the host; the plugin sees it at the same path."""


class Driver:
    """The node's driver, for CDI specs. Thread-safe."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._files: discovery.DriverFiles | None = None
        self._edits = spec.NO_EDITS
        self._problem: str | None = "not checked yet"

    @property
    def problem(self) -> str | None:
        """Why the last check failed, or None when containers get the whole driver."""
        return self._problem

    def check(self) -> str | None:
        """Look again; return (and remember) the problem, or None."""
        try:
            self.common_edits()
        except errors.DriverRootError as exc:
            return str(exc)
        return None

    def common_edits(self) -> spec.ContainerEdits:
        """The driver's files, hooks, environment and control nodes, for every claim's spec."""
        with self._lock:
            try:
                edits = self._current() + spec.ContainerEdits(
                    device_nodes=devicenodes.control_nodes(self.settings.roots.dev)
                )
                hooks.check(self.settings.hook)
            except errors.DriverRootError as exc:
                self._set_problem(str(exc))
                raise
            self._set_problem(None)
            return edits

    def gpu_edits(self, minor: int) -> spec.ContainerEdits:
        return spec.ContainerEdits(device_nodes=(self._gpu_node(minor),))

    def mig_edits(
        self, minor: int, *, gpu_instance: int, compute_instance: int
    ) -> spec.ContainerEdits:
        caps = devicenodes.mig_nodes(
            self.settings.roots.proc,
            gpu_minor=minor,
            gpu_instance=gpu_instance,
            compute_instance=compute_instance,
        )
        return spec.ContainerEdits(device_nodes=(self._gpu_node(minor), *caps))

    def _gpu_node(self, minor: int) -> spec.DeviceNode:
        return devicenodes.gpu_node(self.settings.roots.dev, minor)

    def _current(self) -> spec.ContainerEdits:
        driver, proc = self.settings.roots.driver, self.settings.roots.proc
        cached = self._files
        if cached is not None and cached.fingerprint == discovery.fingerprint(
            driver, proc, cached.library_folders
        ):
            return self._edits
        files = discovery.discover(driver, proc, capabilities=self.settings.capabilities)
        self._edits = editing.driver_edits(files, driver, hook_path=str(self.settings.hook))
        self._files = files
        log.info(
            "driverroot.discovered",
            driver_root=str(driver.host),
            version=files.version,
            libraries=len(files.libraries),
            binaries=len(files.binaries),
            firmware=len(files.firmware),
            sockets=list(files.sockets),
            refreshed=cached is not None,
        )
        return self._edits

    def _set_problem(self, problem: str | None) -> None:
        if problem != self._problem:
            if problem is None:
                log.info("driverroot.ready", driver_root=str(self.settings.roots.driver.host))
            else:
                log.error("driverroot.incomplete", reason=problem)
        self._problem = problem
