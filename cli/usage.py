"""What each share uses against its limit, from the kubelet plugins' Prometheus metrics.

The plugin exports ``gpu_dra_share_memory_limit_bytes`` and ``gpu_dra_share_memory_used_bytes``
per shared claim and GPU (`kubeletplugin.sharemetrics`), labelled with the claim's UID and the
GPU's UUID, which is how the map joins them to its shares. Metrics are read only from the URLs
given (``--metrics``): the command does not go looking for plugin pods. A URL that cannot be read
or parsed becomes a note on the map, never a failure of the command.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable

from prometheus_client import parser

from cli import occupancy

LIMIT = "gpu_dra_share_memory_limit_bytes"
USED = "gpu_dra_share_memory_used_bytes"
Key = tuple[str, str]
"""(claim UID, GPU UUID)."""


def parse(text: str) -> dict[Key, occupancy.Usage]:
    """The shares' usage in one exposition (Prometheus text format); `ValueError` if malformed."""
    figures: dict[str, dict[Key, int]] = {LIMIT: {}, USED: {}}
    for family in parser.text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in figures:
                key = (sample.labels.get("claim_uid", ""), sample.labels.get("gpu_uuid", ""))
                figures[sample.name][key] = int(sample.value)
    return {
        key: occupancy.Usage(used_bytes=figures[USED].get(key, 0), limit_bytes=limit)
        for key, limit in figures[LIMIT].items()
    }


def scrape(
    urls: Iterable[str], *, timeout: float = 5.0
) -> tuple[dict[Key, occupancy.Usage], list[str]]:
    """The usage every URL reports, and a note for each URL that could not be read."""
    found: dict[Key, occupancy.Usage] = {}
    notes = []
    for url in urls:
        target = url
        try:
            target = normalized(url)
            with urllib.request.urlopen(target, timeout=timeout) as response:
                text = response.read().decode("utf-8", errors="replace")
            found.update(parse(text))
        except (OSError, ValueError) as exc:  # URLError and HTTPError are OSErrors
            notes.append(f"metrics of {target} not read: {exc}")
    return found, notes


def normalized(url: str) -> str:
    """``host:port`` → ``http://host:port/metrics``; a full URL is kept."""
    if "://" not in url:
        url = f"http://{url}"
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"metrics URL {url!r}: only http and https are read")
    return url if parts.path not in ("", "/") else parts._replace(path="/metrics").geturl()
