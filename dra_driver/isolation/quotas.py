"""The per-claim memory-quota config that the preload library (``preload/``) enforces.

A claim with shared devices gets a directory ``<plugin dir>/claims/<uid>/`` holding ``quota.conf``
(read-only to containers): the memory limit of each GPU the claim shares, keyed by GPU UUID, and
where the per-claim accounting state lives. Format (one ``key=value`` per line)::

    version=1
    device.GPU-8c6…memory_bytes=4294967296
    state_file=/var/run/gpu-dra/claims/<uid>/state
    context_reserve_bytes=536870912      (when the GPU models are known: `quotadefaults`)
    round_bytes=512

The directory is mounted into every container of the claim at ``CONTAINER_ROOT/<uid>`` (see
`containeredits`), where the library finds it: it reads every ``CONTAINER_ROOT/*/quota.conf`` and
no environment variable, so nothing else may sit under that root in a container. The library
parses the config strictly (a key it does not know fails it closed: a new key needs a new
version) and never creates or grows the state file, which `write` makes at its fixed size.
"""

from __future__ import annotations

import pathlib
import shutil
from collections.abc import Mapping

from dra_driver import atomicfiles
from dra_driver.isolation import quotadefaults, quotastate

FILE = "quota.conf"
STATE = "state"
CONTAINER_ROOT = "/var/run/gpu-dra/claims"
"""Where a claim's directory appears inside its containers."""


def claim_dir(claims_root: pathlib.Path, claim_uid: str) -> pathlib.Path:
    return claims_root / claim_uid


def render(
    limits: Mapping[str, int],
    *,
    claim_uid: str,
    defaults: quotadefaults.QuotaDefaults | None = None,
) -> str:
    lines = ["version=1"]
    lines += [f"device.{uuid}.memory_bytes={limits[uuid]}" for uuid in sorted(limits)]
    lines.append(f"state_file={CONTAINER_ROOT}/{claim_uid}/{STATE}")
    if defaults is not None:
        lines.append(f"context_reserve_bytes={defaults.context_reserve_bytes}")
        lines.append(f"round_bytes={defaults.round_bytes}")
    return "\n".join(lines) + "\n"


def write(
    claims_root: pathlib.Path,
    claim_uid: str,
    limits: Mapping[str, int],
    *,
    products: Mapping[str, str] | None = None,
) -> pathlib.Path:
    """Write the claim's quota config and a fresh accounting state (atomically); return the
    claim's directory. `products` (GPU UUID -> NVML product name) adds the context reserve and
    allocation rounding of those GPU models (`quotadefaults`)."""
    defaults = None if products is None else quotadefaults.for_products(products.values())
    directory = claim_dir(claims_root, claim_uid)
    directory.mkdir(parents=True, exist_ok=True)
    uuids = sorted(limits)
    quotastate.create(directory / STATE, uuids, [limits[uuid] for uuid in uuids])
    atomicfiles.write_bytes(
        directory / FILE,
        render(limits, claim_uid=claim_uid, defaults=defaults).encode(),
        mode=0o444,
        durable=False,  # like the CDI spec: worthless after a reboot, removed at start-up
    )
    return directory


def remove(claims_root: pathlib.Path, claim_uid: str) -> None:
    shutil.rmtree(claim_dir(claims_root, claim_uid), ignore_errors=True)


def leftover_claims(claims_root: pathlib.Path) -> set[str]:
    """UIDs of every claim directory present (for start-up reconciliation)."""
    if not claims_root.is_dir():
        return set()
    return {path.name for path in claims_root.iterdir() if path.is_dir()}
