"""One slice garbage-collection pass against an in-memory API server.

Covers: slices of our driver whose Node is gone are deleted; those of an existing Node, of
another driver, and without ``nodeName`` are kept; every Node is looked up once per pass; the
delete carries the slice's UID and resourceVersion, so a slice rewritten meanwhile (its node came
back and published again) is kept and logged; a slice deleted by someone else meanwhile is not an
error; paging through a long list finds every slice.
"""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from controller import slicegc
from tests.controller import fakeapi

DRIVER = "gpu.dra.dev"
SLICES = slicegc.SLICES
NODES = slicegc.NODES


def add_slice(api: fakeapi.FakeApi, node: str | None, *, driver: str = DRIVER) -> str:
    spec: dict[str, Any] = {"driver": driver, "pool": {"name": node or "all"}}
    if node is None:
        spec["allNodes"] = True
    else:
        spec["nodeName"] = node
    stored = api.add(SLICES, {"metadata": {"generateName": f"{node}-{driver}-"}, "spec": spec})
    name: str = stored["metadata"]["name"]
    return name


def remaining(api: fakeapi.FakeApi) -> set[str]:
    return {path.rsplit("/", 1)[1] for path in api.objects if path.startswith(SLICES + "/")}


@pytest.fixture
def api() -> fakeapi.FakeApi:
    api = fakeapi.FakeApi()
    api.add(NODES, {"metadata": {"name": "alive"}})
    return api


def test_only_our_slices_of_gone_nodes_go(api: fakeapi.FakeApi) -> None:
    gone = {add_slice(api, "gone"), add_slice(api, "gone")}
    kept = {
        add_slice(api, "alive"),
        add_slice(api, "gone", driver="other.example.com"),
        add_slice(api, None),
    }
    deleted = slicegc.collect(api, driver=DRIVER)
    assert set(deleted) == gone
    assert remaining(api) == kept
    node_lookups = [path for method, path in api.calls if method == "GET" and "/nodes/" in path]
    assert sorted(node_lookups) == [f"{NODES}/alive", f"{NODES}/gone"]


def test_a_slice_rewritten_meanwhile_is_kept(api: fakeapi.FakeApi) -> None:
    name = add_slice(api, "back")

    def node_returns(method: str, path: str) -> None:
        if (method, path) == ("GET", f"{NODES}/back"):
            api.touch(f"{SLICES}/{name}")  # the node's plugin republished

    api.before.append(node_returns)
    with capture_logs() as logs:
        assert slicegc.collect(api, driver=DRIVER) == []
    assert remaining(api) == {name}
    assert {"event": "slicegc.changed_meanwhile", "slice": name, "node": "back"} in [
        {k: v for k, v in entry.items() if k != "log_level"} for entry in logs
    ]


def test_a_slice_deleted_by_someone_else_meanwhile_is_fine(api: fakeapi.FakeApi) -> None:
    name = add_slice(api, "gone")

    def someone_deletes(method: str, path: str) -> None:
        if method == "DELETE":
            api.objects.pop(f"{SLICES}/{name}", None)

    api.before.append(someone_deletes)
    assert slicegc.collect(api, driver=DRIVER) == []
    assert remaining(api) == set()


def test_paging_through_many_slices(api: fakeapi.FakeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slicegc, "PAGE", "2")
    gone = {add_slice(api, f"gone-{i}") for i in range(5)}
    kept = {add_slice(api, "alive") for _ in range(2)}
    assert set(slicegc.collect(api, driver=DRIVER)) == gone
    assert remaining(api) == kept
    pages = [path for method, path in api.calls if method == "GET" and path == SLICES]
    assert len(pages) == 4  # 7 slices, 2 a page
