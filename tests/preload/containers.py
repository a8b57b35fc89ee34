"""Running a test program the way a container of claims with shares runs: in a private mount
namespace where each claim's directory appears under the claims root, ``/var/run/gpu-dra/claims``
(`quotas.CONTAINER_ROOT`), the only place the quota library looks for its configuration.

Inside, a tmpfs hides the host's ``/var/run`` (nothing on the host changes), and each claim
directory is bind-mounted at ``<root>/<its name>`` as the plugin's CDI edits mount it: read-only,
with only its state file (when there is one) mounted again read-write on its own. Without claims
(``None``) there is no claims root at all, so the library is inert; with an empty list the root
exists and holds nothing. Needs root and ``unshare``; where those are missing, programs run
unwrapped and tests that need claims are skipped.
"""

from __future__ import annotations

import functools
import os
import pathlib
import shlex
import subprocess
from collections.abc import Sequence

from dra_driver.isolation import quotas

ROOT = pathlib.PurePosixPath(quotas.CONTAINER_ROOT)


@functools.cache
def available() -> bool:
    if os.geteuid() != 0:
        return False
    done = subprocess.run(["unshare", "--mount", "true"], capture_output=True, check=False)
    return done.returncode == 0


def inside(path: pathlib.Path) -> pathlib.PurePosixPath:
    """Where `path`, inside a claim directory (``<dir>/<file>``), appears in the container."""
    return ROOT / path.parent.name / path.name


def _mounts(claims: Sequence[pathlib.Path], *, writable: bool) -> list[str]:
    quote = shlex.quote
    lines = [f"mkdir -p {ROOT}"]
    for directory in claims:
        target = quote(str(ROOT / directory.name))
        if not directory.is_dir():  # a stray file in the root
            lines += [f"touch {target}", f"mount --bind {quote(str(directory))} {target}"]
            continue
        lines += [f"mkdir {target}", f"mount --bind {quote(str(directory))} {target}"]
        if writable:
            continue
        lines.append(f"mount -o remount,bind,ro {target}")
        state = directory / quotas.STATE
        if state.is_file():
            lines.append(f"mount --bind {quote(str(state))} {target}/{quotas.STATE}")
    return lines


def command(
    argv: Sequence[str], *, claims: Sequence[pathlib.Path] | None, writable: bool = False
) -> list[str]:
    """`argv` run in a namespace showing `claims` under the claims root (`writable`: the claim
    directories mounted read-write, as the plugin used to)."""
    if not available():
        assert claims is None, "claims need root and unshare (tests skip without them)"
        return list(argv)
    script = [
        "set -e",
        "mount --make-rprivate /",
        "mount -t tmpfs -o mode=755 gpuq-test /var/run",
        *(_mounts(claims, writable=writable) if claims is not None else []),
        'exec "$@"',
    ]
    return ["unshare", "--mount", "sh", "-c", "\n".join(script), "sh", *argv]
