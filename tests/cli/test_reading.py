"""Reading the cluster (`cli.reading`) through the REST layer, against a fake `rest.Rest`.

Covers: lists are paged; slices are asked for our driver (and the node); DeviceTaintRules are
read from the first version the server serves (v1, v1beta2, v1alpha3), and a server serving none,
or forbidding them, gives a note and no rules; with a namespace, claims are listed cluster-wide
when allowed and from the namespace (with a note) when not; other errors go to the caller.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from cli import reading
from controller import errors, rest


class FakeRest(rest.Rest):
    """Answers GETs from `lists` (path → items, served two per page) or raises `failures`."""

    def __init__(
        self, lists: dict[str, list[rest.Obj]], failures: dict[str, errors.ApiError]
    ) -> None:
        super().__init__(api=None)
        self.lists, self.failures = lists, failures
        self.queries: list[tuple[str, dict[str, str]]] = []

    def request(
        self,
        method: str,
        path: str,
        *,
        body: object = None,
        query: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        timeout: float = 30,
    ) -> rest.Obj:
        assert method == "GET"
        self.queries.append((path, dict(query or {})))
        if path in self.failures:
            raise self.failures[path]
        if path not in self.lists:
            raise errors.NotFoundError(f"GET {path}: 404", status=404)
        start = int((query or {}).get("continue") or 0)
        items = self.lists[path]
        meta = {"continue": str(start + 2)} if start + 2 < len(items) else {}
        return {"items": items[start : start + 2], "metadata": meta}


def _named(*names: str) -> list[rest.Obj]:
    return [{"metadata": {"name": n}} for n in names]


RULES = {v: f"/apis/resource.k8s.io/{v}/devicetaintrules" for v in ("v1", "v1beta2", "v1alpha3")}


def _lists(**extra: list[rest.Obj]) -> dict[str, list[rest.Obj]]:
    return {
        reading.SLICES: _named("s1", "s2", "s3", "s4", "s5"),
        reading.CLAIMS: _named("c1"),
        reading.PODS: _named("p1", "p2", "p3"),
        **{RULES[k]: v for k, v in extra.items()},
    }


def test_lists_are_paged_and_slices_asked_for_our_driver_and_node() -> None:
    client = FakeRest(_lists(v1=_named("r1")), {})
    found = reading.read(client, driver="gpu.dra.dev", node="n1")
    assert [s["metadata"]["name"] for s in found.slices] == ["s1", "s2", "s3", "s4", "s5"]
    assert len(found.pods) == 3
    assert len(found.claims) == 1
    slice_queries = [q for p, q in client.queries if p == reading.SLICES]
    assert len(slice_queries) == 3
    assert slice_queries[0]["fieldSelector"] == "spec.driver=gpu.dra.dev,spec.nodeName=n1"
    assert next(q for p, q in client.queries if p == reading.PODS)["fieldSelector"] == (
        "spec.nodeName=n1"
    )
    assert [r["metadata"]["name"] for r in found.taint_rules] == ["r1"]
    assert found.notes == ()


def test_taint_rules_come_from_the_first_version_served() -> None:
    found = reading.read(FakeRest(_lists(v1beta2=_named("beta")), {}), driver="gpu.dra.dev")
    assert [r["metadata"]["name"] for r in found.taint_rules] == ["beta"]


def test_a_cluster_without_taint_rules_gives_a_note() -> None:
    found = reading.read(FakeRest(_lists(), {}), driver="gpu.dra.dev")
    assert found.taint_rules == []
    assert found.notes == ("DeviceTaintRules are not served by this cluster: no taint rules shown",)


def test_forbidden_taint_rules_give_a_note() -> None:
    forbidden = errors.RejectedError("forbidden", status=403)
    found = reading.read(FakeRest(_lists(), {RULES["v1"]: forbidden}), driver="gpu.dra.dev")
    assert found.taint_rules == []
    assert "not readable (403)" in found.notes[0]


def test_claims_of_a_namespace_when_cluster_wide_is_forbidden() -> None:
    lists = _lists(v1=[])
    lists["/apis/resource.k8s.io/v1/namespaces/team-a/resourceclaims"] = _named("mine")
    lists["/api/v1/namespaces/team-a/pods"] = _named("p")
    client = FakeRest(lists, {reading.CLAIMS: errors.RejectedError("forbidden", status=403)})
    found = reading.read(client, driver="gpu.dra.dev", namespace="team-a")
    assert [c["metadata"]["name"] for c in found.claims] == ["mine"]
    assert [p["metadata"]["name"] for p in found.pods] == ["p"]
    assert "may be shown as free" in found.notes[0]


def test_errors_reading_the_cluster_reach_the_caller() -> None:
    client = FakeRest(_lists(), {reading.SLICES: errors.UnavailableError("down", status=503)})
    with pytest.raises(errors.UnavailableError):
        reading.read(client, driver="gpu.dra.dev")
    forbidden = FakeRest(_lists(), {reading.CLAIMS: errors.RejectedError("no", status=403)})
    with pytest.raises(errors.RejectedError):
        reading.read(forbidden, driver="gpu.dra.dev")  # no namespace to fall back to
