"""Where the NVIDIA driver lives: on the host, as this process sees it, and its proc files.

A node's driver is installed under a *driver root*: ``/`` on most nodes, ``/run/nvidia/driver``
under NVIDIA's GPU operator (a driver container). The plugin reads the driver root through a path of
its own (the chart mounts the host's driver root into the plugin's container, at ``/driver-root``
say) but writes *host* paths into CDI specs, since the container runtime runs on the host. The same
holds for the *dev root* (``<dev root>/dev/nvidia*``). The driver's proc files
(``driver/nvidia/version``, ``driver/nvidia/capabilities``, ``devices``) are global, not per
namespace, so any ``/proc`` shows them; tests point `Roots.proc` at a synthetic tree.

Symbolic links inside a root are resolved inside it: an absolute link target such as
``/usr/lib/x86_64-linux-gnu/libcuda.so.1`` means that path under the root, never the plugin's own
``/usr``.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

_MAX_LINKS = 40  # as the kernel's ELOOP limit


@dataclasses.dataclass(frozen=True)
class Root:
    """One root, by the host's name for it and the name under which this process reads it."""

    host: pathlib.PurePosixPath
    view: pathlib.Path
    """Where this process finds the root (the host path when the plugin runs on the host)."""

    @classmethod
    def at(cls, host: str, view: str | None = None) -> Root:
        return cls(pathlib.PurePosixPath(host), pathlib.Path(view if view else host))

    def seen(self, path: str) -> pathlib.Path:
        """`path` (absolute, inside the root) as this process reads it."""
        return self.view / path.lstrip("/")

    def exists(self, path: str) -> bool:
        """Whether `path` (absolute, inside the root) is there, a dangling link included."""
        return os.path.lexists(self.seen(path))

    def on_host(self, path: str) -> str:
        """`path` (absolute, inside the root) as the host names it."""
        return str(self.host / path.lstrip("/"))

    def resolve(self, path: str) -> str:
        """`path` with every symbolic link resolved inside the root; absolute, inside the root.

        Raises `OSError` (``ELOOP``) for a cycle; a missing component just ends the resolution,
        like ``realpath -m``.
        """
        parts = [part for part in path.split("/") if part]
        resolved: list[str] = []
        links = 0
        while parts:
            part = parts.pop(0)
            if part == ".":
                continue
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            candidate = "/" + "/".join([*resolved, part])
            try:
                target = os.readlink(self.seen(candidate))
            except OSError:  # not a link, or missing: keep the name as it is
                resolved.append(part)
                continue
            links += 1
            if links > _MAX_LINKS:
                raise OSError(40, f"too many levels of symbolic links in {path}")
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p] + parts
        return "/" + "/".join(resolved)


@dataclasses.dataclass(frozen=True)
class Roots:
    """The three places the driver's files come from."""

    driver: Root
    """Libraries, binaries, firmware, IPC sockets."""
    dev: Root
    """``dev/nvidia*`` device nodes."""
    proc: pathlib.Path
    """The proc filesystem (``/proc``) as this process reads it."""

    @classmethod
    def host(cls) -> Roots:
        """A driver installed on the host itself, read by a process on the host."""
        return cls(driver=Root.at("/"), dev=Root.at("/"), proc=pathlib.Path("/proc"))
