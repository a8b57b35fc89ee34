"""The metric names a PromQL expression reads, found without a full parser.

promtool checks that an expression parses (`promtool.check_rules`); this finds its metric
names: label matchers, strings, ranges and the label lists of ``by``, ``without``, ``on``,
``ignoring``, ``group_left`` and ``group_right`` are dropped, then every identifier left that
is not a keyword or a function call (followed by ``(``) is a metric name.
"""

from __future__ import annotations

import re

_KEYWORDS = {"and", "or", "unless", "offset", "bool", "by", "without", "on", "ignoring",
             "group_left", "group_right", "inf", "nan"}  # fmt: skip
_GRAFANA = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h", "$node": ".*"}


def grafana_free(expr: str) -> str:
    """`expr` with the dashboard's Grafana variables replaced by values Prometheus takes."""
    for variable, value in _GRAFANA.items():
        expr = expr.replace(variable, value)
    if "$" in expr:
        raise AssertionError(f"unknown Grafana variable in {expr!r}")
    return expr


def metric_names(expr: str) -> set[str]:
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        if match.group() in _KEYWORDS or re.match(r"\s*\(", text[match.end() :]):
            continue
        if match.start() > 0 and (
            text[match.start() - 1].isdigit() or text[match.start() - 1] == "."
        ):
            continue  # a unit or exponent of a number (5m, 1e3)
        names.add(match.group())
    return names
