"""The plugin's Prometheus metrics count what the kubelet's calls did.

Covers: request counts by operation and result, the duration histogram, in-flight back to zero,
per-claim errors, and the prepared-devices gauge by device type following prepare and unprepare.
"""

from __future__ import annotations

from tests.kubeletplugin import claimbook, pluginserver


def _value(plugin: pluginserver.PluginServer, name: str, **labels: str) -> float:
    value = plugin.stats.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_calls_errors_and_prepared_devices_are_counted(
    stubs: pluginserver.Stubs, book: claimbook.ClaimBook, plugin: pluginserver.PluginServer
) -> None:
    good = claimbook.claim("u-good", claimbook.mig(0, "3g.20gb", 4), claimbook.gpu(1))
    book.add(good)
    missing = claimbook.claim("u-missing", claimbook.gpu(1))  # never added: fails alone
    answer = stubs.v1.prepare(claimbook.ref(good), claimbook.ref(missing))
    assert answer.claims["u-good"].error == ""
    assert answer.claims["u-missing"].error
    ok = {"operation": "prepare", "result": "ok"}
    assert _value(plugin, "gpu_dra_requests_total", **ok) == 1
    assert _value(plugin, "gpu_dra_claim_errors_total", operation="prepare") == 1
    assert _value(plugin, "gpu_dra_request_duration_seconds_count", operation="prepare") == 1
    assert _value(plugin, "gpu_dra_requests_inflight", operation="prepare") == 0
    assert _value(plugin, "gpu_dra_prepared_devices", type="mig") == 1
    assert _value(plugin, "gpu_dra_prepared_devices", type="gpu") == 1
    stubs.v1.unprepare(claimbook.ref(good))
    assert _value(plugin, "gpu_dra_requests_total", operation="unprepare", result="ok") == 1
    assert _value(plugin, "gpu_dra_prepared_devices", type="mig") == 0
