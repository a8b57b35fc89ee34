"""Prometheus exposition text as the input series of a ``promtool test rules`` test.

`series` parses the text with prometheus_client's parser and gives each sample as a series held
at its value for the test's duration, with the labels Prometheus would add when scraping it
(`target`: e.g. ``job``, ``instance``, ``node``; with honor_labels, a label the sample has already
wins, as the chart's PodMonitor sets it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import parser


def series(text: str, *, target: Mapping[str, str], minutes: int = 30) -> list[dict[str, Any]]:
    """One ``input_series`` entry per sample of `text`, constant for `minutes` minutes."""
    found = []
    for family in parser.text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue  # a timestamp, not a figure; Prometheus ignores it by default too
            labels = {**target, **sample.labels}
            found.append(
                {"series": selector(sample.name, labels), "values": constant(sample.value, minutes)}
            )
    return found


def constant(value: float, minutes: int) -> str:
    """promtool's notation for `value` at every minute of `minutes` (``5x30``), written without
    an exponent, which the notation does not take."""
    value = float(value)  # the parser gives ints for integral values
    number = str(int(value)) if value.is_integer() else f"{value:.12f}".rstrip("0")
    return f"{number}x{minutes}"


def selector(name: str, labels: Mapping[str, str]) -> str:
    """``name{label="value",...}`` with the values quoted as PromQL quotes strings."""
    inner = ",".join(f"{key}={_quote(value)}" for key, value in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
