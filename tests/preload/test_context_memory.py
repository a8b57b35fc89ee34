"""Device memory a context holds besides its allocations, and the driver's page granularity.

Covers: cuCtxSetLimit raising the malloc heap, printf buffer or stack charged beyond their
defaults (the stack for every resident thread) and lowering them releasing it; graph memory nodes
charged when added, and refused past the limit; mipmapped arrays charged an upper estimate per
level; module and library globals charged once at their first lookup and released at unload;
allocations of 2 MiB or more counted in whole 2 MiB pages; the context reserve and rounding the
plugin writes for a GPU model.
"""

from __future__ import annotations

import pathlib

from dra_driver.isolation import quotadefaults
from tests.preload import building, claims, lifetimes
from tests.preload.claims import MiB

GPU0 = claims.FAKE_UUIDS[0]
OOM = 2


def test_raising_a_context_limit_is_charged(build: building.Build, claim_dir: pathlib.Path) -> None:
    claim = claims.write(claim_dir, {GPU0: 100 * MiB})
    with lifetimes.session(build, claim) as program:
        assert program.send("limit heap 68M").rc == 0  # 60 MiB past the 8 MiB default
        assert lifetimes.held(program) == lifetimes.charged(claim.state) == 60 * MiB
        assert program.send("alloc a 50M").rc == OOM
        assert program.send("limit heap 200M").rc == OOM
        assert program.send("limit heap 8M").rc == 0
        assert (lifetimes.held(program), lifetimes.charged(claim.state)) == (0, 0)
        assert program.send("limit printf 11M").rc == 0
        assert lifetimes.held(program) == lifetimes.charged(claim.state) == 10 * MiB
        assert program.send("limit stack 1088").rc == 0  # 64 bytes more for 108 x 2048 threads
        assert lifetimes.held(program) == 10 * MiB + 64 * 108 * 2048
        assert lifetimes.charged(claim.state) == 10 * MiB + 14 * MiB  # in 2 MiB pages
        assert program.finish() == 0


def test_graph_memory_nodes_are_charged_when_added(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {GPU0: 100 * MiB})
    output = lifetimes.run(
        build, claim, "graph g graphalloc g 0 60M alloc a 60M graphalloc g 0 60M alloc b 40M"
    )
    assert output.rcs("graphalloc") == [0, OOM]
    assert output.rcs("alloc") == [OOM, 0]


def test_mipmapped_arrays_are_charged_an_upper_estimate(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    # 256 x 256 floats, 9 levels: level 0 takes 256 KiB, each smaller level one 64 KiB unit.
    estimate = 256 * 1024 + 8 * 65536
    claim = claims.write(claim_dir, {GPU0: 1 * MiB})
    output = lifetimes.run(
        build,
        claim,
        f"mipmap m 256 256 0 9 alloc a {MiB - estimate} alloc b 1 mipfree m alloc c 1",
    )
    assert output.rcs("mipmap") == [0]
    assert output.rcs("alloc") == [0, OOM, 0]


def test_module_globals_are_charged_until_unloaded(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {GPU0: 100 * MiB})
    with lifetimes.session(build, claim) as program:
        lifetimes.succeed(program, "module m", "global m g64M", "global m g64M")
        assert lifetimes.held(program) == lifetimes.charged(claim.state) == 64 * MiB
        assert program.send("alloc a 40M").rc == OOM
        assert program.send("unload m").rc == 0
        assert (lifetimes.held(program), lifetimes.charged(claim.state)) == (0, 0)
        lifetimes.succeed(program, "library l", "libglobal l g40M")
        assert lifetimes.held(program) == lifetimes.charged(claim.state) == 40 * MiB
        assert program.send("module n").rc == 0
        assert program.send("global n g64M").rc == OOM  # the lookup is refused
        assert program.send("libunload l").rc == 0
        assert lifetimes.charged(claim.state) == 0
        assert program.finish() == 0


def test_allocations_from_2_mib_up_take_whole_pages(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {GPU0: 9 * MiB})
    output = lifetimes.run(
        build, claim, "alloc a 3M alloc b 5M alloc c 1M alloc d 1M alloc e 3M alloc f 2M"
    )
    # 3 MiB counts 4, 5 MiB 6; 1 MiB stays 1 (small allocations share pages).
    assert output.rcs("alloc") == [0, OOM, 0, 0, OOM, 0]


def test_the_plugins_defaults_for_a_gpu_model_are_enforced(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    defaults = quotadefaults.for_product("NVIDIA L4")  # a 224 MiB context reserve
    claim = claims.write(
        claim_dir,
        {GPU0: 300 * MiB},
        extra={
            "context_reserve_bytes": str(defaults.context_reserve_bytes),
            "round_bytes": str(defaults.round_bytes),
        },
    )
    output = lifetimes.run(build, claim, "alloc a 100M alloc b 76M alloc c 1")
    assert output.rcs("alloc") == [OOM, 0, OOM]
