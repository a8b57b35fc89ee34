"""Reading a plugin's Prometheus metrics in a test: a free port to serve them on, and the samples.

A plugin started with ``--metrics-port=<free_port()>`` serves them on 127.0.0.1; `samples` parses
its exposition with prometheus_client's own parser.
"""

from __future__ import annotations

import socket
import urllib.request

from prometheus_client import parser

Labels = frozenset[tuple[str, str]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def samples(port: int) -> dict[tuple[str, Labels], float]:
    """Every sample the plugin exports now, by name and labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in parser.text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(port: int, name: str, **labels: str) -> float | None:
    """The sample `name` whose labels include `labels` (None if none; an error if several)."""
    wanted = set(labels.items())
    found = [v for (n, have), v in samples(port).items() if n == name and wanted <= have]
    if len(found) > 1:
        raise AssertionError(f"{len(found)} samples of {name} match {labels}")
    return found[0] if found else None
