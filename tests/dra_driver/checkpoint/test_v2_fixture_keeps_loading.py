"""Claim files of the per-claim layout (``v2``) keep loading, forever, and the node is handed
between the layouts both ways.

The literal below is a ``v2`` claim file as its first release (0.2.0) writes it. Do not edit it:
a change of the code that breaks this test would strand the prepared claims of every node that
writes ``v2``. A new format is a new version beside this one, with its own fixture.

Covers: the fixture loads to the claim it holds; the writer produces exactly its bytes; a file
named after another claim is refused; the first release's ``v1`` file (the fixture of
`test_v1_fixture_keeps_loading`) handed to a writer of ``v2`` becomes one file per claim, and
handed back, the same ``v1`` file byte for byte: a rolling update to the release that writes
``v2`` and a roll back from it lose nothing.
"""

from __future__ import annotations

import json
import pathlib

import pytest

from dra_driver import atomicfiles
from dra_driver.checkpoint import errors, model, store, v2
from tests.dra_driver.checkpoint.test_v1_fixture_keeps_loading import BOOT, EXPECTED, FIXTURE_V1

UID = model.ClaimUID("9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a")

FIXTURE_V2 = """\
{
  "kind": "GpuDraCheckpointClaim",
  "version": "v2",
  "checksum": "0b2b1deddd26bc8c17f6775a6b1eda25475a8b43c8aff5ab3de6839113457556",
  "data": {
    "bootId": "3f0d9c52-7c1e-4b8a-9f3e-5d2a6b1c0e47",
    "uid": "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a",
    "claim": {
      "namespace": "team-b",
      "name": "inference",
      "state": "PrepareStarted",
      "devices": [
        {
          "requestNames": [
            "small"
          ],
          "pool": "node-a",
          "device": "gpu-2-shared",
          "shareId": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
          "cdiIds": [
            "k8s.gpu.dra.dev/claim=9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a-gpu-2-shared-a1b2c3d4"
          ],
          "gpuUuid": "GPU-2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f",
          "migUuid": null,
          "migGpuInstanceId": null,
          "adminAccess": false,
          "consumedCapacity": {
            "cores": "25",
            "memory": "4Gi"
          },
          "isolation": {
            "mpsPipeDir": "/var/lib/kubelet/plugins/gpu.dra.dev/mps/gpu-2/pipe",
            "quotaFile": "/var/lib/kubelet/plugins/gpu.dra.dev/quota/9d8c7b6a.json"
          }
        }
      ]
    }
  }
}
"""


def test_the_v2_fixture_loads() -> None:
    assert v2.decode(FIXTURE_V2.encode(), name=f"{UID}.json") == (BOOT, EXPECTED.claims[UID])


def test_the_writer_produces_the_fixture_byte_for_byte() -> None:
    compact = json.dumps(json.loads(FIXTURE_V2), separators=(",", ":"), ensure_ascii=True)
    assert v2.encode(BOOT, EXPECTED.claims[UID]).decode() == compact + "\n"


def test_a_file_named_after_another_claim_is_refused() -> None:
    with pytest.raises(errors.SchemaError, match="not the one it is named after"):
        v2.decode(FIXTURE_V2.encode(), name="c0ffee00-1234-4abc-8def-0123456789ab.json")


def _node(plugin_dir: pathlib.Path, layout: store.Layout) -> store.NodeCheckpoint:
    lock = atomicfiles.NodeLock(plugin_dir / "serialize.lock")
    return store.NodeCheckpoint(plugin_dir, boot_id=BOOT, lock=lock, layout=layout)


def test_the_first_releases_file_is_handed_to_v2_and_back(tmp_path: pathlib.Path) -> None:
    (tmp_path / store.FILE_NAME).write_text(FIXTURE_V1)
    upgraded = _node(tmp_path, store.Layout.DIRECTORY)
    upgraded.save(upgraded.load())
    assert not (tmp_path / store.FILE_NAME).exists()
    names = sorted(path.name for path in (tmp_path / v2.DIRECTORY).iterdir())
    assert names == sorted(f"{uid}.json" for uid in EXPECTED.claims)
    compact = json.dumps(json.loads(FIXTURE_V2), separators=(",", ":"), ensure_ascii=True)
    assert (tmp_path / v2.DIRECTORY / f"{UID}.json").read_text() == compact + "\n"

    rolled_back = _node(tmp_path, store.Layout.FILE)
    assert rolled_back.load() == EXPECTED
    rolled_back.save(rolled_back.load())
    assert list((tmp_path / v2.DIRECTORY).iterdir()) == []
    written = store.load(tmp_path / store.FILE_NAME, boot_id=BOOT)  # as the first release reads
    assert written.checkpoint == EXPECTED
    first = json.dumps(json.loads(FIXTURE_V1), separators=(",", ":"), ensure_ascii=True)
    assert (tmp_path / store.FILE_NAME).read_text() == first + "\n"
