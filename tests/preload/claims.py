"""A claim's quota directory as the kubelet plugin lays it out, in a temporary directory.

The config and the state file are written by the plugin's own `dra_driver.isolation.quotas.write`,
so these tests read exactly what the plugin writes. The directory's name is the claim's UID: run
under `programs` (`containers`), it appears at ``/var/run/gpu-dra/claims/<name>``, where the
config's ``state_file`` points.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Mapping

from dra_driver.isolation import quotas
from tests.preload import containers

MiB = 1 << 20
GiB = 1 << 30

# The fake libcuda's default UUIDs (fake_gpus.c): GPU-fa4e0000-0000-0000-0000-0000000000<i>.
FAKE_UUIDS = tuple(f"GPU-fa4e0000-0000-0000-0000-{index:012x}" for index in range(4))


@dataclasses.dataclass(frozen=True)
class Claim:
    directory: pathlib.Path
    config: pathlib.Path
    state: pathlib.Path

    @property
    def config_inside(self) -> str:
        """The config's path in the claim's containers (what the library's messages name)."""
        return str(containers.inside(self.config))

    @property
    def state_inside(self) -> str:
        return str(containers.inside(self.state))

    def rewrite(self, old: str, new: str) -> None:
        """Replaces text in the config (which the plugin leaves read-only)."""
        self.config.chmod(0o644)
        self.config.write_text(self.config.read_text().replace(old, new))
        self.config.chmod(0o444)


def write(
    directory: pathlib.Path,
    limits: Mapping[str, int],
    *,
    extra: Mapping[str, str] | None = None,
) -> Claim:
    """The plugin's claim directory (config and state file) at `directory`, whose name is the
    claim's UID; `extra` keys are appended to the config."""
    quotas.write(directory.parent, directory.name, limits)
    claim = Claim(directory, directory / quotas.FILE, directory / quotas.STATE)
    if extra:
        text = claim.config.read_text()
        claim.rewrite(text, text + "".join(f"{key}={value}\n" for key, value in extra.items()))
    return claim
