"""A claim's quota directory as the kubelet plugin lays it out, in a temporary directory.

The config is rendered by the plugin's own `dra_driver.isolation.quotas.render`, so these tests
read exactly what the plugin writes; only ``state_file`` is pointed into the test's directory.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Mapping

from dra_driver.isolation import quotas

MiB = 1 << 20
GiB = 1 << 30

# The fake libcuda's default UUIDs (fake_gpus.c): GPU-fa4e0000-0000-0000-0000-0000000000<i>.
FAKE_UUIDS = tuple(f"GPU-fa4e0000-0000-0000-0000-{index:012x}" for index in range(4))


@dataclasses.dataclass(frozen=True)
class Claim:
    directory: pathlib.Path
    config: pathlib.Path
    state: pathlib.Path


def write(
    directory: pathlib.Path,
    limits: Mapping[str, int],
    *,
    extra: Mapping[str, str] | None = None,
    uid: str = "claim-uid",
) -> Claim:
    directory.mkdir(parents=True, exist_ok=True)
    state = directory / "state"
    lines = [
        f"state_file={state}" if line.startswith("state_file=") else line
        for line in quotas.render(limits, claim_uid=uid).splitlines()
    ]
    lines += [f"{key}={value}" for key, value in (extra or {}).items()]
    config = directory / quotas.FILE
    config.write_text("\n".join(lines) + "\n")
    config.chmod(0o444)
    return Claim(directory, config, state)
