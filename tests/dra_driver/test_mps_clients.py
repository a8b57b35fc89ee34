"""A container may join one MPS daemon: `mpsclients.conflicts` finds the claims that would mix two.

Covers: two claims served by different daemons in one container (both refused, the message names
the container, the daemons and the claims); the same two claims in two containers (fine); two
claims of one daemon in one container (fine); a request filter that keeps a claim's other daemon
out of a container (fine) or lets it in (refused); devices without a daemon never count.
"""

from __future__ import annotations

import pytest

from dra_driver import claims, mpsclients
from dra_driver.checkpoint import model

A, B, C = (claims.ClaimUID(u) for u in ("uid-a", "uid-b", "uid-c"))
NAMES = {A: "ns/a", B: "ns/b", C: "ns/c"}


def _device(request: str, daemon: str | None) -> model.PreparedDevice:
    isolation = model.NO_ISOLATION
    if daemon:
        attached = model.MpsAttachment(
            daemon=daemon, pipe_dir="/pipe", shm_dir=None, exclusive=False
        )
        isolation = model.Isolation(mps=attached)
    return model.PreparedDevice(
        request_names=(request,),
        pool="node",
        device=f"gpu-{request}",
        share_id=None,
        cdi_ids=(),
        gpu_uuid="GPU-x",
        isolation=isolation,
    )


PREPARED = {
    A: [_device("r", "gpu-0")],
    B: [_device("r", "gpu-1")],
    C: [_device("near", "gpu-0"), _device("far", "gpu-1"), _device("plain", None)],
}


def _container(*uses: tuple[claims.ClaimUID, str | None]) -> mpsclients.ContainerClaims:
    return mpsclients.ContainerClaims(name="container main of pod ns/p", uses=uses)


@pytest.mark.parametrize(
    ("containers", "refused"),
    [
        pytest.param([_container((A, None), (B, None))], {A, B}, id="two-daemons-one-container"),
        pytest.param([_container((A, None)), _container((B, None))], set(), id="two-containers"),
        pytest.param([_container((A, None), (C, "near"))], set(), id="same-daemon"),
        pytest.param([_container((C, "near"), (C, "plain"))], set(), id="request-filter-keeps-out"),
        pytest.param([_container((C, None))], {C}, id="one-claim-two-daemons"),
        pytest.param([_container((A, None), (C, "far"))], {A, C}, id="request-filter-lets-in"),
        pytest.param([_container((C, "plain"), (B, None))], set(), id="no-daemon-no-count"),
    ],
)
def test_conflicts(
    containers: list[mpsclients.ContainerClaims], refused: set[claims.ClaimUID]
) -> None:
    assert set(mpsclients.conflicts(containers, PREPARED, NAMES)) == refused


def test_the_message_says_where_which_daemons_and_why() -> None:
    found = mpsclients.conflicts([_container((A, None), (B, None))], PREPARED, NAMES)

    assert found[A] == found[B]
    assert "container main of pod ns/p" in found[A]
    assert "gpu-0 (ns/a), gpu-1 (ns/b)" in found[A]
    assert "a CUDA process can connect to one MPS daemon only" in found[A]
