"""The names of every metric the driver exports, from the registries the plugin serves.

`names` builds the plugin's registry as ``kubeletplugin.__main__.open_metrics`` does (`metrics.Metrics`,
the share and device-info collectors, each with nothing prepared) and lists the sample names
Prometheus would store for each family: a counter's ``_total``, a histogram's ``_bucket``,
``_sum`` and ``_count``. The cluster controller exports no metrics.
"""

from __future__ import annotations

import prometheus_client

from kubeletplugin import devicemetrics, metrics, reservations, sharemetrics

_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
}


def registry() -> prometheus_client.CollectorRegistry:
    """The plugin's registry, nothing prepared."""
    stats = metrics.Metrics()
    stats.registry.register(sharemetrics.ShareCollector(list))
    stats.registry.register(
        devicemetrics.DeviceInfoCollector(
            list, pods=reservations.Reservations(), mig_instances=lambda gpu: ()
        )
    )
    return stats.registry


def families() -> dict[str, str]:
    """Family name → type, of every metric the plugin exports."""
    return {family.name: family.type for family in registry().collect()}


def names() -> set[str]:
    """Every sample name the plugin's metrics give Prometheus."""
    return {
        family + suffix
        for family, kind in families().items()
        for suffix in _SUFFIXES.get(kind, ("",))
    }
