"""docs/monitoring.md stays true to the code.

Covers: its metrics table names exactly the metrics the plugin exports (a counter with its
``_total``, as Prometheus stores it), so a metric added, renamed or removed without the page
fails here; every link with an anchor, to this page or another in docs/, lands on a heading.
"""

from __future__ import annotations

from tests.monitoring import docs, exported


def test_the_metrics_table_names_every_exported_metric_and_nothing_else() -> None:
    stored = {
        name + ("_total" if kind == "counter" else "") for name, kind in exported.families().items()
    }
    table = docs.table_names(docs.section(docs.MONITORING.read_text(), "Metrics"))
    assert len(table) == len(set(table)), "a metric is listed twice"
    assert set(table) == stored


def test_every_anchored_link_lands_on_a_heading() -> None:
    text = docs.MONITORING.read_text()
    found = docs.links(text)
    assert found
    for target, anchor in found:
        page = docs.MONITORING.parent / target if target else docs.MONITORING
        assert anchor in docs.anchors(page), f"{target}#{anchor}: no such heading"
