"""Stream-ordered allocations and memory pools stay charged until the driver has the memory back.

Covers: a free enqueued on a stream that has not run keeping its charge (allocations on other
streams cannot pass the limit meanwhile), and memory freed and reallocated on the same stream
charged once; a pool above its release threshold giving memory back at a synchronization, and the
charge following; a pool that keeps freed memory (release threshold) charged until
cuMemPoolTrimTo or cuMemPoolDestroy; cuMemFree_v2 of pool memory returning it to the pool; pool
and stream allocations charged to the pool's or the stream's device, also without a current
context or with another device's context current.
"""

from __future__ import annotations

import pathlib

from tests.preload import building, claims, lifetimes, statefile
from tests.preload.claims import MiB

GPU0, GPU1 = claims.FAKE_UUIDS[0], claims.FAKE_UUIDS[1]
OOM = 2


def test_a_free_on_a_stream_that_has_not_run_keeps_its_charge(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {GPU0: 300 * MiB})
    with lifetimes.session(build, claim) as program:
        results = []
        for i in range(5):
            assert program.send(f"stream s{i}").rc == 0
            results.append(program.send(f"async a{i} 100M s{i}").rc)
            if results[-1] == 0:
                assert program.send(f"freeasync a{i} s{i}").rc == 0
            assert lifetimes.held(program) == lifetimes.charged(claim.state)
        assert results == [0, 0, 0, OOM, OOM]
        assert program.send("ctxsync").rc == 0  # the frees run; the pool gives the memory back
        assert (lifetimes.held(program), lifetimes.charged(claim.state)) == (0, 0)
        assert program.send("async b 300M s4").rc == 0
        assert program.finish() == 0


def test_memory_freed_and_reallocated_on_one_stream_is_charged_once(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {GPU0: 150 * MiB})
    output = lifetimes.run(
        build,
        claim,
        "stream s async a 100M s freeasync a s async b 100M s freeasync b s sync s "
        "async c 100M - freeasync c - async d 100M - held 0",
    )
    assert output.rcs("async") == [0, 0, 0, 0]
    assert output.results("held")[0].number("bytes") == 100 * MiB


def test_a_synchronization_gives_back_what_the_pool_released(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {GPU0: 100 * MiB})
    with lifetimes.session(build, claim) as first, lifetimes.session(build, claim) as second:
        lifetimes.succeed(first, "stream s", "async a 100M s", "freeasync a s")
        assert second.send("alloc x 100M").rc == OOM  # still in the stream's queue
        assert first.send("sync s").rc == 0
        assert (lifetimes.held(first), lifetimes.charged(claim.state)) == (0, 0)
        assert second.send("alloc x 100M").rc == 0
        assert first.finish() == 0
        assert second.finish() == 0


def test_a_pool_that_keeps_freed_memory_stays_charged_until_trimmed(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {GPU0: 300 * MiB})
    with lifetimes.session(build, claim) as program:
        lifetimes.succeed(
            program, "defaultpool q 0", "threshold q 1G", "async a 100M -", "freeasync a -"
        )
        assert program.send("ctxsync").rc == 0
        assert lifetimes.held(program) == lifetimes.charged(claim.state) == 100 * MiB
        assert program.send("alloc x 250M").rc == OOM
        assert program.send("async b 100M -").rc == 0  # reuses what the pool keeps
        assert lifetimes.charged(claim.state) == 100 * MiB
        assert program.send("free b").rc == 0  # cuMemFree_v2: back into the pool
        assert lifetimes.held(program) == lifetimes.charged(claim.state) == 100 * MiB
        assert program.send("trim q 0").rc == 0
        assert (lifetimes.held(program), lifetimes.charged(claim.state)) == (0, 0)
        assert program.finish() == 0


def test_a_destroyed_pool_gives_back_its_charge(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {GPU0: 300 * MiB})
    with lifetimes.session(build, claim) as program:
        lifetimes.succeed(
            program, "newpool q 0", "threshold q 1G", "stream s", "poolalloc a q 100M s"
        )
        lifetimes.succeed(program, "poolalloc b q 50M s", "freeasync a s", "sync s")
        assert lifetimes.held(program) == lifetimes.charged(claim.state) == 150 * MiB
        assert program.send("destroypool q").rc == 0  # b is still allocated
        assert lifetimes.held(program) == lifetimes.charged(claim.state) == 50 * MiB
        assert program.send("freeasync b s").rc == 0
        assert program.send("sync s").rc == 0
        assert (lifetimes.held(program), lifetimes.charged(claim.state)) == (0, 0)
        assert program.finish() == 0


def test_pool_and_stream_allocations_are_charged_to_their_device(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {GPU0: 100 * MiB, GPU1: 100 * MiB})
    with lifetimes.session(build, claim, extra={"FAKE_GPU_COUNT": "2"}) as program:
        lifetimes.succeed(
            program, "dev 1", "stream s1", "dev 0", "newpool q 1", "poolalloc a q 60M -"
        )
        assert program.send("async b 30M s1").rc == 0  # s1 is device 1's; device 0 is current
        assert program.send("nocontext").rc == 0
        assert program.send("poolalloc c q 10M s1").rc == 0
        assert program.send("poolalloc d q 1M s1").rc == OOM
        state = statefile.read(claim.state)
        assert (state.usage[0], state.usage[1]) == (0, 100 * MiB)
        assert program.finish() == 0
