"""VMM memory stays charged as long as the driver keeps it.

Covers: physical memory (cuMemCreate) charged while a mapping keeps it after its handle is
released, and released with the last of its handles and mappings, in either order (create, map,
release, repeat cannot pass the limit); a retained handle (cuMemRetainAllocationHandle) keeping it
too; an exported allocation (cuMemExportToShareableHandle) charged until the process exits; an
import of our own export counted once; an import of memory exported elsewhere charged to the
importer for as much as it maps, on the device the handle names.
"""

from __future__ import annotations

import pathlib
import struct

from tests.preload import building, claims, lifetimes
from tests.preload.claims import MiB

GPU0 = claims.FAKE_UUIDS[0]
OOM = 2


def test_memory_mapped_after_its_handle_is_released_cannot_pass_the_limit(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {GPU0: 300 * MiB})
    with lifetimes.session(build, claim) as program:
        results = []
        for i in range(5):
            results.append(program.send(f"create h{i} 100M").rc)
            if results[-1] == 0:
                assert program.send(f"reserve v{i} 100M").rc == 0
                assert program.send(f"map v{i} h{i} 100M").rc == 0
                assert program.send(f"release h{i}").rc == 0
            assert lifetimes.held(program) == lifetimes.charged(claim.state)
        assert results == [0, 0, 0, OOM, OOM]
        assert program.finish() == 0


def test_the_last_of_its_handles_and_mappings_releases_it(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {GPU0: 300 * MiB})
    with lifetimes.session(build, claim) as program:
        lifetimes.succeed(program, "create h 100M", "reserve v 100M", "map v h 100M", "release h")
        assert lifetimes.charged(claim.state) == 100 * MiB
        assert program.send("unmap v 100M").rc == 0
        assert (lifetimes.held(program), lifetimes.charged(claim.state)) == (0, 0)
        lifetimes.succeed(program, "create h 100M", "map v h 100M", "unmap v 100M")
        assert lifetimes.charged(claim.state) == 100 * MiB  # the handle keeps it
        assert program.send("release h").rc == 0
        assert (lifetimes.held(program), lifetimes.charged(claim.state)) == (0, 0)
        assert program.finish() == 0


def test_a_retained_handle_keeps_it(build: building.Build, claim_dir: pathlib.Path) -> None:
    claim = claims.write(claim_dir, {GPU0: 300 * MiB})
    with lifetimes.session(build, claim) as program:
        lifetimes.succeed(program, "create h 100M", "reserve v 100M", "map v h 100M", "retain r v")
        lifetimes.succeed(program, "release h", "unmap v 100M")
        assert lifetimes.held(program) == lifetimes.charged(claim.state) == 100 * MiB
        assert program.send("release r").rc == 0
        assert (lifetimes.held(program), lifetimes.charged(claim.state)) == (0, 0)
        assert program.finish() == 0


def test_exported_memory_stays_charged_until_the_process_exits(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {GPU0: 300 * MiB})
    with lifetimes.session(build, claim) as program:
        lifetimes.succeed(program, "create h 100M", "export h f", "release h")
        assert lifetimes.held(program) == lifetimes.charged(claim.state) == 100 * MiB
        assert program.send("create g 250M").rc == OOM
        assert program.finish() == 0
    output = lifetimes.run(build, claim, "create g 250M")
    assert output.rcs("create") == [0]


def test_an_import_of_our_own_export_is_counted_once(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {GPU0: 300 * MiB})
    with lifetimes.session(build, claim) as program:
        lifetimes.succeed(program, "create h 100M", "export h f", "import i f", "reserve v 100M")
        assert program.send("map v i 100M").rc == 0
        assert lifetimes.held(program) == lifetimes.charged(claim.state) == 100 * MiB
        assert program.finish() == 0


def test_an_import_of_memory_exported_elsewhere_is_charged_as_mapped(
    build: building.Build, claim_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    # What the fake's export descriptor holds: magic "FAKEVMM", device 0, 200 MiB.
    exported = tmp_path / "exported"
    exported.write_bytes(struct.pack("=Qqq", 0x46414B45564D4D, 0, 200 * MiB))
    claim = claims.write(claim_dir, {GPU0: 300 * MiB})
    with lifetimes.session(build, claim) as program:
        lifetimes.succeed(program, f"open f {exported}", "import i f", "reserve v 200M")
        assert program.send("map v i 200M").rc == 0
        assert lifetimes.held(program) == lifetimes.charged(claim.state) == 200 * MiB
        assert program.send("create h 150M").rc == OOM
        lifetimes.succeed(program, "unmap v 200M", "release i")
        assert (lifetimes.held(program), lifetimes.charged(claim.state)) == (0, 0)
        assert program.finish() == 0
