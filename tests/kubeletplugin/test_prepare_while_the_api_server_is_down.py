"""NodePrepareResources while the API server is down or hung: every claim gets a retriable error
in time, the call itself succeeds, and the kubelet's retry prepares the claims once it is back.

Covers: with the server down, each claim of a batch fails with "the API server is unreachable"
after one fetch (the others are not read, and say so: the same server would fail them too), the
failure is counted in ``gpu_dra_api_errors_total{component="prepare"}``, and nothing is prepared
(no checkpoint entry, no CDI spec); with the server hung, the answer comes within the kubelet's
deadline, not after one timeout per claim (the fetch gets at most its share of the time left);
the same call once the server answers again prepares every claim.
"""

from __future__ import annotations

import time

from tests.kubeletplugin import claimbook, pluginserver
from tests.kubeletplugin.claimbook import claim, gpu, mig

CLAIMS = [claim("u-0", gpu(0)), claim("u-1", gpu(1)), claim("u-2", mig(0, "3g.20gb", 4))]


def _api_errors(plugin: pluginserver.PluginServer) -> float:
    value = plugin.stats.registry.get_sample_value(
        "gpu_dra_api_errors_total", {"component": "prepare"}
    )
    return 0.0 if value is None else value


def test_a_down_server_fails_each_claim_once_and_the_retry_prepares_them(
    stubs: pluginserver.Stubs, book: claimbook.ClaimBook, plugin: pluginserver.PluginServer
) -> None:
    for obj in CLAIMS:
        book.add(obj)
    refs = [claimbook.ref(obj) for obj in CLAIMS]
    book.outage = "down"
    answer = stubs.v1.prepare(*refs)
    first, *others = refs
    assert answer.claims[first.uid].error == "the API server is unreachable: down"
    for ref in others:
        error = answer.claims[ref.uid].error
        assert error == "the API server is unreachable: down (this claim was not read)"
    assert book.fetches == 1
    assert _api_errors(plugin) == 1
    assert plugin.layout.checkpointed() == {}
    assert list(plugin.layout.cdi_dir.glob("*.json")) == []

    book.outage = None
    answer = stubs.v1.prepare(*refs)
    assert {entry.error for entry in answer.claims.values()} == {""}
    assert set(plugin.layout.checkpointed()) == {ref.uid for ref in refs}


def test_a_hung_server_gets_an_answer_within_the_kubelets_deadline(
    stubs: pluginserver.Stubs, book: claimbook.ClaimBook
) -> None:
    for obj in CLAIMS:
        book.add(obj)
    book.outage = "hung"
    started = time.monotonic()
    answer = stubs.v1.prepare(*[claimbook.ref(obj) for obj in CLAIMS], timeout=3.0)
    assert time.monotonic() - started < 3.0  # no DEADLINE_EXCEEDED: every claim has its answer
    for entry in answer.claims.values():
        assert entry.error.startswith("the API server is unreachable: hung")
    assert book.fetches == 1
